//! Shared planning work: the worker loop every server runs, and the scoring a
//! job's coordinator hands to it.
//!
//! Every server runs a [`WorkPool`]: [`Limits::work_threads`] threads that
//! claim units from the store's [`WorkQueue`] (the PostgreSQL tables every
//! replica shares, or an in-memory queue over sled), compute them and store
//! their results, and one lease keeper that renews the leases of the units
//! being computed every third of [`Limits::work_lease`]. A server that dies
//! stops renewing; its units' leases expire and other servers compute them
//! again (a unit's result depends only on its input, so a unit computed
//! twice gives the same bytes).
//!
//! A job's coordinator (the server that accepted it) uses [`SharedScoring`]
//! for the optimiser's simulation of candidates (`planning::optimize::train`,
//! the step that takes most of a plan's time): each call opens a stage of
//! units, contiguous runs of the trees, waits until every unit is done while
//! reporting progress, and decodes the results in unit order. Nothing of the
//! merge depends on how many servers took part or which computed what.
//!
//! [`Limits::work_threads`]: crate::config::Limits::work_threads
//! [`Limits::work_lease`]: crate::config::Limits::work_lease

use crate::planning::optimize::OptimizeError;
use crate::planning::optimize::train::{ScoreSetup, ScoreTask, Scored, Scoring, score_task};
use crate::store::StoreError;
use crate::store::work::{ClaimedUnit, UnitId, UnitOutcome, WorkQueue};
use serde::{Deserialize, Serialize};
use spares_simulations::tree::TreeScratch;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

/// The kind of a unit that scores stock vectors of part trees.
pub const SCORE_KIND: &str = "optimize.score";

/// Most units one stage is split into: enough to spread a stage over many
/// servers' threads and to lose little work when a server dies, few enough
/// that claiming (one short transaction per unit) costs nothing beside the
/// simulation. Trees are grouped into contiguous runs to stay within it.
pub const MAX_UNITS_PER_STAGE: usize = 256;

/// How the pool works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkSettings {
    /// Threads computing units (at least one).
    pub threads: usize,
    /// How long a claimed unit stays with its worker without a renewal.
    pub lease: Duration,
    /// How long an idle worker (or a waiting coordinator) waits before
    /// looking at a shared queue again.
    pub poll: Duration,
}

/// The unit input of [`SCORE_KIND`]: the run's setup and a run of trees.
#[derive(Debug, Serialize, Deserialize)]
struct ScoreUnit {
    setup: ScoreSetup,
    tasks: Vec<ScoreTask>,
}

/// The units a worker is computing, with the flag that stops each when its
/// lease is lost.
type Held = Mutex<BTreeMap<UnitId, Arc<AtomicBool>>>;

/// One server's workers.
pub struct WorkPool {
    queue: Arc<dyn WorkQueue>,
    owner: String,
    settings: WorkSettings,
    held: Held,
    halted: AtomicBool,
    /// Held (shared) while a result is stored; [`WorkPool::halt`] takes it
    /// exclusively once, so nothing is stored after it returns.
    storing: RwLock<()>,
    completed: AtomicU64,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for WorkPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkPool")
            .field("owner", &self.owner)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl WorkPool {
    /// Starts `settings.threads` workers and the lease keeper on `queue`.
    /// The threads end when the pool is halted or dropped. The pool's owner
    /// name (`work-<pid>-<random>`) tells its leases apart from every other
    /// server's. Errors: `Storage` if a thread cannot start or the system
    /// has no random bytes.
    pub fn start(
        queue: Arc<dyn WorkQueue>,
        settings: WorkSettings,
    ) -> Result<Arc<Self>, StoreError> {
        let pool = Arc::new(Self {
            queue,
            owner: owner_name()?,
            settings: WorkSettings {
                threads: settings.threads.max(1),
                ..settings
            },
            held: Mutex::new(BTreeMap::new()),
            halted: AtomicBool::new(false),
            storing: RwLock::new(()),
            completed: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
        });
        let mut threads = Vec::new();
        for index in 0..pool.settings.threads {
            let weak = Arc::downgrade(&pool);
            threads.push(spawn(format!("spares-work-{index}"), move || {
                work_loop(&weak);
            })?);
        }
        let weak = Arc::downgrade(&pool);
        threads.push(spawn("spares-work-leases".into(), move || {
            keep_leases(&weak);
        })?);
        *pool.threads.lock().unwrap_or_else(|e| e.into_inner()) = threads;
        Ok(pool)
    }

    /// The name this pool's leases are held under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The queue the pool works on.
    pub fn queue(&self) -> &Arc<dyn WorkQueue> {
        &self.queue
    }

    /// How the pool works.
    pub fn settings(&self) -> WorkSettings {
        self.settings
    }

    /// Stops the pool as a dying server would: no more claims, no lease
    /// renewals, and a unit being computed is dropped rather than stored, so
    /// its lease runs out and another server computes it. Returns once a
    /// result being stored at that moment is stored; nothing is stored
    /// after. Used on shutdown (the units this server held go to the others
    /// once their leases expire) and by tests that kill a replica.
    pub fn halt(&self) {
        self.halted.store(true, Ordering::Relaxed);
        for flag in self.lock_held().values() {
            flag.store(true, Ordering::Relaxed);
        }
        drop(self.storing.write().unwrap_or_else(|e| e.into_inner()));
    }

    /// The units this pool's workers are computing now.
    pub fn units_in_hand(&self) -> Vec<UnitId> {
        self.lock_held().keys().cloned().collect()
    }

    /// Units this pool computed and stored (results or failures), since it
    /// started.
    pub fn units_completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Whether [`WorkPool::halt`] was called.
    pub fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Relaxed)
    }

    fn lock_held(&self) -> std::sync::MutexGuard<'_, BTreeMap<UnitId, Arc<AtomicBool>>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims and computes one unit; false when there was none to claim.
    fn work_once(&self) -> bool {
        let unit = match self.queue.claim(&self.owner, self.settings.lease) {
            Ok(Some(unit)) => unit,
            Ok(None) => return false,
            Err(error) => {
                tracing::warn!(%error, "cannot claim shared work; retrying");
                std::thread::sleep(self.settings.poll);
                return true;
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        self.lock_held().insert(unit.id.clone(), stop.clone());
        let outcome = compute(&unit, &stop);
        self.lock_held().remove(&unit.id);
        let _storing = self.storing.read().unwrap_or_else(|e| e.into_inner());
        if self.is_halted() {
            return true;
        }
        let stored = match &outcome {
            Computed::Done(bytes) => Some(UnitOutcome::Done(bytes)),
            Computed::Failed(message) => Some(UnitOutcome::Failed(message)),
            Computed::Stopped => None,
        };
        match stored.map(|stored| self.queue.complete(&self.owner, &unit.id, stored)) {
            Some(Ok(true)) => {
                self.completed.fetch_add(1, Ordering::Relaxed);
            }
            // Lost to another worker after the lease ran out, or the job ended.
            Some(Ok(false)) | None => {}
            // The lease runs out and the unit is computed again.
            Some(Err(error)) => {
                tracing::warn!(%error, job_id = %unit.id.job_id, "cannot store a unit's result");
            }
        }
        true
    }
}

impl Drop for WorkPool {
    fn drop(&mut self) {
        self.halted.store(true, Ordering::Relaxed);
        // The threads hold only weak references and end within a poll; they
        // are not joined here, since the last reference may be dropped by
        // one of them.
        self.threads
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

fn spawn(
    name: String,
    body: impl FnOnce() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, StoreError> {
    std::thread::Builder::new()
        .name(name)
        .spawn(body)
        .map_err(|e| StoreError::Storage(format!("cannot start a work thread: {e}")))
}

/// `work-<pid>-<64 random bits>`: unique among servers and among pools of
/// one process (tests run several replicas in one).
fn owner_name() -> Result<String, StoreError> {
    use rand::TryRng;
    let mut random = [0u8; 8];
    rand::rngs::SysRng
        .try_fill_bytes(&mut random)
        .map_err(|e| StoreError::Storage(format!("no random bytes for a worker name: {e}")))?;
    Ok(format!(
        "work-{}-{}",
        std::process::id(),
        crate::auth::keys::hex(&random)
    ))
}

/// A worker: claims and computes units until the pool is halted or gone.
fn work_loop(pool: &Weak<WorkPool>) {
    while let Some(pool) = pool.upgrade() {
        if pool.is_halted() {
            return;
        }
        if !pool.work_once() {
            pool.queue.wait_for_work(pool.settings.poll);
        }
    }
}

/// The lease keeper: renews the leases of the units being computed every
/// third of the lease, and stops the computation of any unit it lost.
fn keep_leases(pool: &Weak<WorkPool>) {
    loop {
        let Some(strong) = pool.upgrade() else {
            return;
        };
        if strong.is_halted() {
            return;
        }
        let interval = (strong.settings.lease / 3).max(Duration::from_millis(10));
        let held: Vec<UnitId> = strong.lock_held().keys().cloned().collect();
        if !held.is_empty() {
            match strong
                .queue
                .renew(&strong.owner, &held, strong.settings.lease)
            {
                Ok(kept) => {
                    let map = strong.lock_held();
                    for (id, stop) in map.iter() {
                        if held.contains(id) && !kept.contains(id) {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot renew work leases; retrying"),
            }
        }
        drop(strong);
        std::thread::sleep(interval);
    }
}

/// What computing a unit gave.
enum Computed {
    Done(Vec<u8>),
    Failed(String),
    /// The lease was lost or the pool halted: nothing to store.
    Stopped,
}

/// Computes one unit by its kind. A panic is a failed unit, not a dead
/// worker.
fn compute(unit: &ClaimedUnit, stop: &AtomicBool) -> Computed {
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match unit.kind.as_str() {
        SCORE_KIND => score_unit(&unit.input, stop),
        other => Computed::Failed(format!("this server does not know work of kind {other}")),
    }));
    run.unwrap_or_else(|_| Computed::Failed("computing the unit panicked".into()))
}

/// A [`SCORE_KIND`] unit: every task of the run in order, on one thread.
fn score_unit(input: &[u8], stop: &AtomicBool) -> Computed {
    let unit: ScoreUnit = match serde_json::from_slice(input) {
        Ok(unit) => unit,
        Err(error) => return Computed::Failed(format!("a score unit does not decode: {error}")),
    };
    let mut scratch = TreeScratch::default();
    let mut scores = Vec::with_capacity(unit.tasks.len());
    for task in &unit.tasks {
        match score_task(unit.setup, task, &mut scratch, stop) {
            Ok(scored) => scores.push(scored),
            Err(OptimizeError::Cancelled) => return Computed::Stopped,
            Err(error) => return Computed::Failed(error.to_string()),
        }
    }
    Computed::Done(encode_scores(&scores))
}

/// Scores as bytes: per task its failures, busy seconds, vector and year
/// counts, then every cost as the f64's own bits (little-endian), so a
/// result read back is the very same numbers.
pub fn encode_scores(scores: &[Scored]) -> Vec<u8> {
    let cells: usize = scores
        .iter()
        .map(|s| s.year_losses.iter().map(Vec::len).sum::<usize>())
        .sum();
    let mut out = Vec::with_capacity(4 + scores.len() * 24 + cells * 8);
    out.extend_from_slice(&(scores.len() as u32).to_le_bytes());
    for scored in scores {
        out.extend_from_slice(&scored.failures.to_le_bytes());
        out.extend_from_slice(&scored.busy_seconds.to_le_bytes());
        let years = scored.year_losses.first().map_or(0, Vec::len);
        out.extend_from_slice(&(scored.year_losses.len() as u32).to_le_bytes());
        out.extend_from_slice(&(years as u32).to_le_bytes());
        for losses in &scored.year_losses {
            for cost in losses {
                out.extend_from_slice(&cost.to_le_bytes());
            }
        }
    }
    out
}

/// Reads [`encode_scores`]' bytes back. Errors: `Work` for bytes that do not
/// hold whole scores.
pub fn decode_scores(bytes: &[u8]) -> Result<Vec<Scored>, OptimizeError> {
    let mut reader = Reader { bytes, at: 0 };
    let tasks = reader.u32()? as usize;
    let mut scores = Vec::with_capacity(tasks.min(bytes.len()));
    for _ in 0..tasks {
        let failures = reader.u64()?;
        let busy_seconds = f64::from_bits(reader.u64()?);
        let vectors = reader.u32()? as usize;
        let years = reader.u32()? as usize;
        let mut year_losses = Vec::with_capacity(vectors.min(bytes.len()));
        for _ in 0..vectors {
            let losses = (0..years)
                .map(|_| reader.u64().map(f64::from_bits))
                .collect::<Result<Vec<f64>, _>>()?;
            year_losses.push(losses);
        }
        scores.push(Scored {
            year_losses,
            failures,
            busy_seconds,
        });
    }
    if reader.at != bytes.len() {
        return Err(OptimizeError::Work(format!(
            "{} bytes after the scores",
            bytes.len() - reader.at
        )));
    }
    Ok(scores)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], OptimizeError> {
        let end = self
            .at
            .checked_add(N)
            .filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(OptimizeError::Work("scores end early".into()));
        };
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.at..end]);
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, OptimizeError> {
        self.take::<4>().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, OptimizeError> {
        self.take::<8>().map(u64::from_le_bytes)
    }
}

/// Splits `tasks` into at most [`MAX_UNITS_PER_STAGE`] contiguous runs of
/// nearly equal length, in order.
fn runs(tasks: Vec<ScoreTask>) -> Vec<Vec<ScoreTask>> {
    let total = tasks.len();
    let units = total.min(MAX_UNITS_PER_STAGE);
    let mut runs: Vec<Vec<ScoreTask>> = (0..units).map(|_| Vec::new()).collect();
    for (index, task) in tasks.into_iter().enumerate() {
        runs[index * units / total].push(task);
    }
    runs
}

fn work_error(error: StoreError) -> OptimizeError {
    OptimizeError::Work(error.to_string())
}

/// The coordinator's side: a job's scoring handed to every server's workers
/// through the queue. Dropping it forgets the job's stages (finished or
/// not), so a job that ends leaves nothing in the queue.
pub struct SharedScoring {
    pool: Arc<WorkPool>,
    job_id: String,
    next_stage: AtomicU32,
}

impl SharedScoring {
    /// Scoring for `job_id` through `pool`'s queue. Stages left by an
    /// earlier run of the same id are forgotten first.
    pub fn new(pool: Arc<WorkPool>, job_id: &str) -> Result<Self, StoreError> {
        pool.queue.close_job(job_id)?;
        Ok(Self {
            pool,
            job_id: job_id.to_string(),
            next_stage: AtomicU32::new(0),
        })
    }

    /// Waits until every unit of `stage` is done, reporting progress.
    fn wait(
        &self,
        stage: u32,
        progress: &(dyn Fn(f64) + Sync),
        cancel: &AtomicBool,
    ) -> Result<(), OptimizeError> {
        let queue = &self.pool.queue;
        loop {
            crate::planning::optimize::check_cancel(cancel)?;
            // The heartbeat that keeps the job's stages worked on.
            queue
                .keep_job(&self.job_id, self.pool.settings.lease)
                .map_err(work_error)?;
            let state = queue.progress(&self.job_id, stage).map_err(work_error)?;
            if let Some((unit, message)) = state.failed {
                return Err(crate::domain::DomainError::invalid(
                    "trees",
                    format!("unit {unit} of the shared work failed: {message}"),
                )
                .into());
            }
            progress(state.done as f64 / state.total.max(1) as f64);
            if state.done == state.total {
                return Ok(());
            }
            queue.wait_for_work(self.pool.settings.poll);
        }
    }
}

impl Scoring for SharedScoring {
    fn score(
        &self,
        setup: ScoreSetup,
        tasks: Vec<ScoreTask>,
        progress: &(dyn Fn(f64) + Sync),
        cancel: &AtomicBool,
    ) -> Result<Vec<Scored>, OptimizeError> {
        let expected = tasks.len();
        let inputs = runs(tasks)
            .into_iter()
            .map(|tasks| serde_json::to_vec(&ScoreUnit { setup, tasks }))
            .collect::<Result<Vec<Vec<u8>>, _>>()
            .map_err(|e| OptimizeError::Work(format!("encoding a unit: {e}")))?;
        let stage = self.next_stage.fetch_add(1, Ordering::Relaxed);
        let queue = &self.pool.queue;
        queue
            .open_stage(
                &self.job_id,
                stage,
                SCORE_KIND,
                &inputs,
                self.pool.settings.lease,
            )
            .map_err(work_error)?;
        self.wait(stage, progress, cancel)?;
        let mut scores = Vec::with_capacity(expected);
        for bytes in queue.results(&self.job_id, stage).map_err(work_error)? {
            scores.extend(decode_scores(&bytes)?);
        }
        if scores.len() != expected {
            return Err(OptimizeError::Work(format!(
                "{} scores came back for {expected} trees",
                scores.len()
            )));
        }
        Ok(scores)
    }
}

impl Drop for SharedScoring {
    fn drop(&mut self) {
        if let Err(error) = self.pool.queue.close_job(&self.job_id) {
            tracing::warn!(%error, job_id = %self.job_id, "cannot forget a job's shared work");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::work::LocalWorkQueue;
    use spares_simulations::model::TimeDistribution;
    use spares_simulations::tree::{PartTree, TreeNode, TreeWindow};

    fn tree(part: &str, demand_per_day: f64) -> PartTree {
        let node = |id: &str, parent: Option<usize>, demand: f64| TreeNode {
            id: id.into(),
            parent,
            resupply_days: TimeDistribution::Deterministic { days: 20.0 },
            demand_per_day: demand,
            variance_to_mean_ratio: 1.0,
            downtime_cost_per_hour: 150.0 + demand,
            emergency: Vec::new(),
        };
        PartTree {
            part: part.into(),
            unit_cost: 12.5,
            nodes: vec![
                node("DEP", None, 0.0),
                node("S1", Some(0), demand_per_day),
                node("S2", Some(0), demand_per_day / 3.0),
            ],
        }
    }

    fn tasks(n: usize) -> Vec<ScoreTask> {
        (0..n)
            .map(|i| ScoreTask {
                tree: tree(&format!("P{i}"), 0.05 + 0.01 * i as f64),
                vectors: vec![vec![0, 0, 0], vec![1, 1, 0], vec![2, 1, 1]],
            })
            .collect()
    }

    fn setup() -> ScoreSetup {
        ScoreSetup {
            window: TreeWindow {
                warm_up_days: 30.0,
                measured_days: 120.0,
            },
            seed: 17,
            years: 12,
        }
    }

    fn settings(threads: usize) -> WorkSettings {
        WorkSettings {
            threads,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(20),
        }
    }

    #[test]
    fn scores_survive_their_bytes_exactly() {
        let scores = vec![
            Scored {
                year_losses: vec![vec![0.1, 1e-300, f64::MAX], vec![-0.0, 3.0, 1.0 / 3.0]],
                failures: 7,
                busy_seconds: 0.25,
            },
            Scored {
                year_losses: Vec::new(),
                failures: 0,
                busy_seconds: 0.0,
            },
        ];
        let bytes = encode_scores(&scores);
        let back = decode_scores(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        for (a, b) in scores.iter().zip(&back) {
            let bits = |s: &Scored| -> Vec<u64> {
                s.year_losses
                    .iter()
                    .flatten()
                    .map(|c| c.to_bits())
                    .collect()
            };
            assert_eq!(bits(a), bits(b));
            assert_eq!((a.failures, a.busy_seconds), (b.failures, b.busy_seconds));
        }
        assert!(decode_scores(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_scores(&[bytes.as_slice(), &[0]].concat()).is_err());
    }

    #[test]
    fn a_unit_input_survives_json_exactly() {
        // Float fields of a tree go through JSON to a worker: they must come
        // back bit for bit (serde_json's float_roundtrip).
        let mut task = tasks(1).remove(0);
        task.tree.unit_cost = 0.1 + 0.2;
        task.tree.nodes[1].demand_per_day = 1.0 / 3.0 * 1e-7;
        task.tree.nodes[1].downtime_cost_per_hour = 123_456.789_012_345_67;
        let unit = ScoreUnit {
            setup: setup(),
            tasks: vec![task],
        };
        let back: ScoreUnit = serde_json::from_slice(&serde_json::to_vec(&unit).unwrap()).unwrap();
        assert_eq!(back.tasks, unit.tasks);
        assert_eq!(back.setup, unit.setup);
    }

    #[test]
    fn runs_keep_the_order_and_the_bound() {
        let split = runs(tasks(7));
        assert_eq!(split.len(), 7);
        let many: Vec<ScoreTask> = (0..MAX_UNITS_PER_STAGE * 2 + 3)
            .map(|i| ScoreTask {
                tree: tree(&format!("P{i}"), 0.1),
                vectors: Vec::new(),
            })
            .collect();
        let split = runs(many);
        assert_eq!(split.len(), MAX_UNITS_PER_STAGE);
        let parts: Vec<String> = split
            .iter()
            .flatten()
            .map(|t| t.tree.part.clone())
            .collect();
        let expected: Vec<String> = (0..MAX_UNITS_PER_STAGE * 2 + 3)
            .map(|i| format!("P{i}"))
            .collect();
        assert_eq!(parts, expected);
        assert!(split.iter().all(|r| (2..=3).contains(&r.len())));
    }

    /// Shared scoring on one or three pools gives the same scores as the
    /// local scoring, bit for bit, and leaves nothing in the queue.
    #[test]
    fn shared_scoring_equals_local_scoring_on_any_number_of_pools() {
        let cancel = AtomicBool::new(false);
        let local = crate::planning::optimize::train::LocalScoring
            .score(setup(), tasks(9), &|_| {}, &cancel)
            .unwrap();
        for pools in [1, 3] {
            let queue: Arc<dyn WorkQueue> = Arc::new(LocalWorkQueue::new());
            let started: Vec<Arc<WorkPool>> = (0..pools)
                .map(|_| WorkPool::start(queue.clone(), settings(2)).unwrap())
                .collect();
            let scoring = SharedScoring::new(started[0].clone(), "job-1").unwrap();
            let shared = scoring.score(setup(), tasks(9), &|_| {}, &cancel).unwrap();
            assert_eq!(shared.len(), local.len());
            for (a, b) in shared.iter().zip(&local) {
                assert_eq!(a.year_losses, b.year_losses);
                assert_eq!(a.failures, b.failures);
            }
            // A second stage of the same job.
            let again = scoring.score(setup(), tasks(2), &|_| {}, &cancel).unwrap();
            assert_eq!(again[1].year_losses, local[1].year_losses);
            drop(scoring);
            assert!(
                queue.progress("job-1", 0).is_err(),
                "the job's stages stayed"
            );
            for pool in &started {
                pool.halt();
            }
        }
    }

    /// A unit claimed by a worker that then dies (never renews, never
    /// stores) is computed by a pool once the lease runs out; the dead
    /// worker's late result is refused.
    #[test]
    fn a_dead_claimant_s_unit_is_computed_once_its_lease_runs_out() {
        let queue: Arc<dyn WorkQueue> = Arc::new(LocalWorkQueue::new());
        let short = WorkSettings {
            threads: 1,
            lease: Duration::from_millis(200),
            poll: Duration::from_millis(10),
        };
        // The queue is filled before any pool runs, so the first pool's
        // claim is certain: it claims, then is halted.
        let inputs = vec![
            serde_json::to_vec(&ScoreUnit {
                setup: setup(),
                tasks: tasks(1),
            })
            .unwrap(),
        ];
        queue
            .open_stage("job-2", 0, SCORE_KIND, &inputs, Duration::from_secs(60))
            .unwrap();
        let dying = queue.claim("dying", short.lease).unwrap().unwrap();
        let pool = WorkPool::start(queue.clone(), short).unwrap();
        let scoring = SharedScoring {
            pool: pool.clone(),
            job_id: "job-2".into(),
            next_stage: AtomicU32::new(1),
        };
        scoring.wait(0, &|_| {}, &AtomicBool::new(false)).unwrap();
        let results = queue.results("job-2", 0).unwrap();
        let scores = decode_scores(&results[0]).unwrap();
        let local = crate::planning::optimize::train::LocalScoring
            .score(setup(), tasks(1), &|_| {}, &AtomicBool::new(false))
            .unwrap();
        assert_eq!(scores[0].year_losses, local[0].year_losses);
        // The dead claimant cannot store its late result.
        assert!(
            !queue
                .complete("dying", &dying.id, UnitOutcome::Done(b"late"))
                .unwrap()
        );
        pool.halt();
    }

    #[test]
    fn a_unit_that_cannot_be_computed_fails_the_stage_with_its_reason() {
        let queue: Arc<dyn WorkQueue> = Arc::new(LocalWorkQueue::new());
        let pool = WorkPool::start(queue, settings(1)).unwrap();
        let scoring = SharedScoring::new(pool.clone(), "job-3").unwrap();
        let mut bad = tasks(2);
        // A tree without nodes is refused by the simulator.
        bad[1].tree.nodes.clear();
        let error = scoring
            .score(setup(), bad, &|_| {}, &AtomicBool::new(false))
            .unwrap_err();
        assert!(error.to_string().contains("unit 1"), "{error}");
        pool.halt();
    }
}
