//! Job leases: which server runs each job of a store several servers share.
//!
//! The server that runs a job (the one that accepted it, or one that took
//! it over) holds the job's lease: its owner name and a time until which
//! the lease holds, renewed while the job runs. A server that dies stops
//! renewing; once the lease has run out, exactly one live server claims it
//! ([`JobLeases::claim_expired`] is atomic) and runs the job again from its
//! stored request. A server that finds a job whose lease still holds leaves
//! it alone, whatever state its record is in.
//!
//! [`JobLeases`] is the seam: the PostgreSQL store's leases
//! (`pg::leases`) live in the `job_leases` table and are timed by the
//! database's clock; [`LocalJobLeases`] keeps them in memory, for tests of
//! several job registries in one process. A store one process opens (sled)
//! has none: there a restart marks the jobs it cut off as failed.

use super::StoreError;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A lease a renewal kept, with whether someone asked (on any server) to
/// cancel its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLease {
    /// The job.
    pub job_id: String,
    /// Whether cancellation was asked for.
    pub cancel_requested: bool,
}

/// Where job leases live. Every method is safe to call from many threads
/// and (for a shared store) many processes at once.
pub trait JobLeases: Send + Sync + 'static {
    /// Takes the lease of `job_id` for `owner` until `lease` from now if the
    /// job has no lease at all (a new job, or one stored before leases).
    /// Returns whether it was taken. Errors: `Storage`.
    fn acquire(&self, job_id: &str, owner: &str, lease: Duration) -> Result<bool, StoreError>;

    /// Extends to `lease` from now the leases `owner` still holds among
    /// `job_ids`, and returns those (a job missing from the answer was
    /// taken over after its lease ran out, or released). Errors: `Storage`.
    fn renew(
        &self,
        owner: &str,
        job_ids: &[String],
        lease: Duration,
    ) -> Result<Vec<HeldLease>, StoreError>;

    /// Claims for `owner` until `lease` from now one lease that has run out
    /// (its server died); `None` when there is none. Two servers never
    /// claim the same lease. Errors: `Storage`.
    fn claim_expired(&self, owner: &str, lease: Duration) -> Result<Option<HeldLease>, StoreError>;

    /// Asks the server running `job_id` to cancel it (it sees the request
    /// at its next renewal). Returns whether the job has a lease. Errors:
    /// `Storage`.
    fn request_cancel(&self, job_id: &str) -> Result<bool, StoreError>;

    /// Ends the lease of `job_id` if `owner` holds it: the job has ended
    /// and its final record is stored. Errors: `Storage`.
    fn release(&self, job_id: &str, owner: &str) -> Result<(), StoreError>;

    /// Lets the lease of `job_id` run out now if `owner` holds it, so that
    /// another server takes the job over at once (a server stopping hands
    /// its jobs on). Errors: `Storage`.
    fn abandon(&self, job_id: &str, owner: &str) -> Result<(), StoreError>;
}

#[derive(Debug)]
struct Lease {
    owner: String,
    until: Instant,
    cancel_requested: bool,
}

/// Leases in memory, timed by this process's monotonic clock: the job
/// registries of one process that share a store (tests) see each other's.
#[derive(Debug, Default)]
pub struct LocalJobLeases {
    leases: Mutex<BTreeMap<String, Lease>>,
}

impl LocalJobLeases {
    /// No leases.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Lease>> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl JobLeases for LocalJobLeases {
    fn acquire(&self, job_id: &str, owner: &str, lease: Duration) -> Result<bool, StoreError> {
        let mut leases = self.lock();
        if leases.contains_key(job_id) {
            return Ok(false);
        }
        leases.insert(
            job_id.to_string(),
            Lease {
                owner: owner.to_string(),
                until: Instant::now() + lease,
                cancel_requested: false,
            },
        );
        Ok(true)
    }

    fn renew(
        &self,
        owner: &str,
        job_ids: &[String],
        lease: Duration,
    ) -> Result<Vec<HeldLease>, StoreError> {
        let mut leases = self.lock();
        let until = Instant::now() + lease;
        let mut held = Vec::new();
        for job_id in job_ids {
            if let Some(entry) = leases.get_mut(job_id)
                && entry.owner == owner
            {
                entry.until = until;
                held.push(HeldLease {
                    job_id: job_id.clone(),
                    cancel_requested: entry.cancel_requested,
                });
            }
        }
        Ok(held)
    }

    fn claim_expired(&self, owner: &str, lease: Duration) -> Result<Option<HeldLease>, StoreError> {
        let mut leases = self.lock();
        let now = Instant::now();
        let expired = leases.iter_mut().find(|(_, l)| l.until <= now);
        Ok(expired.map(|(job_id, entry)| {
            entry.owner = owner.to_string();
            entry.until = now + lease;
            HeldLease {
                job_id: job_id.clone(),
                cancel_requested: entry.cancel_requested,
            }
        }))
    }

    fn request_cancel(&self, job_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .get_mut(job_id)
            .map(|entry| entry.cancel_requested = true)
            .is_some())
    }

    fn release(&self, job_id: &str, owner: &str) -> Result<(), StoreError> {
        let mut leases = self.lock();
        if leases.get(job_id).is_some_and(|l| l.owner == owner) {
            leases.remove(job_id);
        }
        Ok(())
    }

    fn abandon(&self, job_id: &str, owner: &str) -> Result<(), StoreError> {
        if let Some(entry) = self.lock().get_mut(job_id)
            && entry.owner == owner
        {
            entry.until = Instant::now();
        }
        Ok(())
    }
}
