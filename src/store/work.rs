//! Shared work: a job's stage split into units that any server may compute.
//!
//! The server that accepted a job (its coordinator) opens a stage with one
//! input per unit; workers on every server sharing the store claim units one
//! at a time under a lease, renew the lease while they work, and store each
//! unit's result (or the reason it failed) only while they still own it. A
//! worker that dies stops renewing, its lease expires and another worker
//! claims the unit again. The coordinator waits for every unit and reads the
//! results in unit order, so what it merges does not depend on which server
//! computed which unit.
//!
//! [`WorkQueue`] is the seam: [`LocalWorkQueue`] keeps stages in memory for a
//! store one process opens (sled), and the PostgreSQL store's queue
//! (`pg::work`) keeps them in the `work_stages` and `work_units` tables, so
//! every replica's workers take part. Units are computed by whoever claims
//! them from their input bytes alone: a unit carries everything it needs.
//! `tests/pg_shared_jobs.rs` runs one set of checks on both queues.

use super::StoreError;
use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// One unit of a stage of a job.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitId {
    /// The job.
    pub job_id: String,
    /// The stage within the job (the coordinator numbers them from 0).
    pub stage: u32,
    /// The unit within the stage (0..units); results merge in this order.
    pub unit: u32,
}

/// A unit a worker claimed: what to compute and from what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedUnit {
    /// Which unit.
    pub id: UnitId,
    /// The stage's kind of work (the worker's handler is chosen by it).
    pub kind: String,
    /// The unit's input.
    pub input: Vec<u8>,
}

/// Where a stage stands, as its coordinator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageProgress {
    /// Units whose result is stored.
    pub done: usize,
    /// Units in the stage.
    pub total: usize,
    /// The first unit (by index) that failed and why, if any did.
    pub failed: Option<(u32, String)>,
}

/// What a worker stores for a unit it computed.
#[derive(Debug, Clone, Copy)]
pub enum UnitOutcome<'a> {
    /// The result bytes.
    Done(&'a [u8]),
    /// The unit cannot be computed (the same input fails the same way on any
    /// server), with the reason; the coordinator fails the job with it.
    Failed(&'a str),
}

/// Where the units of shared work live. Every method is safe to call from
/// many threads and (for a shared store) many processes at once.
pub trait WorkQueue: Send + Sync + 'static {
    /// Opens stage `stage` of `job_id` with one unit per input, all open,
    /// alive for `coordinator_lease` unless the coordinator extends it
    /// ([`WorkQueue::keep_job`]). Opening a stage that exists with the same
    /// kind and number of units does nothing (a coordinator may retry).
    /// Every stage whose coordinator lease has run out (its coordinator
    /// died) is forgotten first. Errors: `Rejected` if it exists with
    /// another kind or number of units; `Storage`.
    fn open_stage(
        &self,
        job_id: &str,
        stage: u32,
        kind: &str,
        inputs: &[Vec<u8>],
        coordinator_lease: Duration,
    ) -> Result<(), StoreError>;

    /// The coordinator's heartbeat: extends every stage of `job_id` to
    /// `coordinator_lease` from now. Units of a stage whose coordinator
    /// lease ran out are not claimed (nobody would merge them). Errors:
    /// `Storage`.
    fn keep_job(&self, job_id: &str, coordinator_lease: Duration) -> Result<(), StoreError>;

    /// Claims one unit that is open, or claimed under a lease that has
    /// expired, for `owner` until `lease` from now; `None` when there is
    /// none. Errors: `Storage`.
    fn claim(&self, owner: &str, lease: Duration) -> Result<Option<ClaimedUnit>, StoreError>;

    /// Extends to `lease` from now the leases `owner` still holds among
    /// `units`, and returns those (a unit missing from the answer was
    /// claimed by another worker after its lease expired, or its job ended).
    /// Errors: `Storage`.
    fn renew(
        &self,
        owner: &str,
        units: &[UnitId],
        lease: Duration,
    ) -> Result<Vec<UnitId>, StoreError>;

    /// Stores `outcome` for `unit` if `owner` still holds it (its lease may
    /// have expired as long as nobody else claimed it). Returns whether it
    /// was stored. Errors: `Storage`.
    fn complete(
        &self,
        owner: &str,
        unit: &UnitId,
        outcome: UnitOutcome<'_>,
    ) -> Result<bool, StoreError>;

    /// How far stage `stage` of `job_id` is. Errors: `Rejected` (not found)
    /// if the stage does not exist; `Storage`.
    fn progress(&self, job_id: &str, stage: u32) -> Result<StageProgress, StoreError>;

    /// Every unit's result in unit order, once all are done. Errors:
    /// `Rejected` if the stage does not exist or a unit is not done;
    /// `Storage`.
    fn results(&self, job_id: &str, stage: u32) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Forgets every stage of `job_id` (the job has merged its results, or
    /// ended); a worker still computing one of its units then finds it gone.
    /// Errors: `Storage`.
    fn close_job(&self, job_id: &str) -> Result<(), StoreError>;

    /// Waits until work may have arrived (a stage opened in this process) or
    /// `timeout` has passed, whichever is first. A shared queue cannot see
    /// other processes' stages arrive and simply waits out the timeout.
    fn wait_for_work(&self, timeout: Duration);
}

/// The state of one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Claimed,
    Done,
    Failed,
}

#[derive(Debug)]
struct Unit {
    input: Vec<u8>,
    state: State,
    owner: String,
    lease_until: Instant,
    result: Vec<u8>,
    message: String,
}

#[derive(Debug)]
struct Stage {
    kind: String,
    units: Vec<Unit>,
    coordinator_until: Instant,
}

/// The queue of a store that one process opens (sled): stages in memory,
/// computed by this process's workers. Leases work as in the shared queue
/// (a stalled worker's unit is claimed again), with this process's
/// monotonic clock.
#[derive(Debug, Default)]
pub struct LocalWorkQueue {
    stages: Mutex<BTreeMap<(String, u32), Stage>>,
    arrived: Condvar,
}

impl LocalWorkQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, u32), Stage>> {
        self.stages.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn no_stage(job_id: &str, stage: u32) -> StoreError {
    crate::domain::DomainError::not_found("work stage", format!("{job_id}/{stage}")).into()
}

/// Checks that an existing stage is the one a coordinator opens again.
pub(crate) fn same_stage(
    job_id: &str,
    stage: u32,
    (kind, units): (&str, usize),
    (wanted_kind, wanted_units): (&str, usize),
) -> Result<(), StoreError> {
    if kind == wanted_kind && units == wanted_units {
        return Ok(());
    }
    Err(crate::domain::DomainError::invalid(
        "stage",
        format!(
            "stage {stage} of {job_id} exists as {units} unit(s) of {kind}, not {wanted_units} of {wanted_kind}"
        ),
    )
    .into())
}

impl WorkQueue for LocalWorkQueue {
    fn open_stage(
        &self,
        job_id: &str,
        stage: u32,
        kind: &str,
        inputs: &[Vec<u8>],
        coordinator_lease: Duration,
    ) -> Result<(), StoreError> {
        let mut stages = self.lock();
        let now = Instant::now();
        stages.retain(|_, s| s.coordinator_until > now);
        let key = (job_id.to_string(), stage);
        if let Some(existing) = stages.get(&key) {
            return same_stage(
                job_id,
                stage,
                (&existing.kind, existing.units.len()),
                (kind, inputs.len()),
            );
        }
        let units = inputs
            .iter()
            .map(|input| Unit {
                input: input.clone(),
                state: State::Open,
                owner: String::new(),
                lease_until: now,
                result: Vec::new(),
                message: String::new(),
            })
            .collect();
        stages.insert(
            key,
            Stage {
                kind: kind.to_string(),
                units,
                coordinator_until: now + coordinator_lease,
            },
        );
        drop(stages);
        self.arrived.notify_all();
        Ok(())
    }

    fn keep_job(&self, job_id: &str, coordinator_lease: Duration) -> Result<(), StoreError> {
        let until = Instant::now() + coordinator_lease;
        for ((job, _), stage) in self.lock().iter_mut() {
            if job == job_id {
                stage.coordinator_until = until;
            }
        }
        Ok(())
    }

    fn claim(&self, owner: &str, lease: Duration) -> Result<Option<ClaimedUnit>, StoreError> {
        let mut stages = self.lock();
        let now = Instant::now();
        let live = stages.iter_mut().filter(|(_, s)| s.coordinator_until > now);
        for ((job_id, stage), entry) in live {
            let found = entry.units.iter_mut().enumerate().find(|(_, u)| {
                u.state == State::Open || (u.state == State::Claimed && u.lease_until <= now)
            });
            if let Some((index, unit)) = found {
                unit.state = State::Claimed;
                unit.owner = owner.to_string();
                unit.lease_until = now + lease;
                return Ok(Some(ClaimedUnit {
                    id: UnitId {
                        job_id: job_id.clone(),
                        stage: *stage,
                        unit: u32::try_from(index).unwrap_or(u32::MAX),
                    },
                    kind: entry.kind.clone(),
                    input: unit.input.clone(),
                }));
            }
        }
        Ok(None)
    }

    fn renew(
        &self,
        owner: &str,
        units: &[UnitId],
        lease: Duration,
    ) -> Result<Vec<UnitId>, StoreError> {
        let mut stages = self.lock();
        let until = Instant::now() + lease;
        let mut held = Vec::new();
        for id in units {
            let unit = stages
                .get_mut(&(id.job_id.clone(), id.stage))
                .and_then(|s| s.units.get_mut(id.unit as usize));
            if let Some(unit) = unit
                && unit.state == State::Claimed
                && unit.owner == owner
            {
                unit.lease_until = until;
                held.push(id.clone());
            }
        }
        Ok(held)
    }

    fn complete(
        &self,
        owner: &str,
        id: &UnitId,
        outcome: UnitOutcome<'_>,
    ) -> Result<bool, StoreError> {
        let mut stages = self.lock();
        let unit = stages
            .get_mut(&(id.job_id.clone(), id.stage))
            .and_then(|s| s.units.get_mut(id.unit as usize));
        let Some(unit) = unit else {
            return Ok(false);
        };
        if unit.state != State::Claimed || unit.owner != owner {
            return Ok(false);
        }
        match outcome {
            UnitOutcome::Done(bytes) => {
                unit.state = State::Done;
                unit.result = bytes.to_vec();
            }
            UnitOutcome::Failed(message) => {
                unit.state = State::Failed;
                unit.message = message.to_string();
            }
        }
        drop(stages);
        // A coordinator waiting in `wait_for_work` sees the change at once.
        self.arrived.notify_all();
        Ok(true)
    }

    fn progress(&self, job_id: &str, stage: u32) -> Result<StageProgress, StoreError> {
        let stages = self.lock();
        let entry = stages
            .get(&(job_id.to_string(), stage))
            .ok_or_else(|| no_stage(job_id, stage))?;
        let done = entry
            .units
            .iter()
            .filter(|u| u.state == State::Done)
            .count();
        let failed = entry
            .units
            .iter()
            .enumerate()
            .find(|(_, u)| u.state == State::Failed)
            .map(|(i, u)| (u32::try_from(i).unwrap_or(u32::MAX), u.message.clone()));
        Ok(StageProgress {
            done,
            total: entry.units.len(),
            failed,
        })
    }

    fn results(&self, job_id: &str, stage: u32) -> Result<Vec<Vec<u8>>, StoreError> {
        let stages = self.lock();
        let entry = stages
            .get(&(job_id.to_string(), stage))
            .ok_or_else(|| no_stage(job_id, stage))?;
        entry
            .units
            .iter()
            .enumerate()
            .map(|(i, u)| match u.state {
                State::Done => Ok(u.result.clone()),
                _ => Err(not_done(job_id, stage, i)),
            })
            .collect()
    }

    fn close_job(&self, job_id: &str) -> Result<(), StoreError> {
        self.lock().retain(|(job, _), _| job != job_id);
        Ok(())
    }

    fn wait_for_work(&self, timeout: Duration) {
        let stages = self.lock();
        let _ = self
            .arrived
            .wait_timeout(stages, timeout)
            .unwrap_or_else(|e| e.into_inner());
    }
}

/// A results request for a stage with a unit not done.
pub(crate) fn not_done(job_id: &str, stage: u32, unit: usize) -> StoreError {
    crate::domain::DomainError::FailedPrecondition(format!(
        "unit {unit} of stage {stage} of {job_id} is not done"
    ))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_worker_claims_a_stage_opened_after_it_began_waiting() {
        let queue = std::sync::Arc::new(LocalWorkQueue::new());
        let waiter = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                loop {
                    if let Some(unit) = queue.claim("w", Duration::from_secs(60)).unwrap() {
                        return unit;
                    }
                    // Opening a stage wakes the wait; the timeout only
                    // bounds the test if the wake-up were lost.
                    queue.wait_for_work(Duration::from_secs(60));
                }
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        queue
            .open_stage("j", 0, "echo", &[vec![1]], Duration::from_secs(60))
            .unwrap();
        assert_eq!(waiter.join().unwrap().input, vec![1]);
    }
}
