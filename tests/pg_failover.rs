//! Failover: the test starts a PostgreSQL primary and a synchronous standby
//! of its own on free local ports (`initdb`, `pg_ctl`, `pg_basebackup` from
//! `pg_config --bindir`, run as the `postgres` user when the test runs as
//! root, since they refuse root). Two replicas (`PgStore`s on the URL
//! `postgres://...@primary,standby/...?target_session_attrs=read-write`,
//! each following the ledger) take movements from writer threads, each
//! movement under its own idempotency key, retried with the same key after
//! every failure until it is acknowledged. With writes in flight the test
//! SIGKILLs the primary's postmaster and all its processes (as a machine
//! loss would), promotes the standby, and lets the writers resume there.
//!
//! Then, through a fresh store on the promoted server alone: every
//! acknowledged movement is in the log at the sequence it was acknowledged
//! with, and nothing else is (no retry wrote twice); the balances are the
//! sum of the acknowledged movements and the ledger audits clean
//! (conservation, non-negativity); replaying every key returns its original
//! outcome. Each replica's reads work after the failover and its follower
//! catches up with the writes of the other. The counts and the time from
//! the kill to the first acknowledged write are printed.
//!
//! Bounded: a watchdog stops the servers (so that every blocked call fails)
//! after [`HARD_CAP`] and ends the process if the test is still running.
//! Skips, and says so, without the server tools or a `postgres` user.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ledger_support;

use ledger_support::{assert_audit_clean, at, movement};
use spares::domain::audit::MovementFilter;
use spares::domain::ledger::{
    Actor, EntryCause, LedgerEntry, MovementCommand, MovementKind, MovementOutcome,
    ReservationFilter,
};
use spares::store::{PgStore, Store, StoreError};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The whole test, servers included, ends within this.
const HARD_CAP: Duration = Duration::from_secs(120);
/// How long the watchdog waits, after stopping the servers, for the test
/// to fail on its own before it ends the process.
const WATCHDOG_GRACE: Duration = Duration::from_secs(15);
/// The standby's `application_name`, named in `synchronous_standby_names`.
const STANDBY_NAME: &str = "spares_standby";
/// Replicas (`PgStore`s) and writer threads on each.
const REPLICAS: usize = 2;
const WRITERS_PER_REPLICA: usize = 2;
/// Movements acknowledged (in all) before the primary is killed.
const ACKS_BEFORE_KILL: usize = 80;
/// Movements acknowledged by the promoted server, per writer on average,
/// before the writers stop.
const ACKS_AFTER_KILL: usize = 15;
/// Pause between a writer's failed attempt and its retry.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// The part every writer moves.
const PART: &str = "P";

/// Where the PostgreSQL server programs are and whom they run as.
struct Tools {
    bin: PathBuf,
    /// `Some((uid, gid))` of `postgres` when the test runs as root: the
    /// programs then run through `runuser -u postgres --`.
    postgres_user: Option<(u32, u32)>,
}

/// The server tools, or why this machine cannot run the test.
fn tools() -> Result<Tools, String> {
    let bin = server_bin_dir().ok_or("no initdb, pg_ctl and pg_basebackup found")?;
    let is_root = std::fs::metadata("/proc/self")
        .map_err(|e| format!("cannot tell the user: {e}"))?
        .uid()
        == 0;
    if !is_root {
        return Ok(Tools {
            bin,
            postgres_user: None,
        });
    }
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    let (Some(uid), Some(gid)) = (id("-u"), id("-g")) else {
        return Err("running as root and there is no postgres user".into());
    };
    let runuser = Command::new("runuser")
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    if !runuser.is_ok_and(|s| s.success()) {
        return Err("running as root and runuser is missing".into());
    }
    Ok(Tools {
        bin,
        postgres_user: Some((uid, gid)),
    })
}

/// `pg_config --bindir` if it holds the server tools; otherwise (Debian's
/// `pg_config` may come from libpq-dev and name another directory) the
/// newest `/usr/lib/postgresql/<version>/bin` that does.
fn server_bin_dir() -> Option<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "pg_basebackup"]
            .iter()
            .all(|tool| dir.join(tool).is_file())
    };
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && complete(&dir) {
            return Some(dir);
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| complete(dir))
        .collect();
    found.sort();
    found.pop().map(|(_, dir)| dir)
}

impl Tools {
    /// Runs a server program (as `postgres` when root) and returns its
    /// output, or what it printed when it failed.
    fn run(&self, program: &str, args: &[&str], cwd: &Path) -> Result<String, String> {
        let path = self.bin.join(program);
        let mut command = match self.postgres_user {
            Some(_) => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        // A server started by pg_ctl keeps its standard streams: they must
        // not be pipes this test waits on.
        let out = command
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .stdout(if program == "pg_ctl" {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{program} {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Makes `path` belong to the user the servers run as.
    fn own(&self, path: &Path) {
        if let Some((uid, gid)) = self.postgres_user {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
        }
    }
}

/// A local port nobody listens on (free when asked; the servers start
/// right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One server of the test's cluster.
struct Server {
    data: PathBuf,
    port: u16,
    log: PathBuf,
    /// Set once SIGKILLed: its pid file is stale from then on.
    killed: AtomicBool,
}

impl Server {
    fn new(root: &Path, name: &str) -> Self {
        Self {
            data: root.join(name),
            port: free_port(),
            log: root.join(format!("{name}.log")),
            killed: AtomicBool::new(false),
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&self, tools: &Tools, root: &Path) {
        let (data, log) = (
            self.data.display().to_string(),
            self.log.display().to_string(),
        );
        let started = tools.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-w", "-t", "30", "start"],
            root,
        );
        if let Err(error) = started {
            panic!("{error}\n{}", tail(&self.log));
        }
    }

    /// Stops the server at once (no checkpoint), unless it was killed.
    fn stop(&self, tools: &Tools, root: &Path) {
        if !self.killed.load(Ordering::SeqCst) {
            let data = self.data.display().to_string();
            let _ = tools.run(
                "pg_ctl",
                &["-D", &data, "-m", "immediate", "-t", "10", "stop"],
                root,
            );
        }
    }

    /// SIGKILLs the postmaster (its pid from `postmaster.pid`) and every
    /// process it started, as if the machine had gone.
    fn kill(&self) {
        let pid_file = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap();
        let pid: u32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
        // Listed first: once the postmaster is gone they belong to init.
        let children = child_pids(pid);
        self.killed.store(true, Ordering::SeqCst);
        for victim in std::iter::once(pid).chain(children) {
            let _ = Command::new("kill")
                .args(["-KILL", &victim.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The processes whose parent is `parent` (from `/proc/*/stat`).
fn child_pids(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (name) state ppid ...": the name may hold spaces.
            let after_name = &stat[stat.rfind(')')? + 1..];
            let ppid: u32 = after_name.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

/// The last lines of a server log, for a failure message.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(30);
    format!("--- {}:\n{}", log.display(), lines[from..].join("\n"))
}

/// A primary with a synchronous standby, stopped when dropped.
struct Cluster {
    tools: Tools,
    root: tempfile::TempDir,
    primary: Arc<Server>,
    standby: Arc<Server>,
}

impl Cluster {
    fn new(tools: Tools) -> Self {
        let root = tempfile::tempdir().unwrap();
        tools.own(root.path());
        let primary = Arc::new(Server::new(root.path(), "primary"));
        let standby = Arc::new(Server::new(root.path(), "standby"));
        Self {
            tools,
            root,
            primary,
            standby,
        }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    /// Appends settings to a server's configuration file.
    fn configure(&self, file: &Path, lines: &[String]) {
        use std::io::Write;
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .unwrap();
        writeln!(out, "\n# pg_failover test\n{}", lines.join("\n")).unwrap();
        drop(out);
        self.tools.own(file);
    }

    /// Initialises and starts the primary, without a synchronous standby
    /// yet: its commits would wait for one that is not there.
    fn start_primary(&self) {
        let data = self.primary.data.display().to_string();
        self.tools
            .run(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                self.root(),
            )
            .unwrap();
        let root = self.root().display();
        self.configure(
            &self.primary.data.join("postgresql.conf"),
            &[
                "listen_addresses = '127.0.0.1'".into(),
                format!("port = {}", self.primary.port),
                format!("unix_socket_directories = '{root}'"),
                "shared_buffers = 16MB".into(),
                "max_wal_senders = 4".into(),
                "wal_keep_size = 64MB".into(),
            ],
        );
        self.primary.start(&self.tools, self.root());
    }

    /// Copies the primary with `pg_basebackup` and starts the copy as a
    /// streaming standby named [`STANDBY_NAME`].
    fn start_standby(&self) {
        let data = self.standby.data.display().to_string();
        let port = self.primary.port.to_string();
        let copied = self.tools.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                &data,
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
            self.root(),
        );
        if let Err(error) = copied {
            panic!("{error}\n{}", tail(&self.primary.log));
        }
        self.configure(
            &self.standby.data.join("postgresql.auto.conf"),
            &[
                format!("port = {}", self.standby.port),
                // After the primary is lost the standby retries it every
                // this often, and a promotion waits for the current wait.
                "wal_retrieve_retry_interval = '200ms'".into(),
                format!(
                    "primary_conninfo = 'host=127.0.0.1 port={port} user=postgres \
                     application_name={STANDBY_NAME}'"
                ),
            ],
        );
        self.configure(&self.standby.data.join("standby.signal"), &[]);
        self.standby.start(&self.tools, self.root());
    }

    /// Waits until the standby streams, then makes it synchronous and waits
    /// until the primary says so.
    fn make_standby_synchronous(&self, deadline: Instant) {
        let mut primary = ledger_support::connect(&self.primary.url()).unwrap();
        let state = |client: &mut postgres::Client, column: &str| -> Option<String> {
            let sql =
                format!("SELECT {column} FROM pg_stat_replication WHERE application_name = $1");
            client
                .query_opt(sql.as_str(), &[&STANDBY_NAME])
                .unwrap()
                .map(|row| row.get(0))
        };
        self.wait_for("the standby to stream", deadline, || {
            state(&mut primary, "state").as_deref() == Some("streaming")
        });
        // Two queries: ALTER SYSTEM may not run in a multi-statement one.
        primary
            .batch_execute(&format!(
                "ALTER SYSTEM SET synchronous_standby_names = '{STANDBY_NAME}'"
            ))
            .unwrap();
        primary.batch_execute("SELECT pg_reload_conf()").unwrap();
        self.wait_for("the standby to be synchronous", deadline, || {
            state(&mut primary, "sync_state").as_deref() == Some("sync")
        });
    }

    fn wait_for(&self, what: &str, deadline: Instant, mut done: impl FnMut() -> bool) {
        while !done() {
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}\n{}\n{}",
                tail(&self.primary.log),
                tail(&self.standby.log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Promotes the standby and waits until it accepts writes.
    fn promote_standby(&self) {
        let data = self.standby.data.display().to_string();
        if let Err(error) = self.tools.run(
            "pg_ctl",
            &["-D", &data, "-w", "-t", "30", "promote"],
            self.root(),
        ) {
            panic!("{error}\n{}", tail(&self.standby.log));
        }
    }

    /// The replicas' URL: both hosts, the one that accepts writes wins.
    fn multi_host_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres\
             ?target_session_attrs=read-write&connect_timeout=3",
            self.primary.port, self.standby.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}\n{}", tail(&self.primary.log), tail(&self.standby.log));
        }
        let root = self.root.path().to_path_buf();
        self.primary.stop(&self.tools, &root);
        self.standby.stop(&self.tools, &root);
    }
}

/// Stops the servers after [`HARD_CAP`] so that every blocked call fails,
/// and ends the process if the test has not ended [`WATCHDOG_GRACE`] later.
fn watchdog(cluster: &Cluster, finished: Arc<AtomicBool>) {
    let (primary, standby) = (Arc::clone(&cluster.primary), Arc::clone(&cluster.standby));
    let tools = Tools {
        bin: cluster.tools.bin.clone(),
        postgres_user: cluster.tools.postgres_user,
    };
    let root = cluster.root().to_path_buf();
    let started = Instant::now();
    std::thread::spawn(move || {
        while started.elapsed() < HARD_CAP {
            if finished.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("pg_failover: over {HARD_CAP:?}; stopping its servers");
        primary.stop(&tools, &root);
        standby.stop(&tools, &root);
        std::thread::sleep(WATCHDOG_GRACE);
        if !finished.load(Ordering::SeqCst) {
            eprintln!("pg_failover: still running {WATCHDOG_GRACE:?} later; ending the process");
            std::process::exit(1);
        }
    });
}

/// What the writers share with the test.
#[derive(Default)]
struct Progress {
    acknowledged: AtomicUsize,
    killed_at: Mutex<Option<Instant>>,
    stop: AtomicBool,
}

/// What one writer did.
struct WriterReport {
    actor: Actor,
    location: String,
    acknowledged: Vec<(MovementCommand, MovementOutcome)>,
    /// Acknowledgements of attempts started after the kill (so by the
    /// promoted server).
    after_kill: usize,
    failed_attempts: usize,
    first_ack_after_kill: Option<Instant>,
}

/// The writer's `n`th movement: receipts of 1-3 units, every fourth an
/// issue of one (the three receipts before it hold at least three).
fn nth_movement(writer: usize, n: usize, location: &str) -> MovementCommand {
    let key = format!("w{writer}-{n}");
    if n % 4 == 3 {
        movement(&key, MovementKind::Issue, PART, location, 1)
    } else {
        movement(
            &key,
            MovementKind::Receipt,
            PART,
            location,
            1 + (n % 3) as i64,
        )
    }
}

/// Records movements until told to stop, each retried with its key after a
/// storage failure until acknowledged (even once told to stop, so that
/// every movement tried is acknowledged); any other error fails the test.
fn write_until_stopped(store: &PgStore, writer: usize, progress: &Progress) -> WriterReport {
    let location = format!("L{writer}");
    let mut report = WriterReport {
        actor: Actor::principal(format!("writer-{writer}"), "warehouse"),
        location: location.clone(),
        acknowledged: Vec::new(),
        after_kill: 0,
        failed_attempts: 0,
        first_ack_after_kill: None,
    };
    for n in 0.. {
        if progress.stop.load(Ordering::SeqCst) {
            break;
        }
        let command = nth_movement(writer, n, &location);
        let (outcome, attempt_started) = loop {
            let attempt_started = Instant::now();
            match store.record_movements(&report.actor, std::slice::from_ref(&command), at(0)) {
                Ok(mut outcomes) => break (outcomes.remove(0), attempt_started),
                Err(StoreError::Storage(_)) => {
                    report.failed_attempts += 1;
                    std::thread::sleep(RETRY_PAUSE);
                }
                Err(error) => panic!("writer {writer}, {}: {error:?}", command.idempotency_key),
            }
        };
        let killed_at = *progress.killed_at.lock().unwrap();
        if killed_at.is_some_and(|killed_at| attempt_started > killed_at) {
            report.after_kill += 1;
            report.first_ack_after_kill.get_or_insert_with(Instant::now);
        }
        progress.acknowledged.fetch_add(1, Ordering::SeqCst);
        report.acknowledged.push((command, outcome));
    }
    report
}

/// Stops the writers and returns their reports (a writer's panic fails
/// the test here).
fn join(writers: Vec<JoinHandle<WriterReport>>, progress: &Progress) -> Vec<WriterReport> {
    progress.stop.store(true, Ordering::SeqCst);
    writers.into_iter().map(|w| w.join().unwrap()).collect()
}

/// The whole log, in order.
fn whole_log(store: &dyn Store) -> Vec<LedgerEntry> {
    let mut log = Vec::new();
    let mut after_sequence = 0;
    loop {
        let (page, cursor) = store
            .movements(&MovementFilter {
                after_sequence,
                limit: 10_000,
                ..MovementFilter::default()
            })
            .unwrap();
        log.extend(page);
        match cursor {
            Some(next) => after_sequence = next,
            None => return log,
        }
    }
}

/// Units each writer's location should hold: the sum of its acknowledged
/// movements.
fn expected_available(reports: &[WriterReport]) -> BTreeMap<String, u64> {
    reports
        .iter()
        .map(|report| {
            let units: i64 = report
                .acknowledged
                .iter()
                .map(|(command, _)| match command.kind {
                    MovementKind::Issue => -command.quantity,
                    _ => command.quantity,
                })
                .sum();
            (report.location.clone(), u64::try_from(units).unwrap())
        })
        .collect()
}

/// Every acknowledged movement is in the promoted server's log at its
/// sequence, the log holds nothing else, the balances are their sum, the
/// ledger audits clean, and every key replays to its outcome.
fn check_promoted(url: &str, reports: &[WriterReport]) {
    let store = PgStore::open(url).unwrap();
    assert_audit_clean(&store);
    let log: BTreeMap<u64, LedgerEntry> = whole_log(&store)
        .into_iter()
        .map(|e| (e.sequence, e))
        .collect();
    let acknowledged: usize = reports.iter().map(|r| r.acknowledged.len()).sum();
    assert_eq!(
        log.len(),
        acknowledged,
        "the log holds exactly the acknowledged movements"
    );
    for report in reports {
        for (command, outcome) in &report.acknowledged {
            let entry = log.get(&outcome.sequence).unwrap_or_else(|| {
                panic!(
                    "{} acknowledged at {} is lost",
                    command.idempotency_key, outcome.sequence
                )
            });
            assert!(
                matches!(&entry.cause, EntryCause::Movement { idempotency_key, .. }
                    if *idempotency_key == command.idempotency_key),
                "{} acknowledged at {}, the log has {:?} there",
                command.idempotency_key,
                outcome.sequence,
                entry.cause
            );
        }
        let commands: Vec<MovementCommand> =
            report.acknowledged.iter().map(|(c, _)| c.clone()).collect();
        let replayed = store
            .record_movements(&report.actor, &commands, at(1))
            .unwrap();
        for ((_, original), replay) in report.acknowledged.iter().zip(&replayed) {
            assert!(replay.replayed);
            assert_eq!(replay.sequence, original.sequence);
        }
    }
    for (location, units) in expected_available(reports) {
        let balance = store.balance(PART, &location).unwrap();
        assert_eq!(
            (balance.available, balance.reserved),
            (units, 0),
            "{location}"
        );
    }
    assert_eq!(whole_log(&store).len(), acknowledged, "a replay wrote");
}

/// Each replica answers reads after the failover, and its follower brings
/// its in-memory balances to what was written through either replica.
fn check_replicas(replicas: &[Arc<PgStore>], reports: &[WriterReport], deadline: Instant) {
    let expected = expected_available(reports);
    for (index, replica) in replicas.iter().enumerate() {
        replica.reservations(&ReservationFilter::default()).unwrap();
        assert!(!whole_log(replica.as_ref()).is_empty());
        loop {
            let seen: BTreeMap<String, u64> = expected
                .keys()
                .map(|l| (l.clone(), replica.balance(PART, l).unwrap().available))
                .collect();
            if seen == expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replica {index}'s follower did not catch up: {seen:?}, expected {expected:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn acknowledged_movements_survive_the_primary_s_death() {
    let tools = match tools() {
        Ok(tools) => tools,
        Err(reason) => {
            println!("skipping: {reason}");
            eprintln!("skipping: {reason}");
            return;
        }
    };
    let started = Instant::now();
    let deadline = started + HARD_CAP;
    let finished = Arc::new(AtomicBool::new(false));
    let cluster = Cluster::new(tools);
    watchdog(&cluster, Arc::clone(&finished));
    cluster.start_primary();
    cluster.start_standby();
    cluster.make_standby_synchronous(deadline);
    let ready = started.elapsed();

    let url = cluster.multi_host_url();
    let replicas: Vec<Arc<PgStore>> = (0..REPLICAS)
        .map(|_| Arc::new(PgStore::open(&url).unwrap()))
        .collect();
    for replica in &replicas {
        replica.follow(Duration::from_millis(50)).unwrap();
    }
    let progress = Arc::new(Progress::default());
    let writers: Vec<_> = (0..REPLICAS * WRITERS_PER_REPLICA)
        .map(|writer| {
            let store = Arc::clone(&replicas[writer % REPLICAS]);
            let progress = Arc::clone(&progress);
            std::thread::spawn(move || write_until_stopped(&store, writer, &progress))
        })
        .collect();
    let stopped = |writers: &[JoinHandle<WriterReport>]| writers.iter().any(|w| w.is_finished());
    cluster.wait_for("writes before the kill", deadline, || {
        progress.acknowledged.load(Ordering::SeqCst) >= ACKS_BEFORE_KILL || stopped(&writers)
    });
    if stopped(&writers) {
        join(writers, &progress);
        panic!("a writer stopped before the kill");
    }
    cluster.primary.kill();
    let killed_at = Instant::now();
    *progress.killed_at.lock().unwrap() = Some(killed_at);
    let before_kill = progress.acknowledged.load(Ordering::SeqCst);
    cluster.promote_standby();
    let promoted_after = killed_at.elapsed();
    cluster.wait_for("writes after the promotion", deadline, || {
        progress.acknowledged.load(Ordering::SeqCst)
            >= before_kill + ACKS_AFTER_KILL * REPLICAS * WRITERS_PER_REPLICA
            || stopped(&writers)
    });
    let reports = join(writers, &progress);

    check_promoted(&cluster.standby.url(), &reports);
    check_replicas(&replicas, &reports, deadline);
    finished.store(true, Ordering::SeqCst);

    let acknowledged: usize = reports.iter().map(|r| r.acknowledged.len()).sum();
    let after: usize = reports.iter().map(|r| r.after_kill).sum();
    let failed: usize = reports.iter().map(|r| r.failed_attempts).sum();
    let resumed = reports
        .iter()
        .filter_map(|r| r.first_ack_after_kill)
        .min()
        .map(|at| at.duration_since(killed_at));
    println!(
        "failover: {acknowledged} movements acknowledged ({} by the primary, {after} by the \
         promoted standby), all in the promoted server's log; {failed} attempts failed and were \
         retried with their keys; standby promoted {promoted_after:?} after the SIGKILL, first \
         write acknowledged {resumed:?} after it; cluster ready in {ready:?}, whole test {:?} \
         (server tools: {})",
        acknowledged - after,
        started.elapsed(),
        cluster.tools.bin.display()
    );
}
