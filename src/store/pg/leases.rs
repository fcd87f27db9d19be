//! Job leases on PostgreSQL (`job_leases`; see `migrations/0004_job_leases.sql`
//! and [`crate::store::leases`]). Lease times are the database's clock
//! (`now()`), so the servers' clocks need not agree.

use super::pool::Pool;
use super::{database, off_runtime};
use crate::store::StoreError;
use crate::store::leases::{HeldLease, JobLeases};
use std::time::Duration;

/// The leases, with connections of their own (a renewal never waits for a
/// ledger writer's connection).
pub struct PgJobLeases {
    pool: Pool,
}

impl std::fmt::Debug for PgJobLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgJobLeases").finish_non_exhaustive()
    }
}

impl PgJobLeases {
    /// Leases on the database `config` names (the schema must be at
    /// version 4 or later; `PgStore::open` sees to that).
    pub(super) fn new(config: postgres::Config) -> Self {
        Self {
            pool: Pool::new(config),
        }
    }

    /// Runs one statement that changes nothing when repeated.
    fn execute(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        off_runtime(|| {
            self.pool
                .run(|client| client.execute(sql, params).map_err(database))
        })
    }
}

fn held(row: &postgres::Row) -> HeldLease {
    HeldLease {
        job_id: row.get(0),
        cancel_requested: row.get(1),
    }
}

impl JobLeases for PgJobLeases {
    fn acquire(&self, job_id: &str, owner: &str, lease: Duration) -> Result<bool, StoreError> {
        let seconds = lease.as_secs_f64();
        let inserted = self.execute(
            "INSERT INTO job_leases (job_id, owner, lease_until) \
             VALUES ($1, $2, now() + make_interval(secs => $3)) \
             ON CONFLICT (job_id) DO NOTHING",
            &[&job_id, &owner, &seconds],
        )?;
        Ok(inserted == 1)
    }

    fn renew(
        &self,
        owner: &str,
        job_ids: &[String],
        lease: Duration,
    ) -> Result<Vec<HeldLease>, StoreError> {
        if job_ids.is_empty() {
            return Ok(Vec::new());
        }
        let seconds = lease.as_secs_f64();
        off_runtime(|| {
            self.pool.run(|client| {
                let rows = client
                    .query(
                        "UPDATE job_leases SET lease_until = now() + make_interval(secs => $2) \
                         WHERE owner = $1 AND job_id = ANY($3) \
                         RETURNING job_id, cancel_requested",
                        &[&owner, &seconds, &job_ids],
                    )
                    .map_err(database)?;
                Ok(rows.iter().map(held).collect())
            })
        })
    }

    fn claim_expired(&self, owner: &str, lease: Duration) -> Result<Option<HeldLease>, StoreError> {
        let seconds = lease.as_secs_f64();
        off_runtime(|| {
            let mut conn = self.pool.get()?;
            // SKIP LOCKED: servers scanning at once take different jobs; the
            // outer condition is checked again on the locked row, so a lease
            // another server renewed or claimed meanwhile is left alone.
            let row = conn
                .client()
                .query_opt(
                    "WITH next AS ( \
                         SELECT job_id FROM job_leases WHERE lease_until <= now() \
                         ORDER BY lease_until, job_id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                     UPDATE job_leases AS l SET owner = $1, \
                         lease_until = now() + make_interval(secs => $2), \
                         takeovers = l.takeovers + 1 \
                     FROM next WHERE l.job_id = next.job_id AND l.lease_until <= now() \
                     RETURNING l.job_id, l.cancel_requested",
                    &[&owner, &seconds],
                )
                .map_err(database)?;
            Ok(row.as_ref().map(held))
        })
    }

    fn request_cancel(&self, job_id: &str) -> Result<bool, StoreError> {
        let updated = self.execute(
            "UPDATE job_leases SET cancel_requested = true WHERE job_id = $1",
            &[&job_id],
        )?;
        Ok(updated == 1)
    }

    fn release(&self, job_id: &str, owner: &str) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM job_leases WHERE job_id = $1 AND owner = $2",
            &[&job_id, &owner],
        )
        .map(drop)
    }

    fn abandon(&self, job_id: &str, owner: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE job_leases SET lease_until = now() WHERE job_id = $1 AND owner = $2",
            &[&job_id, &owner],
        )
        .map(drop)
    }
}
