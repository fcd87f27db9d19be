//! Planning: turns the service's network into the inputs of the `simulations`
//! and `solver` crates, runs them as jobs, and shapes their results for people.
//! Pure functions; the job runner and gRPC layer call them.

pub mod forecast;
pub mod frontier;
pub mod model;
pub mod optimize;
pub mod simulate;
pub mod testnet;
