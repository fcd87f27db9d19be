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
    /// A global subscriber was already installed.
    #[error("logging already set up: {0}")]
    Init(#[from] tracing_subscriber::util::TryInitError),
}

/// Installs the global subscriber writing to stderr through a non-blocking
/// writer. Keep the returned guard alive until exit: dropping it flushes the
/// lines still buffered.
pub fn init(config: &LogConfig) -> Result<WorkerGuard, LogError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_new(&config.filter).map_err(|source| LogError::Filter {
        filter: config.filter.clone(),
        source,
    })?;
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .lossy(true)
        .finish(std::io::stderr());
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
    Ok(guard)
}
