//! Commands that work on a local store (a sled directory, or a PostgreSQL
//! database for `serve`): demo, import, export.

use crate::clock::{Clock, SystemClock};
use crate::config::{Limits, StoreLocation};
use crate::demo::{DemoConfig, build_demo, example_calls};
use crate::domain::ledger::Actor;
use crate::import::{ImportBundle, load_dir};
use crate::service::Spares;
use crate::store::pg::PgStore;
use crate::store::sled_store::SledStore;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Store collection remembering which demo a directory holds.
const DEMO_COLLECTION: &str = "demo";

/// Longest a PostgreSQL-backed server goes without reading the writes other
/// servers made: notifications wake it at once, this bounds the wait when
/// one was missed (a reconnection).
pub const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Opens the application over a sled directory with the default limits.
pub fn open(data_dir: &Path) -> Result<Arc<Spares>, String> {
    open_with(data_dir, Limits::default())
}

/// Opens the application over a sled directory or a PostgreSQL database
/// with `limits`. Blocking: call it off the async runtime (the PostgreSQL
/// client blocks on a runtime of its own).
pub fn open_location(location: &StoreLocation, limits: Limits) -> Result<Arc<Spares>, String> {
    match location {
        StoreLocation::Sled(dir) => open_with(dir, limits),
        StoreLocation::Postgres(url) => {
            let store = Arc::new(PgStore::open(url).map_err(|e| format!("{location}: {e}"))?);
            // Other servers on the same database write too: follow them, so
            // promises here see their movements.
            store
                .follow(FOLLOW_POLL)
                .map_err(|e| format!("{location}: cannot start the ledger follower: {e}"))?;
            let spares = Arc::new(
                Spares::new(store, Arc::new(SystemClock), limits)
                    .map_err(|e| format!("{location}: {e}"))?,
            );
            // And their master data, policies and API keys.
            spares
                .follow_shared_state(FOLLOW_POLL)
                .map_err(|e| format!("{location}: cannot start the shared-state follower: {e}"))?;
            Ok(spares)
        }
    }
}

/// Opens the application over a sled directory with `limits`.
pub fn open_with(data_dir: &Path, limits: Limits) -> Result<Arc<Spares>, String> {
    let store = SledStore::open(data_dir).map_err(|e| {
        if e.to_string().contains("could not acquire lock") {
            format!(
                "{}: another process (a running server?) holds this data directory; stop it, or use a client command against it (`spares backup FILE --server URL` copies everything while it serves)",
                data_dir.display()
            )
        } else {
            format!("{}: {e}", data_dir.display())
        }
    })?;
    let spares = Spares::new(Arc::new(store), Arc::new(SystemClock), limits)
        .map_err(|e| format!("{}: {e}", data_dir.display()))?;
    Ok(Arc::new(spares))
}

/// Builds and loads the demo unless the directory already holds it; unless
/// `insecure_dev`, creates an administrator key for this run and prints it
/// with the example calls (a key is shown only once, so each run makes one;
/// `spares keys list/revoke` manage them). Returns the application and what
/// was done.
pub fn prepare_demo(
    config: &DemoConfig,
    data_dir: &Path,
    addr: &str,
    insecure_dev: bool,
) -> Result<(Arc<Spares>, String), String> {
    prepare_demo_with(config, data_dir, addr, insecure_dev, Limits::default())
}

/// [`prepare_demo`] with these limits.
pub fn prepare_demo_with(
    config: &DemoConfig,
    data_dir: &Path,
    addr: &str,
    insecure_dev: bool,
    limits: Limits,
) -> Result<(Arc<Spares>, String), String> {
    let spares = open_with(data_dir, limits)?;
    let mut out = String::new();
    let marker = format!(
        "seed={} parts={} stores={}",
        config.seed, config.parts, config.stores
    );
    let existing = spares
        .store()
        .records(DEMO_COLLECTION)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
        .next();
    let started = Instant::now();
    let demo = build_demo(config, SystemClock.now()).map_err(|e| e.to_string())?;
    let _ = writeln!(
        out,
        "built the demo network ({marker}) in {:.2?}",
        started.elapsed()
    );
    match existing {
        Some(found) if found == marker => {
            let _ = writeln!(
                out,
                "{} already holds this demo; reusing it",
                data_dir.display()
            );
        }
        Some(found) => {
            return Err(format!(
                "{} holds another demo ({found}); use a new --data-dir or remove it",
                data_dir.display()
            ));
        }
        None => {
            let started = Instant::now();
            let report = spares
                .load_master_data(&demo.bundle())
                .map_err(|e| e.to_string())?;
            let movements = spares
                .load_movements(&Actor::system("demo"), &demo.movements)
                .map_err(|e| e.to_string())?;
            spares
                .store()
                .put_record(DEMO_COLLECTION, "config", marker.as_bytes())
                .map_err(|e| e.to_string())?;
            let _ = writeln!(
                out,
                "loaded {} locations, {} lanes, {} parts, {} installed-base records, {} demand series, {} policies and {} stock movements into {} in {:.2?}",
                report.locations,
                report.lanes,
                report.parts,
                report.installed_base,
                report.demand_series,
                report.policies,
                movements,
                data_dir.display(),
                started.elapsed()
            );
        }
    }
    if insecure_dev {
        out.push_str("# Authentication is OFF (--insecure-dev): no key needed.\n");
    } else {
        let (record, key) = spares
            .create_api_key(crate::service::keys::NewApiKey {
                role: crate::auth::Role::Admin,
                stores: Vec::new(),
                locations: Vec::new(),
                name: "spares demo".into(),
                created_by: crate::service::keys::OFFLINE_CREATOR.into(),
            })
            .map_err(|e| e.to_string())?;
        let _ = writeln!(
            out,
            "# An administrator API key for this demo (id {}), shown once:\nexport SPARES_API_KEY={key}",
            record.key_id
        );
    }
    out.push_str(&example_calls(&demo, addr));
    Ok((spares, out))
}

/// `spares import DIR --data-dir D`: validated whole, then master data, then
/// stock counts by `actor` (`local:<user>`; see [`Spares::import`]).
pub fn import_local(dir: &Path, data_dir: &Path, actor: &Actor) -> Result<String, String> {
    let bundle = load_dir(dir).map_err(|e| e.to_string())?;
    let spares = open(data_dir)?;
    let (report, counted) = spares.import(actor, &bundle).map_err(|e| e.to_string())?;
    Ok(format!(
        "imported {} locations, {} lanes, {} parts, {} installed-base records, {} demand series, {} policies into {}; {} of {} stock counts changed stock (the rest already matched)\n",
        report.locations,
        report.lanes,
        report.parts,
        report.installed_base,
        report.demand_series,
        report.policies,
        data_dir.display(),
        counted,
        bundle.stock.len(),
    ))
}

/// `spares export DIR --data-dir D`: the network and on-hand stock as CSV.
pub fn export_local(dir: &Path, data_dir: &Path) -> Result<String, String> {
    let spares = open(data_dir)?;
    let network = spares.network();
    let stock = spares
        .store()
        .balances(None, None)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|b| b.on_hand() > 0)
        .map(|b| crate::import::StockRow {
            at: (0, 0),
            on_hand: b.on_hand(),
            part_id: b.part_id,
            location_id: b.location_id,
        })
        .collect();
    let bundle = ImportBundle::from_network(&network, stock);
    crate::import::export_dir(&bundle, dir, crate::import::FileFormat::Csv)
        .map_err(|e| e.to_string())?;
    Ok(format!("exported to {}\n", dir.display()))
}
