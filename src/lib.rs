//! `spares`: spare-parts availability, simulation and stocking service.

/// Generated protobuf and gRPC code for `spares.v1`. Only the `api` layer uses it.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("spares.v1");
    /// Encoded file descriptor set, served by the reflection service.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("spares_descriptor");
}

pub mod api;
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
