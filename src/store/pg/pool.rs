//! The store's connections: a few idle ones kept for reuse, replaced when
//! they break, so that a store outlives a restart or a failover of its
//! database (with a multi-host URL and `target_session_attrs=read-write`,
//! a new connection goes to whichever host accepts writes now).
//!
//! A connection breaks without telling anyone while it sits idle: the
//! blocking client only notices when it is next used. So a call that finds
//! its connection broken drops every idle one (they lead to the same
//! server), and the calls that can safely run again do so once on a new
//! connection: reads ([`Pool::run`]), and transactions whose `BEGIN` failed
//! ([`Pool::transact`]), since nothing of them reached the server. A
//! transaction whose `COMMIT` got no answer may or may not have committed:
//! that is a [`StoreError::Storage`] saying so, and the client retries
//! with the same idempotency key.

use super::{database, poisoned};
use crate::store::StoreError;
use postgres::{Client, NoTls, Transaction};
use std::sync::Mutex;
use std::time::Duration;

/// Idle connections kept for reuse; more may be open at once under load, and
/// those past this number are closed when returned.
const MAX_IDLE_CONNECTIONS: usize = 16;

/// How long one connection attempt to one host may take when the URL does
/// not say (`connect_timeout`): without a bound, a host that vanished from
/// the network would hold every call that needs a new connection, and a
/// multi-host URL would never get to its next host.
pub(super) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A few open connections, reused. A connection is returned only if it is
/// still open; a transaction left open by an error is rolled back when its
/// handle drops, before the connection is returned.
pub(super) struct Pool {
    pub(super) config: postgres::Config,
    idle: Mutex<Vec<Client>>,
}

impl Pool {
    /// A pool for `config`, which gets [`DEFAULT_CONNECT_TIMEOUT`] unless it
    /// sets a connect timeout.
    pub(super) fn new(mut config: postgres::Config) -> Self {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        Self {
            config,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// An idle connection, or a new one. Errors: `Storage` when no host
    /// of the URL can be reached (or, with `target_session_attrs`, none is
    /// of the kind asked for).
    pub(super) fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let reused = self.idle.lock().map_err(poisoned)?.pop();
        let client = match reused {
            Some(client) if !client.is_closed() => client,
            _ => self.config.connect(NoTls).map_err(database)?,
        };
        Ok(Pooled {
            pool: self,
            client: Some(client),
        })
    }

    /// Runs `call` on a connection and, if the connection broke during it,
    /// once more on a new one. Only for calls that may run twice: reads,
    /// and writes that leave the same state when repeated.
    pub(super) fn run<T>(
        &self,
        mut call: impl FnMut(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.get()?;
        let first = call(conn.client());
        if first.is_ok() || !conn.client().is_closed() {
            return first;
        }
        drop(conn);
        let mut conn = self.get()?;
        call(conn.client())
    }

    /// Runs `body` in a transaction and commits it. A connection found
    /// broken by `BEGIN` is replaced once (nothing was sent on it). Errors:
    /// `body`'s (nothing is committed); `Storage` when the connection broke
    /// during `COMMIT`, when whether it committed is unknown.
    pub(super) fn transact<T>(
        &self,
        body: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.begin(|mut tx| {
            let value = body(&mut tx)?;
            commit(tx)?;
            Ok(value)
        })
    }

    /// Begins a transaction and hands it to `body`, which commits it with
    /// [`commit`] or drops it (rolled back). A connection found broken by
    /// `BEGIN` is replaced once, as in [`Pool::transact`].
    pub(super) fn begin<T>(
        &self,
        body: impl FnOnce(Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.get()?;
        let error = match conn.client().transaction() {
            Ok(tx) => return body(tx),
            Err(error) => error,
        };
        if !conn.client().is_closed() {
            return Err(database(error));
        }
        drop(conn);
        let mut conn = self.get()?;
        let tx = conn.client().transaction().map_err(database)?;
        body(tx)
    }

    /// Closes every idle connection (after one of them broke).
    pub(super) fn take_idle(&self) -> Vec<Client> {
        match self.idle.lock() {
            Ok(mut idle) => std::mem::take(&mut *idle),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Each blocking client owns a small runtime, which may not be dropped
        // on an async worker thread (a server stopping drops its store, queue
        // and leases there): close them on a thread of their own.
        let clients = self.take_idle();
        if !clients.is_empty() {
            let _ = std::thread::spawn(move || drop(clients)).join();
        }
    }
}

/// Commits `tx`. Errors: a refused `COMMIT` (the server answered) is the
/// database's error; one without an answer leaves the outcome unknown,
/// which the `Storage` error says.
pub(super) fn commit(tx: Transaction<'_>) -> Result<(), StoreError> {
    let error = match tx.commit() {
        Ok(()) => return Ok(()),
        Err(error) => error,
    };
    if error.as_db_error().is_some() {
        return Err(database(error));
    }
    Err(StoreError::Storage(format!(
        "the connection to PostgreSQL broke during COMMIT, so whether the write committed is \
         unknown ({error}); retry with the same idempotency key"
    )))
}

/// A connection borrowed from the pool.
pub(super) struct Pooled<'a> {
    pool: &'a Pool,
    client: Option<Client>,
}

impl Pooled<'_> {
    /// The connection.
    pub(super) fn client(&mut self) -> &mut Client {
        // Some until dropped.
        self.client.get_or_insert_with(|| unreachable!())
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if client.is_closed() {
            // The server closed it or went away (a restart, a failover):
            // the idle connections lead there too, and each would fail
            // the call that next took it.
            drop(self.pool.take_idle());
            return;
        }
        if let Ok(mut idle) = self.pool.idle.lock()
            && idle.len() < MAX_IDLE_CONNECTIONS
        {
            idle.push(client);
        }
    }
}
