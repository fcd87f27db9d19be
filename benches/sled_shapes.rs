//! What a batch of 1,000 receipts costs sled in each write shape, on a
//! fresh store and on one the size of the demo's, to say where the ledger's
//! time goes and which layout could reach 50,000 acknowledged movements/s
//! (issue 11). sled alone, no spares code: each batch reads its 1,000
//! idempotency keys (the replay check), writes in the shape named, then
//! flushes (the acknowledgement).
//!
//! Shapes:
//! - `today`: one transaction over the log (one record per batch), the
//!   balances (1,000 accounts) and the idempotency keys (1,000), as
//!   `SledStore::commit` does.
//! - `log + keys`: one transaction over the log and the keys; balances
//!   derived from the log (as `open` already replays it) and written later.
//! - `log only`: the batch record alone; keys and balances derived from it.
//! - `one tree`: all three in one tree with one `apply_batch` (atomic
//!   without a transaction).
//!
//! `cargo bench --bench sled_shapes` prefills 200,000 accounts and 200,000
//! keys (the demo holds about 52,000 positions and its import keys) and runs
//! 60 batches per cell; under `cargo test --benches` it shrinks.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use std::time::Instant;

const BATCH: u64 = 1000;
/// Bytes of a batch's log record (1,000 encoded receipts).
const LOG_RECORD: usize = 60_000;
/// Bytes of one idempotency record (payload digest and outcome).
const KEY_RECORD: usize = 60;

fn account(i: u64) -> Vec<u8> {
    format!(
        "P{:06}\u{0}W{:02}\u{0}available",
        i % 20_000,
        (i / 20_000) % 15
    )
    .into_bytes()
}

#[derive(Clone, Copy)]
enum Shape {
    Today,
    LogAndKeys,
    LogOnly,
    OneTree,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Self::Today => "today: log + balances + keys",
            Self::LogAndKeys => "log + keys",
            Self::LogOnly => "log only",
            Self::OneTree => "one tree, apply_batch",
        }
    }
}

type TxResult = Result<(), ConflictableTransactionError<()>>;

/// Movements/s of `batches` batches in `shape` after `prefill` accounts and keys.
fn run(shape: Shape, prefill: u64, batches: u64) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::open(dir.path()).expect("sled");
    let tree = |name: &str| db.open_tree(name).expect("tree");
    let (log, balances, keys, one) = (tree("log"), tree("balances"), tree("keys"), tree("one"));
    let (mut accounts, mut imports) = (sled::Batch::default(), sled::Batch::default());
    for i in 0..prefill {
        accounts.insert(account(i), &7i64.to_be_bytes()[..]);
        imports.insert(format!("import-{i:09}").into_bytes(), vec![0u8; KEY_RECORD]);
    }
    let (target_a, target_k) = match shape {
        Shape::OneTree => (&one, &one),
        _ => (&balances, &keys),
    };
    target_a.apply_batch(accounts).expect("prefill");
    target_k.apply_batch(imports).expect("prefill");
    db.flush().expect("flush");
    let record = vec![1u8; LOG_RECORD];
    let started = Instant::now();
    for n in 0..batches {
        let sequence = (n * BATCH).to_be_bytes();
        let changed: Vec<(Vec<u8>, [u8; 8])> = (0..BATCH)
            .map(|m| {
                let i = (n * 7_919 + m * 104_729) % prefill.max(1);
                (account(i), (m as i64).to_be_bytes())
            })
            .collect();
        let new_keys: Vec<Vec<u8>> = (0..BATCH)
            .map(|m| format!("load-{n}-{m}").into_bytes())
            .collect();
        let key_tree = if matches!(shape, Shape::OneTree) {
            &one
        } else {
            &keys
        };
        for key in &new_keys {
            assert!(key_tree.get(key).expect("get").is_none());
        }
        let value = [0u8; KEY_RECORD];
        match shape {
            Shape::Today => (&log, &balances, &keys)
                .transaction(|(l, b, k)| -> TxResult {
                    l.insert(&sequence[..], record.as_slice())?;
                    for (a, v) in &changed {
                        b.insert(a.as_slice(), &v[..])?;
                    }
                    for key in &new_keys {
                        k.insert(key.as_slice(), &value[..])?;
                    }
                    Ok(())
                })
                .expect("transaction"),
            Shape::LogAndKeys => (&log, &keys)
                .transaction(|(l, k)| -> TxResult {
                    l.insert(&sequence[..], record.as_slice())?;
                    for key in &new_keys {
                        k.insert(key.as_slice(), &value[..])?;
                    }
                    Ok(())
                })
                .expect("transaction"),
            Shape::LogOnly => {
                log.insert(&sequence[..], record.as_slice())
                    .expect("insert");
            }
            Shape::OneTree => {
                let mut batch = sled::Batch::default();
                let mut log_key = b"\x00log".to_vec();
                log_key.extend_from_slice(&sequence);
                batch.insert(log_key, record.as_slice());
                for (a, v) in &changed {
                    batch.insert(a.as_slice(), &v[..]);
                }
                for key in &new_keys {
                    batch.insert(key.as_slice(), &value[..]);
                }
                one.apply_batch(batch).expect("batch");
            }
        }
        db.flush().expect("flush");
    }
    (batches * BATCH) as f64 / started.elapsed().as_secs_f64()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    let full = std::env::args().any(|a| a == "--bench");
    let (sizes, batches): (&[u64], u64) = if full {
        (&[1_000, 200_000], 60)
    } else {
        (&[1_000, 5_000], 3)
    };
    println!(
        "sled write shapes, batches of {BATCH} receipts, {batches} batches per cell, flush per batch; mode {}",
        if full { "full" } else { "test (shrunk)" }
    );
    println!(
        "{:<30} {:>14} {:>14}   load average",
        "shape", "fresh", "demo-sized"
    );
    for shape in [
        Shape::Today,
        Shape::LogAndKeys,
        Shape::LogOnly,
        Shape::OneTree,
    ] {
        let rates: Vec<f64> = sizes.iter().map(|&p| run(shape, p, batches)).collect();
        println!(
            "{:<30} {:>12.0}/s {:>12.0}/s   {}",
            shape.name(),
            rates[0],
            rates[1],
            load_average()
        );
    }
    println!(
        "(fresh: {} accounts and keys before the run; demo-sized: {})",
        sizes[0], sizes[1]
    );
}
