//! Prometheus metrics of the server process: one registry, filled by the
//! access-log layer (requests), the store (ledger writes and flushes), the
//! job pool, the watch streams and the process collector, and rendered in the
//! Prometheus text format by [`render`] for the `--metrics-listen` endpoint.
//!
//! The registry is process-wide (like a log), so code deep in the store can
//! count without threading a handle through every layer. Several servers in
//! one process (tests) share it; tests compare values before and after.

pub mod endpoint;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::Duration;

/// Latency buckets of RPCs, seconds: 250 microseconds (a cached promise) to
/// 30 seconds (the request timeout).
const RPC_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0,
];

/// Flush latency buckets, seconds: an fsync takes from tens of microseconds
/// (page cache, battery-backed disk) to hundreds of milliseconds (a busy disk).
const FLUSH_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

/// Job duration buckets, seconds: a small simulation to the hour a job may take.
const JOB_BUCKETS: &[f64] = &[
    0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0,
];

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    /// `spares_rpc_requests_total{rpc, status}`: finished requests.
    pub rpc_requests: IntCounterVec,
    /// `spares_rpc_duration_seconds{rpc, status}`: request latency (for
    /// streams, the stream's life).
    pub rpc_duration: HistogramVec,
    /// `spares_ledger_writes_total`: committed ledger transactions.
    pub ledger_writes: IntCounter,
    /// `spares_ledger_entries_total`: ledger entries (movements) committed.
    pub ledger_entries: IntCounter,
    /// `spares_store_flush_duration_seconds`: the flush before every
    /// acknowledged write (shared by concurrent writers).
    pub store_flush: Histogram,
    /// `spares_reservations_total{state}`: reservations that reached a state
    /// (pending = created, posted, voided, expired).
    pub reservations: IntCounterVec,
    /// `spares_reservations_pending`: reservations holding stock now.
    pub reservations_pending: IntGauge,
    /// `spares_jobs{kind, state}`: jobs of this process in each state now.
    pub jobs: IntGaugeVec,
    /// `spares_job_duration_seconds{kind, state}`: run time of ended jobs.
    pub job_duration: HistogramVec,
    /// `spares_watch_streams{stream}`: open watch streams.
    pub watch_streams: IntGaugeVec,
    /// `spares_watch_lagged_events_total{stream}`: events a slow watcher missed.
    pub watch_lagged_events: IntCounterVec,
}

impl Metrics {
    /// Builds and registers every metric. Errors only on an invalid metric
    /// name or label (constants here, checked by a unit test).
    fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let rpc_requests = IntCounterVec::new(
            Opts::new("spares_rpc_requests_total", "Finished gRPC requests."),
            &["rpc", "status"],
        )?;
        let rpc_duration = HistogramVec::new(
            HistogramOpts::new(
                "spares_rpc_duration_seconds",
                "gRPC request latency in seconds (streams: the stream's life).",
            )
            .buckets(RPC_BUCKETS.to_vec()),
            &["rpc", "status"],
        )?;
        let ledger_writes = IntCounter::new(
            "spares_ledger_writes_total",
            "Committed ledger write transactions.",
        )?;
        let ledger_entries = IntCounter::new(
            "spares_ledger_entries_total",
            "Ledger entries (movements) committed.",
        )?;
        let store_flush = Histogram::with_opts(
            HistogramOpts::new(
                "spares_store_flush_duration_seconds",
                "Flush of the store before a write is acknowledged, seconds.",
            )
            .buckets(FLUSH_BUCKETS.to_vec()),
        )?;
        let reservations = IntCounterVec::new(
            Opts::new(
                "spares_reservations_total",
                "Reservations that reached a state (pending = created).",
            ),
            &["state"],
        )?;
        let reservations_pending = IntGauge::new(
            "spares_reservations_pending",
            "Reservations holding stock now.",
        )?;
        let jobs = IntGaugeVec::new(
            Opts::new("spares_jobs", "Jobs of this server process in each state."),
            &["kind", "state"],
        )?;
        let job_duration = HistogramVec::new(
            HistogramOpts::new(
                "spares_job_duration_seconds",
                "Run time of ended jobs, seconds.",
            )
            .buckets(JOB_BUCKETS.to_vec()),
            &["kind", "state"],
        )?;
        let watch_streams = IntGaugeVec::new(
            Opts::new("spares_watch_streams", "Open watch streams."),
            &["stream"],
        )?;
        let watch_lagged_events = IntCounterVec::new(
            Opts::new(
                "spares_watch_lagged_events_total",
                "Events a slow watcher missed (it was told how many).",
            ),
            &["stream"],
        )?;
        registry.register(Box::new(rpc_requests.clone()))?;
        registry.register(Box::new(rpc_duration.clone()))?;
        registry.register(Box::new(ledger_writes.clone()))?;
        registry.register(Box::new(ledger_entries.clone()))?;
        registry.register(Box::new(store_flush.clone()))?;
        registry.register(Box::new(reservations.clone()))?;
        registry.register(Box::new(reservations_pending.clone()))?;
        registry.register(Box::new(jobs.clone()))?;
        registry.register(Box::new(job_duration.clone()))?;
        registry.register(Box::new(watch_streams.clone()))?;
        registry.register(Box::new(watch_lagged_events.clone()))?;
        // Series that exist before their first event read 0, not absent, so
        // a rate() or an alert on them works from the start.
        for stream in ["stock", "job"] {
            watch_streams.with_label_values(&[stream]);
            watch_lagged_events.with_label_values(&[stream]);
        }
        for state in ["pending", "posted", "voided", "expired"] {
            reservations.with_label_values(&[state]);
        }
        for kind in ["simulate", "optimize", "frontier"] {
            for state in ["queued", "running", "succeeded", "failed", "cancelled"] {
                jobs.with_label_values(&[kind, state]);
            }
            for state in ["succeeded", "failed", "cancelled"] {
                job_duration.with_label_values(&[kind, state]);
            }
        }
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            registry,
            rpc_requests,
            rpc_duration,
            ledger_writes,
            ledger_entries,
            store_flush,
            reservations,
            reservations_pending,
            jobs,
            job_duration,
            watch_streams,
            watch_lagged_events,
        })
    }

    /// Counts a finished request: `rpc` as `package.Service/Method`, `status`
    /// the canonical code name.
    pub fn observe_rpc(&self, rpc: &str, status: &str, latency: Duration) {
        let rpc = rpc_label(rpc);
        self.rpc_requests.with_label_values(&[rpc, status]).inc();
        self.rpc_duration
            .with_label_values(&[rpc, status])
            .observe(latency.as_secs_f64());
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    Metrics::new().expect("metric names and labels are constants, checked by a unit test")
});

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Every metric in the Prometheus text exposition format (version 0.0.4).
pub fn render() -> String {
    let families = metrics().registry.gather();
    TextEncoder::new()
        .encode_to_string(&families)
        .unwrap_or_else(|error| format!("# encoding metrics failed: {error}\n"))
}

/// The RPCs the server serves, as `package.Service/Method`: the label of a
/// request is its RPC only when it is one of these, so a client sending
/// made-up paths cannot grow the number of series.
fn known_rpcs() -> &'static HashSet<String> {
    static KNOWN: LazyLock<HashSet<String>> = LazyLock::new(|| {
        use prost::Message;
        let mut known = HashSet::new();
        for set in [
            crate::pb::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ] {
            let Ok(files) = prost_types::FileDescriptorSet::decode(set) else {
                continue;
            };
            for file in files.file {
                let package = file.package.unwrap_or_default();
                for service in file.service {
                    let name = service.name.unwrap_or_default();
                    for method in service.method {
                        known.insert(format!(
                            "{package}.{name}/{}",
                            method.name.unwrap_or_default()
                        ));
                    }
                }
            }
        }
        known
    });
    &KNOWN
}

/// The `rpc` label of a request path (without its leading `/`).
fn rpc_label(rpc: &str) -> &str {
    if known_rpcs().contains(rpc) {
        rpc
    } else if rpc.starts_with("grpc.reflection.") {
        "grpc.reflection"
    } else {
        "other"
    }
}

/// The label of a reservation state.
pub fn reservation_state(state: crate::domain::ledger::ReservationState) -> &'static str {
    use crate::domain::ledger::ReservationState;
    match state {
        ReservationState::Pending => "pending",
        ReservationState::Posted => "posted",
        ReservationState::Voided => "voided",
        ReservationState::Expired => "expired",
    }
}

/// Counts an open watch stream until dropped.
pub struct WatchStreamGuard {
    stream: &'static str,
}

impl WatchStreamGuard {
    /// Opens the count for a stream of kind `stream` (`stock`, `job`).
    pub fn open(stream: &'static str) -> Self {
        metrics().watch_streams.with_label_values(&[stream]).inc();
        Self { stream }
    }

    /// Counts events this stream's reader missed.
    pub fn lagged(&self, missed: u64) {
        metrics()
            .watch_lagged_events
            .with_label_values(&[self.stream])
            .inc_by(missed);
    }
}

impl Drop for WatchStreamGuard {
    fn drop(&mut self) {
        metrics()
            .watch_streams
            .with_label_values(&[self.stream])
            .dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_build_and_render() {
        let m = Metrics::new().unwrap();
        m.observe_rpc(
            "spares.v1.NetworkService/GetPart",
            "NOT_FOUND",
            Duration::from_millis(3),
        );
        let text = TextEncoder::new()
            .encode_to_string(&m.registry.gather())
            .unwrap();
        assert!(text.contains(
            "spares_rpc_requests_total{rpc=\"spares.v1.NetworkService/GetPart\",status=\"NOT_FOUND\"} 1"
        ));
    }

    #[test]
    fn made_up_paths_share_one_label() {
        assert_eq!(
            rpc_label("spares.v1.InventoryService/RecordMovements"),
            "spares.v1.InventoryService/RecordMovements"
        );
        assert_eq!(
            rpc_label("grpc.health.v1.Health/Check"),
            "grpc.health.v1.Health/Check"
        );
        assert_eq!(rpc_label("spares.v1.Nope/Nope"), "other");
        assert_eq!(
            rpc_label("grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            "grpc.reflection"
        );
    }
}
