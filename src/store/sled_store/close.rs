//! The last flush when a store closes, with a bound on the wait.
//!
//! sled 0.34.7's flush waits for its log to become stable on a condition
//! variable with no timeout. Twice (2026-12-01, a benchmark process under
//! load) a close hung there for good: the flush waited for a stable log
//! position that no write was going to advance, with every sled I/O thread
//! idle, so the process never exited. Nothing was at risk (every
//! acknowledged write is flushed before its acknowledgement, and the
//! checkpoint that close writes is redone by the next open), but a server
//! that cannot exit is an operator's problem. So the close-time flush runs
//! on a thread of its own and close waits for it at most
//! [`CLOSE_FLUSH_WAIT`]; past that it logs a warning and goes on.

use std::sync::mpsc;
use std::time::Duration;

/// How long closing a store waits for its last flush.
pub(super) const CLOSE_FLUSH_WAIT: Duration = Duration::from_secs(10);

/// Runs `work` on a new thread named `name` and waits for its result for at
/// most `wait`. `None` when it did not finish in time (the thread is left to
/// finish or not on its own). When no thread can be started, runs `work`
/// here, unbounded, as if there were no bound.
pub(super) fn run_within<T: Send + 'static>(
    name: &str,
    wait: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (sender, receiver) = mpsc::channel();
    // `work` travels in a cell so that, if the thread cannot start, it can
    // still be run here.
    let cell = std::sync::Arc::new(std::sync::Mutex::new(Some(work)));
    let theirs = cell.clone();
    let spawned = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let work = theirs.lock().ok().and_then(|mut w| w.take());
            if let Some(work) = work {
                let _ = sender.send(work());
            }
        });
    match spawned {
        Ok(_) => receiver.recv_timeout(wait).ok(),
        Err(_) => {
            let work = cell.lock().ok().and_then(|mut w| w.take())?;
            Some(work())
        }
    }
}

/// Flushes `db` (a handle on the store's database, dropped by the flushing
/// thread before it answers, so a reopen right after close finds the lock
/// free), waiting at most [`CLOSE_FLUSH_WAIT`]; what went wrong is logged.
pub(super) fn flush_at_close(db: sled::Db) {
    let flushed = run_within("sled-close-flush", CLOSE_FLUSH_WAIT, move || {
        let flushed = db.flush().map(|_| ());
        drop(db);
        flushed
    });
    match flushed {
        Some(Ok(())) => {}
        Some(Err(e)) => tracing::warn!(error = %e, "flush at close failed"),
        None => tracing::warn!(
            waited_s = CLOSE_FLUSH_WAIT.as_secs(),
            "flush at close did not finish in time; closing anyway (acknowledged \
             writes were flushed when acknowledged, and the next open redoes the \
             checkpoint)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn work_that_finishes_in_time_gives_its_result() {
        assert_eq!(run_within("t", Duration::from_secs(5), || 7), Some(7));
    }

    #[test]
    fn work_that_hangs_is_given_up_on_at_the_bound() {
        let started = Instant::now();
        let (release, hang) = mpsc::channel::<()>();
        let result = run_within("t", Duration::from_millis(100), move || {
            // Blocks as sled's flush blocked (for 10 s at most, so a
            // `run_within` that waited it out fails here instead of hanging).
            let _ = hang.recv_timeout(Duration::from_secs(10));
            1
        });
        let waited = started.elapsed();
        assert_eq!(result, None);
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        drop(release);
    }

    #[test]
    fn a_store_flushed_at_close_reopens_at_once_with_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"k", b"v").unwrap();
        flush_at_close(db.clone());
        drop(db);
        let reopened = super::super::open_waiting_for_lock(dir.path()).unwrap();
        assert_eq!(reopened.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    }
}
