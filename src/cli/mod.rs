//! The command line: `spares serve`, `spares demo`, `spares import` and client
//! subcommands that talk to a running server over gRPC.

pub mod client;
pub mod jobs;
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
    /// Runs a Monte Carlo simulation of the plan in force, with optional what-if scenarios.
    Simulate {
        /// Parts to simulate (comma-separated); default: the parts with most downtime exposure.
        #[arg(long, value_delimiter = ',')]
        parts: Vec<String>,
        /// Replications.
        #[arg(long, default_value_t = 200)]
        replications: u32,
        /// Measured days.
        #[arg(long, default_value_t = 365)]
        horizon_days: u32,
        /// Warm-up days.
        #[arg(long, default_value_t = 30)]
        warmup_days: u32,
        /// Seed (0 = pick one and print it).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// What-if: LOCATION:START_DAY:DAYS out of service.
        #[arg(long)]
        outage: Vec<String>,
        /// What-if: LOCATION:MULTIPLIER on lead times into it ("*" for all).
        #[arg(long)]
        lead_time_shock: Vec<String>,
        /// What-if: STORE:MODEL:MACHINES added.
        #[arg(long)]
        fleet_growth: Vec<String>,
        /// What-if: MULTIPLIER on all failure rates.
        #[arg(long)]
        demand_multiplier: Option<f64>,
        /// Print the full result as JSON.
        #[arg(long)]
        json: bool,
        /// Server URL.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
}
