//! The pure core: network model, ledger rules, calendars, routing and promises.
//!
//! Nothing here touches tokio, tonic, prost, sled, the file system, the system
//! clock or a global random generator; `tests/tidy.rs` enforces it.

pub mod calendar;
pub mod error;
pub mod ledger;
pub mod network;
pub mod transit;

pub use error::DomainError;
