//! gRPC load generator: the demo server in process on 127.0.0.1, driven by
//! tonic clients at 1, 16, 64 and 256 requests in flight. Prints, in one
//! run, req/s and p50/p99/p99.9 latency for Health/Check, Promise, WhereIs,
//! GetStock (one part at one location), a 20-line PromiseBatch (independent
//! lines to one store) and a 20-line PromiseOrder without reservation, each with its ratio to
//! Health/Check at the same concurrency (the strongest baseline on the same
//! server, connections and client: it does no work of ours), and the
//! process's CPU microseconds per request (server and client together) with
//! Health/Check's over it, a cost ratio that a busy machine moves less than
//! it moves req/s; then
//! acknowledged movements/s over `RecordMovements` in batches of 1,000; then
//! GetStock of every warehouse and depot in pages of 1,000, timed. Between
//! them, the overhead of authentication on Promise: the same calls with no
//! credentials (a second server on the same service with `--insecure-dev`),
//! with an API key and with a bearer JWT (ES256), side by side; and the
//! floor under Promise's ratio: servers whose Promise returns one fixed
//! reply (a real one, the same bytes in one string, an empty one, and one
//! string of each of several sizes) with no rules and no layers, each
//! against its own Health/Check, so the share of the gap that the gRPC
//! stack and the reply's size take alone is read in the same run.
//!
//! Then the same demo on PostgreSQL, in a fresh schema of the database
//! `SPARES_TEST_POSTGRES_URL` names (default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped at the end: first one
//! server on it, then two (two `PgStore`s following the ledger, as two
//! `spares serve --store URL` replicas would, each on a port of its own,
//! connection `i` to replica `i mod 2`, so one caller alone stays on the
//! first replica). For each, Promise and Health/Check at 1 and 64 in flight
//! and `RecordMovements` of 1,000 receipts at 1 and 4 calls in flight; one
//! table puts sled (its figures from the tables above), PostgreSQL with one
//! replica and with two side by side, with the load average after each.
//! Without a PostgreSQL server the section is skipped with a line saying
//! why (it fails instead when `SPARES_TEST_POSTGRES_REQUIRED=1`, as CI sets
//! when it started one).
//!
//! `cargo bench --bench grpc_load` runs the full demo (20,000 parts, 300
//! stores) for `SPARES_LOAD_SECONDS` (default 3) per cell; under
//! `cargo test --benches` (no `--bench` argument) it shrinks to a small demo
//! and a few requests per cell so CI only checks that it runs, PostgreSQL
//! section included.

#[path = "support/cpu.rs"]
mod cpu;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use spares::api::server::{Security, serve_with};
use spares::cli::client::{AuthChannel, Target};
use spares::cli::local::{open_location, prepare_demo_with};
use spares::config::{Limits, StoreLocation};
use spares::demo::{DemoConfig, build_demo};
use spares::domain::ledger::Actor;
use spares::domain::network::LocationKind;
use spares::pb;
use spares::pb::availability_service_client::AvailabilityServiceClient;
use spares::pb::inventory_service_client::InventoryServiceClient;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// Requests in flight per cell.
const IN_FLIGHT: [usize; 4] = [1, 16, 64, 256];
/// Requests per connection at most: several connections, as many clients would.
const PER_CONNECTION: usize = 32;
/// Movements per RecordMovements call.
const MOVEMENT_BATCH: usize = 1000;
/// Lines of the batch promise.
const ORDER_LINES: usize = 20;
/// Seed of every random draw.
const SEED: u64 = 11;

/// What one run measures and how long.
struct Plan {
    cell: Duration,
    /// A cell also stops after this many requests (a bound for test mode).
    max_requests: u64,
    demo: DemoConfig,
    movement_batches: usize,
}

impl Plan {
    /// One of [`ROUNDS`] slices of a cell of this plan.
    fn slice(&self) -> Plan {
        self.part(ROUNDS)
    }

    /// One of `parts` equal parts of a cell of this plan.
    fn part(&self, parts: u32) -> Plan {
        Plan {
            cell: self.cell / parts,
            max_requests: self.max_requests.div_ceil(u64::from(parts)),
            demo: self.demo.clone(),
            movement_batches: self.movement_batches,
        }
    }
}

/// Ids the requests draw from.
struct Ids {
    parts: Vec<String>,
    stores: Vec<String>,
    warehouses: Vec<String>,
}

/// Slices of each latency cell (see [`latency_table`]).
const ROUNDS: u32 = 3;

/// One cell's result.
#[derive(Default)]
struct Cell {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
    /// CPU seconds of the whole process (server and client) over the cell.
    cpu_s: Option<f64>,
}

impl Cell {
    /// Adds another slice of the same cell.
    fn absorb(&mut self, other: Cell) {
        let first = self.elapsed.is_zero();
        self.cpu_s = match (self.cpu_s, other.cpu_s) {
            _ if first => other.cpu_s,
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        self.requests += other.requests;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latencies_us.extend(other.latencies_us);
        self.latencies_us.sort_unstable();
    }

    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// CPU microseconds per request, server and client together (they
    /// share the process and the machine's cores).
    fn cpu_us_per_request(&self) -> f64 {
        match self.cpu_s {
            Some(cpu) if self.requests > 0 => cpu * 1e6 / self.requests as f64,
            _ => f64::NAN,
        }
    }

    fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((self.latencies_us.len() as f64 - 1.0) * q).round() as usize;
        self.latencies_us[rank] as f64 / 1000.0
    }
}

#[derive(Clone)]
struct Clients {
    health: HealthClient<AuthChannel>,
    inventory: InventoryServiceClient<AuthChannel>,
    availability: AvailabilityServiceClient<AuthChannel>,
}

/// `count` connections, the i-th to `targets[i % targets.len()]`: callers
/// spread over several replicas as a round-robin balancer would spread them.
async fn spread(targets: &[Target], count: usize) -> Vec<Clients> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        out.extend(connections(&targets[i % targets.len()], 1).await);
    }
    out
}

async fn connections(url: &Target, count: usize) -> Vec<Clients> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let channel = spares::cli::client::channel(url).await.expect("connect");
        out.push(Clients {
            health: HealthClient::new(channel.clone()),
            inventory: InventoryServiceClient::new(channel.clone())
                .max_decoding_message_size(64 << 20),
            availability: AvailabilityServiceClient::new(channel),
        });
    }
    out
}

/// Runs `in_flight` workers, each issuing one request after another with
/// `call`, until the cell's time or request budget is spent.
async fn drive<F, Fut>(plan: &Plan, clients: &[Clients], in_flight: usize, call: F) -> Cell
where
    F: Fn(Clients, u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = bool> + Send,
{
    let issued = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + plan.cell;
    let cpu_before = cpu::cpu_seconds();
    let started = Instant::now();
    let mut workers = Vec::with_capacity(in_flight);
    for worker in 0..in_flight {
        let client = clients[worker % clients.len()].clone();
        let call = call.clone();
        let issued = issued.clone();
        let max = plan.max_requests;
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            loop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= max || Instant::now() >= deadline {
                    break;
                }
                let sent = Instant::now();
                if !call(client.clone(), n).await {
                    errors += 1;
                }
                latencies.push(sent.elapsed().as_micros() as u64);
            }
            (latencies, errors)
        }));
    }
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (mut l, e) = worker.await.expect("worker");
        latencies_us.append(&mut l);
        errors += e;
    }
    let elapsed = started.elapsed();
    let cpu_s = cpu_before
        .zip(cpu::cpu_seconds())
        .map(|(before, after)| after - before);
    latencies_us.sort_unstable();
    Cell {
        requests: latencies_us.len() as u64,
        errors,
        elapsed,
        latencies_us,
        cpu_s,
    }
}

/// The `i`-th request of the Promise cell (and of the in-process split).
fn promise_request(ids: &Ids, i: u64) -> pb::PromiseRequest {
    pb::PromiseRequest {
        part_id: pick(&ids.parts, i, 1).to_string(),
        quantity: 1,
        destination_location_id: pick(&ids.stores, i, 2).to_string(),
        ..Default::default()
    }
}

fn pick(ids: &[String], n: u64, salt: u64) -> &str {
    let mut rng = StdRng::seed_from_u64(SEED ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt);
    &ids[rng.random_range(0..ids.len())]
}

async fn run_cell(plan: &Plan, ids: &Arc<Ids>, clients: &[Clients], rpc: &str, n: usize) -> Cell {
    let ids = ids.clone();
    match rpc {
        "Health/Check" => {
            drive(plan, clients, n, |mut c, _| async move {
                c.health.check(HealthCheckRequest::default()).await.is_ok()
            })
            .await
        }
        "Promise" => {
            drive(plan, clients, n, move |mut c, i| {
                let request = promise_request(&ids, i);
                async move { c.availability.promise(request).await.is_ok() }
            })
            .await
        }
        "WhereIs" => {
            drive(plan, clients, n, move |mut c, i| {
                let request = pb::WhereIsRequest {
                    part_id: pick(&ids.parts, i, 1).to_string(),
                    near_location_id: pick(&ids.stores, i, 2).to_string(),
                    only_with_stock: true,
                    ..Default::default()
                };
                async move { c.availability.where_is(request).await.is_ok() }
            })
            .await
        }
        "GetStock part@location" => {
            drive(plan, clients, n, move |mut c, i| {
                let request = pb::GetStockRequest {
                    part_id: pick(&ids.parts, i, 1).to_string(),
                    location_id: pick(&ids.warehouses, i, 3).to_string(),
                    ..Default::default()
                };
                async move { c.inventory.get_stock(request).await.is_ok() }
            })
            .await
        }
        "PromiseBatch 20 lines" => {
            drive(plan, clients, n, move |mut c, i| {
                let destination = pick(&ids.stores, i, 2).to_string();
                let lines = (0..ORDER_LINES as u64)
                    .map(|l| pb::PromiseRequest {
                        part_id: pick(&ids.parts, i * 64 + l, 4).to_string(),
                        quantity: 1,
                        destination_location_id: destination.clone(),
                        ..Default::default()
                    })
                    .collect();
                let request = pb::PromiseBatchRequest { lines };
                async move { c.availability.promise_batch(request).await.is_ok() }
            })
            .await
        }
        _ => {
            drive(plan, clients, n, move |mut c, i| {
                let lines = (0..ORDER_LINES as u64)
                    .map(|l| pb::OrderLine {
                        line_id: l.to_string(),
                        part_id: pick(&ids.parts, i * 64 + l, 4).to_string(),
                        quantity: 1,
                    })
                    .collect();
                let request = pb::PromiseOrderRequest {
                    lines,
                    destination_location_id: pick(&ids.stores, i, 2).to_string(),
                    ..Default::default()
                };
                async move { c.availability.promise_order(request).await.is_ok() }
            })
            .await
        }
    }
}

const RPCS: [&str; 6] = [
    "Health/Check",
    "Promise",
    "WhereIs",
    "GetStock part@location",
    "PromiseBatch 20 lines",
    "PromiseOrder 20 lines",
];

/// `SPARES_LOAD_ONLY=<rpc>` (one of [`RPCS`], e.g. `Promise`): the latency
/// table with Health/Check and that RPC only, and nothing else (to profile
/// it).
fn only_rpc() -> Option<String> {
    std::env::var("SPARES_LOAD_ONLY")
        .ok()
        .filter(|v| RPCS.contains(&v.as_str()))
}

/// Prints the latency table; keeps Health/Check and Promise at
/// [`COMPARE_IN_FLIGHT`] in `row` for the backend comparison.
async fn latency_table(plan: &Plan, ids: &Arc<Ids>, url: &Target, row: &mut Row) {
    println!(
        "| in flight | rpc | req/s | p50 ms | p99 ms | p99.9 ms | errors | ratio to Health/Check \
         | CPU us/request (server and client) | Health/Check's CPU over its |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let rpcs: Vec<&str> = RPCS
        .into_iter()
        .filter(|rpc| only_rpc().is_none_or(|only| *rpc == "Health/Check" || *rpc == only))
        .collect();
    // Each cell is run in ROUNDS slices, the RPCs taking turns, so a shared
    // machine's slow minute falls on every RPC alike, not on one of them.
    let slice = plan.slice();
    for n in IN_FLIGHT {
        let clients = connections(url, n.div_ceil(PER_CONNECTION)).await;
        let mut health_rate = f64::NAN;
        let mut health_cpu = f64::NAN;
        let mut cells: Vec<Cell> = rpcs.iter().map(|_| Cell::default()).collect();
        for _ in 0..ROUNDS {
            for (cell, rpc) in cells.iter_mut().zip(&rpcs) {
                cell.absorb(run_cell(&slice, ids, &clients, rpc, n).await);
            }
        }
        for (cell, rpc) in cells.into_iter().zip(rpcs.iter().copied()) {
            if rpc == "Health/Check" {
                health_rate = cell.rate();
                health_cpu = cell.cpu_us_per_request();
            }
            if let Some(i) = COMPARE_IN_FLIGHT.iter().position(|&c| c == n) {
                row.keep(i, rpc, &cell);
            }
            println!(
                "| {n} | {rpc} | {:.0} | {:.3} | {:.3} | {:.3} | {} | {:.2} | {:.1} | {:.2} |",
                cell.rate(),
                cell.quantile_ms(0.5),
                cell.quantile_ms(0.99),
                cell.quantile_ms(0.999),
                cell.errors,
                cell.rate() / health_rate,
                cell.cpu_us_per_request(),
                health_cpu / cell.cpu_us_per_request()
            );
        }
    }
}

/// Requests in flight of the table with and without the access log and
/// authentication.
const BARE_IN_FLIGHT: [usize; 2] = [64, 256];

/// Promise over Health/Check as served (the access log written, an API key
/// on every call), bare (the access log off, the server without
/// authentication) and at the floor (a server whose Promise returns one
/// fixed real reply, with no rules and no layers: what the gRPC stack and
/// the reply's size alone cost), at [`BARE_IN_FLIGHT`]; each pair in slices
/// taking turns, each ratio within one server. By default a successful
/// Health/Check is not logged (it stays below `info`), so the access log
/// costs Promise alone.
async fn bare_ratio(
    plan: &Plan,
    ids: &Arc<Ids>,
    served: &Target,
    open: &Target,
    log: &spares::logging::LogFilter,
) {
    println!();
    println!(
        "Promise over Health/Check with and without the access log and authentication, \
         and at the floor:"
    );
    println!(
        "| in flight | server | Health/Check req/s | Promise req/s | ratio | \
         Health/Check CPU us | Promise CPU us | Health/Check's CPU over Promise's |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    let slice = plan.slice();
    let (reply, mean_bytes) = representative_reply(ids, open).await;
    let (canned, stop_canned, canned_server) = serve_canned(reply.clone()).await;
    let (empty, stop_empty, empty_server) = serve_canned(pb::PromiseResponse::default()).await;
    // As many bytes as the real reply, in one string: the bytes without the
    // nesting (no options, sources or legs to build, encode and decode).
    let flat_reply = pb::PromiseResponse {
        reason_detail: "x".repeat(prost::Message::encoded_len(&reply).saturating_sub(3)),
        ..Default::default()
    };
    let flat_bytes = prost::Message::encoded_len(&flat_reply);
    let (flat, stop_flat, flat_server) = serve_canned(flat_reply).await;
    println!(
        "(the floor rows: a server with Health/Check and a Promise that answers every call with \
         one fixed reply, cloned, through the same codec and TCP options, with no rules and no \
         layers; the reply is a real one of {} bytes (the replies of the cell's first \
         {REPRESENTATIVE} requests average {mean_bytes:.0} bytes), one string field of \
         {flat_bytes} bytes in all, or an empty one)",
        prost::Message::encoded_len(&reply)
    );
    let [as_served, bare, floor] = served_bare_floor(served, open, &canned);
    let modes = [
        as_served,
        bare,
        floor,
        (
            "floor: the same bytes in one string; no rules, no layers",
            &flat,
            "info,spares::access=off",
        ),
        (
            "floor: an empty reply; no rules, no layers",
            &empty,
            "info,spares::access=off",
        ),
    ];
    for n in BARE_IN_FLIGHT {
        for (label, target, directive) in modes {
            log.set(directive).expect("the log filter");
            let clients = connections(target, n.div_ceil(PER_CONNECTION)).await;
            let (health, promise) = health_and_promise(&slice, ids, &clients, n).await;
            assert_eq!(health.errors + promise.errors, 0, "{label}: calls failed");
            println!(
                "| {n} | {label} | {:.0} | {:.0} | {:.2} | {:.1} | {:.1} | {:.2} |",
                health.rate(),
                promise.rate(),
                promise.rate() / health.rate(),
                health.cpu_us_per_request(),
                promise.cpu_us_per_request(),
                health.cpu_us_per_request() / promise.cpu_us_per_request()
            );
        }
    }
    log.set("info").expect("the log filter");
    for (stop, server) in [
        (stop_canned, canned_server),
        (stop_flat, flat_server),
        (stop_empty, empty_server),
    ] {
        let _ = stop.send(());
        let _ = server.await;
    }
}

/// The servers both ratio tables compare, as (label, target, log filter):
/// as served (access log written, API key), bare (access log off, no
/// authentication) and the floor server answering a canned real reply.
fn served_bare_floor<'a>(
    served: &'a Target,
    open: &'a Target,
    canned: &'a Target,
) -> [(&'static str, &'a Target, &'static str); 3] {
    const QUIET: &str = "info,spares::access=off";
    [
        ("access log written, API key", served, "info"),
        ("access log off, no authentication", open, QUIET),
        (
            "floor: a real reply, canned; no rules, no layers",
            canned,
            QUIET,
        ),
    ]
}

/// Health/Check and Promise at `n` in flight on `clients`, in [`ROUNDS`]
/// slices taking turns.
async fn health_and_promise(
    slice: &Plan,
    ids: &Arc<Ids>,
    clients: &[Clients],
    n: usize,
) -> (Cell, Cell) {
    let (mut health, mut promise) = (Cell::default(), Cell::default());
    for _ in 0..ROUNDS {
        health.absorb(run_cell(slice, ids, clients, "Health/Check", n).await);
        promise.absorb(run_cell(slice, ids, clients, "Promise", n).await);
    }
    (health, promise)
}

/// Pairs of the paired-ratio table in a full run (`SPARES_LOAD_PAIRS`
/// overrides); a test-mode run (whose cells stop at a request count)
/// makes 3.
const PAIRS: usize = 16;

/// Promise's req/s over Health/Check's, pair by pair: [`PAIRS`] pairs of
/// slices (each a sixth of a cell, Health/Check first in even pairs and
/// Promise first in odd ones, so drift in the machine's load falls on both
/// sides), at [`BARE_IN_FLIGHT`] on the server as served (access log
/// written, API key), bare (access log off, no authentication) and on the
/// floor server answering one canned real reply (see [`bare_ratio`]). Prints
/// the median of the per-pair ratios with a distribution-free 95% interval
/// of that median, and the extremes: whether a goal such as 0.8 lies
/// inside what this harness can tell apart.
async fn paired_ratio(
    plan: &Plan,
    ids: &Arc<Ids>,
    served: &Target,
    open: &Target,
    log: &spares::logging::LogFilter,
) {
    let pairs = std::env::var("SPARES_LOAD_PAIRS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&p| p > 0)
        .unwrap_or(if plan.max_requests == u64::MAX {
            PAIRS
        } else {
            3
        });
    let slice = plan.part(6);
    println!();
    println!(
        "Promise over Health/Check pair by pair: {pairs} pairs of {:.2}-s slices, the order \
         alternating; the median of the per-pair ratios with its 95% interval (order \
         statistics), and the lowest and highest pair:",
        slice.cell.as_secs_f64()
    );
    println!(
        "| in flight | server | pairs | median | 95% interval of the median | lowest | highest | load average after |"
    );
    println!("|---:|---|---:|---:|---|---:|---:|---|");
    let (reply, _) = representative_reply(ids, open).await;
    let (canned, stop_canned, canned_server) = serve_canned(reply).await;
    for n in BARE_IN_FLIGHT {
        for (label, target, directive) in served_bare_floor(served, open, &canned) {
            log.set(directive).expect("the log filter");
            let clients = connections(target, n.div_ceil(PER_CONNECTION)).await;
            let mut ratios = Vec::with_capacity(pairs);
            for pair in 0..pairs {
                let (health, promise) = if pair % 2 == 0 {
                    let health = run_cell(&slice, ids, &clients, "Health/Check", n).await;
                    (health, run_cell(&slice, ids, &clients, "Promise", n).await)
                } else {
                    let promise = run_cell(&slice, ids, &clients, "Promise", n).await;
                    (
                        run_cell(&slice, ids, &clients, "Health/Check", n).await,
                        promise,
                    )
                };
                assert_eq!(health.errors + promise.errors, 0, "{label}: calls failed");
                ratios.push(promise.rate() / health.rate());
            }
            let summary = median_interval(&mut ratios);
            println!(
                "| {n} | {label} | {pairs} | {:.2} | {:.2}-{:.2} | {:.2} | {:.2} | {} |",
                summary.median,
                summary.low,
                summary.high,
                ratios[0],
                ratios[ratios.len() - 1],
                load_average()
            );
        }
    }
    log.set("info").expect("the log filter");
    let _ = stop_canned.send(());
    let _ = canned_server.await;
}

/// [`median_interval`] on samples whose answer is known (ranks 4 and 13 of
/// 16 bound the median at 97.9%; 5 values are too few for any interval).
fn check_median_interval() {
    let mut sixteen: Vec<f64> = (1..=16).rev().map(f64::from).collect();
    let got = median_interval(&mut sixteen);
    assert_eq!(
        got,
        MedianInterval {
            median: 8.5,
            low: 4.0,
            high: 13.0
        }
    );
    let mut five = [0.9, 0.7, 0.8, 0.6, 1.0];
    let got = median_interval(&mut five);
    assert_eq!(
        got,
        MedianInterval {
            median: 0.8,
            low: 0.6,
            high: 1.0
        }
    );
}

/// A median and a distribution-free interval for it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct MedianInterval {
    median: f64,
    low: f64,
    high: f64,
}

/// Sorts `values` and returns their median with the order-statistics
/// interval [x(k), x(n+1-k)] for the median, k the largest rank with
/// P(Binomial(n, 1/2) < k) <= 2.5% (at least 95% coverage; with fewer than
/// 6 values no such k exists and the interval is the whole range).
fn median_interval(values: &mut [f64]) -> MedianInterval {
    assert!(!values.is_empty(), "no values");
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    // Rank k is allowed when P(B < k) = P(B <= k - 1) <= 2.5%.
    use statrs::distribution::{Binomial, DiscreteCDF as _};
    let binomial = Binomial::new(0.5, n as u64).expect("a binomial of p = 1/2");
    let k = (1..=n / 2)
        .take_while(|&k| binomial.cdf(k as u64 - 1) <= 0.025)
        .last()
        .unwrap_or(0);
    let (low, high) = if k == 0 {
        (values[0], values[n - 1])
    } else {
        (values[k - 1], values[n - k])
    };
    MedianInterval { median, low, high }
}

/// Reply sizes (bytes) of [`floor_by_size`].
const FLOOR_SIZES: [usize; 9] = [0, 100, 200, 250, 262, 300, 400, 1000, 1100];

/// The floor server's Promise over its Health/Check at 64 in flight, with a
/// reply of one string field of each of [`FLOOR_SIZES`] bytes (or of
/// `SPARES_LOAD_FLOOR_SIZES`, a comma-separated list, to repeat sizes in
/// turn): where in the reply's size the gRPC stack's cost steps up.
async fn floor_by_size(plan: &Plan) {
    let sizes: Vec<usize> = match std::env::var("SPARES_LOAD_FLOOR_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .expect("SPARES_LOAD_FLOOR_SIZES: a list of byte counts")
            })
            .collect(),
        Err(_) => FLOOR_SIZES.to_vec(),
    };
    let slice = plan.slice();
    let ids = Arc::new(Ids {
        parts: vec!["P".into()],
        stores: vec!["S".into()],
        warehouses: Vec::new(),
    });
    println!("The floor server's Promise with a reply of one string field, at 64 in flight:");
    println!(
        "| reply bytes | Health/Check req/s | Promise req/s | ratio | Health/Check CPU us | Promise CPU us |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for size in sizes {
        let reply = pb::PromiseResponse {
            reason_detail: "x".repeat(size.saturating_sub(3)),
            ..Default::default()
        };
        let bytes = prost::Message::encoded_len(&reply);
        let (target, stop, server) = serve_canned(reply).await;
        let clients = connections(&target, 2).await;
        let (health, promise) = health_and_promise(&slice, &ids, &clients, 64).await;
        assert_eq!(
            health.errors + promise.errors,
            0,
            "{size} bytes: calls failed"
        );
        println!(
            "| {bytes} | {:.0} | {:.0} | {:.2} | {:.1} | {:.1} |",
            health.rate(),
            promise.rate(),
            promise.rate() / health.rate(),
            health.cpu_us_per_request(),
            promise.cpu_us_per_request(),
        );
        let _ = stop.send(());
        let _ = server.await;
    }
}

/// Requests whose replies [`representative_reply`] chooses among.
const REPRESENTATIVE: u64 = 200;

/// Of the replies to the Promise cell's first [`REPRESENTATIVE`] requests
/// (asked of `open`), the one whose size is nearest their mean, and that
/// mean in bytes.
async fn representative_reply(ids: &Ids, open: &Target) -> (pb::PromiseResponse, f64) {
    use prost::Message as _;
    let mut client = connections(open, 1).await.remove(0).availability;
    let mut replies = Vec::new();
    for i in 0..REPRESENTATIVE {
        let reply = client
            .promise(promise_request(ids, i))
            .await
            .expect("a promise")
            .into_inner();
        replies.push(reply);
    }
    let mean = replies.iter().map(|r| r.encoded_len() as f64).sum::<f64>() / replies.len() as f64;
    let chosen = replies
        .into_iter()
        .min_by(|a, b| {
            let off = |r: &pb::PromiseResponse| (r.encoded_len() as f64 - mean).abs();
            off(a).total_cmp(&off(b))
        })
        .expect("replies");
    (chosen, mean)
}

/// Answers every Promise with one fixed reply: what a Promise costs the
/// gRPC stack, its codec and the reply's size alone, with none of our
/// rules or layers.
#[derive(Clone)]
struct CannedPromise(Arc<pb::PromiseResponse>);

impl tonic::server::UnaryService<pb::PromiseRequest> for CannedPromise {
    type Response = pb::PromiseResponse;
    type Future = std::future::Ready<Result<tonic::Response<pb::PromiseResponse>, tonic::Status>>;

    fn call(&mut self, _request: tonic::Request<pb::PromiseRequest>) -> Self::Future {
        std::future::ready(Ok(tonic::Response::new(pb::PromiseResponse::clone(
            &self.0,
        ))))
    }
}

/// [`CannedPromise`] as the availability service (it answers Promise on any
/// of the service's paths; the bench calls only Promise), served the way
/// the generated server serves a unary call.
#[derive(Clone)]
struct CannedService(CannedPromise);

impl tonic::server::NamedService for CannedService {
    const NAME: &'static str = "spares.v1.AvailabilityService";
}

type CannedFuture = std::pin::Pin<
    Box<
        dyn Future<Output = Result<http::Response<tonic::body::Body>, std::convert::Infallible>>
            + Send,
    >,
>;

impl tower::Service<http::Request<tonic::body::Body>> for CannedService {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = CannedFuture;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let method = self.0.clone();
        Box::pin(async move {
            let codec =
                spares::api::codec::SparesCodec::<pb::PromiseResponse, pb::PromiseRequest>::default(
                );
            Ok(tonic::server::Grpc::new(codec).unary(method, request).await)
        })
    }
}

/// Starts the floor server (Health/Check and [`CannedService`], accepted
/// sockets tuned as the real server tunes them); returns its target, the
/// sender that stops it and its task.
async fn serve_canned(
    reply: pb::PromiseResponse,
) -> (
    Target,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    use tokio_stream::StreamExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let incoming = spares::api::server::tuned_connections(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        bench_limits(),
    );
    let (_reporter, health) = tonic_health::server::health_reporter();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(health)
            .add_service(CannedService(CannedPromise(Arc::new(reply))))
            .serve_with_incoming_shutdown(
                incoming.map(|accepted| accepted.map(spares::api::conn::Batched::new)),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .expect("the floor server");
    });
    (Target::new(format!("http://{addr}"), None), stop, server)
}

/// Requests of the in-process split of a Promise (full run).
const SPLIT_REQUESTS: u64 = 20_000;

/// Where a Promise's CPU goes, in process, on the requests the Promise cell
/// sends (the same parts and stores, in the same order): the server's
/// limits check and decoding of the request, its handler (the promise rules
/// at the ledger's sequence, and building the reply), the rules alone,
/// encoding the reply (and dropping it), and the client's decoding (and
/// dropping) of it. Printed in microseconds per request beside the reply's
/// size, so the gap to Health/Check can be split into its parts.
async fn promise_split(spares: &Arc<spares::service::Spares>, ids: &Ids, requests: u64) {
    use prost::Message as _;
    use spares::pb::availability_service_server::AvailabilityService as _;
    let api = spares::api::availability::AvailabilityApi::new(spares.clone());
    let mut took = [Duration::ZERO; 5];
    let mut bytes = 0usize;
    let mut buffer = Vec::new();
    let request_of = |i: u64| promise_request(ids, i);
    // The cells before it have already asked these routes; so does a
    // first pass here (not timed), so the figures are the steady state.
    for i in 0..requests {
        let request = tonic::Request::new(request_of(i));
        api.promise(request).await.expect("promise");
    }
    for i in 0..requests {
        buffer.clear();
        request_of(i).encode(&mut buffer).expect("encode");
        let started = Instant::now();
        spares::api::limits::check_request("spares.v1.PromiseRequest", &buffer).expect("limits");
        let request = pb::PromiseRequest::decode(buffer.as_slice()).expect("decode");
        took[0] += started.elapsed();
        let started = Instant::now();
        let reply = api
            .promise(tonic::Request::new(request))
            .await
            .expect("promise")
            .into_inner();
        took[1] += started.elapsed();
        buffer.clear();
        let started = Instant::now();
        reply.encode(&mut buffer).expect("encode");
        drop(reply);
        took[3] += started.elapsed();
        bytes += buffer.len();
        let started = Instant::now();
        let back = pb::PromiseResponse::decode(buffer.as_slice()).expect("decode");
        drop(std::hint::black_box(back));
        took[4] += started.elapsed();
    }
    let now = spares.clock().now();
    for i in 0..requests {
        let request = request_of(i);
        let query = spares::domain::promise::PromiseQuery {
            part_id: request.part_id,
            quantity: 1,
            destination_location_id: request.destination_location_id,
            need_by: None,
            mode: spares::domain::promise::FulfilmentMode::Delivery,
            order_time: now,
            transit_quantile: 0.0,
            priority: Default::default(),
            exact_part_only: false,
            max_options: 0,
        };
        let started = Instant::now();
        let outcome = spares.promise_with_sequence(&query).expect("promise");
        drop(std::hint::black_box(outcome));
        took[2] += started.elapsed();
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6 / requests as f64;
    println!(
        "Promise in process ({requests} requests as the Promise cell sends them), us per request: \
         request check and decode {:.2}, handler {:.2} (of which the rules at the ledger's \
         sequence {:.2}, measured apart), encoding the reply {:.2}, the client's decoding {:.2}; \
         reply {:.0} bytes on average",
        us(took[0]),
        us(took[1]),
        us(took[2]),
        us(took[3]),
        us(took[4]),
        bytes as f64 / requests as f64
    );
}

/// Requests in flight in the authentication-overhead table.
const AUTH_IN_FLIGHT: [usize; 2] = [1, 64];

/// Promise with no authentication (a server with `--insecure-dev`), with an
/// API key and with a bearer JWT (ES256), one after another on the same
/// network, printed side by side with the ratio to no authentication.
async fn auth_overhead(plan: &Plan, ids: &Arc<Ids>, modes: &[(&str, Target)]) {
    println!();
    println!("Authentication overhead on Promise:");
    println!("| in flight | credentials | req/s | p50 ms | p99 ms | errors | ratio to none |");
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for n in AUTH_IN_FLIGHT {
        let mut none_rate = f64::NAN;
        for (mode, target) in modes {
            let clients = connections(target, n.div_ceil(PER_CONNECTION)).await;
            let cell = run_cell(plan, ids, &clients, "Promise", n).await;
            // A refused credential would measure the refusal, not the call.
            assert_eq!(cell.errors, 0, "{mode}: calls failed");
            if none_rate.is_nan() {
                none_rate = cell.rate();
            }
            println!(
                "| {n} | {mode} | {:.0} | {:.3} | {:.3} | {} | {:.2} |",
                cell.rate(),
                cell.quantile_ms(0.5),
                cell.quantile_ms(0.99),
                cell.errors,
                cell.rate() / none_rate
            );
        }
    }
}

/// The bench's identity provider: a P-256 key made here, its public key
/// written to `dir`, the server's settings for it, and an administrator
/// token valid for a day (signed with ring, ES256).
fn identity_provider(dir: &std::path::Path) -> (spares::identity::jwt::JwtSettings, String) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let generated = rcgen::KeyPair::generate().expect("a P-256 key");
    let random = ring::rand::SystemRandom::new();
    let pair = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &generated.serialize_der(),
        &random,
    )
    .expect("PKCS#8");
    let path = dir.join("idp.pem");
    std::fs::write(&path, generated.public_key_pem()).expect("write the public key");
    let settings = spares::identity::jwt::JwtSettings::new(
        jsonwebtoken::Algorithm::ES256,
        spares::identity::jwt::JwtKeySource::PublicKeyPem(path),
        "https://idp.bench",
        "spares",
    );
    let now = jiff::Timestamp::now().as_second();
    let claims = serde_json::json!({
        "iss": "https://idp.bench", "aud": "spares", "sub": "grpc_load",
        "exp": now + 86_400, "spares_role": "admin",
    });
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = pair.sign(&random, message.as_bytes()).expect("sign");
    let token = format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()));
    (settings, token)
}

/// Receipts of 1,000 movements per call, `in_flight` calls at a time (each
/// caller sends its next call when the last is acknowledged; concurrent calls
/// share the ledger's flushes); returns acknowledged movements per second.
/// `round` keeps the idempotency keys of each run distinct. With several
/// targets (replicas), caller `i` sends to `targets[i % targets.len()]`.
async fn movements_per_second(
    plan: &Plan,
    ids: &Ids,
    targets: &[Target],
    in_flight: usize,
    round: usize,
) -> f64 {
    let clients = spread(targets, in_flight).await;
    let mut callers: Vec<Vec<pb::RecordMovementsRequest>> = vec![Vec::new(); in_flight];
    for b in 0..plan.movement_batches {
        let movements = (0..MOVEMENT_BATCH)
            .map(|m| pb::MovementRequest {
                idempotency_key: format!("load-{round}-{b}-{m}"),
                kind: pb::MovementKind::Receipt as i32,
                part_id: pick(&ids.parts, (b * MOVEMENT_BATCH + m) as u64, 5).to_string(),
                location_id: pick(&ids.warehouses, (b * MOVEMENT_BATCH + m) as u64, 6).to_string(),
                quantity: 1,
                ..Default::default()
            })
            .collect();
        callers[b % in_flight].push(pb::RecordMovementsRequest { movements });
    }
    let started = Instant::now();
    let tasks: Vec<_> = callers
        .into_iter()
        .zip(clients)
        .map(|(calls, client)| {
            let mut inventory = client.inventory.clone();
            tokio::spawn(async move {
                let mut acknowledged = 0usize;
                for call in calls {
                    let reply = inventory.record_movements(call).await.expect("movements");
                    acknowledged += reply.into_inner().results.len();
                }
                acknowledged
            })
        })
        .collect();
    let mut acknowledged = 0usize;
    for task in tasks {
        acknowledged += task.await.expect("caller");
    }
    acknowledged as f64 / started.elapsed().as_secs_f64()
}

/// GetStock of every warehouse and depot in pages of 1,000; returns the
/// positions read, the pages and the wall time.
async fn stock_of_every_warehouse(ids: &Ids, url: &Target) -> (usize, usize, Duration) {
    let clients = connections(url, 1).await;
    let mut inventory = clients[0].inventory.clone();
    let started = Instant::now();
    let (mut positions, mut pages) = (0, 0);
    for warehouse in &ids.warehouses {
        let mut token = String::new();
        loop {
            let page = inventory
                .get_stock(pb::GetStockRequest {
                    location_id: warehouse.clone(),
                    page: Some(pb::PageRequest {
                        page_size: 1000,
                        page_token: token,
                    }),
                    ..Default::default()
                })
                .await
                .expect("stock page")
                .into_inner();
            pages += 1;
            positions += page.positions.len();
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
    }
    (positions, pages, started.elapsed())
}

/// Passes of GetStock of every warehouse and depot; the median is printed.
const STOCK_PASSES: usize = 5;

/// Requests in flight of the backend comparison's Promise and Health/Check.
const COMPARE_IN_FLIGHT: [usize; 2] = [1, 64];
/// `RecordMovements` calls in flight, on sled and in the comparison.
const MOVEMENT_IN_FLIGHT: [usize; 2] = [1, 4];
/// The variable naming the PostgreSQL database (the tests' variable).
const POSTGRES_URL_VAR: &str = "SPARES_TEST_POSTGRES_URL";
/// The database when the variable is unset.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// One backend's line of the comparison table; each pair is at
/// [`COMPARE_IN_FLIGHT`] or [`MOVEMENT_IN_FLIGHT`].
struct Row {
    backend: &'static str,
    health_rate: [f64; 2],
    promise_rate: [f64; 2],
    promise_p50_ms: [f64; 2],
    movements_rate: [f64; 2],
    /// The load average when the backend's figures were taken.
    load: String,
}

impl Row {
    fn new(backend: &'static str) -> Self {
        Self {
            backend,
            health_rate: [f64::NAN; 2],
            promise_rate: [f64::NAN; 2],
            promise_p50_ms: [f64::NAN; 2],
            movements_rate: [f64::NAN; 2],
            load: String::new(),
        }
    }

    /// Keeps `cell` if it is Health/Check or Promise at the `i`-th
    /// concurrency of [`COMPARE_IN_FLIGHT`].
    fn keep(&mut self, i: usize, rpc: &str, cell: &Cell) {
        match rpc {
            "Health/Check" => self.health_rate[i] = cell.rate(),
            "Promise" => {
                self.promise_rate[i] = cell.rate();
                self.promise_p50_ms[i] = cell.quantile_ms(0.5);
            }
            _ => {}
        }
    }
}

/// sled, PostgreSQL with one replica and with two, side by side.
fn comparison_table(rows: &[Row]) {
    let pair =
        |p: [f64; 2], decimals: usize| format!("{:.*} / {:.*}", decimals, p[0], decimals, p[1]);
    println!();
    println!(
        "Backends side by side (Promise and Health/Check at {} / {} in flight, \
         RecordMovements of {MOVEMENT_BATCH} receipts at {} / {} calls in flight, \
         API keys on):",
        COMPARE_IN_FLIGHT[0], COMPARE_IN_FLIGHT[1], MOVEMENT_IN_FLIGHT[0], MOVEMENT_IN_FLIGHT[1]
    );
    println!(
        "| backend | Promise req/s | Health/Check req/s | ratio | Promise p50 ms | \
         movements/s | load average |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    for row in rows {
        let ratio = [
            row.promise_rate[0] / row.health_rate[0],
            row.promise_rate[1] / row.health_rate[1],
        ];
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.backend,
            pair(row.promise_rate, 0),
            pair(row.health_rate, 0),
            pair(ratio, 2),
            pair(row.promise_p50_ms, 3),
            pair(row.movements_rate, 0),
            row.load
        );
    }
}

fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Connects to `url` with a short timeout (blocking: off the runtime).
fn pg_connect(url: &str) -> Result<postgres::Client, postgres::Error> {
    let mut config: postgres::Config = url.parse()?;
    config.connect_timeout(Duration::from_secs(3));
    config.connect(postgres::NoTls)
}

/// The PostgreSQL section's database: a schema made for this run in the
/// database `SPARES_TEST_POSTGRES_URL` names, and a URL whose connections
/// use it (`options=-c search_path=...`, as the tests' places do). Dropped
/// (with everything in it) when this is.
struct PgSchema {
    base: String,
    name: String,
    url: String,
}

impl PgSchema {
    /// Makes the schema, or says why there is none.
    fn create() -> Result<Self, String> {
        let base = std::env::var(POSTGRES_URL_VAR)
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_string());
        let shown = spares::config::without_password(&base);
        let mut client = pg_connect(&base).map_err(|e| {
            // The client's own message leaves the cause (refused, timed
            // out, unknown host) to its source.
            match std::error::Error::source(&e) {
                Some(cause) => format!("no PostgreSQL at {shown} ({e}: {cause})"),
                None => format!("no PostgreSQL at {shown} ({e})"),
            }
        })?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("spares_grpc_load_{}_{nanos}", std::process::id());
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .map_err(|e| format!("cannot create a schema at {shown} ({e})"))?;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
        Ok(Self { base, name, url })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let dropped = pg_connect(&self.base).and_then(|mut client| {
            client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
        });
        if let Err(error) = dropped {
            eprintln!("cannot drop the schema {}: {error}", self.name);
        }
    }
}

/// The demo in PostgreSQL (loaded through the first server, as
/// `spares demo` loads sled), served by one replica, then by two; returns
/// their lines of the comparison.
async fn postgres_section(plan: &Plan, ids: &Arc<Ids>, schema: &PgSchema) -> Vec<Row> {
    let location = StoreLocation::Postgres(schema.url.clone());
    let config = plan.demo.clone();
    let opened = location.clone();
    let started = Instant::now();
    let (first, movements, key) = tokio::task::spawn_blocking(move || {
        let spares = open_location(&opened, bench_limits()).expect("the first replica");
        let demo = build_demo(&config, spares.clock().now()).expect("the demo");
        spares
            .load_master_data(&demo.bundle())
            .expect("master data");
        let movements = spares
            .load_movements(&Actor::system("demo"), &demo.movements)
            .expect("the demo's movements");
        let key = admin_key(&spares);
        (spares, movements, key)
    })
    .await
    .expect("demo thread");
    // The same seed gives the same ids, so the sled section's draws apply.
    let network = first.network();
    assert!(
        ids.parts.iter().all(|p| network.parts.contains_key(p))
            && ids.stores.iter().all(|l| network.locations.contains_key(l)),
        "the demo in PostgreSQL differs from the one in sled"
    );
    println!(
        "PostgreSQL: schema {} at {}; the demo loaded through the first replica \
         ({movements} movements) in {:.1?}; load average {}",
        schema.name,
        spares::config::without_password(&schema.base),
        started.elapsed(),
        load_average()
    );
    let (first_target, first_server) = serve(first, key.clone()).await;
    let one = compare_row(
        plan,
        ids,
        std::slice::from_ref(&first_target),
        0,
        "pg, 1 replica",
    )
    .await;
    // The second replica opens on the loaded database (its keys and network
    // are read at open) and follows the first's writes.
    let second = tokio::task::spawn_blocking(move || open_location(&location, bench_limits()))
        .await
        .expect("open thread")
        .expect("the second replica");
    let (second_target, second_server) = serve(second, key).await;
    let both = [first_target, second_target];
    let two = compare_row(plan, ids, &both, MOVEMENT_IN_FLIGHT.len(), "pg, 2 replicas").await;
    for server in [first_server, second_server] {
        server.stop().await;
    }
    vec![one, two]
}

/// A server running in this process until [`Served::stop`].
struct Served {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), spares::api::server::ServeError>>,
}

impl Served {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Serves `spares` on a port of its own with API keys on; returns the
/// target presenting `key`.
async fn serve(spares: Arc<spares::service::Spares>, key: String) -> (Target, Served) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_with(
        spares,
        listener,
        async {
            let _ = stopped.await;
        },
        Security::default(),
    ));
    (
        Target::new(format!("http://{addr}"), Some(key)),
        Served { stop, task },
    )
}

/// Promise and Health/Check at [`COMPARE_IN_FLIGHT`] and movements/s at
/// [`MOVEMENT_IN_FLIGHT`] through `targets` (connection `i` to replica
/// `i mod targets.len()`); `round` is the first of the idempotency-key
/// rounds used.
async fn compare_row(
    plan: &Plan,
    ids: &Arc<Ids>,
    targets: &[Target],
    round: usize,
    backend: &'static str,
) -> Row {
    let mut row = Row::new(backend);
    for (i, n) in COMPARE_IN_FLIGHT.into_iter().enumerate() {
        let clients = spread(targets, n.div_ceil(PER_CONNECTION).max(targets.len())).await;
        for rpc in ["Health/Check", "Promise"] {
            let cell = run_cell(plan, ids, &clients, rpc, n).await;
            // A refused call would measure the refusal, not the call.
            assert_eq!(cell.errors, 0, "{backend}: {rpc} at {n} in flight failed");
            row.keep(i, rpc, &cell);
        }
    }
    for (i, n) in MOVEMENT_IN_FLIGHT.into_iter().enumerate() {
        row.movements_rate[i] = movements_per_second(plan, ids, targets, n, round + i).await;
    }
    row.load = load_average();
    row
}

/// The server's share of GetStock of every warehouse and depot: the same
/// pages of 1,000 read from the ledger in process, then built into messages
/// and encoded as the service does. Returns (reading, building and encoding).
fn stock_in_process(spares: &spares::service::Spares, ids: &Ids) -> (Duration, Duration) {
    use prost::Message as _;
    let (mut read, mut encoded) = (Duration::ZERO, Duration::ZERO);
    let now = spares.clock().now();
    let protection = spares.protection();
    let mut buffer = Vec::new();
    for warehouse in &ids.warehouses {
        let mut after: Option<String> = None;
        loop {
            let started = Instant::now();
            let mut balances = spares
                .stock_at_location(warehouse, after.as_deref(), 1001)
                .expect("stock");
            read += started.elapsed();
            let started = Instant::now();
            let more = balances.len() > 1000;
            balances.truncate(1000);
            after = more
                .then(|| balances.last().map(|b| b.part_id.clone()))
                .flatten();
            let positions = balances
                .into_iter()
                .map(|b| {
                    let protected = protection.quantity(&b.part_id, &b.location_id);
                    spares::api::convert::stock_into_pb(b, protected, now)
                })
                .collect();
            buffer.clear();
            pb::GetStockResponse {
                positions,
                next_page_token: String::new(),
            }
            .encode(&mut buffer)
            .expect("encode");
            encoded += started.elapsed();
            if after.is_none() {
                break;
            }
        }
    }
    (read, encoded)
}

/// An administrator API key for the load generator (authentication is on,
/// as in production).
fn admin_key(spares: &spares::service::Spares) -> String {
    spares
        .create_api_key(spares::service::keys::NewApiKey {
            role: spares::auth::Role::Admin,
            stores: Vec::new(),
            locations: Vec::new(),
            name: "grpc_load".into(),
            created_by: "bench".into(),
        })
        .expect("an api key")
        .1
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    let full = std::env::args().any(|a| a == "--bench");
    check_median_interval();
    let seconds: f64 = std::env::var("SPARES_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let plan = if full {
        Plan {
            cell: Duration::from_secs_f64(seconds),
            max_requests: u64::MAX,
            demo: DemoConfig::default(),
            movement_batches: 100,
        }
    } else {
        Plan {
            cell: Duration::from_secs(2),
            max_requests: 300,
            demo: DemoConfig {
                parts: 300,
                stores: 20,
                ..DemoConfig::default()
            },
            movement_batches: 2,
        }
    };
    // The schema is made and dropped off the runtime: the blocking
    // PostgreSQL client refuses to run inside one.
    let postgres = PgSchema::create();
    // The access log is on, as `spares serve` writes it (text lines at
    // `info`), into a file rather than the terminal.
    let log_dir = tempfile::tempdir().expect("tempdir");
    let log_path = log_dir.path().join("access.log");
    let log_file = std::fs::File::create(&log_path).expect("the log file");
    let (log_guard, log) = spares::logging::init_with(
        &spares::logging::LogConfig {
            format: spares::logging::LogFormat::Text,
            filter: "info".into(),
            ansi: false,
        },
        log_file,
    )
    .expect("logging");
    let logged = Logged {
        path: log_path,
        filter: log,
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(run(
        plan,
        full,
        postgres.as_ref().map_err(String::as_str),
        &logged,
    ));
    drop(log_guard);
    drop(runtime);
    drop(postgres);
}

/// Every read figure: the latency table, authentication's overhead and
/// GetStock of every warehouse and depot with its split.
#[allow(clippy::too_many_arguments)]
async fn every_read(
    plan: &Plan,
    ids: &Arc<Ids>,
    url: &Target,
    sled: &mut Row,
    addr: &str,
    open_addr: &std::net::SocketAddr,
    token: String,
    in_process: &Arc<spares::service::Spares>,
    logged: &Logged,
) {
    let written = logged.bytes();
    latency_table(plan, ids, url, sled).await;
    println!(
        "access log: {} bytes of lines written during the table to {}",
        logged.bytes() - written,
        logged.path.display()
    );
    let open = Target::new(format!("http://{open_addr}"), None);
    bare_ratio(plan, ids, url, &open, &logged.filter).await;
    paired_ratio(plan, ids, url, &open, &logged.filter).await;
    floor_by_size(plan).await;
    promise_split(in_process, ids, split_requests(plan)).await;
    let modes = [
        (
            "none (insecure-dev)",
            Target::new(format!("http://{open_addr}"), None),
        ),
        ("API key", url.clone()),
        (
            "bearer JWT (ES256)",
            Target::new(format!("http://{addr}"), None).bearer_token(Some(token)),
        ),
    ];
    auth_overhead(plan, ids, &modes).await;
    println!();
    stock_table(ids, url, in_process).await;
}

/// GetStock of every warehouse and depot in pages of 1,000, timed over
/// [`STOCK_PASSES`] passes, with the server's own share measured in
/// process.
async fn stock_table(ids: &Ids, url: &Target, in_process: &Arc<spares::service::Spares>) {
    // Five passes, each on a fresh connection: the median is the figure
    // (one pass on this shared machine moves by half between runs).
    let mut passes = Vec::new();
    let (mut positions, mut pages) = (0, 0);
    for _ in 0..STOCK_PASSES {
        let (p, n, took) = stock_of_every_warehouse(ids, url).await;
        (positions, pages) = (p, n);
        passes.push(took);
    }
    let listed: Vec<String> = passes
        .iter()
        .map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0))
        .collect();
    passes.sort();
    let took = passes[passes.len() / 2];
    println!(
        "GetStock of every warehouse and depot ({} locations) in pages of 1,000: \
         {positions} positions in {pages} pages in {:.1} ms (median of {STOCK_PASSES} passes: {} ms)",
        ids.warehouses.len(),
        took.as_secs_f64() * 1000.0,
        listed.join(", ")
    );
    let (read, encoded) = stock_in_process(in_process, ids);
    println!(
        "  of which the server's own work, the same pages in process: reading the ledger \
         {:.1} ms, building and encoding the messages {:.1} ms; the rest ({:.1} ms) is \
         the transport and the client's decoding",
        read.as_secs_f64() * 1000.0,
        encoded.as_secs_f64() * 1000.0,
        (took.saturating_sub(read + encoded)).as_secs_f64() * 1000.0
    );
}

/// A load generator is one principal sending as fast as it can: no rate
/// limit, or it would measure the limit.
fn bench_limits() -> Limits {
    Limits {
        rate_per_principal_per_second: 0.0,
        ..Limits::default()
    }
}

/// Where the access log goes, and its filter.
struct Logged {
    path: std::path::PathBuf,
    filter: spares::logging::LogFilter,
}

impl Logged {
    fn bytes(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }
}

async fn run(plan: Plan, full: bool, postgres: Result<&PgSchema, &str>, logged: &Logged) {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let config = plan.demo.clone();
    let path = dir.path().to_path_buf();
    let served = addr.clone();
    let started = Instant::now();
    let (spares, _) = tokio::task::spawn_blocking(move || {
        prepare_demo_with(&config, &path, &served, true, bench_limits())
    })
    .await
    .expect("demo thread")
    .expect("demo");
    // Authentication is on, as in production: every call presents this key.
    let key = admin_key(&spares);
    let network = spares.network();
    let locations = |kinds: &[LocationKind]| -> Vec<String> {
        network
            .locations
            .values()
            .filter(|l| kinds.contains(&l.kind))
            .map(|l| l.id.clone())
            .collect()
    };
    let ids = Arc::new(Ids {
        parts: network.parts.keys().cloned().collect(),
        stores: locations(&[LocationKind::Store]),
        warehouses: locations(&[LocationKind::RegionalWarehouse, LocationKind::FactoryDepot]),
    });
    println!(
        "demo: {} parts, {} stores, {} warehouses and depots, built in {:.1?}; \
         {} per cell; mode {}; load average before: {}",
        ids.parts.len(),
        ids.stores.len(),
        ids.warehouses.len(),
        started.elapsed(),
        humantime(plan.cell),
        if full { "full" } else { "test (shrunk)" },
        load_average()
    );
    // The server takes API keys and bearer JWTs; a second one on the same
    // service runs with authentication off, for the overhead table.
    let (jwt_settings, token) = identity_provider(dir.path());
    let jwt = spares::auth::bearer::JwtAuthenticator::load(jwt_settings, spares.clock().clone())
        .expect("the JWT key");
    let security = Security {
        authenticators: vec![Arc::new(jwt)],
        ..Security::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_with(
        spares.clone(),
        listener,
        async {
            let _ = stopped.await;
        },
        security,
    ));
    let open_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let open_addr = open_listener.local_addr().expect("addr");
    let (stop_open, open_stopped) = tokio::sync::oneshot::channel::<()>();
    // Kept for the in-process half of the GetStock split below.
    let in_process = spares.clone();
    let open_server = tokio::spawn(serve_with(
        spares,
        open_listener,
        async {
            let _ = open_stopped.await;
        },
        Security {
            insecure_dev: true,
            ..Security::default()
        },
    ));
    let url = Target::new(format!("http://{addr}"), Some(key));
    let mut sled = Row::new("sled");
    // `SPARES_LOAD_ONLY=movements` runs only the RecordMovements figures,
    // `SPARES_LOAD_ONLY=split` only the in-process split of a Promise,
    // `SPARES_LOAD_ONLY=bare` only Promise over Health/Check with and
    // without the access log and authentication and at the floor,
    // `SPARES_LOAD_ONLY=pairs` only the paired ratios of Promise to
    // Health/Check (`SPARES_LOAD_PAIRS` pairs),
    // `SPARES_LOAD_ONLY=sizes` only the floor by the reply's size,
    // `SPARES_LOAD_ONLY=stock` only GetStock of every warehouse and depot,
    // `SPARES_LOAD_ONLY=<rpc>` only that RPC's latency rows (to profile
    // them); anything else runs everything.
    let only_movements = std::env::var("SPARES_LOAD_ONLY").is_ok_and(|v| v == "movements");
    if std::env::var("SPARES_LOAD_ONLY").is_ok_and(|v| v == "bare") {
        let open = Target::new(format!("http://{open_addr}"), None);
        bare_ratio(&plan, &ids, &url, &open, &logged.filter).await;
        return;
    }
    if std::env::var("SPARES_LOAD_ONLY").is_ok_and(|v| v == "pairs") {
        let open = Target::new(format!("http://{open_addr}"), None);
        paired_ratio(&plan, &ids, &url, &open, &logged.filter).await;
        return;
    }
    if std::env::var("SPARES_LOAD_ONLY").is_ok_and(|v| v == "stock") {
        stock_table(&ids, &url, &in_process).await;
        return;
    }
    if std::env::var("SPARES_LOAD_ONLY").is_ok_and(|v| v == "sizes") {
        floor_by_size(&plan).await;
        return;
    }
    if std::env::var("SPARES_LOAD_ONLY").is_ok_and(|v| v == "split") {
        promise_split(&in_process, &ids, split_requests(&plan)).await;
        return;
    }
    if only_rpc().is_some() {
        latency_table(&plan, &ids, &url, &mut sled).await;
        if only_rpc().as_deref() == Some("Promise") {
            promise_split(&in_process, &ids, split_requests(&plan)).await;
        }
        return;
    }
    if !only_movements {
        every_read(
            &plan,
            &ids,
            &url,
            &mut sled,
            &addr,
            &open_addr,
            token,
            &in_process,
            logged,
        )
        .await;
    }
    for (round, in_flight) in MOVEMENT_IN_FLIGHT.into_iter().enumerate() {
        // Where the time goes: the store's flushes (ledger and audit trail
        // alike) are counted by the service's own histogram.
        let flush = &spares::metrics::metrics().store_flush;
        let (flushes, flush_seconds) = (flush.get_sample_count(), flush.get_sample_sum());
        let started = Instant::now();
        let rate =
            movements_per_second(&plan, &ids, std::slice::from_ref(&url), in_flight, round).await;
        sled.movements_rate[round] = rate;
        let wall = started.elapsed().as_secs_f64();
        let (flushes, flush_seconds) = (
            flush.get_sample_count() - flushes,
            flush.get_sample_sum() - flush_seconds,
        );
        println!(
            "RecordMovements, {} calls of {MOVEMENT_BATCH} receipts, {in_flight} in flight: \
             {rate:.0} acknowledged movements/s; {flushes} store flushes, {:.2} ms each, \
             {:.0}% of the wall time (load average {})",
            plan.movement_batches,
            flush_seconds * 1000.0 / flushes.max(1) as f64,
            100.0 * flush_seconds / wall,
            load_average()
        );
    }
    println!("load average after: {}", load_average());
    sled.load = load_average();
    let _ = stop.send(());
    let _ = server.await;
    let _ = stop_open.send(());
    let _ = open_server.await;
    let mut rows = vec![sled];
    println!();
    match postgres {
        _ if only_movements => println!("PostgreSQL section skipped: SPARES_LOAD_ONLY=movements"),
        Ok(schema) => rows.extend(postgres_section(&plan, &ids, schema).await),
        Err(why) if flag("SPARES_TEST_POSTGRES_REQUIRED") => {
            panic!("{why}, and SPARES_TEST_POSTGRES_REQUIRED is set")
        }
        Err(why) => println!("PostgreSQL section skipped: {why}"),
    }
    comparison_table(&rows);
}

/// Requests of the Promise split: [`SPLIT_REQUESTS`], fewer in test mode.
/// `SPARES_LOAD_SPLIT=<n>` sets it (to profile the split).
fn split_requests(plan: &Plan) -> u64 {
    std::env::var("SPARES_LOAD_SPLIT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(SPLIT_REQUESTS)
        .min(plan.max_requests)
}

fn humantime(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
