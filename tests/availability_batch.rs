//! WhereIsBatch and PromiseBatch over gRPC on a small demo: every line is
//! answered exactly as a separate WhereIs or Promise, a bad line gets its own
//! error while the others answer, and a batch past the line limit is refused
//! with OUT_OF_RANGE naming `lines`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use spares::api::server::serve;
use spares::cli::client::{Clients, Target, connect};
use spares::cli::local::prepare_demo;
use spares::demo::DemoConfig;
use spares::domain::network::LocationKind;
use spares::domain::promise::MAX_BATCH_LINES;
use spares::pb;
use spares::pb::promise_batch_line::Result as PromiseLine;
use spares::pb::where_is_batch_line::Result as WhereIsLine;
use tonic::Code;

/// Ids drawn from the demo.
struct Demo {
    clients: Clients,
    url: String,
    parts: Vec<String>,
    stores: Vec<String>,
    key: String,
    _dir: tempfile::TempDir,
}

/// An administrator key made in `spares` directly (as `spares keys create`).
fn common_key(spares: &spares::service::Spares) -> String {
    spares
        .create_api_key(spares::service::keys::NewApiKey {
            role: spares::auth::Role::Admin,
            stores: Vec::new(),
            locations: Vec::new(),
            name: "test".into(),
            created_by: "test".into(),
        })
        .unwrap()
        .1
}

async fn demo() -> Demo {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let config = DemoConfig {
        parts: 300,
        stores: 20,
        ..DemoConfig::default()
    };
    let path = dir.path().to_path_buf();
    let served = addr.clone();
    // The demo makes an administrator key; the test makes its own to know it.
    let (spares, _) =
        tokio::task::spawn_blocking(move || prepare_demo(&config, &path, &served, true))
            .await
            .unwrap()
            .unwrap();
    let key = common_key(&spares);
    let network = spares.network();
    let parts: Vec<String> = network.parts.keys().cloned().collect();
    let stores: Vec<String> = network
        .locations
        .values()
        .filter(|l| l.kind == LocationKind::Store)
        .map(|l| l.id.clone())
        .collect();
    tokio::spawn(serve(spares, listener, std::future::pending()));
    let url = format!("http://{addr}");
    let clients = connect(Target::new(url.clone(), Some(key.clone())))
        .await
        .unwrap();
    Demo {
        clients,
        url,
        key,
        parts,
        stores,
        _dir: dir,
    }
}

fn at(text: &str) -> Option<prost_types::Timestamp> {
    let t: jiff::Timestamp = text.parse().unwrap();
    Some(prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: 0,
    })
}

/// Promise lines over random parts and stores, varied in every field that
/// changes the answer; order times are given so a line and its separate call
/// are placed at the same instant.
fn promise_lines(demo: &Demo, count: usize, seed: u64) -> Vec<pb::PromiseRequest> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let day = 23 + (i % 5);
            pb::PromiseRequest {
                part_id: demo.parts[rng.random_range(0..demo.parts.len())].clone(),
                quantity: rng.random_range(1..=4),
                destination_location_id: demo.stores[rng.random_range(0..demo.stores.len())]
                    .clone(),
                need_by: (i % 3 != 0)
                    .then(|| at(&format!("2026-11-{day}T18:00:00Z")))
                    .flatten(),
                mode: (if i % 4 == 0 {
                    pb::FulfilmentMode::Pickup
                } else {
                    pb::FulfilmentMode::Delivery
                }) as i32,
                order_time: at(&format!("2026-11-{}T{:02}:30:00Z", day - 2, 6 + i % 12)),
                priority: (if i % 5 == 0 {
                    pb::Priority::Critical
                } else {
                    pb::Priority::Routine
                }) as i32,
                exact_part_only: i % 7 == 0,
                max_options: (i % 4) as u32,
                ..Default::default()
            }
        })
        .collect()
}

fn without_time(mut answer: pb::PromiseResponse) -> pb::PromiseResponse {
    answer.as_of = None;
    answer
}

fn where_without_time(mut answer: pb::WhereIsResponse) -> pb::WhereIsResponse {
    answer.as_of = None;
    for row in &mut answer.locations {
        if let Some(stock) = row.stock.as_mut() {
            stock.as_of = None;
        }
    }
    answer
}

#[tokio::test]
async fn every_batch_line_equals_its_separate_call() {
    let mut demo = demo().await;
    let lines = promise_lines(&demo, 60, 7);
    let batch = demo
        .clients
        .availability
        .promise_batch(pb::PromiseBatchRequest {
            lines: lines.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.lines.len(), lines.len());
    assert!(batch.ledger_sequence > 0, "the demo ledger has movements");
    let mut with_options = 0;
    for (i, (line, answer)) in lines.into_iter().zip(batch.lines).enumerate() {
        let single = demo.clients.availability.promise(line).await;
        match (answer.result, single) {
            (Some(PromiseLine::Answer(batch)), Ok(single)) => {
                with_options += usize::from(!batch.options.is_empty());
                assert_eq!(
                    without_time(batch),
                    without_time(single.into_inner()),
                    "line {i}"
                );
            }
            (other, single) => panic!("line {i}: batch {other:?}, single {single:?}"),
        }
    }
    assert!(with_options > 10, "only {with_options} lines had an option");

    let mut rng = StdRng::seed_from_u64(9);
    let lines: Vec<pb::WhereIsRequest> = (0..40)
        .map(|i| pb::WhereIsRequest {
            part_id: demo.parts[rng.random_range(0..demo.parts.len())].clone(),
            near_location_id: if i % 2 == 0 {
                demo.stores[rng.random_range(0..demo.stores.len())].clone()
            } else {
                String::new()
            },
            exact_part_only: i % 5 == 0,
            only_with_stock: i % 3 != 0,
            max_locations: (i % 4) * 5,
        })
        .collect();
    let batch = demo
        .clients
        .availability
        .where_is_batch(pb::WhereIsBatchRequest {
            lines: lines.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.lines.len(), lines.len());
    for (i, (line, answer)) in lines.into_iter().zip(batch.lines).enumerate() {
        let single = demo.clients.availability.where_is(line).await;
        match (answer.result, single) {
            (Some(WhereIsLine::Answer(batch)), Ok(single)) => assert_eq!(
                where_without_time(batch),
                where_without_time(single.into_inner()),
                "line {i}"
            ),
            (other, single) => panic!("line {i}: batch {other:?}, single {single:?}"),
        }
    }
}

#[tokio::test]
async fn a_bad_line_gets_its_own_error_and_the_others_answer() {
    let mut demo = demo().await;
    let mut lines = promise_lines(&demo, 6, 3);
    lines[1].quantity = 0;
    lines[3].part_id = "NO-SUCH-PART".into();
    lines[4].destination_location_id = "NOWHERE".into();
    lines[5].need_by = Some(prost_types::Timestamp {
        seconds: 0,
        nanos: -5,
    });
    let batch = demo
        .clients
        .availability
        .promise_batch(pb::PromiseBatchRequest {
            lines: lines.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let error = |i: usize| match &batch.lines[i].result {
        Some(PromiseLine::Error(e)) => e.clone(),
        other => panic!("line {i}: expected an error, got {other:?}"),
    };
    let expected = [
        (1, Code::InvalidArgument, "lines[1].quantity"),
        (3, Code::NotFound, "lines[3].part_id"),
        (4, Code::NotFound, "lines[4].destination_location_id"),
        (5, Code::InvalidArgument, "lines[5].need_by"),
    ];
    for (i, code, field) in expected {
        let e = error(i);
        assert_eq!(Code::from(e.code), code, "line {i}: {e:?}");
        assert_eq!(e.field, field, "line {i}");
        assert!(e.message.contains(field), "line {i}: {}", e.message);
    }
    for i in [0, 2] {
        let Some(PromiseLine::Answer(answer)) = batch.lines[i].result.clone() else {
            panic!("line {i} should answer: {:?}", batch.lines[i]);
        };
        let single = demo
            .clients
            .availability
            .promise(lines[i].clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(without_time(answer), without_time(single), "line {i}");
    }

    let batch = demo
        .clients
        .availability
        .where_is_batch(pb::WhereIsBatchRequest {
            lines: vec![
                pb::WhereIsRequest {
                    part_id: demo.parts[0].clone(),
                    ..Default::default()
                },
                pb::WhereIsRequest {
                    part_id: String::new(),
                    ..Default::default()
                },
                pb::WhereIsRequest {
                    part_id: demo.parts[1].clone(),
                    near_location_id: "NOWHERE".into(),
                    ..Default::default()
                },
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        batch.lines[0].result,
        Some(WhereIsLine::Answer(_))
    ));
    for (i, code, field) in [
        (1, Code::InvalidArgument, "lines[1].part_id"),
        (2, Code::NotFound, "lines[2].near_location_id"),
    ] {
        let Some(WhereIsLine::Error(e)) = &batch.lines[i].result else {
            panic!("line {i}: expected an error, got {:?}", batch.lines[i]);
        };
        assert_eq!(Code::from(e.code), code, "line {i}: {e:?}");
        assert_eq!(e.field, field, "line {i}");
    }
}

#[tokio::test]
async fn a_batch_past_the_line_limit_is_out_of_range_naming_lines() {
    let mut demo = demo().await;
    let line = promise_lines(&demo, 1, 1).remove(0);
    let at_limit = demo
        .clients
        .availability
        .promise_batch(pb::PromiseBatchRequest {
            lines: vec![line.clone(); MAX_BATCH_LINES],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(at_limit.lines.len(), MAX_BATCH_LINES);
    let refused = demo
        .clients
        .availability
        .promise_batch(pb::PromiseBatchRequest {
            lines: vec![line; MAX_BATCH_LINES + 1],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(refused.message().contains("lines"), "{}", refused.message());
    let refused = demo
        .clients
        .availability
        .where_is_batch(pb::WhereIsBatchRequest {
            lines: vec![
                pb::WhereIsRequest {
                    part_id: demo.parts[0].clone(),
                    ..Default::default()
                };
                MAX_BATCH_LINES + 1
            ],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(refused.message().contains("lines"), "{}", refused.message());
}

#[tokio::test]
async fn the_cli_asks_a_pick_list_in_one_batch() {
    use spares::cli::client::{PromiseAsk, Target, promise, promise_lines, where_is};
    let demo = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lines.csv");
    let csv = format!("part,quantity\n{},2\n\nNO-SUCH-PART,1\n", demo.parts[2]);
    std::fs::write(&file, csv).unwrap();
    let flag = [format!("{}:1", demo.parts[1])];
    let lines = promise_lines(None, None, &flag, Some(&file)).unwrap();
    assert_eq!(
        lines,
        [
            (demo.parts[1].clone(), 1),
            (demo.parts[2].clone(), 2),
            ("NO-SUCH-PART".to_string(), 1)
        ]
    );
    assert!(promise_lines(None, None, &["P-1".to_string()], None).is_err());
    let url = Target::from(&demo.url).api_key(Some(demo.key.clone()));
    let ask = PromiseAsk {
        to: demo.stores[0].clone(),
        need_by: None,
        critical: false,
        pickup: false,
    };
    let out = promise(&url, &lines, &ask).await.unwrap();
    assert!(out.contains("3 lines to"), "{out}");
    assert!(out.contains("at ledger sequence"), "{out}");
    assert!(out.contains("== line 3: NO-SUCH-PART x1"), "{out}");
    assert!(out.contains("lines[2].part_id"), "{out}");
    let out = where_is(&url, &demo.parts[..2], Some(&demo.stores[0]), 5)
        .await
        .unwrap();
    assert!(out.contains(&format!("== {}", demo.parts[1])), "{out}");
}

/// A single Promise states the ledger sequence it read (the last movement
/// applied), as a batch does: a receipt moves it to the receipt's sequence,
/// and a batch line read at the same sequence states the same.
#[tokio::test]
async fn a_promise_states_the_ledger_sequence_it_read() {
    let mut demo = demo().await;
    let line = promise_lines(&demo, 1, 3).remove(0);
    let first = demo
        .clients
        .availability
        .promise(line.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(first.ledger_sequence > 0, "the demo ledger has movements");
    let recorded = demo
        .clients
        .inventory
        .record_movements(pb::RecordMovementsRequest {
            movements: vec![pb::MovementRequest {
                idempotency_key: "sequence-1".into(),
                kind: pb::MovementKind::Receipt as i32,
                part_id: line.part_id.clone(),
                location_id: line.destination_location_id.clone(),
                quantity: 1,
                ..Default::default()
            }],
        })
        .await
        .unwrap()
        .into_inner();
    let sequence = recorded.results[0].sequence;
    assert!(
        sequence > first.ledger_sequence,
        "{recorded:?} after {first:?}"
    );
    let second = demo
        .clients
        .availability
        .promise(line.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.ledger_sequence, sequence);
    let batch = demo
        .clients
        .availability
        .promise_batch(pb::PromiseBatchRequest { lines: vec![line] })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.ledger_sequence, sequence);
    match &batch.lines[0].result {
        Some(PromiseLine::Answer(answer)) => assert_eq!(answer.ledger_sequence, sequence),
        other => panic!("{other:?}"),
    }
}
