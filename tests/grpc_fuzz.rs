//! Fuzz harness for every RPC of `spares.v1`, through the real tonic service
//! in process: for each method in the descriptor set, random well-typed
//! requests (built from the descriptor, with ids of a loaded network, extreme
//! numbers, oversize strings and lists, control characters), the same
//! mutated at the byte level (bit flips, truncation, bogus lengths, spliced
//! garbage), and random bytes. Every reply must be a typed status the API
//! promises (never INTERNAL, UNKNOWN, UNAVAILABLE or DATA_LOSS, never a hang
//! or a dropped connection), every message short; health stays SERVING; and
//! the ledger audits clean at the end.
//!
//! Stable toolchain, no instrumentation, bounded for CI (24 cases per RPC).
//! Environment: `SPARES_FUZZ_CASES` (cases per RPC) and `SPARES_FUZZ_SEED`
//! (replay a printed seed). A longer run:
//!
//! ```sh
//! SPARES_FUZZ_CASES=5000 cargo test --release --test grpc_fuzz -- --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, raw, receipt, small_network};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, Value};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use spares::config::Limits;
use spares::pb;
use std::collections::BTreeMap;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Codes a client may get for bad or unlucky input.
const TYPED: [Code; 8] = [
    Code::Ok,
    Code::InvalidArgument,
    Code::OutOfRange,
    Code::NotFound,
    Code::FailedPrecondition,
    Code::AlreadyExists,
    Code::ResourceExhausted,
    Code::Aborted,
];

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

fn text(rng: &mut StdRng) -> String {
    let palette = [
        "",
        "P1",
        "P2",
        "P3",
        "DEP",
        "STR",
        "R00000000000000000002",
        "job-000001",
        "S1",
        "America/Chicago",
        "P1\u{1f}STR",
        "\u{e9}\u{e9}\u{e9}",
        "P1",
        "STR",
        "DEP",
    ];
    match rng.random_range(0..40) {
        0 => "x".repeat(rng.random_range(60..70_000)),
        1 => (0..rng.random_range(1..30))
            .map(|_| char::from(rng.random_range(0u8..128)))
            .collect(),
        2 => ["a\u{0}b", "line\nbreak", "tab\there"][rng.random_range(0..3)].to_string(),
        3..=6 => (0..rng.random_range(1..30))
            .map(|_| char::from(rng.random_range(32u8..127)))
            .collect(),
        _ => palette[rng.random_range(0..palette.len())].to_string(),
    }
}

fn number(rng: &mut StdRng) -> i64 {
    let extremes = [
        0,
        1,
        -1,
        2,
        7,
        i64::MAX,
        i64::MIN,
        1_000_000_000_000,
        1_000_000_000_001,
    ];
    if rng.random_bool(0.6) {
        extremes[rng.random_range(0..extremes.len())]
    } else {
        rng.random()
    }
}

fn float(rng: &mut StdRng) -> f64 {
    let extremes = [0.0, 1.0, -1.0, 0.5, f64::NAN, f64::INFINITY, 1e308, 1e-308];
    if rng.random_bool(0.6) {
        extremes[rng.random_range(0..extremes.len())]
    } else {
        rng.random_range(-1e6..1e6)
    }
}

fn scalar(kind: &Kind, rng: &mut StdRng, depth: usize) -> Value {
    match kind {
        Kind::Double => Value::F64(float(rng)),
        Kind::Float => Value::F32(float(rng) as f32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(number(rng) as i32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(number(rng)),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(number(rng) as u32),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(number(rng) as u64),
        Kind::Bool => Value::Bool(rng.random()),
        Kind::String => Value::String(text(rng)),
        Kind::Bytes => Value::Bytes(text(rng).into_bytes().into()),
        Kind::Enum(_) => Value::EnumNumber(rng.random_range(-2..10)),
        Kind::Message(message) => Value::Message(random_message(message, rng, depth + 1)),
    }
}

/// A random, well-typed message of `descriptor`.
fn random_message(
    descriptor: &MessageDescriptor,
    rng: &mut StdRng,
    depth: usize,
) -> DynamicMessage {
    let mut message = DynamicMessage::new(descriptor.clone());
    if depth > 5 {
        return message;
    }
    for field in descriptor.fields() {
        if rng.random_bool(0.3) {
            continue;
        }
        let kind = field.kind();
        let value = if field.is_list() {
            let cheap = !matches!(kind, Kind::Message(_));
            let count = match rng.random_range(0..30) {
                0 if cheap => rng.random_range(900..12_000),
                1 => rng.random_range(20..60),
                _ => rng.random_range(0..4),
            };
            Value::List((0..count).map(|_| scalar(&kind, rng, depth)).collect())
        } else {
            scalar(&kind, rng, depth)
        };
        message.set_field(&field, value);
    }
    message
}

/// Byte-level damage to an encoded message.
fn mutate(mut bytes: Vec<u8>, rng: &mut StdRng) -> Vec<u8> {
    for _ in 0..rng.random_range(1..4) {
        match rng.random_range(0..5) {
            0 if !bytes.is_empty() => {
                let at = rng.random_range(0..bytes.len());
                bytes[at] ^= 1 << rng.random_range(0..8);
            }
            1 if !bytes.is_empty() => bytes.truncate(rng.random_range(0..bytes.len())),
            2 => {
                let at = rng.random_range(0..=bytes.len());
                let junk: Vec<u8> = (0..rng.random_range(1..12)).map(|_| rng.random()).collect();
                bytes.splice(at..at, junk);
            }
            3 => {
                // A length-delimited field whose length runs past the end.
                bytes.extend_from_slice(&[0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]);
            }
            _ => {
                let tag = rng.random_range(1u8..40) << 3 | rng.random_range(0u8..8);
                bytes.push(tag);
                bytes.push(rng.random());
            }
        }
    }
    bytes
}

struct Method {
    path: String,
    input: MessageDescriptor,
    streaming: bool,
}

fn methods() -> Vec<Method> {
    let pool = DescriptorPool::decode(pb::FILE_DESCRIPTOR_SET).unwrap();
    pool.services()
        .filter(|s| s.full_name().starts_with("spares.v1."))
        .flat_map(|service| {
            service
                .methods()
                .map(|m| Method {
                    path: format!("/{}/{}", service.full_name(), m.name()),
                    input: m.input(),
                    streaming: m.is_server_streaming(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn serving(url: &str) -> bool {
    let mut health = HealthClient::new(raw::channel(url).await);
    let reply = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    reply.status == ServingStatus::Serving as i32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_random_and_mutated_requests_with_a_typed_status() {
    let seed = env_number("SPARES_FUZZ_SEED").unwrap_or_else(|| rand::rng().random());
    let cases = env_number("SPARES_FUZZ_CASES").unwrap_or(24);
    println!("grpc_fuzz: seed {seed} (SPARES_FUZZ_SEED={seed} replays), {cases} cases per RPC");
    let mut rng = StdRng::seed_from_u64(seed);
    // Jobs the fuzzer starts are tiny and few, so the run stays bounded.
    let server = TestServer::start_with(Limits {
        max_job_work: 1e7,
        job_workers: 1,
        job_queue: 4,
        ..Limits::default()
    })
    .await;
    let mut clients = server.clients().await;
    small_network(&mut clients).await;
    clients
        .inventory
        .record_movements(pb::RecordMovementsRequest {
            movements: vec![
                receipt("seed-1", "P1", "DEP", 50),
                receipt("seed-2", "P2", "STR", 9),
            ],
        })
        .await
        .unwrap();
    let methods = methods();
    assert!(methods.len() >= 31, "{} RPCs", methods.len());
    let channel = server.raw_channel().await;
    let mut tally: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for method in &methods {
        for case in 0..cases {
            let message = random_message(&method.input, &mut rng, 0).encode_to_vec();
            let body = match case % 4 {
                0 | 1 => message,
                2 => mutate(message, &mut rng),
                _ => (0..rng.random_range(0..64)).map(|_| rng.random()).collect(),
            };
            let (code, text) = raw::call(&channel, &method.path, body, method.streaming).await;
            assert!(
                TYPED.contains(&code),
                "seed {seed}: {} case {case} answered {code:?}: {text}",
                method.path
            );
            assert!(
                text.len() <= 2048,
                "{}: a {}-byte message",
                method.path,
                text.len()
            );
            *tally
                .entry(method.path.clone())
                .or_default()
                .entry(format!("{code:?}"))
                .or_default() += 1;
        }
        assert!(serving(&server.url).await, "health after {}", method.path);
    }
    for (path, codes) in &tally {
        println!("{path:60} {codes:?}");
    }
    let audit = server.spares.store().audit().unwrap();
    assert!(
        audit.problems.is_empty(),
        "seed {seed}: {:?}",
        audit.problems
    );
    server.stop().await;
}
