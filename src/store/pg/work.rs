//! The shared work queue on PostgreSQL (`work_stages`, `work_units`; see
//! `migrations/0002_work.sql` and [`crate::store::work`]). Every server on
//! the database claims units from it, so a job's stage is computed by all
//! of them. Leases are timed by the database's clock (`now()`), so the
//! servers' clocks need not agree.

use super::pool::Pool;
use super::{database, off_runtime};
use crate::store::StoreError;
use crate::store::work::{
    ClaimedUnit, StageProgress, UnitId, UnitOutcome, WorkQueue, not_done, same_stage,
};
use std::time::Duration;

/// The queue, with connections of its own (a worker's claim never waits for
/// a ledger writer's connection).
pub struct PgWorkQueue {
    pool: Pool,
}

impl std::fmt::Debug for PgWorkQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgWorkQueue").finish_non_exhaustive()
    }
}

impl PgWorkQueue {
    /// A queue on the database `config` names (the schema must be at
    /// version 2 or later; `PgStore::open` sees to that).
    pub(super) fn new(config: postgres::Config) -> Self {
        Self {
            pool: Pool::new(config),
        }
    }
}

fn stage_i32(stage: u32) -> Result<i32, StoreError> {
    i32::try_from(stage).map_err(|_| StoreError::Storage(format!("stage {stage} is past i32")))
}

fn unit_u32(unit: i32) -> Result<u32, StoreError> {
    u32::try_from(unit).map_err(|_| StoreError::Corruption(format!("unit index {unit}")))
}

fn no_stage(job_id: &str, stage: u32) -> StoreError {
    crate::domain::DomainError::not_found("work stage", format!("{job_id}/{stage}")).into()
}

impl WorkQueue for PgWorkQueue {
    fn open_stage(
        &self,
        job_id: &str,
        stage: u32,
        kind: &str,
        inputs: &[Vec<u8>],
        coordinator_lease: Duration,
    ) -> Result<(), StoreError> {
        let stage_number = stage_i32(stage)?;
        let seconds = coordinator_lease.as_secs_f64();
        let units = i32::try_from(inputs.len())
            .map_err(|_| StoreError::Storage(format!("{} units is past i32", inputs.len())))?;
        off_runtime(|| {
            let mut conn = self.pool.get()?;
            let mut tx = conn.client().transaction().map_err(database)?;
            // Stages whose coordinator died: their units go with them.
            tx.execute(
                "DELETE FROM work_stages WHERE coordinator_until <= now()",
                &[],
            )
            .map_err(database)?;
            let created = tx
                .execute(
                    "INSERT INTO work_stages (job_id, stage, kind, units, coordinator_until) \
                     VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) \
                     ON CONFLICT (job_id, stage) DO NOTHING",
                    &[&job_id, &stage_number, &kind, &units, &seconds],
                )
                .map_err(database)?;
            if created == 0 {
                let row = tx
                    .query_one(
                        "SELECT kind, units FROM work_stages WHERE job_id = $1 AND stage = $2",
                        &[&job_id, &stage_number],
                    )
                    .map_err(database)?;
                let (existing_kind, existing_units): (String, i32) = (row.get(0), row.get(1));
                return same_stage(
                    job_id,
                    stage,
                    (&existing_kind, usize::try_from(existing_units).unwrap_or(0)),
                    (kind, inputs.len()),
                );
            }
            let indexes: Vec<i32> = (0..units).collect();
            tx.execute(
                "INSERT INTO work_units (job_id, stage, unit, input, state) \
                 SELECT $1, $2, unit, input, 'open' FROM unnest($3::integer[], $4::bytea[]) AS u (unit, input)",
                &[&job_id, &stage_number, &indexes, &inputs],
            )
            .map_err(database)?;
            tx.commit().map_err(database)
        })
    }

    fn keep_job(&self, job_id: &str, coordinator_lease: Duration) -> Result<(), StoreError> {
        let seconds = coordinator_lease.as_secs_f64();
        off_runtime(|| {
            let mut conn = self.pool.get()?;
            conn.client()
                .execute(
                    "UPDATE work_stages SET coordinator_until = now() + make_interval(secs => $2) \
                     WHERE job_id = $1",
                    &[&job_id, &seconds],
                )
                .map_err(database)?;
            Ok(())
        })
    }

    fn claim(&self, owner: &str, lease: Duration) -> Result<Option<ClaimedUnit>, StoreError> {
        let seconds = lease.as_secs_f64();
        off_runtime(|| {
            let mut conn = self.pool.get()?;
            // SKIP LOCKED: workers claiming at once take different units
            // instead of queueing on the first one's row lock.
            let row = conn
                .client()
                .query_opt(
                    "WITH next AS ( \
                         SELECT job_id, stage, unit FROM work_units AS w \
                         WHERE (state = 'open' OR (state = 'claimed' AND lease_until <= now())) \
                             AND EXISTS (SELECT 1 FROM work_stages AS l \
                                 WHERE (l.job_id, l.stage) = (w.job_id, w.stage) \
                                     AND l.coordinator_until > now()) \
                         ORDER BY job_id, stage, unit LIMIT 1 \
                         FOR UPDATE SKIP LOCKED) \
                     UPDATE work_units AS u SET state = 'claimed', owner = $1, \
                         lease_until = now() + make_interval(secs => $2), attempts = u.attempts + 1 \
                     FROM next, work_stages AS s \
                     WHERE (u.job_id, u.stage, u.unit) = (next.job_id, next.stage, next.unit) \
                         AND (s.job_id, s.stage) = (u.job_id, u.stage) \
                     RETURNING u.job_id, u.stage, u.unit, s.kind, u.input",
                    &[&owner, &seconds],
                )
                .map_err(database)?;
            row.map(|row| {
                let stage: i32 = row.get(1);
                Ok(ClaimedUnit {
                    id: UnitId {
                        job_id: row.get(0),
                        stage: u32::try_from(stage)
                            .map_err(|_| StoreError::Corruption(format!("stage {stage}")))?,
                        unit: unit_u32(row.get(2))?,
                    },
                    kind: row.get(3),
                    input: row.get(4),
                })
            })
            .transpose()
        })
    }

    fn renew(
        &self,
        owner: &str,
        units: &[UnitId],
        lease: Duration,
    ) -> Result<Vec<UnitId>, StoreError> {
        if units.is_empty() {
            return Ok(Vec::new());
        }
        let seconds = lease.as_secs_f64();
        let jobs: Vec<&str> = units.iter().map(|u| u.job_id.as_str()).collect();
        let stages = units
            .iter()
            .map(|u| stage_i32(u.stage))
            .collect::<Result<Vec<i32>, _>>()?;
        let indexes = units
            .iter()
            .map(|u| stage_i32(u.unit))
            .collect::<Result<Vec<i32>, _>>()?;
        off_runtime(|| {
            let mut conn = self.pool.get()?;
            let rows = conn
                .client()
                .query(
                    "UPDATE work_units SET lease_until = now() + make_interval(secs => $2) \
                     WHERE owner = $1 AND state = 'claimed' AND (job_id, stage, unit) IN \
                         (SELECT * FROM unnest($3::text[], $4::integer[], $5::integer[])) \
                     RETURNING job_id, stage, unit",
                    &[&owner, &seconds, &jobs, &stages, &indexes],
                )
                .map_err(database)?;
            rows.iter()
                .map(|row| {
                    let stage: i32 = row.get(1);
                    Ok(UnitId {
                        job_id: row.get(0),
                        stage: u32::try_from(stage)
                            .map_err(|_| StoreError::Corruption(format!("stage {stage}")))?,
                        unit: unit_u32(row.get(2))?,
                    })
                })
                .collect()
        })
    }

    fn complete(
        &self,
        owner: &str,
        unit: &UnitId,
        outcome: UnitOutcome<'_>,
    ) -> Result<bool, StoreError> {
        let stage = stage_i32(unit.stage)?;
        let index = stage_i32(unit.unit)?;
        let (state, result, message): (&str, Option<&[u8]>, Option<&str>) = match outcome {
            UnitOutcome::Done(bytes) => ("done", Some(bytes), None),
            UnitOutcome::Failed(message) => ("failed", None, Some(message)),
        };
        off_runtime(|| {
            let mut conn = self.pool.get()?;
            let stored = conn
                .client()
                .execute(
                    "UPDATE work_units SET state = $5, result = $6, message = $7, lease_until = NULL \
                     WHERE job_id = $1 AND stage = $2 AND unit = $3 AND owner = $4 AND state = 'claimed'",
                    &[&unit.job_id, &stage, &index, &owner, &state, &result, &message],
                )
                .map_err(database)?;
            Ok(stored == 1)
        })
    }

    fn progress(&self, job_id: &str, stage: u32) -> Result<StageProgress, StoreError> {
        let stage_number = stage_i32(stage)?;
        off_runtime(|| {
            let mut conn = self.pool.get()?;
            let client = conn.client();
            let total = client
                .query_opt(
                    "SELECT units FROM work_stages WHERE job_id = $1 AND stage = $2",
                    &[&job_id, &stage_number],
                )
                .map_err(database)?
                .ok_or_else(|| no_stage(job_id, stage))?
                .get::<_, i32>(0);
            let done: i64 = client
                .query_one(
                    "SELECT count(*) FROM work_units \
                     WHERE job_id = $1 AND stage = $2 AND state = 'done'",
                    &[&job_id, &stage_number],
                )
                .map_err(database)?
                .get(0);
            let failed = client
                .query_opt(
                    "SELECT unit, coalesce(message, '') FROM work_units \
                     WHERE job_id = $1 AND stage = $2 AND state = 'failed' ORDER BY unit LIMIT 1",
                    &[&job_id, &stage_number],
                )
                .map_err(database)?
                .map(|row| Ok::<_, StoreError>((unit_u32(row.get(0))?, row.get(1))))
                .transpose()?;
            Ok(StageProgress {
                done: usize::try_from(done).unwrap_or(0),
                total: usize::try_from(total).unwrap_or(0),
                failed,
            })
        })
    }

    fn results(&self, job_id: &str, stage: u32) -> Result<Vec<Vec<u8>>, StoreError> {
        let stage_number = stage_i32(stage)?;
        off_runtime(|| {
            let mut conn = self.pool.get()?;
            let mut tx = conn
                .client()
                .build_transaction()
                .read_only(true)
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .start()
                .map_err(database)?;
            let units: i32 = tx
                .query_opt(
                    "SELECT units FROM work_stages WHERE job_id = $1 AND stage = $2",
                    &[&job_id, &stage_number],
                )
                .map_err(database)?
                .ok_or_else(|| no_stage(job_id, stage))?
                .get(0);
            let rows = tx
                .query(
                    "SELECT unit, state, result FROM work_units \
                     WHERE job_id = $1 AND stage = $2 ORDER BY unit",
                    &[&job_id, &stage_number],
                )
                .map_err(database)?;
            if rows.len() != usize::try_from(units).unwrap_or(0) {
                return Err(StoreError::Corruption(format!(
                    "stage {stage} of {job_id} has {} of its {units} units",
                    rows.len()
                )));
            }
            let mut results = Vec::with_capacity(rows.len());
            for (expected, row) in rows.iter().enumerate() {
                let unit: i32 = row.get(0);
                let state: &str = row.get(1);
                let result: Option<Vec<u8>> = row.get(2);
                match (usize::try_from(unit) == Ok(expected), state, result) {
                    (true, "done", Some(bytes)) => results.push(bytes),
                    (true, _, _) => return Err(not_done(job_id, stage, expected)),
                    (false, _, _) => {
                        return Err(StoreError::Corruption(format!(
                            "stage {stage} of {job_id} lacks unit {expected}"
                        )));
                    }
                }
            }
            tx.commit().map_err(database)?;
            Ok(results)
        })
    }

    fn close_job(&self, job_id: &str) -> Result<(), StoreError> {
        off_runtime(|| {
            let mut conn = self.pool.get()?;
            conn.client()
                .execute("DELETE FROM work_stages WHERE job_id = $1", &[&job_id])
                .map_err(database)?;
            Ok(())
        })
    }

    fn wait_for_work(&self, timeout: Duration) {
        std::thread::sleep(timeout);
    }
}
