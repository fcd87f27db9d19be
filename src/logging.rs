//! Log output: text or JSON lines on stderr through a non-blocking writer, so
//! a request never waits for the terminal or a slow log pipe.

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines buffered for the writer thread before new lines are dropped (and
/// counted) rather than blocking a request: about 1 MB of access lines.
pub const LOG_BUFFER_LINES: usize = 8192;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// Logging configuration, built in `main` from flags and the environment.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Text or JSON.
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `spares=debug`.
    pub filter: String,
    /// ANSI colours (only when writing to a terminal).
    pub ansi: bool,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The filter directive did not parse.
    #[error("log filter {filter:?}: {source}")]
    Filter {
        /// The directive.
        filter: String,
        /// The parser's complaint.
        source: tracing_subscriber::filter::ParseError,
    },
    /// The filter could not be replaced (the subscriber is gone).
    #[error("log filter: {0}")]
    Reload(String),
    /// A global subscriber was already installed.
    #[error("logging already set up: {0}")]
    Init(#[from] tracing_subscriber::util::TryInitError),
}

/// Bytes of log lines the writer thread gathers before it writes them: it
/// writes when this fills or when no line is waiting, so a busy server
/// makes one `write` per many lines and an idle one shows each line at once.
pub const LOG_WRITE_BYTES: usize = 64 * 1024;

/// The filter of the installed subscriber, which can be changed while the
/// process runs.
#[derive(Clone)]
pub struct LogFilter(tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>);

impl LogFilter {
    /// Replaces the filter with `directive` (an `EnvFilter` directive such
    /// as `info,spares::access=off`).
    ///
    /// # Errors
    /// [`LogError::Filter`] when the directive does not parse, and
    /// [`LogError::Reload`] when the subscriber is gone.
    pub fn set(&self, directive: &str) -> Result<(), LogError> {
        let filter = parse_filter(directive)?;
        self.0
            .reload(filter)
            .map_err(|e| LogError::Reload(e.to_string()))
    }
}

fn parse_filter(directive: &str) -> Result<EnvFilter, LogError> {
    EnvFilter::try_new(directive).map_err(|source| LogError::Filter {
        filter: directive.to_string(),
        source,
    })
}

/// Installs the global subscriber writing to stderr through a non-blocking
/// writer. Keep the returned guard alive until exit: dropping it flushes the
/// lines still buffered.
pub fn init(config: &LogConfig) -> Result<WorkerGuard, LogError> {
    init_with(config, std::io::stderr()).map(|(guard, _)| guard)
}

/// [`init`] writing to `out` (stderr for the server; a file in benches),
/// returning the filter's handle too.
pub fn init_with<W: std::io::Write + Send + 'static>(
    config: &LogConfig,
    out: W,
) -> Result<(WorkerGuard, LogFilter), LogError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(parse_filter(&config.filter)?);
    // The writer thread flushes whenever it has taken every waiting line.
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .lossy(true)
        .finish(std::io::BufWriter::with_capacity(LOG_WRITE_BYTES, out));
    let registry = tracing_subscriber::registry().with(filter);
    match config.format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_ansi(config.ansi),
            )
            .try_init()?,
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(writer)
                    .with_ansi(false),
            )
            .try_init()?,
    }
    Ok((guard, LogFilter(handle)))
}

impl std::fmt::Debug for LogFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFilter").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The only test of this binary that installs the global subscriber.
    /// Lines reach the writer through the buffered writer thread, and the
    /// filter turns the access log off and on while the process runs.
    #[test]
    fn lines_are_written_and_the_filter_changes_while_running() {
        let out = Shared::default();
        let config = LogConfig {
            format: LogFormat::Text,
            filter: "info".into(),
            ansi: false,
        };
        let (guard, filter) = init_with(&config, out.clone()).unwrap();
        tracing::info!(target: "spares::access", "access line one");
        filter.set("info,spares::access=off").unwrap();
        tracing::info!(target: "spares::access", "access line two");
        filter.set("info").unwrap();
        tracing::info!(target: "spares::access", "access line three");
        assert!(matches!(
            filter.set("spares=loud"),
            Err(LogError::Filter { .. })
        ));
        // Dropping the guard writes what is still buffered.
        drop(guard);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("access line one"), "{text}");
        assert!(text.contains("access line three"), "{text}");
        assert!(!text.contains("access line two"), "{text}");
    }
}
