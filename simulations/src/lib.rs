//! Seeded discrete-event simulation of spare-parts networks for spares.
