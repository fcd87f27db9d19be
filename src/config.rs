//! Explicit configuration: plain structs built in `main` from flags and passed
//! down. The library never reads the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Most items in one batch request (movements, reservation lines, master-data
/// records): 50,000 movements encode to about 5 MB, well inside
/// [`Limits::max_message_bytes`], and commit as one ledger transaction.
pub const MAX_BATCH_ITEMS: usize = 50_000;

/// Named limits, each with the reason it exists.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request or response message. tonic's send limit is unbounded by
    /// default; 16 MiB fits a 50,000-movement batch with room to spare.
    pub max_message_bytes: usize,
    /// Most items in one batch RPC (at most [`MAX_BATCH_ITEMS`]); bigger loads
    /// are split by the client so one request never holds the ledger's writer
    /// for long.
    pub max_batch_items: usize,
    /// Page size when the client asks for 0.
    pub default_page_size: usize,
    /// Largest page; keeps a response well under `max_message_bytes`.
    pub max_page_size: usize,
    /// Server-side deadline for a unary request.
    pub request_timeout: Duration,
    /// Concurrent requests per connection, so one client cannot starve others.
    pub concurrency_per_connection: usize,
    /// Events buffered per watch stream before a slow reader is told it lagged.
    pub watch_buffer: usize,
    /// Longest reservation TTL: a week; longer holds are allocations, not reservations.
    pub max_reservation_ttl_seconds: u32,
    /// Default reservation TTL when the client sends 0.
    pub default_reservation_ttl_seconds: u32,
    /// Jobs (simulate, optimize, frontier) running at once: each keeps a core
    /// busy, so one per core.
    pub job_workers: usize,
    /// Jobs that may wait for a worker; past this a submission is
    /// RESOURCE_EXHAUSTED, so a burst of requests cannot pile up work.
    pub job_queue: usize,
    /// Threads computing shared planning work (`service::work`): the units
    /// of this server's jobs and, on a shared store, of every server's. Each
    /// keeps a core busy, so one per core.
    pub work_threads: usize,
    /// How long a claimed unit of shared work stays with its worker without
    /// a renewal (renewed every third of it): a server that dies holds its
    /// units this long before another server computes them.
    pub work_lease: Duration,
    /// How long an idle worker waits before looking for shared work again
    /// (work from this server's own jobs wakes it at once; another server's
    /// is seen within this), and how often a job polls its units' progress
    /// on a shared store: one short query per poll and thread.
    pub work_poll: Duration,
    /// Most work one job may ask for, in part-location-days simulated
    /// (replications x simulated days x part-locations x runs): about 80
    /// times the default simulation of the demo, an hour or so of one core.
    pub max_job_work: f64,
    /// How long a stopping server waits for requests and jobs to finish
    /// before it exits anyway.
    pub shutdown_grace: Duration,
    /// Idle time before the first TCP keep-alive probe on an accepted
    /// connection: a client that vanished without a FIN (a dropped VPN, a
    /// NAT that forgot the flow) is noticed and its connection freed.
    pub tcp_keepalive_idle: Duration,
    /// Time between keep-alive probes once they start.
    pub tcp_keepalive_interval: Duration,
    /// Unanswered probes before the kernel closes the connection: with the
    /// defaults a dead peer is dropped about 90 s after it went silent.
    pub tcp_keepalive_retries: u32,
    /// Sustained requests a second one principal may make (a token bucket
    /// per principal; 0 = unlimited), so one client cannot starve the others.
    /// 1,000 a second is several times what one dealer system or planner
    /// sends; a bulk loader or load test raises it.
    pub rate_per_principal_per_second: f64,
    /// Requests one principal may make at once after being idle (the
    /// bucket's size): two seconds' worth by default.
    pub rate_burst_per_principal: u32,
    /// Longest a TLS handshake may take before the connection is closed: a
    /// client that connects and says nothing must not hold a slot.
    pub tls_handshake_timeout: Duration,
    /// TLS handshakes in progress at once; past this a new connection is
    /// closed at once, so a flood of silent connections stays bounded.
    pub max_tls_handshakes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 16 * 1024 * 1024,
            max_batch_items: MAX_BATCH_ITEMS,
            default_page_size: 100,
            max_page_size: 1000,
            request_timeout: Duration::from_secs(30),
            concurrency_per_connection: 256,
            watch_buffer: 1024,
            max_reservation_ttl_seconds: 7 * 24 * 3600,
            default_reservation_ttl_seconds: 900,
            job_workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            job_queue: 16,
            work_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            work_lease: Duration::from_secs(30),
            work_poll: Duration::from_millis(500),
            max_job_work: 1e11,
            shutdown_grace: Duration::from_secs(10),
            tcp_keepalive_idle: Duration::from_secs(60),
            tcp_keepalive_interval: Duration::from_secs(10),
            tcp_keepalive_retries: 3,
            rate_per_principal_per_second: 1000.0,
            rate_burst_per_principal: 2000,
            tls_handshake_timeout: Duration::from_secs(10),
            max_tls_handshakes: 1024,
        }
    }
}

/// Where the ledger lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// An embedded sled directory (the default, `--data-dir`).
    Sled(PathBuf),
    /// A PostgreSQL database, by URL (`--store`); several servers may share it.
    Postgres(String),
}

impl std::fmt::Display for StoreLocation {
    /// The directory, or the database URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sled(dir) => write!(f, "{}", dir.display()),
            Self::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

/// A database URL with any password replaced by `***`, for messages.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Directory of the sled database.
    pub data_dir: PathBuf,
    /// Named limits.
    pub limits: Limits,
}
