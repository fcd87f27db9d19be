//! `spares`: spare-parts availability, simulation and stocking service.

/// Generated protobuf and gRPC code for `spares.v1`. Only the `api` layer uses it.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("spares.v1");
    /// Encoded file descriptor set, served by the reflection service.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("spares_descriptor");
}

/// The process allocator: mimalloc instead of the system's. Declared in the
/// library so that the server, the tests and the benchmarks all run on the
/// allocator production runs on. A 1,000-movement ledger write makes tens of
/// thousands of small allocations (ours and sled's); with glibc's malloc
/// they took about half of its CPU time, and the batched ledger bench ran
/// about 2x faster with mimalloc or jemalloc (see `benches/ledger.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod api;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod config_file;
pub mod demo;
pub mod domain;
pub mod identity;
pub mod import;
pub mod logging;
pub mod metrics;
pub mod planning;
pub mod report;
pub mod service;
pub mod store;
