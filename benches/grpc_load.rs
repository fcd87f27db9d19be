//! gRPC load generator: the demo server in process on 127.0.0.1, driven by
//! tonic clients at 1, 16, 64 and 256 requests in flight. Prints, in one
//! run, req/s and p50/p99/p99.9 latency for Health/Check, Promise, WhereIs,
//! GetStock (one part at one location), a 20-line PromiseBatch (independent
//! lines to one store) and a 20-line PromiseOrder without reservation, each with its ratio to
//! Health/Check at the same concurrency (the strongest baseline on the same
//! server, connections and client: it does no work of ours); then
//! acknowledged movements/s over `RecordMovements` in batches of 1,000; then
//! GetStock of every warehouse and depot in pages of 1,000, timed. Between
//! them, the overhead of authentication on Promise: the same calls with no
//! credentials (a second server on the same service with `--insecure-dev`),
//! with an API key and with a bearer JWT (ES256), side by side.
//!
//! `cargo bench --bench grpc_load` runs the full demo (20,000 parts, 300
//! stores) for `SPARES_LOAD_SECONDS` (default 3) per cell; under
//! `cargo test --benches` (no `--bench` argument) it shrinks to a small demo
//! and a few requests per cell so CI only checks that it runs.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use spares::api::server::{Security, serve_with};
use spares::cli::client::{AuthChannel, Target};
use spares::cli::local::prepare_demo_with;
use spares::demo::DemoConfig;
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

/// Ids the requests draw from.
struct Ids {
    parts: Vec<String>,
    stores: Vec<String>,
    warehouses: Vec<String>,
}

/// One cell's result.
struct Cell {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Cell {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
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
    latencies_us.sort_unstable();
    Cell {
        requests: latencies_us.len() as u64,
        errors,
        elapsed,
        latencies_us,
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
                let request = pb::PromiseRequest {
                    part_id: pick(&ids.parts, i, 1).to_string(),
                    quantity: 1,
                    destination_location_id: pick(&ids.stores, i, 2).to_string(),
                    ..Default::default()
                };
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

async fn latency_table(plan: &Plan, ids: &Arc<Ids>, url: &Target) {
    println!(
        "| in flight | rpc | req/s | p50 ms | p99 ms | p99.9 ms | errors | ratio to Health/Check |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    for n in IN_FLIGHT {
        let clients = connections(url, n.div_ceil(PER_CONNECTION)).await;
        let mut health_rate = f64::NAN;
        for rpc in RPCS {
            let cell = run_cell(plan, ids, &clients, rpc, n).await;
            if rpc == "Health/Check" {
                health_rate = cell.rate();
            }
            println!(
                "| {n} | {rpc} | {:.0} | {:.3} | {:.3} | {:.3} | {} | {:.2} |",
                cell.rate(),
                cell.quantile_ms(0.5),
                cell.quantile_ms(0.99),
                cell.quantile_ms(0.999),
                cell.errors,
                cell.rate() / health_rate
            );
        }
    }
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
/// `round` keeps the idempotency keys of each run distinct.
async fn movements_per_second(
    plan: &Plan,
    ids: &Ids,
    url: &Target,
    in_flight: usize,
    round: usize,
) -> f64 {
    let clients = connections(url, in_flight).await;
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

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    let full = std::env::args().any(|a| a == "--bench");
    let seconds: f64 = std::env::var("SPARES_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let plan = if full {
        Plan {
            cell: Duration::from_secs_f64(seconds),
            max_requests: u64::MAX,
            demo: DemoConfig::default(),
            movement_batches: 50,
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
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(run(plan, full));
}

async fn run(plan: Plan, full: bool) {
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
        // A load generator is one principal sending as fast as it can:
        // no rate limit, or it would measure the limit.
        let limits = spares::config::Limits {
            rate_per_principal_per_second: 0.0,
            ..spares::config::Limits::default()
        };
        prepare_demo_with(&config, &path, &served, true, limits)
    })
    .await
    .expect("demo thread")
    .expect("demo");
    // Authentication is on, as in production: every call presents this key.
    let (_, key) = spares
        .create_api_key(spares::service::keys::NewApiKey {
            role: spares::auth::Role::Admin,
            stores: Vec::new(),
            locations: Vec::new(),
            name: "grpc_load".into(),
            created_by: "bench".into(),
        })
        .expect("an api key");
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
    latency_table(&plan, &ids, &url).await;
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
    auth_overhead(&plan, &ids, &modes).await;
    println!();
    let (positions, pages, took) = stock_of_every_warehouse(&ids, &url).await;
    println!(
        "GetStock of every warehouse and depot ({} locations) in pages of 1,000: \
         {positions} positions in {pages} pages in {:.1} ms",
        ids.warehouses.len(),
        took.as_secs_f64() * 1000.0
    );
    for (round, in_flight) in [1, 4].into_iter().enumerate() {
        // Where the time goes: the store's flushes (ledger and audit trail
        // alike) are counted by the service's own histogram.
        let flush = &spares::metrics::metrics().store_flush;
        let (flushes, flush_seconds) = (flush.get_sample_count(), flush.get_sample_sum());
        let started = Instant::now();
        let rate = movements_per_second(&plan, &ids, &url, in_flight, round).await;
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
    let _ = stop.send(());
    let _ = server.await;
    let _ = stop_open.send(());
    let _ = open_server.await;
}

fn humantime(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
