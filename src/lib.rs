//! `spares`: spare-parts availability, simulation and stocking service.
