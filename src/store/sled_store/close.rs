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
/// most `wait`: `Ok(None)` when it did not finish in time (the thread is left
/// to finish or not on its own). Errors: the thread could not be started.
pub(super) fn run_within<T: Send + 'static>(
    name: &str,
    wait: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<Option<T>> {
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = sender.send(work());
        })?;
    Ok(receiver.recv_timeout(wait).ok())
}

/// Flushes `db`, waiting at most [`CLOSE_FLUSH_WAIT`]; what went wrong is
/// logged. The flushing thread drops its handle before it answers, so a
/// reopen right after close finds the lock free. Without a thread the flush
/// runs here, unbounded, as it always did.
pub(super) fn flush_at_close(db: &sled::Db) {
    let handle = db.clone();
    let flushed = run_within("sled-close-flush", CLOSE_FLUSH_WAIT, move || {
        let flushed = handle.flush().map(|_| ());
        drop(handle);
        flushed
    })
    .unwrap_or_else(|e| {
        tracing::warn!(error = %e, "no thread for the flush at close; flushing here");
        Some(db.flush().map(|_| ()))
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
        assert_eq!(
            run_within("t", Duration::from_secs(5), || 7).unwrap(),
            Some(7)
        );
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
        })
        .unwrap();
        let waited = started.elapsed();
        assert_eq!(result, None);
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        drop(release);
    }

    #[test]
    fn flush_at_close_leaves_nothing_to_flush_and_the_store_reopens_with_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"k", b"v").unwrap();
        flush_at_close(&db);
        // sled's flush returns the bytes it wrote: none are left unwritten.
        assert_eq!(db.flush().unwrap(), 0);
        drop(db);
        let reopened = super::super::open_waiting_for_lock(dir.path()).unwrap();
        assert_eq!(reopened.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    }
}
