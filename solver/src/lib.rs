//! Service-parts stocking models and optimisation for spares.
