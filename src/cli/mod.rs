//! The command line: `spares serve`, `spares demo`, `spares import` and client
//! subcommands that talk to a running server over gRPC.

pub mod client;
pub mod table;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Default address of the server.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default server URL for client commands.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// spares: where a spare part is, when it can arrive, and how much to hold where.
#[derive(Debug, Parser)]
#[command(name = "spares", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the gRPC server on an embedded sled store.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// Directory of the sled database.
        #[arg(long, default_value = "spares-data")]
        data_dir: PathBuf,
    },
    /// Lists the server's locations.
    Locations {
        /// Server URL.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
        /// Only this kind: depot, regional or store.
        #[arg(long)]
        kind: Option<String>,
    },
    /// Shows a part and its supersession chain.
    Part {
        /// Part number.
        part: String,
        /// Server URL.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Shows stock of a part (optionally at one location), or of a location.
    Stock {
        /// Part number ("-" for every part at --location).
        part: String,
        /// Only this location.
        #[arg(long)]
        location: Option<String>,
        /// Server URL.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
}
