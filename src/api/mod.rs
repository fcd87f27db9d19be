//! The gRPC layer: the only code that knows protobuf. Handlers convert
//! requests with [`convert`], call the application layer
//! ([`crate::service::Spares`]) and map errors with [`status`].

pub mod access_log;
pub mod admin;
pub mod audit;
pub mod availability;
pub mod client_certificate;
pub mod codec;
pub mod conn;
pub mod convert;
pub mod gate;
pub mod inputs;
pub mod inventory;
pub mod jobs;
pub mod limits;
pub mod network;
pub mod planning;
pub mod scope;
pub mod server;
pub mod status;
pub mod tls;
pub mod trail;
pub mod util;
