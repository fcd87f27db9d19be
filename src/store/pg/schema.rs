//! Schema versions of the PostgreSQL store: SQL files in `migrations/`,
//! applied in order, each recorded in `schema_version`, all in one
//! transaction (PostgreSQL's DDL is transactional, so a failed upgrade
//! leaves the database as it was).

use super::{StoreError, database};
use postgres::Client;

/// The migrations, in order: (version, SQL).
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_work.sql")),
    (3, include_str!("migrations/0003_work_coordinator.sql")),
    (4, include_str!("migrations/0004_job_leases.sql")),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = 4;

/// Applies every migration the database lacks and returns (version before,
/// version after). Several processes starting at once are safe: the
/// `schema_version` table is locked for the whole transaction, so one
/// applies the migrations and the others then find them applied. Errors:
/// [`StoreError::Storage`] if a statement fails (nothing is applied) or the
/// database is at a newer version than this build knows.
pub(super) fn migrate(client: &mut Client) -> Result<(i32, i32), StoreError> {
    // Two processes creating the version table at the same moment can
    // collide on the catalog; the loser retries once and finds it there.
    match migrate_once(client) {
        Err(StoreError::Storage(_)) => migrate_once(client),
        other => other,
    }
}

fn migrate_once(client: &mut Client) -> Result<(i32, i32), StoreError> {
    let mut tx = client.transaction().map_err(database)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );
         LOCK TABLE schema_version IN EXCLUSIVE MODE;",
    )
    .map_err(database)?;
    let before: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .map_err(database)?
        .get(0);
    if before > SCHEMA_VERSION {
        return Err(StoreError::Storage(format!(
            "the database schema is at version {before}, newer than this build's {SCHEMA_VERSION}; \
             run a newer spares"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > before) {
        tx.batch_execute(sql).map_err(database)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[version],
        )
        .map_err(database)?;
    }
    tx.commit().map_err(database)?;
    Ok((before, SCHEMA_VERSION))
}

/// `spares db upgrade`: connects to `url` and applies missing migrations.
/// Returns (version before, version after). Errors as [`migrate`], or
/// [`StoreError::Storage`] if the URL is bad or the database unreachable.
pub fn upgrade(url: &str) -> Result<(i32, i32), StoreError> {
    let config: postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Storage(format!("database URL: {e}")))?;
    let mut client = config.connect(postgres::NoTls).map_err(database)?;
    let versions = migrate(&mut client);
    // The client's runtime is dropped here, on this (blocking) thread.
    drop(client);
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The migrations are numbered 1, 2, ... and the last is the version
    /// this build writes.
    #[test]
    fn migrations_are_numbered_in_order() {
        let versions: Vec<i32> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        let expected: Vec<i32> = (1..=SCHEMA_VERSION).collect();
        assert_eq!(versions, expected);
    }

    /// The balance bound in the schema is the ledger's quantity limit.
    #[test]
    fn the_schema_bounds_balances_by_the_quantity_limit() {
        let limit = crate::domain::ledger::MAX_QUANTITY;
        assert!(
            MIGRATIONS[0]
                .1
                .contains(&format!("BETWEEN -{limit} AND {limit}"))
        );
    }
}
