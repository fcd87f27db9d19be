//! The pure core: network model, ledger rules, calendars, routing and promises.
//!
//! Nothing here touches tokio, tonic, prost, sled, the file system, the system
//! clock or a global random generator; `tests/tidy.rs` enforces it.

pub mod audit;
pub mod availability;
pub mod calendar;
pub mod error;
pub mod inputs;
pub mod ledger;
pub mod network;
pub mod plans;
pub mod promise;
pub mod retire;
pub mod routing;
pub mod transit;
pub mod where_is;

pub use error::DomainError;
