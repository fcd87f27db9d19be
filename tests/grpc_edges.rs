//! Regressions for the defects found by the reliability campaign of issue 12,
//! each through the real gRPC service in process: typed statuses naming the
//! field, bounded messages, limits checked at the edge, nothing accepted that
//! would stop the ledger from opening.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, raw, receipt, small_network};
use prost::Message;
use spares::config::{Limits, MAX_BATCH_ITEMS};
use spares::domain::ledger::MAX_QUANTITY;
use spares::pb;
use tonic::Code;

const MAX: i64 = MAX_QUANTITY as i64;

fn record(movements: Vec<pb::MovementRequest>) -> pb::RecordMovementsRequest {
    pb::RecordMovementsRequest { movements }
}

/// Found 1: an overflowing receipt, and receipts that would wrap the external
/// supplier account, are OUT_OF_RANGE naming the field; the server reopens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_that_would_overflow_are_out_of_range_and_the_ledger_reopens() {
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    small_network(&mut c).await;
    let status = c
        .inventory
        .record_movements(record(vec![receipt("a", "P1", "DEP", i64::MAX)]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("movements[0].quantity"),
        "{status:?}"
    );
    c.inventory
        .record_movements(record(vec![receipt("b", "P1", "DEP", MAX)]))
        .await
        .unwrap();
    let status = c
        .inventory
        .record_movements(record(vec![
            receipt("c", "P2", "STR", 1),
            receipt("d", "P1", "STR", 1),
        ]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("movements[1].quantity")
            && status.message().contains("supplier account of P1"),
        "{status:?}"
    );
    assert!(!status.message().contains("External {"), "{status:?}");
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, Limits::default()).await;
    let audit = server.spares.store().audit().unwrap();
    assert!(audit.problems.is_empty(), "{:?}", audit.problems);
    server.stop().await;
}

/// Found 6: a body that is not a valid message is INVALID_ARGUMENT, not INTERNAL.
#[tokio::test]
async fn malformed_bodies_are_invalid_argument() {
    let server = TestServer::start().await;
    let channel = server.raw_channel().await;
    for body in [vec![0xff], vec![0x0a, 0x05, 0x01], vec![0x08, 0xff, 0xff]] {
        let (code, message) = raw::call(
            &channel,
            "/spares.v1.InventoryService/RecordMovements",
            body,
            false,
        )
        .await;
        assert_eq!(code, Code::InvalidArgument, "{message}");
    }
    // A string field holding invalid UTF-8 (refused by the edge check), and
    // one sent as a number (well-formed wire data that only prost's decoder
    // refuses): both INVALID_ARGUMENT.
    for body in [vec![0x0a, 0x02, 0xc3, 0x28], vec![0x08, 0x01]] {
        let (code, message) =
            raw::call(&channel, "/spares.v1.NetworkService/GetPart", body, false).await;
        assert_eq!(code, Code::InvalidArgument, "{message}");
    }
    server.stop().await;
}

/// Found 7: oversize ids and keys are refused at the edge with a short
/// message; keys with control characters are refused; a NOT_FOUND never
/// echoes more than a bounded prefix.
#[tokio::test]
async fn oversize_or_control_character_input_is_refused_with_a_short_message() {
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    small_network(&mut c).await;
    let status = c
        .network
        .get_part(pb::GetPartRequest {
            part_id: "P".repeat(70_000),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{}", status.message());
    assert!(status.message().contains("part_id"), "{}", status.message());
    assert!(
        status.message().len() < 200,
        "{} bytes",
        status.message().len()
    );
    let mut long_key = receipt(&"k".repeat(100_000), "P1", "DEP", 1);
    let status = c
        .inventory
        .record_movements(record(vec![
            receipt("ok", "P1", "DEP", 1),
            long_key.clone(),
        ]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange);
    assert!(status.message().contains("movements[1].idempotency_key"));
    long_key.idempotency_key = "bad\u{7}key".into();
    let status = c
        .inventory
        .record_movements(record(vec![long_key]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("movements[0].idempotency_key"));
    let status = c
        .network
        .get_part(pb::GetPartRequest {
            part_id: "Q".repeat(64),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().len() < 300, "{}", status.message());
    let token = c
        .network
        .list_parts(pb::ListPartsRequest {
            page: Some(pb::PageRequest {
                page_size: 1,
                page_token: "t".repeat(10_000),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(token.code(), Code::OutOfRange);
    assert!(
        token.message().contains("page.page_token"),
        "{}",
        token.message()
    );
    server.stop().await;
}

/// Found 8: the batch limit is 50,000 everywhere: a batch of exactly that
/// many movements is recorded in one call, one more is OUT_OF_RANGE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_batch_of_50000_movements_is_accepted() {
    assert_eq!(MAX_BATCH_ITEMS, 50_000);
    assert_eq!(Limits::default().max_batch_items, MAX_BATCH_ITEMS);
    assert_eq!(
        spares::store::sled_store::MAX_BATCH_COMMANDS,
        MAX_BATCH_ITEMS
    );
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    small_network(&mut c).await;
    let batch: Vec<pb::MovementRequest> = (0..MAX_BATCH_ITEMS)
        .map(|i| receipt(&format!("m{i}"), "P1", "DEP", 1))
        .collect();
    let mut over = batch.clone();
    over.push(receipt("one-more", "P1", "DEP", 1));
    let status = c
        .inventory
        .record_movements(record(over))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{}", status.message());
    assert!(status.message().contains("movements"));
    let reply = c
        .inventory
        .record_movements(record(batch))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.results.len(), MAX_BATCH_ITEMS);
    let stock = server.spares.store().balance("P1", "DEP").unwrap();
    assert_eq!(stock.available, MAX_BATCH_ITEMS as u64);
    server.stop().await;
}

/// Found 10: `nanos: -1` is INVALID_ARGUMENT naming the field; the last valid
/// protobuf instant (9999-12-31T23:59:59Z) is accepted.
#[tokio::test]
async fn timestamps_follow_the_protobuf_range() {
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    small_network(&mut c).await;
    let promise = |seconds: i64, nanos: i32| pb::PromiseRequest {
        part_id: "P1".into(),
        quantity: 1,
        destination_location_id: "STR".into(),
        need_by: Some(prost_types::Timestamp { seconds, nanos }),
        ..Default::default()
    };
    let status = c
        .availability
        .promise(promise(1_800_000_000, -1))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("need_by"), "{}", status.message());
    c.availability
        .promise(promise(253_402_300_799, 999_999_999))
        .await
        .unwrap();
    let status = c
        .availability
        .promise(promise(253_402_300_800, 0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    server.stop().await;
}

/// Found 5: a scenario naming an unknown location, machine model or part is
/// NOT_FOUND naming its full path before any job exists. Found 3: a long
/// scenario list is refused at the edge.
#[tokio::test]
async fn bad_scenarios_are_refused_before_a_job_exists() {
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    small_network(&mut c).await;
    use pb::scenario_change::Change;
    let change = |change: Change| pb::ScenarioChange {
        change: Some(change),
    };
    let scenario = |changes| pb::Scenario {
        name: "s".into(),
        changes,
    };
    let cases = [
        (
            change(Change::LocationOutage(pb::LocationOutage {
                location_id: "NOWHERE".into(),
                start_day: 1.0,
                duration_days: 2.0,
            })),
            "scenarios[1].changes[0].location_id",
        ),
        (
            change(Change::FleetGrowth(pb::FleetGrowth {
                store_location_id: "STR".into(),
                machine_model_id: "NO-MODEL".into(),
                additional_machines: 1,
            })),
            "scenarios[1].changes[0].machine_model_id",
        ),
        (
            change(Change::StockChange(pb::StockChange {
                part_id: "NO-PART".into(),
                location_id: "STR".into(),
                order_up_to: 3,
            })),
            "scenarios[1].changes[0].part_id",
        ),
    ];
    for (bad, field) in cases {
        let status = c
            .planning
            .simulate(pb::SimulateRequest {
                settings: Some(pb::SimulationSettings {
                    part_ids: vec!["P1".into()],
                    ..Default::default()
                }),
                scenarios: vec![scenario(vec![]), scenario(vec![bad])],
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{}", status.message());
        assert!(status.message().contains(field), "{}", status.message());
    }
    let status = c
        .planning
        .get_job(pb::GetJobRequest {
            job_id: "job-000001".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "no job was created");
    let many = pb::SimulateRequest {
        settings: None,
        scenarios: vec![pb::Scenario::default(); 200_000],
    };
    assert!(many.encoded_len() > 300_000);
    let status = c.planning.simulate(many).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{}", status.message());
    assert!(
        status.message().contains("scenarios"),
        "{}",
        status.message()
    );
    server.stop().await;
}

/// Found 10 (field paths): the parts of an optimisation are named once,
/// `settings.part_ids`, not `settings.settings.part_ids`.
#[tokio::test]
async fn optimize_names_settings_part_ids_once() {
    let server = TestServer::start().await;
    let mut c = server.clients().await;
    small_network(&mut c).await;
    let status = c
        .planning
        .optimize(pb::OptimizeRequest {
            settings: Some(pb::SimulationSettings::default()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        status.message().contains("settings.part_ids")
            && !status.message().contains("settings.settings"),
        "{}",
        status.message()
    );
    server.stop().await;
}

/// Found 12: exporting a directory a server holds says so plainly.
#[tokio::test]
async fn export_of_a_served_directory_says_what_to_do() {
    let server = TestServer::start().await;
    let out = tempfile::tempdir().unwrap();
    let data = server.dir.path().to_path_buf();
    let error = tokio::task::spawn_blocking(move || {
        spares::cli::local::export_local(out.path(), &data).unwrap_err()
    })
    .await
    .unwrap();
    assert!(error.contains("spares backup FILE --server URL"), "{error}");
    server.stop().await;
}
