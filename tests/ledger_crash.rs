//! Crash test: a child process (this test binary re-run in writer mode) records
//! movements and reservations and prints each one after the store acknowledges
//! it; the parent SIGKILLs the child at a seed-chosen point, reopens the store
//! and checks that every acknowledged write is there (its idempotency key
//! replays with the original result) and that the ledger audits clean.
//!
//! It runs on each store backend: for PostgreSQL the child's connection dies
//! with it, mid-transaction or not, and the server rolls back what was not
//! committed.
//!
//! Environment: `SPARES_CRASH_SEED` replays a run, `SPARES_CRASH_CYCLES` sets the
//! number of kill/reopen cycles (default 20; 8 for PostgreSQL unless
//! `SPARES_TEST_POSTGRES_FULL=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod ledger_support;

use ledger_support::{
    Backend, Place, assert_audit_clean, at, movement, open_locator, reserve_command,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use spares::domain::ledger::{MovementCommand, MovementKind, ReserveCommand};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const WRITER_DIR: &str = "SPARES_CRASH_WRITER";
const WRITER_BACKEND: &str = "SPARES_CRASH_WRITER_BACKEND";
const WRITER_SEED: &str = "SPARES_CRASH_WRITER_SEED";
const WRITER_CYCLE: &str = "SPARES_CRASH_WRITER_CYCLE";

/// Writer mode: runs only when the parent test sets `SPARES_CRASH_WRITER`.
#[test]
fn crash_writer_child() {
    let Ok(dir) = std::env::var(WRITER_DIR) else {
        return;
    };
    let seed: u64 = std::env::var(WRITER_SEED).unwrap().parse().unwrap();
    let cycle: u64 = std::env::var(WRITER_CYCLE).unwrap().parse().unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let backend = match std::env::var(WRITER_BACKEND).as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sled,
    };
    let store = open_locator(backend, &dir).unwrap();
    let mut out = std::io::stdout().lock();
    for call in 0.. {
        if rng.random_bool(0.2) {
            let part = format!("P{}", rng.random_range(0..4));
            let command = reserve_command(&format!("c{cycle}-r{call}"), &part, "A", 1);
            if let Ok(mut r) = store.reserve(
                &spares::domain::ledger::Actor::local("test"),
                std::slice::from_ref(&command),
                at(0),
            ) {
                let r = r.remove(0);
                let line = serde_json::to_string(&command).unwrap();
                writeln!(out, "RES {} {line}", r.reservation_id).unwrap();
                out.flush().unwrap();
            }
            continue;
        }
        let size = [1, 1, 1, 5, 50, 400][rng.random_range(0..6)];
        let commands: Vec<MovementCommand> = (0..size)
            .map(|i| {
                let key = format!("c{cycle}-m{call}-{i}");
                let part = format!("P{}", rng.random_range(0..4));
                let location = ["A", "B"][rng.random_range(0..2)];
                match rng.random_range(0..10) {
                    0 if size == 1 => movement(&key, MovementKind::Issue, &part, location, 1),
                    1 => movement(&key, MovementKind::Adjustment, &part, location, 2),
                    _ => movement(
                        &key,
                        MovementKind::Receipt,
                        &part,
                        location,
                        rng.random_range(1..4),
                    ),
                }
            })
            .collect();
        if let Ok(outcomes) = store.record_movements(
            &spares::domain::ledger::Actor::local("test"),
            &commands,
            at(0),
        ) {
            for (command, outcome) in commands.iter().zip(outcomes) {
                let line = serde_json::to_string(command).unwrap();
                writeln!(out, "ACK {} {line}", outcome.sequence).unwrap();
            }
            out.flush().unwrap();
        }
    }
}

enum Ack {
    Movement(u64, MovementCommand),
    Reservation(String, ReserveCommand),
}

fn parse(line: &str) -> Option<Ack> {
    let (tag, rest) = line.split_once(' ')?;
    let (id, json) = rest.split_once(' ')?;
    match tag {
        "ACK" => Some(Ack::Movement(
            id.parse().ok()?,
            serde_json::from_str(json).ok()?,
        )),
        "RES" => Some(Ack::Reservation(
            id.to_string(),
            serde_json::from_str(json).ok()?,
        )),
        _ => None,
    }
}

/// Runs one writer and kills it; returns the acknowledged writes.
fn run_and_kill(place: &Place, cycle: u64, rng: &mut StdRng) -> Vec<Ack> {
    let backend = match place.backend {
        Backend::Sled => "sled",
        Backend::Postgres => "postgres",
    };
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WRITER_DIR, place.locator())
        .env(WRITER_BACKEND, backend)
        .env(WRITER_SEED, rng.random::<u64>().to_string())
        .env(WRITER_CYCLE, cycle.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acks = Vec::new();
    if rng.random_bool(0.25) {
        // Kill at a random moment, possibly during open or recovery.
        std::thread::sleep(Duration::from_millis(rng.random_range(0..60)));
    } else {
        let target = rng.random_range(1..400);
        while acks.len() < target {
            let Some(line) = lines.next() else { break };
            acks.extend(parse(&line.unwrap()));
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Lines printed before the kill were acknowledged too.
    for line in lines {
        acks.extend(line.ok().as_deref().and_then(parse));
    }
    acks
}

on_both_backends!(acknowledged_writes_survive_sigkill);

fn acknowledged_writes_survive_sigkill(backend: Backend) {
    let seed = std::env::var("SPARES_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let cycles: u64 = std::env::var("SPARES_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::from(backend.scaled(20, 8)));
    println!("{backend:?} crash test seed {seed} (replay with SPARES_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let place = Place::new(backend);
    let mut total = 0;
    for cycle in 0..cycles {
        let acks = run_and_kill(&place, cycle, &mut rng);
        let store = place
            .try_open()
            .unwrap_or_else(|e| panic!("seed {seed} cycle {cycle}: reopen: {e}"));
        let movements = assert_audit_clean(&*store);
        for ack in &acks {
            match ack {
                Ack::Movement(sequence, command) => {
                    let replay = store
                        .record_movements(
                            &spares::domain::ledger::Actor::local("test"),
                            std::slice::from_ref(command),
                            at(1),
                        )
                        .unwrap()
                        .remove(0);
                    assert!(
                        replay.replayed,
                        "seed {seed} cycle {cycle}: {} lost",
                        command.idempotency_key
                    );
                    assert_eq!(replay.sequence, *sequence, "seed {seed} cycle {cycle}");
                }
                Ack::Reservation(id, command) => {
                    let replay = store
                        .reserve(
                            &spares::domain::ledger::Actor::local("test"),
                            std::slice::from_ref(command),
                            at(1),
                        )
                        .unwrap()
                        .remove(0);
                    assert_eq!(
                        &replay.reservation_id, id,
                        "seed {seed} cycle {cycle}: reservation lost"
                    );
                }
            }
        }
        assert_eq!(
            assert_audit_clean(&*store),
            movements,
            "seed {seed} cycle {cycle}: replays wrote"
        );
        total += acks.len();
        println!(
            "cycle {cycle}: {} acknowledged writes verified, {movements} entries in the log",
            acks.len()
        );
    }
    assert!(
        total > 0,
        "seed {seed}: no write was acknowledged in any cycle"
    );
}
