//! Earlier releases' data directories open in this build: layout 2
//! (`tests/fixtures/layout-2`) is backed up, upgraded in place, and answers
//! the same stock as the old binary did, with lanes re-keyed by kind so a
//! lane of another kind with the same mode now coexists; layout 3
//! (`tests/fixtures/layout-3`) reads its movements back with the actor
//! `unknown (before layout 4)` and still dedupes replays of its keys;
//! layout 4 (`tests/fixtures/layout-4`) gets the balances' watermark, keeps
//! its keys in the keys' tree and writes new movement keys into the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jiff::Timestamp;
use spares::api::server::serve;
use spares::cli::client::{Target, connect};
use spares::clock::ManualClock;
use spares::config::Limits;
use spares::domain::audit::MovementFilter;
use spares::domain::ledger::{Actor, MovementCommand, MovementKind};
use spares::pb;
use spares::service::Spares;
use spares::store::Store;
use spares::store::sled_store::SledStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layout-2")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// One row of the old binary's `spares stock` table.
#[derive(Debug, PartialEq)]
struct Row {
    part: String,
    location: String,
    on_hand: u64,
    reserved: u64,
    available: u64,
    protected: u64,
    in_transit: u64,
}

fn old_answers() -> Vec<Row> {
    let text = std::fs::read_to_string(fixture().join("stock_answers.txt")).unwrap();
    text.lines()
        .filter(|line| line.starts_with("P-"))
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let n = |i: usize| cells[i].parse::<u64>().unwrap();
            Row {
                part: cells[0].into(),
                location: cells[1].into(),
                on_hand: n(2),
                reserved: n(3),
                available: n(4),
                protected: n(5),
                in_transit: n(6),
            }
        })
        .collect()
}

fn row(p: &pb::StockPosition) -> Row {
    Row {
        part: p.part_id.clone(),
        location: p.location_id.clone(),
        on_hand: p.on_hand,
        reserved: p.reserved,
        available: p.available,
        protected: p.protected,
        in_transit: p.in_transit,
    }
}

/// Serves `dir` until the returned sender fires; returns the URL.
async fn serve_dir(
    dir: &Path,
) -> (
    Target,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let clock = Arc::new(ManualClock::new(
        "2026-11-23T14:00:00Z".parse::<Timestamp>().unwrap(),
    ));
    let store = SledStore::open(dir).expect("the previous release's directory opens");
    let spares = Arc::new(Spares::new(Arc::new(store), clock, Limits::default()).unwrap());
    // Authentication is on: an administrator key, as `spares keys create` makes.
    let (_, key) = spares
        .create_api_key(spares::service::keys::NewApiKey {
            role: spares::auth::Role::Admin,
            stores: Vec::new(),
            locations: Vec::new(),
            name: "test".into(),
            created_by: "test".into(),
        })
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Target::new(
        format!("http://{}", listener.local_addr().unwrap()),
        Some(key),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        serve(spares, listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (url, stop, handle)
}

#[tokio::test]
async fn previous_release_directory_opens_and_answers_the_same_stock() {
    let outer = tempfile::tempdir().unwrap();
    let data = outer.path().join("data");
    copy_dir(&fixture().join("data"), &data);
    let expected = old_answers();
    assert_eq!(expected.len(), 6, "the fixture's answers hold six rows");

    let (url, stop, handle) = serve_dir(&data).await;
    let backup = outer.path().join("data.layout-2-backup");
    assert!(backup.join("db").exists(), "the upgrade backs up first");
    let mut c = connect(&url).await.unwrap();
    let mut answered = Vec::new();
    for part in ["P-1", "P-2", "P-3"] {
        let reply = c
            .inventory
            .get_stock(pb::GetStockRequest {
                part_id: part.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        answered.extend(reply.positions.iter().map(row));
    }
    assert_eq!(answered, expected);

    // Master data came through, with lanes re-keyed by kind: an emergency lane
    // with the same (from, to, mode) as a replenishment lane now coexists.
    let lanes = c
        .network
        .list_lanes(pb::ListLanesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .lanes;
    assert_eq!(lanes.len(), 7);
    let mut emergency = lanes
        .iter()
        .find(|l| l.from_location_id == "RWH-1" && l.to_location_id == "STR-1")
        .unwrap()
        .clone();
    emergency.kind = pb::LaneKind::Emergency as i32;
    c.network
        .upsert_lanes(pb::UpsertLanesRequest {
            lanes: vec![emergency],
        })
        .await
        .unwrap();
    let after = c
        .network
        .list_lanes(pb::ListLanesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .lanes;
    assert_eq!(after.len(), 8);
    let parts = c
        .network
        .list_parts(pb::ListPartsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .parts;
    assert_eq!(parts.len(), 3);
    assert!(parts.iter().all(|p| p.supplier_lead_time.is_none()));
    let _ = stop.send(());
    handle.await.unwrap();

    // Opening the upgraded directory again takes no second backup and keeps
    // the answers.
    let (url, stop, handle) = serve_dir(&data).await;
    assert!(!outer.path().join("data.layout-2-backup-2").exists());
    let mut c = connect(&url).await.unwrap();
    let reply = c
        .inventory
        .get_stock(pb::GetStockRequest {
            part_id: "P-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let again: Vec<Row> = reply.positions.iter().map(row).collect();
    assert_eq!(again, expected[..3]);
    let _ = stop.send(());
    handle.await.unwrap();

    // The backup still holds the old layout and opens as it was.
    let (url, stop, handle) = serve_dir(&backup).await;
    assert!(
        outer
            .path()
            .join("data.layout-2-backup.layout-2-backup")
            .exists(),
        "the backup, opened, is itself upgraded after its own backup"
    );
    let mut c = connect(&url).await.unwrap();
    let reply = c
        .inventory
        .get_stock(pb::GetStockRequest {
            part_id: "P-2".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.positions.iter().map(row).collect::<Vec<_>>(),
        expected[3..5]
    );
    let _ = stop.send(());
    handle.await.unwrap();
}

#[test]
fn a_directory_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        let meta = db.open_tree("ledger/meta").unwrap();
        meta.insert("format", &[spares::store::layout::LAYOUT_VERSION + 1][..])
            .unwrap();
        db.flush().unwrap();
    }
    let err = SledStore::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("newer spares"), "{err}");
}

fn layout_3_copy(outer: &Path) -> PathBuf {
    let data = outer.join("data");
    copy_dir(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layout-3/data"),
        &data,
    );
    data
}

fn count_command(key: &str, part: &str, location: &str, quantity: i64) -> MovementCommand {
    MovementCommand {
        idempotency_key: key.into(),
        kind: MovementKind::Count,
        part_id: part.into(),
        location_id: location.into(),
        quantity,
        to_location_id: None,
        shipment_id: None,
        expected_arrival: None,
        note: "import of stock.csv".into(),
    }
}

fn all_movements(store: &SledStore) -> Vec<spares::domain::ledger::LedgerEntry> {
    let (entries, next) = store
        .movements(&MovementFilter {
            limit: 100,
            ..MovementFilter::default()
        })
        .unwrap();
    assert_eq!(next, None, "the whole log fits one page");
    entries
}

/// The stock the layout-3 and layout-4 fixtures hold (their import of
/// `tests/fixtures/layout-2/csv/stock.csv`).
const IMPORTED_STOCK: [(&str, &str, u64); 6] = [
    ("P-1", "DEP-A", 10),
    ("P-1", "RWH-1", 4),
    ("P-1", "STR-1", 2),
    ("P-2", "RWH-1", 3),
    ("P-2", "STR-2", 1),
    ("P-3", "STR-1", 5),
];

/// Every position's (part, location, on hand).
fn on_hand(store: &SledStore) -> Vec<(String, String, u64)> {
    store
        .balances(None, None)
        .unwrap()
        .iter()
        .map(|b| (b.part_id.clone(), b.location_id.clone(), b.on_hand()))
        .collect()
}

/// A layout-3 directory (`tests/fixtures/layout-3`, written by the release
/// before actors) opens after a backup, its six movements read back with the
/// unknown actor and the stock it held, a replay of one of its idempotency
/// keys (by any principal: nobody recorded who used it) dedupes, and new
/// writes carry their actor and keys scoped per principal.
#[test]
fn layout_3_movements_read_back_with_the_unknown_actor_and_old_keys_still_dedupe() {
    let outer = tempfile::tempdir().unwrap();
    let data = layout_3_copy(outer.path());
    let store = SledStore::open(&data).expect("the layout-3 directory opens");
    assert!(outer.path().join("data.layout-3-backup/db").exists());
    let old = all_movements(&store);
    assert_eq!(old.len(), 6);
    assert!(
        old.iter()
            .all(|e| e.actor == Actor::unknown_before_layout_4()
                && e.actor.id == "unknown (before layout 4)"),
        "{old:?}"
    );
    assert_eq!(
        on_hand(&store),
        IMPORTED_STOCK.map(|(p, l, q)| (p.into(), l.into(), q))
    );

    // The import's key, replayed with its payload by a principal of layout 4,
    // answers the original result; with another payload it conflicts.
    let now: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
    let admin = Actor::principal("apikey:a1", "admin");
    let key = "import stock.csv:2 P-1@DEP-A 0->10";
    let replay = store
        .record_movements(&admin, &[count_command(key, "P-1", "DEP-A", 10)], now)
        .unwrap();
    assert_eq!((replay[0].replayed, replay[0].sequence), (true, 1));
    let err = store
        .record_movements(&admin, &[count_command(key, "P-1", "DEP-A", 11)], now)
        .unwrap_err();
    assert!(err.to_string().contains("idempotency"), "{err}");

    // New keys are scoped per principal: the same key from two principals is
    // two movements, each with its actor.
    let warehouse = Actor::principal("apikey:w1", "warehouse");
    let first = store
        .record_movements(&admin, &[count_command("k", "P-3", "STR-1", 6)], now)
        .unwrap();
    let second = store
        .record_movements(&warehouse, &[count_command("k", "P-3", "STR-1", 7)], now)
        .unwrap();
    assert!(!first[0].replayed && !second[0].replayed);
    assert_eq!((first[0].sequence, second[0].sequence), (7, 8));
    drop(store);

    let store = SledStore::open(&data).unwrap();
    assert!(!outer.path().join("data.layout-3-backup-2").exists());
    let all = all_movements(&store);
    let actors: Vec<&str> = all.iter().map(|e| e.actor.id.as_str()).collect();
    assert_eq!(actors[..6], ["unknown (before layout 4)"; 6]);
    assert_eq!(actors[6..], ["apikey:a1", "apikey:w1"]);
    assert!(store.audit().unwrap().problems.is_empty());
    // And the backup still holds layout 3, untouched.
    let meta = sled::open(outer.path().join("data.layout-3-backup")).unwrap();
    let version = meta
        .open_tree("ledger/meta")
        .unwrap()
        .get("format")
        .unwrap();
    assert_eq!(version.as_deref(), Some(&[3u8][..]));
}

/// The version byte and the balances' watermark of a closed directory.
fn version_and_watermark(dir: &Path) -> (Option<u8>, Option<u64>) {
    // sled releases the file lock a little after the last handle is dropped.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let db = sled::open(dir).unwrap();
    let version = db
        .open_tree("ledger/meta")
        .unwrap()
        .get("format")
        .unwrap()
        .map(|v| v[0]);
    let watermark = db
        .open_tree("ledger/balances")
        .unwrap()
        .get([0xFF])
        .unwrap()
        .map(|v| u64::from_be_bytes(v.as_ref().try_into().unwrap()));
    (version, watermark)
}

/// A layout-4 directory (`tests/fixtures/layout-4`, written by the release
/// before movement keys moved into the log) opens after a backup at layout
/// 5 with the balances' watermark at its last sequence, answers the same
/// stock, dedupes a replay of its import keys (still in the keys' tree),
/// and a new movement's key (in its log record only) replays after a reopen.
#[test]
fn layout_4_upgrades_to_keys_in_the_log_and_a_balances_watermark() {
    let outer = tempfile::tempdir().unwrap();
    let data = outer.path().join("data");
    copy_dir(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layout-4/data"),
        &data,
    );
    let store = SledStore::open(&data).expect("the layout-4 directory opens");
    assert!(outer.path().join("data.layout-4-backup/db").exists());
    assert_eq!(
        on_hand(&store),
        IMPORTED_STOCK.map(|(p, l, q)| (p.into(), l.into(), q))
    );
    let now: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
    let cli = Actor::local("cli");
    assert_eq!(cli.id, "local:cli", "the actor the old import wrote");
    let key = "import stock.csv:2 P-1@DEP-A 0->10";
    let replay = store
        .record_movements(&cli, &[count_command(key, "P-1", "DEP-A", 10)], now)
        .unwrap();
    assert_eq!((replay[0].replayed, replay[0].sequence), (true, 1));
    let err = store
        .record_movements(&cli, &[count_command(key, "P-1", "DEP-A", 11)], now)
        .unwrap_err();
    assert!(err.to_string().contains("idempotency"), "{err}");
    let fresh = store
        .record_movements(&cli, &[count_command("after-5", "P-3", "STR-1", 6)], now)
        .unwrap();
    assert_eq!((fresh[0].replayed, fresh[0].sequence), (false, 7));
    drop(store);
    assert_eq!(version_and_watermark(&data), (Some(5), Some(7)));

    let store = SledStore::open(&data).unwrap();
    assert!(!outer.path().join("data.layout-4-backup-2").exists());
    for (key, part, location, quantity, sequence) in [
        ("after-5", "P-3", "STR-1", 6, 7),
        ("import stock.csv:2 P-1@DEP-A 0->10", "P-1", "DEP-A", 10, 1),
    ] {
        let again = store
            .record_movements(&cli, &[count_command(key, part, location, quantity)], now)
            .unwrap();
        assert_eq!(
            (again[0].replayed, again[0].sequence),
            (true, sequence),
            "{key}"
        );
    }
    assert_eq!(all_movements(&store).len(), 7);
    assert!(store.audit().unwrap().problems.is_empty());
    drop(store);
    // The backup still holds layout 4, with no watermark.
    assert_eq!(
        version_and_watermark(&outer.path().join("data.layout-4-backup")),
        (Some(4), None)
    );
}
