//! The command line: `spares serve`, `spares demo`, `spares import` and client
//! subcommands that talk to a running server over gRPC.

pub mod backup;
pub mod client;
pub mod csv_tables;
pub mod jobs;
pub mod keys;
pub mod load;
pub mod local;
pub mod operations;
pub mod planning;
pub mod policies;
pub mod report;
pub mod serve_auth;
pub mod table;
pub mod trail;

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
    /// Log line format on stderr: text or json (one object per line).
    #[arg(long, global = true, value_enum, default_value_t = crate::logging::LogFormat::Text)]
    pub log_format: crate::logging::LogFormat,
    /// API key presented by client commands (`spk_...`; create one with
    /// `spares keys create`).
    #[arg(long, global = true, env = "SPARES_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Bearer token (a JWT from your identity provider) presented by client
    /// commands instead of an API key.
    #[arg(
        long,
        global = true,
        env = "SPARES_BEARER_TOKEN",
        hide_env_values = true,
        value_name = "JWT"
    )]
    pub bearer_token: Option<String>,
    /// How client commands speak TLS.
    #[command(flatten)]
    pub client_tls: ClientTlsArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// TLS flags of client commands (given before or after the subcommand).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientTlsArgs {
    /// CA certificate (PEM) that signed the server's certificate: client
    /// commands then speak TLS, and `--server HOST:PORT` means https.
    #[arg(long, global = true, env = "SPARES_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for a server that requires one (mutual TLS).
    #[arg(
        long,
        global = true,
        env = "SPARES_CLIENT_CERT",
        value_name = "FILE",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// Private key (PEM) of --client-cert.
    #[arg(
        long,
        global = true,
        env = "SPARES_CLIENT_KEY",
        value_name = "FILE",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
    /// Name the server's certificate must carry, when it differs from the
    /// host in --server (e.g. when connecting by IP address).
    #[arg(
        long,
        global = true,
        env = "SPARES_TLS_SERVER_NAME",
        value_name = "NAME"
    )]
    pub tls_server_name: Option<String>,
}

impl ClientTlsArgs {
    /// The client's TLS settings: `None` (plaintext) without --ca-cert.
    ///
    /// # Errors
    /// A message when a client certificate, key or server name is given
    /// without --ca-cert.
    pub fn settings(&self) -> Result<Option<client::ClientTls>, String> {
        let Some(ca_cert) = self.ca_cert.clone() else {
            if self.client_cert.is_some() || self.tls_server_name.is_some() {
                return Err(
                    "--client-cert and --tls-server-name need --ca-cert FILE (TLS)".to_string(),
                );
            }
            return Ok(None);
        };
        Ok(Some(client::ClientTls {
            ca_cert,
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            server_name: self.tls_server_name.clone(),
        }))
    }
}

/// TLS flags of `spares serve` and `spares demo`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeTlsArgs {
    /// Serve TLS with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(
        long,
        env = "SPARES_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(
        long,
        env = "SPARES_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Require every client to present a certificate issued by this CA
    /// (PEM): mutual TLS.
    #[arg(
        long,
        env = "SPARES_CLIENT_CA",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub client_ca: Option<PathBuf>,
    /// Check the TLS files this often and reload them when they change
    /// (0: only on SIGHUP) [default: 60].
    #[arg(long, env = "SPARES_TLS_RELOAD_SECONDS", value_name = "SECONDS")]
    pub tls_reload_seconds: Option<u64>,
}

impl ServeTlsArgs {
    /// The TLS files, if TLS is asked for.
    ///
    /// # Errors
    /// A message when only one of certificate and key is given, or a client
    /// CA without them.
    pub fn files(&self) -> Result<Option<crate::api::tls::TlsFiles>, String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(crate::api::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.client_ca.clone(),
            })),
            (None, None) if self.client_ca.is_none() => Ok(None),
            (None, None) => Err("a client CA needs a TLS certificate and key".into()),
            _ => Err("the TLS certificate and key go together: give both".into()),
        }
    }

    /// These flags, with the configuration file's `[tls]` section under
    /// them (a flag or environment variable wins).
    pub fn over(self, file: &crate::config_file::TlsSection) -> Self {
        Self {
            tls_cert: self.tls_cert.or_else(|| file.cert.clone()),
            tls_key: self.tls_key.or_else(|| file.key.clone()),
            client_ca: self.client_ca.or_else(|| file.client_ca.clone()),
            tls_reload_seconds: self.tls_reload_seconds.or(file.reload_seconds),
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the gRPC server on an embedded sled store. Settings come from
    /// flags, then environment variables, then `--config FILE`, then the
    /// defaults.
    Serve {
        /// Configuration file (TOML; every key listed in
        /// docs/spares.example.toml). Flags and environment variables
        /// override it.
        #[arg(long, env = "SPARES_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
        /// Address to listen on [default: 127.0.0.1:50051].
        #[arg(long, env = "SPARES_LISTEN")]
        listen: Option<SocketAddr>,
        /// Directory of the sled database [default: spares-data].
        #[arg(long, env = "SPARES_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Keep the ledger in PostgreSQL instead of a sled directory:
        /// postgres://USER@HOST:PORT/DATABASE. Several servers may share one.
        #[arg(
            long,
            env = "SPARES_STORE",
            value_name = "URL",
            conflicts_with = "data_dir"
        )]
        store: Option<String>,
        /// Serve Prometheus metrics over HTTP at ADDR/metrics (e.g. 127.0.0.1:9464).
        #[arg(long, env = "SPARES_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
        /// Turn authentication OFF: every caller acts as an administrator.
        /// Only for development or a private network; announced at start.
        #[arg(long)]
        insecure_dev: bool,
        /// Sustained requests a second per principal (0 = unlimited;
        /// default 1,000).
        #[arg(long)]
        rate_limit: Option<f64>,
        /// Requests a principal may make at once after being idle (default
        /// 2,000).
        #[arg(long)]
        rate_burst: Option<u32>,
        /// TLS.
        #[command(flatten)]
        tls: ServeTlsArgs,
        /// Bearer JWTs.
        #[command(flatten)]
        jwt: serve_auth::ServeJwtArgs,
    },
    /// Builds the demo network (real cities, 20,000 parts, seeded stock) into
    /// an embedded sled store, serves it over gRPC and prints calls to try.
    Demo {
        /// Seed of the demo network; the same seed builds the same network.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Number of parts.
        #[arg(long, default_value_t = 20_000)]
        parts: usize,
        /// Number of stores.
        #[arg(long, default_value_t = 300)]
        stores: usize,
        /// Address to listen on.
        #[arg(long, default_value = DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// Directory of the sled database (reused if it already holds this demo).
        #[arg(long, default_value = "spares-demo")]
        data_dir: PathBuf,
        /// Build and load, then exit without serving.
        #[arg(long)]
        no_serve: bool,
        /// Serve Prometheus metrics over HTTP at ADDR/metrics (e.g. 127.0.0.1:9464).
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
        /// TLS.
        #[command(flatten)]
        tls: ServeTlsArgs,
        /// Turn authentication OFF instead of creating an administrator key.
        #[arg(long)]
        insecure_dev: bool,
    },
    /// API keys: create (the key is printed once), list, revoke. Offline on a
    /// data directory no server is using (`--data-dir`; how the first
    /// administrator key is made), or through a running server (`--server`,
    /// with an administrator `--api-key`).
    Keys {
        /// What to do.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manages a PostgreSQL store's schema.
    Db {
        /// What to do.
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Imports a directory of CSV or JSON files (locations, lanes, parts, stock,
    /// machine models, fleets, demand, policies) into a store or a running server.
    Import {
        /// Directory holding the files.
        dir: PathBuf,
        /// Load into this sled directory (when --server is not given).
        #[arg(long, default_value = "spares-data")]
        data_dir: PathBuf,
        /// Send to a running server instead, over gRPC.
        #[arg(long)]
        server: Option<String>,
    },
    /// Exports the network of a sled directory as CSV files.
    Export {
        /// Directory to write.
        dir: PathBuf,
        /// The sled directory to read.
        #[arg(long, default_value = "spares-data")]
        data_dir: PathBuf,
    },
    /// Writes a consistent backup (master data, the movement log,
    /// reservations, idempotency keys, jobs) of a running server (`--server`)
    /// or of a data directory no server is using (`--data-dir`), in the
    /// engine-independent format documented in `src/backup.rs`.
    Backup {
        /// The file to write (written as FILE.partial, checked, then renamed).
        file: PathBuf,
        /// Back up this running server over gRPC while it serves.
        #[arg(long, conflicts_with = "data_dir")]
        server: Option<String>,
        /// Back up this data directory (no server may be using it).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Restores a backup into an empty (or new) data directory, then checks
    /// it as opening it to serve would.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The data directory to create or fill (must be empty).
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Lists the server's locations.
    Locations {
        /// Server address: http://HOST:PORT or HOST:PORT.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
        /// Only this kind: depot, regional or store.
        #[arg(long)]
        kind: Option<String>,
    },
    /// Retires parts, locations (with their lanes) and lanes: they leave every list, promise
    /// and plan but stay in history. Refused while stock, reservations or units in transit
    /// remain.
    Retire {
        /// Parts (comma-separated).
        #[arg(long, value_delimiter = ',')]
        parts: Vec<String>,
        /// Locations (comma-separated).
        #[arg(long, value_delimiter = ',')]
        locations: Vec<String>,
        /// A lane as FROM:TO:MODE:KIND (repeat for several).
        #[arg(long)]
        lane: Vec<String>,
        /// Server address: http://HOST:PORT or HOST:PORT.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Shows a part and its supersession chain.
    Part {
        /// Part number.
        part: String,
        /// Server address: http://HOST:PORT or HOST:PORT.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Shows stock of a part (optionally at one location), or of a location.
    Stock {
        /// Part number ("-" for every part at --location).
        part: String,
        /// Only this location.
        #[arg(long, visible_alias = "at")]
        location: Option<String>,
        /// Server address: http://HOST:PORT or HOST:PORT.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Holds QTY units of a part at a location for an order (available ->
    /// reserved) until --need-by or for --ttl seconds; then `spares confirm`
    /// or `spares release` it.
    Reserve {
        /// Part number.
        part: String,
        /// Units.
        quantity: u64,
        /// The location holding the stock.
        #[arg(long, visible_alias = "location")]
        at: String,
        /// Hold until then: a date (2026-12-01: the end of that day at the
        /// location), an RFC 3339 instant or a zoned time. Warns when past.
        #[arg(long, conflicts_with = "ttl")]
        need_by: Option<String>,
        /// Hold this many seconds (0: the server's default, 15 minutes).
        #[arg(long, default_value_t = 0)]
        ttl: u32,
        /// Idempotency key: the same key and request is answered once
        /// (default: a fresh key, printed on stderr for a retry).
        #[arg(long)]
        key: Option<String>,
        /// Machine-down demand: may take protected stock.
        #[arg(long)]
        critical: bool,
        /// Your order reference.
        #[arg(long, default_value = "")]
        order: String,
        /// Server address: http://HOST:PORT or HOST:PORT.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Posts a pending reservation: issued to the customer, or shipped to
    /// --ship-to (in transit).
    Confirm {
        /// The reservation id `spares reserve` printed.
        reservation_id: String,
        /// Ship the units to this location instead of issuing them.
        #[arg(long)]
        ship_to: Option<String>,
        /// Idempotency key (default: confirm:ID, so a repeat is a replay).
        #[arg(long)]
        key: Option<String>,
        /// Server address: http://HOST:PORT or HOST:PORT.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Voids a pending reservation: its units are available again.
    Release {
        /// The reservation id.
        reservation_id: String,
        /// Idempotency key (default: release:ID).
        #[arg(long)]
        key: Option<String>,
        /// Server address: http://HOST:PORT or HOST:PORT.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Lists reservations, optionally of a part, a location and a state.
    Reservations {
        /// Only this part.
        #[arg(long)]
        part: Option<String>,
        /// Only this location.
        #[arg(long)]
        location: Option<String>,
        /// pending, posted, voided or expired.
        #[arg(long)]
        state: Option<String>,
        /// Server address: http://HOST:PORT or HOST:PORT.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Prints availability events (stock changes, and whatever else the
    /// server's stream carries) as they happen, until Ctrl-C or --count.
    Watch {
        /// Only these parts (comma-separated).
        #[arg(long, value_delimiter = ',')]
        part: Vec<String>,
        /// Only these locations (comma-separated).
        #[arg(long, value_delimiter = ',')]
        location: Vec<String>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
        /// Server address: http://HOST:PORT or HOST:PORT.
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
        /// Warm-up days, simulated and not measured; 0 = derived from the network (the
        /// longest supply chain of the simulated parts at p99, at least 30).
        #[arg(long, default_value_t = 0)]
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
        /// Also write the full result (every row, fetched page by page) as
        /// CSV files, one per table, into this directory.
        #[arg(long, value_name = "DIR")]
        csv: Option<PathBuf>,
        /// Print the full result as JSON.
        #[arg(long)]
        json: bool,
        /// Server address: http://HOST:PORT or HOST:PORT.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Where is a part (and its interchangeable part numbers), nearest first.
    /// Several part numbers are asked in one WhereIsBatch call, all read at
    /// one ledger sequence.
    Where {
        /// Part number(s).
        #[arg(required = true, num_args = 1..)]
        parts: Vec<String>,
        /// Sort by distance from this location.
        #[arg(long)]
        near: Option<String>,
        /// Show at most this many locations.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Server address: http://HOST:PORT or HOST:PORT.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// When can QTY units of a part reach a location? Holds nothing. With
    /// --line or --lines, many independent lines (a pick list) are asked in
    /// one PromiseBatch call, all read at one ledger sequence.
    Promise {
        /// Part number (omit with --line / --lines).
        #[arg(required_unless_present_any = ["line", "lines"])]
        part: Option<String>,
        /// Units (omit with --line / --lines).
        #[arg(required_unless_present_any = ["line", "lines"])]
        quantity: Option<u64>,
        /// A line PART:QTY; repeat for a pick list.
        #[arg(long, conflicts_with_all = ["part", "quantity"])]
        line: Vec<String>,
        /// A CSV file of lines `part,quantity` (a header row is allowed).
        #[arg(long, conflicts_with_all = ["part", "quantity"])]
        lines: Option<PathBuf>,
        /// Destination location.
        #[arg(long)]
        to: String,
        /// Need-by: a date (2026-11-24: the end of that day at the
        /// destination), an RFC 3339 instant (2026-11-24T17:00:00Z) or a
        /// zoned time (2026-11-24T17:00[America/Chicago]). Warns when past.
        #[arg(long)]
        need_by: Option<String>,
        /// Machine-down demand: may use protected stock.
        #[arg(long)]
        critical: bool,
        /// The customer collects at the destination.
        #[arg(long)]
        pickup: bool,
        /// Server address: http://HOST:PORT or HOST:PORT.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Plans stock of every echelon (depot, regional, store) of every part with demand by
    /// simulated consequence (candidate stock vectors per part, chosen against the
    /// network-wide CVaR of downtime cost) and, with --compare, scores it out of sample
    /// against the downtime-weighted METRIC and averages plans at the same investment.
    Optimize {
        /// Budget for stock of the selected parts over every echelon, USD (0 = none).
        #[arg(long, default_value_t = 0.0)]
        budget: f64,
        /// `budget` (expected + lambda x CVaR within --budget) or `cost` (holding +
        /// expected + lambda x CVaR, no budget); default: budget when --budget > 0.
        #[arg(long, default_value = "")]
        mode: String,
        /// CVaR level.
        #[arg(long, default_value_t = 0.95)]
        alpha: f64,
        /// Weight of CVaR in the objective.
        #[arg(long, default_value_t = 1.0)]
        lambda: f64,
        /// What the model trains on: `echelons` (every echelon, the default), or the
        /// store-only `curves` or `lead-time`.
        #[arg(long, default_value = "echelons")]
        model: String,
        /// LP backend of the lead-time model: clarabel, microlp or highs (highs needs the
        /// `highs` feature).
        #[arg(long, default_value = "clarabel")]
        backend: String,
        /// Parts (comma-separated); default: every part with demand (store-only models:
        /// the 50 with most downtime exposure).
        #[arg(long, value_delimiter = ',')]
        parts: Vec<String>,
        /// Training scenarios (replications of the training simulation); 0 = the model's
        /// default (100 for echelons and curves, 300 for lead-time).
        #[arg(long, default_value_t = 0)]
        scenarios: u32,
        /// Days each out-of-sample evaluation measures.
        #[arg(long, default_value_t = 365)]
        horizon_days: u32,
        /// Warm-up days of every simulation (training and evaluation); 0 = derived from
        /// the network (the longest supply chain of the parts at p99, at least 30).
        #[arg(long, default_value_t = 0)]
        warmup_days: u32,
        /// Solver time limit, seconds.
        #[arg(long, default_value_t = 60)]
        time_limit: u32,
        /// Least fill rate of critical parts, in [0, 1).
        #[arg(long, default_value_t = 0.0)]
        critical_fill_floor: f64,
        /// Seed (0 = pick one and print it).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also evaluate the averages and METRIC plans at the same investment.
        #[arg(long)]
        compare: bool,
        /// Make the plan the plan in force.
        #[arg(long)]
        apply: bool,
        /// Also write the full result (every row, fetched page by page) as
        /// CSV files, one per table, into this directory.
        #[arg(long, value_name = "DIR")]
        csv: Option<PathBuf>,
        /// Print the full result as JSON.
        #[arg(long)]
        json: bool,
        /// Server address: http://HOST:PORT or HOST:PORT.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Traces the availability-vs-investment frontier (METRIC or VARI-METRIC).
    Frontier {
        /// metric or vari-metric.
        #[arg(long, default_value = "vari-metric")]
        method: String,
        /// Points to show.
        #[arg(long, default_value_t = 20)]
        points: u32,
        /// Stop at this investment, USD (0 = until 99.9% availability).
        #[arg(long, default_value_t = 0.0)]
        max_investment: f64,
        /// Parts (comma-separated); default: the parts with most downtime exposure.
        #[arg(long, value_delimiter = ',')]
        parts: Vec<String>,
        /// Also write the full result (every row, fetched page by page) as
        /// CSV files, one per table, into this directory.
        #[arg(long, value_name = "DIR")]
        csv: Option<PathBuf>,
        /// Print the full result as JSON.
        #[arg(long)]
        json: bool,
        /// Server address: http://HOST:PORT or HOST:PORT.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Writes a succeeded Simulate, Optimize or Frontier job's HTML report (charts,
    /// tables, breakdowns; one self-contained file to open in a browser).
    Report {
        /// The job id.
        job: String,
        /// The file to write.
        #[arg(short, long, default_value = "report.html")]
        output: PathBuf,
        /// Server address: http://HOST:PORT or HOST:PORT.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Lists jobs (oldest first), optionally of one kind, state and owner.
    Jobs {
        /// simulate, optimize or frontier.
        #[arg(long)]
        kind: Option<String>,
        /// queued, running, succeeded, failed or cancelled.
        #[arg(long)]
        state: Option<String>,
        /// Only jobs this principal started (the `owner` column).
        #[arg(long)]
        owner: Option<String>,
        /// Server address: http://HOST:PORT or HOST:PORT.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// The movement log: list it (filtered, with who wrote each entry), or
    /// record a movement.
    Movements {
        /// What to do.
        #[command(subcommand)]
        command: MovementsCommand,
    },
    /// The audit trail (administrators): one row per call of a writing RPC,
    /// with its principal, time, RPC, idempotency keys and status.
    Audit {
        /// Only this principal id.
        #[arg(long)]
        principal: Option<String>,
        /// Only this RPC (method name such as RecordMovements, or full path).
        #[arg(long)]
        rpc: Option<String>,
        /// Only events at or after this time (2026-11-30T08:00:00Z or 2026-11-30).
        #[arg(long)]
        since: Option<String>,
        /// Only events before this time.
        #[arg(long)]
        until: Option<String>,
        /// Most rows to print.
        #[arg(long, default_value_t = trail::DEFAULT_ROWS)]
        limit: usize,
        /// Server URL.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// The policies in force (get, set by hand) and the history of plans
    /// applied by `spares optimize --apply` (history, rollback).
    Policies {
        /// What to do.
        #[command(subcommand)]
        command: PoliciesCommand,
    },
    /// Forecasts demand series from a CSV file, locally (long import format or the wide
    /// format of public data sets).
    Forecast {
        /// The CSV file.
        file: PathBuf,
        /// croston, sba or tsb; default: by Syntetos-Boylan class.
        #[arg(long)]
        method: Option<String>,
        /// Smoothing constant.
        #[arg(long, default_value_t = 0.1)]
        alpha: f64,
        /// Smoothing constant of TSB's demand probability.
        #[arg(long, default_value_t = 0.1)]
        beta: f64,
        /// Lead time in periods for bootstrap lead-time demand quantiles (0 = skip).
        #[arg(long, default_value_t = 0)]
        lead_time: u32,
        /// Bootstrap seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also write the full result (every row, fetched page by page) as
        /// CSV files, one per table, into this directory.
        #[arg(long, value_name = "DIR")]
        csv: Option<PathBuf>,
        /// Print every forecast as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `spares db ...`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Applies the schema migrations a PostgreSQL store lacks (a server
    /// also applies them when it starts), in one transaction.
    Upgrade {
        /// The database: postgres://USER@HOST:PORT/DATABASE.
        #[arg(long, env = "SPARES_STORE", value_name = "URL")]
        store: String,
    },
}

/// `spares keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Creates a key and prints it once.
    Create {
        /// dealer, ordering_app, planner, warehouse or admin.
        #[arg(long)]
        role: String,
        /// A dealer's stores (comma-separated; required for dealers).
        #[arg(long, value_delimiter = ',')]
        stores: Vec<String>,
        /// A warehouse's locations (comma-separated; required for warehouses).
        #[arg(long, value_delimiter = ',')]
        locations: Vec<String>,
        /// A label for people.
        #[arg(long, default_value = "")]
        name: String,
        /// Offline: this data directory (no server may be using it).
        #[arg(long, conflicts_with_all = ["server", "store"])]
        data_dir: Option<PathBuf>,
        /// Directly on this PostgreSQL store (postgres://...; servers may be
        /// running on it).
        #[arg(long, value_name = "URL", conflicts_with = "server")]
        store: Option<String>,
        /// Through this running server.
        #[arg(long)]
        server: Option<String>,
    },
    /// Lists keys (ids, roles, scope; never secrets).
    List {
        /// Also revoked keys.
        #[arg(long)]
        all: bool,
        /// Offline: this data directory.
        #[arg(long, conflicts_with_all = ["server", "store"])]
        data_dir: Option<PathBuf>,
        /// Directly on this PostgreSQL store (postgres://...; servers may be
        /// running on it).
        #[arg(long, value_name = "URL", conflicts_with = "server")]
        store: Option<String>,
        /// Through this running server.
        #[arg(long)]
        server: Option<String>,
    },
    /// Revokes a key: it authenticates nothing from then on.
    Revoke {
        /// The key id (the middle part of spk_<id>_<secret>).
        key_id: String,
        /// Offline: this data directory.
        #[arg(long, conflicts_with_all = ["server", "store"])]
        data_dir: Option<PathBuf>,
        /// Directly on this PostgreSQL store (postgres://...; servers may be
        /// running on it).
        #[arg(long, value_name = "URL", conflicts_with = "server")]
        store: Option<String>,
        /// Through this running server.
        #[arg(long)]
        server: Option<String>,
    },
}

/// `spares movements ...`.
#[derive(Debug, Subcommand)]
pub enum MovementsCommand {
    /// Lists the movement log, oldest first (warehouses: name one of your
    /// locations with --location).
    List {
        /// Only entries of this part.
        #[arg(long)]
        part: Option<String>,
        /// Only entries moving stock at this location.
        #[arg(long, alias = "at")]
        location: Option<String>,
        /// Only entries written by this principal id (or local:<user>,
        /// system:reservation-expiry, "unknown (before layout 4)").
        #[arg(long)]
        actor: Option<String>,
        /// Only entries recorded at or after this time (2026-11-30T08:00:00Z or 2026-11-30).
        #[arg(long)]
        since: Option<String>,
        /// Only entries recorded before this time.
        #[arg(long)]
        until: Option<String>,
        /// Most rows to print.
        #[arg(long, default_value_t = trail::DEFAULT_ROWS)]
        limit: usize,
        /// Server URL.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Records one movement (a receipt, issue, transfer, adjustment, scrap or count).
    Record {
        /// receipt, issue, transfer-ship, transfer-receive, adjustment, scrap or count.
        #[arg(long)]
        kind: String,
        /// The part.
        #[arg(long)]
        part: String,
        /// Where the stock is (a receipt or transfer receive: where it arrives).
        #[arg(long, alias = "at")]
        location: String,
        /// Units (an adjustment may be negative; a count is the new on hand).
        #[arg(long, allow_hyphen_values = true)]
        quantity: i64,
        /// Idempotency key: the same key and movement again is recorded once.
        #[arg(long)]
        key: String,
        /// Transfer ship: the destination.
        #[arg(long)]
        to: Option<String>,
        /// Transfer ship/receive: the shipment (generated on ship when absent).
        #[arg(long)]
        shipment: Option<String>,
        /// Transfer ship: expected arrival (2026-12-01T08:00:00Z).
        #[arg(long)]
        expected_arrival: Option<String>,
        /// Free text.
        #[arg(long, default_value = "")]
        note: String,
        /// Server URL.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
}

/// `spares policies ...`.
#[derive(Debug, Subcommand)]
pub enum PoliciesCommand {
    /// Shows the policies in force, optionally of one part and location.
    Get {
        /// Only this part.
        #[arg(long)]
        part: Option<String>,
        /// Only this location.
        #[arg(long)]
        location: Option<String>,
        /// Server URL.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Sets the policy of a part at a location by hand: the given fields
    /// change, the others keep their value (not recorded as a plan).
    Set {
        /// Part number.
        part: String,
        /// Location.
        location: String,
        /// base-stock, min-max or rq.
        #[arg(long)]
        kind: Option<String>,
        /// S: order up to this position.
        #[arg(long)]
        order_up_to: Option<u64>,
        /// s (min-max) or R (rq): reorder at or below this position.
        #[arg(long)]
        reorder_point: Option<u64>,
        /// Q (rq): units per order.
        #[arg(long)]
        order_quantity: Option<u64>,
        /// Units of available stock only critical demand may take.
        #[arg(long)]
        protect: Option<u64>,
        /// Server URL.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Lists the applied plans, oldest first; with --plan, that plan's changes.
    History {
        /// Show this plan's policy changes (before and after).
        #[arg(long)]
        plan: Option<String>,
        /// Most changes to show.
        #[arg(long, default_value_t = policies::DEFAULT_CHANGE_ROWS)]
        limit: usize,
        /// Server URL.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
    /// Restores exactly the policies a plan replaced (recorded as a new plan).
    Rollback {
        /// The plan to undo, e.g. plan-000003.
        plan_id: String,
        /// Server URL.
        #[arg(long, default_value = DEFAULT_SERVER)]
        server: String,
    },
}
