//! Stock import is a count: each row of `stock.csv` sets on hand to the file's
//! figure by an adjustment of the difference. Importing the same files twice
//! changes nothing; a changed row moves only that row; a retried import
//! replays; a bad import writes nothing and reports every error at its
//! file:line:column. Locally (`spares import DIR --data-dir D`) and over gRPC
//! (`spares import DIR --server URL`).
//!
//! Regressions for issue 12, found 2 (re-import doubled stock; a re-import
//! over a server failed with ALREADY_EXISTS after writing master data), found 1
//! (an `on_hand` of 18446744073709551615 was clamped and reported as success)
//! and found 9 (encoding, quoting, first-error-only, misnamed files).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestServer;
use spares::cli::local::import_local;
use spares::import::{ImportError, load_dir};
use spares::store::{SledStore, Store};
use std::path::Path;

const LOCATIONS: &str = "\
id,name,kind,latitude_deg,longitude_deg,time_zone,replenishment_source_id
DEP-ROT,Rotterdam depot,factory_depot,51.9225,4.47917,Europe/Amsterdam,
RWH-FRA,Frankfurt regional,regional_warehouse,50.11552,8.68417,Europe/Berlin,DEP-ROT
STR-0001,Cologne store,store,50.93333,6.95,Europe/Berlin,RWH-FRA
";

const PARTS: &str = "\
id,description,unit_cost_usd,criticality,kind
P-1,Hydraulic pump,1200,critical,repairable
P-2,Seal kit,40,essential,consumable
P-3,Oil filter,12.5,routine,consumable
";

const STOCK: &str = "\
part_id,location_id,on_hand
P-1,DEP-ROT,4
P-2,RWH-FRA,20
P-3,STR-0001,10
";

fn write_dir(dir: &Path, stock: &str) {
    std::fs::write(dir.join("locations.csv"), LOCATIONS).unwrap();
    std::fs::write(dir.join("parts.csv"), PARTS).unwrap();
    std::fs::write(dir.join("stock.csv"), stock).unwrap();
}

/// (on hand of every row of STOCK, log entries) in a data directory.
fn state(data: &Path) -> (Vec<u64>, u64) {
    let store = SledStore::open(data).unwrap();
    let on_hand = [("P-1", "DEP-ROT"), ("P-2", "RWH-FRA"), ("P-3", "STR-0001")]
        .iter()
        .map(|(p, l)| store.balance(p, l).unwrap().on_hand())
        .collect();
    let report = store.audit().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    (on_hand, report.movements)
}

fn import(files: &Path, data: &Path) -> Result<String, String> {
    import_local(files, data, &spares::domain::ledger::Actor::local("test"))
}

#[test]
fn the_same_file_twice_changes_nothing_and_one_changed_row_moves_only_that_row() {
    let files = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    write_dir(files.path(), STOCK);
    import(files.path(), data.path()).unwrap();
    assert_eq!(state(data.path()), (vec![4, 20, 10], 3));

    let again = import(files.path(), data.path()).unwrap();
    assert!(
        again.contains("0 of 3 stock counts changed stock"),
        "{again}"
    );
    assert_eq!(state(data.path()), (vec![4, 20, 10], 3), "nothing written");

    write_dir(
        files.path(),
        &STOCK.replace("P-2,RWH-FRA,20", "P-2,RWH-FRA,18"),
    );
    import(files.path(), data.path()).unwrap();
    assert_eq!(state(data.path()), (vec![4, 18, 10], 4), "one adjustment");

    // Back to the original figure: a new count, not a replay or a conflict.
    write_dir(files.path(), STOCK);
    import(files.path(), data.path()).unwrap();
    assert_eq!(state(data.path()), (vec![4, 20, 10], 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_server_a_changed_then_restored_file_imports_cleanly() {
    let server = TestServer::start().await;
    let files = tempfile::tempdir().unwrap();
    let import = |stock: &str| {
        write_dir(files.path(), stock);
        load_dir(files.path()).unwrap()
    };
    let bundle = import(STOCK);
    spares::cli::load::import_remote(&server.target(), &bundle)
        .await
        .unwrap();
    let changed = import(&STOCK.replace("P-2,RWH-FRA,20", "P-2,RWH-FRA,18"));
    spares::cli::load::import_remote(&server.target(), &changed)
        .await
        .unwrap();
    let out = spares::cli::load::import_remote(&server.target(), &bundle)
        .await
        .unwrap();
    assert!(out.contains("1 of 3 stock counts changed stock"), "{out}");
    let again = spares::cli::load::import_remote(&server.target(), &bundle)
        .await
        .unwrap();
    assert!(again.contains("0 of 3 stock counts"), "{again}");
    let on_hand: Vec<u64> = [("P-1", "DEP-ROT"), ("P-2", "RWH-FRA"), ("P-3", "STR-0001")]
        .iter()
        .map(|(p, l)| server.spares.store().balance(p, l).unwrap().on_hand())
        .collect();
    assert_eq!(on_hand, vec![4, 20, 10]);
    let audit = server.spares.store().audit().unwrap();
    assert!(audit.problems.is_empty());
    assert_eq!(audit.movements, 5, "3 counts, one change, one change back");
    server.stop().await;
}

#[test]
fn a_retried_count_replays_instead_of_adding() {
    let files = tempfile::tempdir().unwrap();
    write_dir(files.path(), STOCK);
    let bundle = load_dir(files.path()).unwrap();
    let data = tempfile::tempdir().unwrap();
    let store = SledStore::open(data.path()).unwrap();
    // Both attempts read the same stock (as a client that timed out and
    // retried would); the second replays the first.
    let counts = bundle.stock_counts(|_, _| (0, 0)).unwrap();
    let now = "2026-11-23T14:00:00Z".parse().unwrap();
    let first = store
        .record_movements(&spares::domain::ledger::Actor::local("test"), &counts, now)
        .unwrap();
    let second = store
        .record_movements(&spares::domain::ledger::Actor::local("test"), &counts, now)
        .unwrap();
    assert!(second.iter().all(|o| o.replayed));
    assert_eq!(
        first.iter().map(|o| o.sequence).collect::<Vec<_>>(),
        second.iter().map(|o| o.sequence).collect::<Vec<_>>()
    );
    assert_eq!(store.balance("P-2", "RWH-FRA").unwrap().on_hand(), 20);
}

fn places(error: &ImportError) -> Vec<(String, u64, u64)> {
    error
        .all()
        .map(|e| (e.file.clone(), e.line, e.column))
        .collect()
}

#[test]
fn a_bad_import_writes_nothing_and_reports_every_error_with_its_place() {
    let files = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let bad = "part_id,location_id,on_hand\n\
               P-1,DEP-ROT,4\n\
               P-2,RWH-FRA,18446744073709551615\n\
               P-3,STR-0001,-2\n\
               P-9,STR-0001,1\n";
    write_dir(files.path(), bad);
    let error = load_dir(files.path()).unwrap_err();
    assert_eq!(
        places(&error),
        vec![
            ("stock.csv".into(), 3, 3),
            ("stock.csv".into(), 4, 3),
            ("stock.csv".into(), 5, 1)
        ],
        "{error}"
    );
    assert!(error.message.contains("above the limit"), "{error}");
    let shown = import(files.path(), data.path()).unwrap_err();
    assert!(
        shown.contains("stock.csv:3:3:") && shown.contains("stock.csv:5:1:"),
        "{shown}"
    );
    let store = SledStore::open(data.path()).unwrap();
    assert!(
        store.load_network().unwrap().parts.is_empty(),
        "no master data written"
    );
    assert_eq!(store.audit().unwrap().movements, 0);
}

#[test]
fn a_count_below_reserved_refuses_the_whole_import() {
    let files = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    write_dir(files.path(), STOCK);
    import(files.path(), data.path()).unwrap();
    {
        let store = SledStore::open(data.path()).unwrap();
        let reserve = spares::domain::ledger::ReserveCommand {
            idempotency_key: "hold".into(),
            part_id: "P-3".into(),
            location_id: "STR-0001".into(),
            quantity: 6,
            ttl_seconds: 3600,
            priority: spares::domain::ledger::Priority::Critical,
            protected_quantity: 0,
            order_reference: String::new(),
            for_location_id: None,
        };
        store
            .reserve(
                &spares::domain::ledger::Actor::local("test"),
                &[reserve],
                jiff::Timestamp::now(),
            )
            .unwrap();
    }
    std::fs::write(
        files.path().join("parts.csv"),
        PARTS.replace("Oil filter", "Oil filter (long life)"),
    )
    .unwrap();
    std::fs::write(
        files.path().join("stock.csv"),
        STOCK.replace("P-3,STR-0001,10", "P-3,STR-0001,5"),
    )
    .unwrap();
    let error = import(files.path(), data.path()).unwrap_err();
    assert!(
        error.starts_with(
            "stock.csv:4:3: on_hand: a count of 5 of P-3 at STR-0001 is below the 6 units reserved"
        ),
        "{error}"
    );
    let store = SledStore::open(data.path()).unwrap();
    let part = store.load_network().unwrap().parts["P-3"].clone();
    assert_eq!(part.description, "Oil filter", "master data not written");
    assert_eq!(store.balance("P-3", "STR-0001").unwrap().on_hand(), 10);
}

#[test]
fn encoding_quoting_and_misnamed_files_are_reported_with_their_place() {
    let files = tempfile::tempdir().unwrap();
    write_dir(files.path(), STOCK);
    let mut parts = PARTS.as_bytes().to_vec();
    let at = PARTS.find("Seal kit").unwrap() + 4;
    parts[at] = 0xff;
    std::fs::write(files.path().join("parts.csv"), parts).unwrap();
    std::fs::write(
        files.path().join("fleet.csv"),
        "store_location_id,machine_model_id,machine_count,usage_hours_per_day\n",
    )
    .unwrap();
    let error = load_dir(files.path()).unwrap_err();
    assert_eq!(
        places(&error),
        vec![("fleet.csv".into(), 0, 0), ("parts.csv".into(), 3, 2)],
        "{error}"
    );
    assert!(error.message.contains("did you mean fleets?"), "{error}");
    assert!(
        error.to_string().contains("parts.csv:3:2: invalid UTF-8"),
        "{error}"
    );

    std::fs::remove_file(files.path().join("fleet.csv")).unwrap();
    std::fs::write(
        files.path().join("parts.csv"),
        PARTS.replace("Seal kit", "\"Seal kit"),
    )
    .unwrap();
    let error = load_dir(files.path()).unwrap_err();
    assert_eq!(places(&error), vec![("parts.csv".into(), 3, 2)], "{error}");
    assert!(error.message.contains("unterminated quote"), "{error}");
}
