//! Service-parts stocking models and optimisation for spares.
//!
//! Models are plain data; every function is pure. The crate consumes demand as numbers
//! (rates, series, scenario matrices) and never depends on the service or the simulator.
//!
//! - [`newsvendor`], [`base_stock`], [`distribution`]: single-site textbook models.
//! - [`metric`]: METRIC and VARI-METRIC for a depot -> warehouse -> store tree, and the
//!   availability-versus-investment frontier by marginal analysis.
//! - [`averages`]: the averages-based safety stock planners use today.
//! - [`forecast`]: Croston, SBA, TSB, Syntetos-Boylan classes, bootstrap lead-time demand.
//! - [`tail`]: CVaR and tail weights.
//! - [`lp`]: LP data, backends chosen by name, MPS export.
//! - [`scenario`]: consequence-based sizing (scenario CVaR LP, exact MILP, decomposition).
//! - [`explain`]: why each level, in numbers.

pub mod averages;
pub mod base_stock;
pub mod distribution;
pub mod error;
pub mod explain;
pub mod forecast;
pub mod lp;
pub mod metric;
pub mod newsvendor;
pub mod scenario;
pub mod tail;

pub use error::{Result, SolverError};
