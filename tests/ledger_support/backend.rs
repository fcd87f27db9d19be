//! The two store backends the ledger suite runs on, and where one test's
//! store lives: a temporary sled directory, or a fresh PostgreSQL schema
//! (so tests run in parallel on one database) dropped when the test ends.
//!
//! Environment: `SPARES_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); without a server there the
//! PostgreSQL tests print `skipping: no PostgreSQL at URL` and pass, unless
//! `SPARES_TEST_POSTGRES_REQUIRED=1` (set by `.ci/run` when it started the
//! server), which makes them fail instead. `SPARES_TEST_POSTGRES_FULL=1`
//! runs PostgreSQL with as many cases and steps as sled.

use spares::store::{PgStore, SledStore, Store, StoreError};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The variable naming the test database.
pub const POSTGRES_URL_VAR: &str = "SPARES_TEST_POSTGRES_URL";
/// The test database when the variable is unset.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test database's URL.
pub fn postgres_url() -> String {
    std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_string())
}

fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Connects to `url` with a short timeout.
pub fn connect(url: &str) -> Result<postgres::Client, postgres::Error> {
    let mut config: postgres::Config = url.parse()?;
    config.connect_timeout(std::time::Duration::from_secs(3));
    config.connect(postgres::NoTls)
}

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `SledStore` in a temporary directory.
    Sled,
    /// `PgStore` in a fresh schema of the test database.
    Postgres,
}

impl Backend {
    /// Whether this backend can run here. Sled always can; PostgreSQL when
    /// the test database answers (checked once per test binary). Otherwise
    /// prints why and returns false, or panics when a database is required.
    pub fn available(self) -> bool {
        static REACHABLE: OnceLock<Result<(), String>> = OnceLock::new();
        if self == Self::Sled {
            return true;
        }
        let url = postgres_url();
        let reachable =
            REACHABLE.get_or_init(|| connect(&url).map(drop).map_err(|e| e.to_string()));
        match reachable {
            Ok(()) => true,
            Err(error) if flag("SPARES_TEST_POSTGRES_REQUIRED") => {
                panic!("no PostgreSQL at {url} ({error}) and SPARES_TEST_POSTGRES_REQUIRED is set")
            }
            Err(error) => {
                println!("skipping: no PostgreSQL at {url} ({error})");
                eprintln!("skipping: no PostgreSQL at {url} ({error})");
                false
            }
        }
    }

    /// `sled` for sled; for PostgreSQL, where every write is a network
    /// round trip and a commit, `postgres` unless `SPARES_TEST_POSTGRES_FULL=1`.
    pub fn scaled(self, sled: u32, postgres: u32) -> u32 {
        match self {
            Self::Sled => sled,
            Self::Postgres if flag("SPARES_TEST_POSTGRES_FULL") => sled,
            Self::Postgres => postgres,
        }
    }
}

/// Declares one `#[test]` per backend for each named function taking a
/// [`Backend`]: `on_sled::NAME` and `on_postgres::NAME` (which skips, and
/// says so, when no database answers).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sled {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::ledger_support::Backend::Sled);
                }
            )*
        }
        mod on_postgres {
            $(
                #[test]
                fn $name() {
                    if $crate::ledger_support::Backend::Postgres.available() {
                        super::$name($crate::ledger_support::Backend::Postgres);
                    }
                }
            )*
        }
    };
}

/// Where one test's store lives. Dropping it removes the directory or the
/// schema.
pub struct Place {
    /// The backend.
    pub backend: Backend,
    dir: tempfile::TempDir,
    /// The schema and the URL that selects it, for PostgreSQL.
    schema: Option<(String, String)>,
}

impl Place {
    /// A new, empty place. For PostgreSQL, call [`Backend::available`] first.
    pub fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let schema = (backend == Backend::Postgres).then(new_schema);
        Self {
            backend,
            dir,
            schema,
        }
    }

    /// What names the store to another process: the directory or the URL.
    pub fn locator(&self) -> String {
        match &self.schema {
            Some((_, url)) => url.clone(),
            None => self.dir.path().display().to_string(),
        }
    }

    /// Opens the store here (again).
    pub fn open(&self) -> Box<dyn Store> {
        self.try_open().unwrap()
    }

    /// Opens the store here, or says why not.
    pub fn try_open(&self) -> Result<Box<dyn Store>, StoreError> {
        open_locator(self.backend, &self.locator())
    }

    /// The sled directory (unused by PostgreSQL).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A plain connection to the schema, for tests that damage the data.
    pub fn sql(&self) -> postgres::Client {
        let (_, url) = self.schema.as_ref().expect("a PostgreSQL place");
        connect(url).unwrap()
    }
}

/// Opens the store `locator` names on `backend`.
pub fn open_locator(backend: Backend, locator: &str) -> Result<Box<dyn Store>, StoreError> {
    Ok(match backend {
        Backend::Sled => Box::new(SledStore::open(locator)?),
        Backend::Postgres => Box::new(PgStore::open(locator)?),
    })
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some((schema, _)) = &self.schema
            && let Ok(mut client) = connect(&postgres_url())
        {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

/// Creates a schema no other test uses and returns it with a URL whose
/// connections use it (`options=-c search_path=...`).
fn new_schema() -> (String, String) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!(
        "spares_test_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let base = postgres_url();
    let mut client = connect(&base).unwrap();
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
    (schema, url)
}
