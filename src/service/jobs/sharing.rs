//! Jobs on a store several servers share (PostgreSQL): the lease keeper that
//! renews this server's job leases and stores their progress, the takeover
//! of jobs whose server died (claimed atomically, built again from the
//! stored request, run from the start with the same seed), the hand-on of a
//! stopping server's jobs, and the reads of other servers' jobs from the
//! store. See the module documentation of [`super`].

use super::{COLLECTION, Entry, JobRecord, JobState, Jobs, Rebuild, count_job, decode, persist};
use crate::store::StoreError;
use crate::store::leases::HeldLease;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

impl Jobs {
    /// Starts the lease keeper once, on a shared store.
    pub(super) fn ensure_keeper(self: &Arc<Self>) -> Result<(), StoreError> {
        let Some(sharing) = &self.sharing else {
            return Ok(());
        };
        let mut started = Ok(());
        sharing.keeper.call_once(|| {
            let jobs = Arc::downgrade(self);
            started = std::thread::Builder::new()
                .name("spares-job-leases".into())
                .spawn(move || keep_jobs(&jobs))
                .map(drop)
                .map_err(|e| {
                    StoreError::Storage(format!("cannot start the job lease keeper: {e}"))
                });
        });
        started
    }

    /// Ends this server's lease of a job whose final record is stored.
    pub(super) fn release(&self, job_id: &str) {
        if let Some(sharing) = &self.sharing
            && let Err(error) = sharing.leases.release(job_id, &sharing.owner)
        {
            // The lease runs out; the server that claims it finds the job ended.
            tracing::warn!(%error, job_id, "cannot release a job's lease");
        }
    }

    /// Whether this server still holds the lease of a job it ran, checked
    /// (and renewed) before its outcome is stored: a server that stalled
    /// past its lease (its renewals failing) while another took the job
    /// over must not store over the other's record. True on a store one
    /// process opens, and when the check itself fails (an outcome stored
    /// twice is the same bytes; one lost is work lost).
    pub(super) fn still_held(&self, job_id: &str) -> bool {
        let Some(sharing) = &self.sharing else {
            return true;
        };
        let ids = [job_id.to_string()];
        match sharing.leases.renew(&sharing.owner, &ids, sharing.lease) {
            Ok(held) => !held.is_empty(),
            Err(error) => {
                tracing::warn!(%error, job_id, "cannot check a job's lease; storing its outcome");
                true
            }
        }
    }

    /// Stops treating a job as this server's: it is read from the store.
    pub(super) fn let_go(&self, job_id: &str) {
        if let Some(entry) = self.lock().get_mut(job_id) {
            entry.here = false;
        }
    }

    /// A stopping server's job, stored as waiting for another server, its
    /// lease let run out so that one takes it over at once.
    pub(super) fn hand_on(&self, job_id: &str) {
        self.update(job_id, true, |r| {
            r.state = JobState::Queued;
            r.seconds_left = None;
            r.message = format!(
                "handed on by a stopping server at {:.0}% done; another server runs it again from the start (seed {})",
                r.progress * 100.0,
                r.seed
            );
        });
        self.let_go(job_id);
        if let Some(sharing) = &self.sharing
            && let Err(error) = sharing.leases.abandon(job_id, &sharing.owner)
        {
            tracing::warn!(%error, job_id, "cannot hand a job on; its lease runs out instead");
        }
    }

    /// Publishes `record` for a job: the entry's watchers see it, whether
    /// this server runs the job (`here`) or reads it from the store.
    fn install(&self, record: JobRecord, here: bool) {
        let mut entries = self.lock();
        match entries.get_mut(&record.job_id) {
            Some(entry) => {
                if here {
                    entry.here = true;
                    entry.cancel = Arc::new(AtomicBool::new(false));
                    entry.lost = Arc::new(AtomicBool::new(false));
                } else if entry.here {
                    return; // This server took it over meanwhile.
                }
                let before = entry.updates.borrow().state;
                if *entry.updates.borrow() == record {
                    return;
                }
                if before != record.state {
                    count_job(record.kind, before, -1);
                    count_job(record.kind, record.state, 1);
                }
                entry.updates.send_replace(record);
            }
            None => {
                count_job(record.kind, record.state, 1);
                entries.insert(record.job_id.clone(), Entry::new(record, here));
            }
        }
    }

    /// Reads a job from the store when this server may hold a stale copy
    /// (another server's job that had not ended) or none. Nothing to do on
    /// a store one process opens. Errors: `Storage`, `Corruption`.
    pub(super) fn refresh(&self, job_id: &str) -> Result<(), StoreError> {
        if self.sharing.is_none() {
            return Ok(());
        }
        let stale = self
            .lock()
            .get(job_id)
            .is_none_or(Entry::is_foreign_and_open);
        if !stale {
            return Ok(());
        }
        if let Some(bytes) = self.store.record(COLLECTION, job_id)? {
            self.install(decode(job_id, &bytes)?, false);
        }
        Ok(())
    }

    /// [`Jobs::refresh`] for every stored job.
    pub(super) fn refresh_all(&self) -> Result<(), StoreError> {
        if self.sharing.is_none() {
            return Ok(());
        }
        let keys = self.store.record_keys(COLLECTION)?;
        let stale: Vec<String> = {
            let entries = self.lock();
            keys.into_iter()
                .filter(|k| entries.get(k).is_none_or(Entry::is_foreign_and_open))
                .collect()
        };
        for job_id in stale {
            self.refresh(&job_id)?;
        }
        Ok(())
    }

    /// Lets this server take over the jobs of servers that died, building
    /// their work with `rebuild`: jobs that have not ended and have no
    /// lease at all (stored before leases, or restored from a backup) are
    /// adopted now; from then on the lease keeper claims every lease that
    /// runs out. Does nothing on a store one process opens. Errors:
    /// `Storage` (the keeper retries what it could not do).
    pub fn take_over_jobs(self: &Arc<Self>, rebuild: Rebuild) -> Result<(), StoreError> {
        let Some(sharing) = &self.sharing else {
            return Ok(());
        };
        *sharing.rebuild.lock().unwrap_or_else(|e| e.into_inner()) = Some(rebuild.clone());
        self.ensure_keeper()?;
        let open: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, e)| e.is_foreign_and_open())
            .map(|(id, _)| id.clone())
            .collect();
        for job_id in open {
            if sharing
                .leases
                .acquire(&job_id, &sharing.owner, sharing.lease)?
            {
                let held = HeldLease {
                    job_id,
                    cancel_requested: false,
                };
                self.take_over(&held, &rebuild);
            }
        }
        Ok(())
    }

    /// One round of the lease keeper: renews this server's leases (storing
    /// its jobs' progress), claims leases that ran out, and re-reads the
    /// other servers' jobs someone here watches.
    fn keep_round(self: &Arc<Self>, renew: bool) {
        if renew {
            self.renew_leases();
        }
        if !self.stopping() {
            self.claim_expired();
        }
        let watched: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, e)| e.is_foreign_and_open() && e.updates.receiver_count() > 0)
            .map(|(id, _)| id.clone())
            .collect();
        for job_id in watched {
            if let Err(error) = self.refresh(&job_id) {
                tracing::warn!(%error, job_id, "cannot read a watched job; retrying");
            }
        }
    }

    /// Renews the leases of the jobs this server runs and stores their
    /// progress; a job asked to cancel is cancelled, a job whose lease
    /// another server took is stopped without storing its outcome.
    fn renew_leases(&self) {
        let Some(sharing) = &self.sharing else {
            return;
        };
        let mine: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, e)| e.here && !e.updates.borrow().state.is_final())
            .map(|(id, _)| id.clone())
            .collect();
        if mine.is_empty() {
            return;
        }
        let held = match sharing.leases.renew(&sharing.owner, &mine, sharing.lease) {
            Ok(held) => held,
            Err(error) => {
                tracing::warn!(%error, "cannot renew job leases; retrying");
                return;
            }
        };
        for job_id in &mine {
            match held.iter().find(|h| &h.job_id == job_id) {
                Some(h) if h.cancel_requested => self.cancel_here(job_id),
                Some(_) => self.store_progress(job_id),
                None => self.lose(job_id),
            }
        }
    }

    /// Stores a running job's record, so other servers see its progress.
    fn store_progress(&self, job_id: &str) {
        // Under the lock, as every store of a record: a final record stored
        // by the job's worker is never overwritten by an older one.
        let entries = self.lock();
        let Some(entry) = entries.get(job_id) else {
            return;
        };
        let record = entry.updates.borrow();
        if record.state != JobState::Running {
            return;
        }
        if let Err(error) = persist(self.store.as_ref(), &record) {
            tracing::warn!(%error, job_id, "cannot store a job's progress");
        }
    }

    /// Another server took over a job this server runs (its lease ran out
    /// meanwhile): it stops here without storing anything.
    fn lose(&self, job_id: &str) {
        tracing::warn!(job_id, "lost a job's lease to another server");
        let was_waiting = {
            let mut queue = self.lock_queue();
            let before = queue.waiting.len();
            queue.waiting.retain(|(id, _)| id != job_id);
            queue.waiting.len() < before
        };
        if let Some(entry) = self.lock().get_mut(job_id) {
            entry.lost.store(true, Ordering::Relaxed);
            entry.cancel.store(true, Ordering::Relaxed);
            if was_waiting {
                entry.here = false;
            }
        }
    }

    /// Claims leases that ran out while this server has no job waiting for
    /// a worker (so a server already behind leaves the next one to others).
    fn claim_expired(self: &Arc<Self>) {
        let Some(sharing) = &self.sharing else {
            return;
        };
        let Some(rebuild) = sharing
            .rebuild
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            return;
        };
        loop {
            let room = {
                let queue = self.lock_queue();
                queue.waiting.is_empty() && !queue.stopping
            };
            if !room {
                return;
            }
            match sharing.leases.claim_expired(&sharing.owner, sharing.lease) {
                Ok(Some(held)) => self.take_over(&held, &rebuild),
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, "cannot look for jobs to take over; retrying");
                    return;
                }
            }
        }
    }

    /// Takes over a job whose lease this server now holds. On a failure the
    /// lease is let run out, so a server tries again.
    fn take_over(self: &Arc<Self>, held: &HeldLease, rebuild: &Rebuild) {
        if let Err(error) = self.try_take_over(held, rebuild)
            && let Some(sharing) = &self.sharing
        {
            tracing::warn!(%error, job_id = %held.job_id, "cannot take a job over; a server retries");
            let _ = sharing.leases.abandon(&held.job_id, &sharing.owner);
        }
    }

    fn try_take_over(
        self: &Arc<Self>,
        held: &HeldLease,
        rebuild: &Rebuild,
    ) -> Result<(), StoreError> {
        let Some(sharing) = &self.sharing else {
            return Ok(());
        };
        let job_id = held.job_id.as_str();
        let Some(bytes) = self.store.record(COLLECTION, job_id)? else {
            // Its server died between taking the lease and storing the job.
            return sharing.leases.release(job_id, &sharing.owner);
        };
        let mut record = decode(job_id, &bytes)?;
        if record.state.is_final() {
            // It ended just before its lease was released.
            self.install(record, false);
            return sharing.leases.release(job_id, &sharing.owner);
        }
        let now = self.clock.now();
        let work = if held.cancel_requested {
            Err(None)
        } else if !record.rerunnable {
            Err(Some(
                "its record is from a server that did not keep what a re-run needs".to_string(),
            ))
        } else {
            rebuild(&record).map_err(Some)
        };
        let work = match work {
            Ok(work) => work,
            Err(reason) => {
                record.seconds_left = None;
                record.finished_at = Some(now);
                match reason {
                    None => {
                        record.state = JobState::Cancelled;
                        record.message = "cancelled on request (its server had stopped)".into();
                    }
                    Some(reason) => {
                        record.state = JobState::Failed;
                        record.message = format!(
                            "its server stopped at {:.0}% done and it cannot run again: {reason}; resubmit to run again (seed {})",
                            record.progress * 100.0,
                            record.seed
                        );
                    }
                }
                persist(self.store.as_ref(), &record)?;
                self.install(record, false);
                return sharing.leases.release(job_id, &sharing.owner);
            }
        };
        record.state = JobState::Queued;
        record.seconds_left = None;
        record.finished_at = None;
        record.message = format!(
            "taken over after its server stopped at {:.0}% done; runs again from the start (seed {})",
            record.progress * 100.0,
            record.seed
        );
        persist(self.store.as_ref(), &record)?;
        // A server died (or stalled past its lease): worth an operator's eye.
        tracing::warn!(
            job_id,
            seed = record.seed,
            "took over a job whose server stopped"
        );
        self.install(record, true);
        self.lock_queue()
            .waiting
            .push_back((job_id.to_string(), work));
        self.ready.notify_one();
        self.ensure_workers()
    }
}

/// The lease keeper of a shared store's jobs: a round every poll (renewals
/// every third of the lease) until the registry is gone.
fn keep_jobs(jobs: &Weak<Jobs>) {
    let mut renewed: Option<Instant> = None;
    loop {
        let Some(strong) = jobs.upgrade() else {
            return;
        };
        let Some(sharing) = &strong.sharing else {
            return;
        };
        let renew_every = sharing.lease / 3;
        let poll = sharing.poll.min(renew_every).max(Duration::from_millis(10));
        let renew = renewed.is_none_or(|at| at.elapsed() >= renew_every);
        if renew {
            renewed = Some(Instant::now());
        }
        strong.keep_round(renew);
        drop(strong);
        std::thread::sleep(poll);
    }
}

/// `jobs-<pid>-<64 random bits>`: unique among servers and among registries
/// of one process (tests run several servers in one).
pub(super) fn owner_name() -> Result<String, StoreError> {
    use rand::TryRng;
    let mut random = [0u8; 8];
    rand::rngs::SysRng
        .try_fill_bytes(&mut random)
        .map_err(|e| StoreError::Storage(format!("no random bytes for a lease owner: {e}")))?;
    Ok(format!(
        "jobs-{}-{}",
        std::process::id(),
        crate::auth::keys::hex(&random)
    ))
}

#[cfg(test)]
/// Registries of several servers on one store, in one process: a
/// temporary sled store and in-memory leases stand in for the shared
/// database.
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::service::jobs::{
        JobContext, JobKind, JobOutcome, JobPoolLimits, JobSharing, JobWork,
    };
    use crate::store::Store;
    use crate::store::leases::{JobLeases, LocalJobLeases};
    use jiff::Timestamp;
    use std::sync::atomic::AtomicUsize;

    const BOUND: Duration = Duration::from_secs(60);

    fn record(job_id: &str) -> JobRecord {
        let at: Timestamp = "2026-11-30T11:00:00Z".parse().unwrap();
        JobRecord {
            job_id: job_id.into(),
            owner: String::new(),
            kind: JobKind::Simulate,
            state: JobState::Running,
            progress: 0.4,
            message: "running".into(),
            created_at: at,
            started_at: Some(at),
            finished_at: None,
            seed: 5,
            request_json: "{}".into(),
            summary: String::new(),
            result_json: String::new(),
            seconds_left: None,
            apply: false,
            rerunnable: true,
        }
    }

    struct Place {
        _dir: tempfile::TempDir,
        store: Arc<dyn Store>,
        leases: Arc<LocalJobLeases>,
    }

    fn place() -> Place {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SledStore::open(dir.path()).unwrap();
        Place {
            _dir: dir,
            store: Arc::new(store),
            leases: Arc::new(LocalJobLeases::new()),
        }
    }

    fn server(place: &Place) -> Arc<Jobs> {
        let clock = Arc::new(ManualClock::new("2026-11-30T12:00:00Z".parse().unwrap()));
        let sharing = JobSharing {
            leases: place.leases.clone(),
            lease: Duration::from_millis(300),
            poll: Duration::from_millis(10),
        };
        let limits = JobPoolLimits {
            workers: 1,
            queue: 4,
        };
        Arc::new(Jobs::open(place.store.clone(), clock, limits, Some(sharing)).unwrap())
    }

    /// Work that says which server ran it, counting its runs.
    fn rebuild(name: &'static str, runs: Arc<AtomicUsize>) -> Rebuild {
        Arc::new(move |record: &JobRecord| {
            if record.request_json != "{}" {
                return Err("unreadable request".to_string());
            }
            let runs = runs.clone();
            let seed = record.seed;
            Ok(Box::new(move |_: &JobContext| {
                runs.fetch_add(1, Ordering::Relaxed);
                JobOutcome::Done {
                    summary: name.into(),
                    result_json: format!("{{\"seed\":{seed}}}"),
                }
            }) as JobWork)
        })
    }

    /// Waits (within [`BOUND`]) until a job has started.
    fn until_running(jobs: &Jobs, job_id: &str) {
        let began = Instant::now();
        while jobs.get(job_id).unwrap().state != JobState::Running {
            assert!(began.elapsed() < BOUND, "the job never started");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn until_final(jobs: &Jobs, job_id: &str) -> JobRecord {
        let began = Instant::now();
        loop {
            let record = jobs.get(job_id).unwrap();
            if record.state.is_final() {
                return record;
            }
            assert!(began.elapsed() < BOUND, "the job never ended: {record:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A record stored as a server that then died would leave it.
    fn orphan(place: &Place, job_id: &str, rerunnable: bool, lease: Option<Duration>) {
        let mut record = record(job_id);
        record.rerunnable = rerunnable;
        if let Some(lease) = lease {
            assert!(place.leases.acquire(job_id, "dead", lease).unwrap());
        }
        persist(place.store.as_ref(), &record).unwrap();
    }

    #[test]
    fn a_server_that_opens_leaves_a_running_job_alone_and_reads_it() {
        let place = place();
        let a = server(&place);
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let job = a
            .start(JobKind::Simulate, "u", 3, "{}".into(), move |_| {
                wait.recv_timeout(BOUND).unwrap();
                JobOutcome::Done {
                    summary: "s".into(),
                    result_json: "[1,2]".into(),
                }
            })
            .unwrap();
        until_running(&a, &job.job_id);
        // A second server opens the store while the job runs.
        let b = server(&place);
        b.take_over_jobs(rebuild("b", Arc::new(AtomicUsize::new(0))))
            .unwrap();
        let seen = b.get(&job.job_id).unwrap();
        assert_eq!(seen.state, JobState::Running, "{}", seen.message);
        let (listed, _) = b.list(None, None, None, "", 10).unwrap();
        assert_eq!(listed.len(), 1);
        let mut watching = b.watch(&job.job_id).unwrap();
        go.send(()).unwrap();
        let done = until_final(&b, &job.job_id);
        assert_eq!(done.state, JobState::Succeeded);
        assert_eq!(b.result_page(&job.job_id, 0, 100).unwrap().0, b"[1,2]");
        // The watcher on the other server saw it end (re-read every poll).
        let began = Instant::now();
        while !watching.borrow_and_update().state.is_final() {
            assert!(began.elapsed() < BOUND, "the watch never saw the end");
            std::thread::sleep(Duration::from_millis(5));
        }
        a.shutdown(BOUND);
        b.shutdown(BOUND);
    }

    #[test]
    fn a_job_whose_server_died_runs_again_on_exactly_one_other() {
        let place = place();
        orphan(&place, "job-000001-aa", true, Some(Duration::ZERO));
        let runs = Arc::new(AtomicUsize::new(0));
        let servers: Vec<Arc<Jobs>> = (0..3).map(|_| server(&place)).collect();
        for (jobs, name) in servers.iter().zip(["a", "b", "c"]) {
            jobs.take_over_jobs(rebuild(name, runs.clone())).unwrap();
        }
        let done = until_final(&servers[2], "job-000001-aa");
        assert_eq!(done.state, JobState::Succeeded, "{}", done.message);
        assert_eq!(done.result_json, "{\"seed\":5}");
        // Every server answers with the stored outcome, and only one ran it.
        for jobs in &servers {
            assert_eq!(until_final(jobs, "job-000001-aa").summary, done.summary);
        }
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        for jobs in &servers {
            jobs.shutdown(BOUND);
        }
    }

    #[test]
    fn a_job_left_without_any_lease_is_adopted_and_one_that_cannot_run_fails() {
        let place = place();
        orphan(&place, "job-000001-aa", true, None);
        orphan(&place, "job-000002-bb", false, Some(Duration::ZERO));
        orphan(
            &place,
            "job-000003-cc",
            true,
            Some(Duration::from_secs(600)),
        );
        let runs = Arc::new(AtomicUsize::new(0));
        let b = server(&place);
        b.take_over_jobs(rebuild("b", runs.clone())).unwrap();
        assert_eq!(until_final(&b, "job-000001-aa").state, JobState::Succeeded);
        let failed = until_final(&b, "job-000002-bb");
        assert_eq!(failed.state, JobState::Failed);
        assert!(
            failed.message.contains("cannot run again") && failed.message.contains("seed 5"),
            "{}",
            failed.message
        );
        // A job whose lease still holds is its server's.
        let alive = b.get("job-000003-cc").unwrap();
        assert_eq!(alive.state, JobState::Running);
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        b.shutdown(BOUND);
    }

    #[test]
    fn a_server_that_lost_its_job_s_lease_stores_nothing() {
        let place = place();
        let a = server(&place);
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let job = a
            .start(JobKind::Simulate, "u", 3, "{}".into(), move |_| {
                wait.recv_timeout(BOUND).unwrap();
                JobOutcome::Done {
                    summary: "late".into(),
                    result_json: "[]".into(),
                }
            })
            .unwrap();
        until_running(&a, &job.job_id);
        // Another server claims the lease as if A had stalled past it.
        let owner = a.lease_owner().unwrap().to_string();
        place.leases.abandon(&job.job_id, &owner).unwrap();
        let stolen = place.leases.claim_expired("thief", BOUND).unwrap();
        assert_eq!(stolen.map(|h| h.job_id), Some(job.job_id.clone()));
        go.send(()).unwrap();
        // Shutting down waits for the worker, so its run has ended.
        assert!(a.shutdown(BOUND));
        let stored = decode(
            &job.job_id,
            &place
                .store
                .record(COLLECTION, &job.job_id)
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(stored.state, JobState::Running, "{}", stored.message);
        assert_ne!(stored.summary, "late");
    }

    #[test]
    fn a_cancel_through_another_server_reaches_the_job() {
        let place = place();
        let a = server(&place);
        let job = a
            .start(JobKind::Simulate, "u", 3, "{}".into(), move |ctx| {
                let began = Instant::now();
                while !ctx.is_cancelled() && began.elapsed() < BOUND {
                    std::thread::sleep(Duration::from_millis(2));
                }
                JobOutcome::Cancelled
            })
            .unwrap();
        let b = server(&place);
        b.cancel(&job.job_id).unwrap();
        let done = until_final(&b, &job.job_id);
        assert_eq!(done.state, JobState::Cancelled, "{}", done.message);
        a.shutdown(BOUND);
        b.shutdown(BOUND);
    }

    #[test]
    fn a_stopping_server_hands_its_jobs_on() {
        let place = place();
        let a = server(&place);
        let job = a
            .start(JobKind::Simulate, "u", 9, "{}".into(), move |ctx| {
                let began = Instant::now();
                while !ctx.is_cancelled() && began.elapsed() < BOUND {
                    std::thread::sleep(Duration::from_millis(2));
                }
                JobOutcome::Cancelled
            })
            .unwrap();
        until_running(&a, &job.job_id);
        assert!(a.shutdown(BOUND));
        let runs = Arc::new(AtomicUsize::new(0));
        let b = server(&place);
        b.take_over_jobs(rebuild("b", runs.clone())).unwrap();
        let done = until_final(&b, &job.job_id);
        assert_eq!(done.state, JobState::Succeeded, "{}", done.message);
        assert_eq!(done.summary, "b");
        b.shutdown(BOUND);
    }
}
