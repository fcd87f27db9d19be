//! The server's configuration file (`spares serve --config spares.toml`):
//! TOML, read once at start by `main`, which lays flags and environment
//! variables over it and passes plain structs down (the library never reads
//! the environment). Every key is optional; a key the file does not know, a
//! value of the wrong type or out of its range is an error naming the file,
//! line and column. Relative paths are relative to the file's directory.
//! `docs/spares.example.toml` lists every key.

use crate::config::{Limits, MAX_BATCH_ITEMS};
use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest configuration file read, in bytes: a real one is a few KiB.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Why the configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (or is larger than [`MAX_CONFIG_BYTES`]).
    #[error("{}: {detail}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// Bad TOML, an unknown key, or a value of the wrong type or range.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column (in characters) of the offending text.
        column: usize,
        /// What is wrong, from the TOML reader.
        message: String,
    },
    /// Values that are each valid but do not fit together.
    #[error("{}: {message}", path.display())]
    Conflict {
        /// The file.
        path: PathBuf,
        /// Which keys, and why.
        message: String,
    },
}

/// The whole file. Absent keys keep their defaults (or the flags' values).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Address to listen on (`--listen`).
    pub listen: Option<SocketAddr>,
    /// Directory of the sled database (`--data-dir`).
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL of the ledger (`--store`), instead of `data_dir`.
    pub store: Option<String>,
    /// Prometheus metrics address (`--metrics-listen`).
    pub metrics_listen: Option<SocketAddr>,
    /// `[tls]`.
    #[serde(default)]
    pub tls: TlsSection,
    /// `[limits]`.
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[auth]`.
    #[serde(default)]
    pub auth: AuthSection,
    /// `[jwt]`.
    #[serde(default)]
    pub jwt: JwtSection,
    /// `[rate_limit]`.
    #[serde(default)]
    pub rate_limit: RateLimitSection,
}

/// `[auth]`: which credentials count and which RPCs stay open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// Health checks need no credentials (default true).
    pub open_health: Option<bool>,
    /// Reflection needs no credentials (default true).
    pub open_reflection: Option<bool>,
    /// The store's API keys authenticate (default true). Turn them off
    /// when every caller comes through the identity provider (JWT) or
    /// mutual TLS.
    pub api_keys: Option<bool>,
}

/// `[jwt]`: bearer JWTs from an identity provider, the same as the
/// `--jwt-*` flags. Without `public_key` or `jwks`, JWTs are not accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSection {
    /// The provider's public key, PEM.
    pub public_key: Option<PathBuf>,
    /// The provider's keys as a JWKS file (a token's `kid` picks one).
    pub jwks: Option<PathBuf>,
    /// The one signature algorithm accepted (RS256, PS256, ES256, EdDSA, ...).
    #[serde(default, deserialize_with = "jwt_algorithm")]
    pub algorithm: Option<jsonwebtoken::Algorithm>,
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Required `aud`.
    pub audience: Option<String>,
    /// Leeway on `exp` and `nbf`, 0 to 600 seconds (default 30).
    #[serde(default, deserialize_with = "leeway")]
    pub leeway_seconds: Option<u64>,
    /// Claim holding the role (default `spares_role`).
    pub role_claim: Option<String>,
    /// Claim holding a dealer's stores (default `spares_stores`).
    pub stores_claim: Option<String>,
    /// Claim holding a warehouse's locations (default `spares_locations`).
    pub locations_claim: Option<String>,
}

/// `[rate_limit]`: each principal's token bucket, the same as
/// `--rate-limit` and `--rate-burst`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    /// Sustained requests a second per principal (0 = unlimited).
    #[serde(default, deserialize_with = "rate")]
    pub rate: Option<f64>,
    /// Requests a principal may make at once after being idle (1 to a
    /// million).
    #[serde(default, deserialize_with = "burst")]
    pub burst: Option<u32>,
}

impl RateLimitSection {
    /// `limits` with this section's rate and burst laid over it.
    pub fn apply(&self, limits: Limits) -> Limits {
        Limits {
            rate_per_principal_per_second: self
                .rate
                .unwrap_or(limits.rate_per_principal_per_second),
            rate_burst_per_principal: self.burst.unwrap_or(limits.rate_burst_per_principal),
            ..limits
        }
    }
}

/// Only asymmetric algorithms: with a shared secret (HS256) anyone who can
/// verify a token could also mint one.
fn jwt_algorithm<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<jsonwebtoken::Algorithm>, D::Error> {
    use jsonwebtoken::Algorithm;
    let text = String::deserialize(d)?;
    let algorithm = text.parse::<Algorithm>().map_err(|_| {
        serde::de::Error::custom(format!(
            "unknown JWT algorithm `{text}`: use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA"
        ))
    })?;
    if matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        return Err(serde::de::Error::custom(format!(
            "JWT algorithm {text} uses a shared secret and is not accepted: use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA"
        )));
    }
    Ok(Some(algorithm))
}

fn leeway<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    bounded(d, 0, 600)
}

fn rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let value = f64::deserialize(d)?;
    if !(value.is_finite() && (0.0..=1e9).contains(&value)) {
        return Err(serde::de::Error::custom(format!(
            "{value} is out of range: use 0 (unlimited) to 1e9 requests a second"
        )));
    }
    Ok(Some(value))
}

fn burst<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    to_u32(bounded(d, 1, 1_000_000)?)
}

/// `[tls]`: the same as the `--tls-*` and `--client-ca` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// Certificate chain, PEM.
    pub cert: Option<PathBuf>,
    /// Private key, PEM.
    pub key: Option<PathBuf>,
    /// Client CA, PEM: mutual TLS.
    pub client_ca: Option<PathBuf>,
    /// How often to check the files for changes (0: only on SIGHUP).
    pub reload_seconds: Option<u64>,
}

/// `[limits]`: overrides of [`Limits`], each in the unit its name says.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// [`Limits::max_message_bytes`] (1 KiB to 1 GiB).
    #[serde(default, deserialize_with = "message_bytes")]
    pub max_message_bytes: Option<usize>,
    /// [`Limits::max_batch_items`] (1 to [`MAX_BATCH_ITEMS`]).
    #[serde(default, deserialize_with = "batch_items")]
    pub max_batch_items: Option<usize>,
    /// [`Limits::default_page_size`].
    #[serde(default, deserialize_with = "count")]
    pub default_page_size: Option<usize>,
    /// [`Limits::max_page_size`].
    #[serde(default, deserialize_with = "count")]
    pub max_page_size: Option<usize>,
    /// [`Limits::request_timeout`].
    #[serde(default, deserialize_with = "seconds")]
    pub request_timeout_seconds: Option<Duration>,
    /// [`Limits::concurrency_per_connection`].
    #[serde(default, deserialize_with = "count")]
    pub concurrency_per_connection: Option<usize>,
    /// [`Limits::watch_buffer`].
    #[serde(default, deserialize_with = "count")]
    pub watch_buffer: Option<usize>,
    /// [`Limits::max_reservation_ttl_seconds`].
    #[serde(default, deserialize_with = "ttl")]
    pub max_reservation_ttl_seconds: Option<u32>,
    /// [`Limits::default_reservation_ttl_seconds`].
    #[serde(default, deserialize_with = "ttl")]
    pub default_reservation_ttl_seconds: Option<u32>,
    /// [`Limits::job_workers`].
    #[serde(default, deserialize_with = "count")]
    pub job_workers: Option<usize>,
    /// [`Limits::job_queue`].
    #[serde(default, deserialize_with = "count")]
    pub job_queue: Option<usize>,
    /// [`Limits::work_threads`].
    #[serde(default, deserialize_with = "count")]
    pub work_threads: Option<usize>,
    /// [`Limits::work_lease`].
    #[serde(default, deserialize_with = "seconds")]
    pub work_lease_seconds: Option<Duration>,
    /// [`Limits::work_poll`].
    #[serde(default, deserialize_with = "seconds")]
    pub work_poll_seconds: Option<Duration>,
    /// [`Limits::max_job_work`] (part-location-days).
    #[serde(default, deserialize_with = "work")]
    pub max_job_work: Option<f64>,
    /// [`Limits::shutdown_grace`].
    #[serde(default, deserialize_with = "seconds")]
    pub shutdown_grace_seconds: Option<Duration>,
    /// [`Limits::tcp_keepalive_idle`].
    #[serde(default, deserialize_with = "seconds")]
    pub tcp_keepalive_idle_seconds: Option<Duration>,
    /// [`Limits::tcp_keepalive_interval`].
    #[serde(default, deserialize_with = "seconds")]
    pub tcp_keepalive_interval_seconds: Option<Duration>,
    /// [`Limits::tcp_keepalive_retries`].
    #[serde(default, deserialize_with = "retries")]
    pub tcp_keepalive_retries: Option<u32>,
    /// [`Limits::tls_handshake_timeout`].
    #[serde(default, deserialize_with = "seconds")]
    pub tls_handshake_timeout_seconds: Option<Duration>,
    /// [`Limits::max_tls_handshakes`].
    #[serde(default, deserialize_with = "count")]
    pub max_tls_handshakes: Option<usize>,
}

/// An integer in `low..=high`, checked while the file is read so a bad
/// value is reported at its line and column.
fn bounded<'de, D: Deserializer<'de>>(
    deserializer: D,
    low: u64,
    high: u64,
) -> Result<Option<u64>, D::Error> {
    let value = u64::deserialize(deserializer)?;
    if !(low..=high).contains(&value) {
        return Err(serde::de::Error::custom(format!(
            "{value} is out of range: use {low} to {high}"
        )));
    }
    Ok(Some(value))
}

fn to_usize<E: serde::de::Error>(value: Option<u64>) -> Result<Option<usize>, E> {
    value
        .map(|v| usize::try_from(v).map_err(|_| E::custom("too large")))
        .transpose()
}

fn to_u32<E: serde::de::Error>(value: Option<u64>) -> Result<Option<u32>, E> {
    value
        .map(|v| u32::try_from(v).map_err(|_| E::custom("too large")))
        .transpose()
}

fn message_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    to_usize(bounded(d, 1024, 1 << 30)?)
}

fn batch_items<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    to_usize(bounded(d, 1, MAX_BATCH_ITEMS as u64)?)
}

/// Counts: at least 1, at most a million (no limit here needs more).
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    to_usize(bounded(d, 1, 1_000_000)?)
}

/// Reservation TTLs: one second to a week.
fn ttl<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    to_u32(bounded(d, 1, 7 * 24 * 3600)?)
}

fn retries<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    to_u32(bounded(d, 1, 100)?)
}

/// A duration in seconds (integer or decimal), more than 0 and at most a day.
fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let value = f64::deserialize(d)?;
    if !(value > 0.0 && value <= 86_400.0) {
        return Err(serde::de::Error::custom(format!(
            "{value} seconds is out of range: use more than 0 and at most 86400"
        )));
    }
    Ok(Some(Duration::from_secs_f64(value)))
}

fn work<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let value = f64::deserialize(d)?;
    if !(value.is_finite() && value >= 1.0) {
        return Err(serde::de::Error::custom(format!(
            "{value} is out of range: use a finite number of at least 1"
        )));
    }
    Ok(Some(value))
}

impl LimitsSection {
    /// `limits` with this section's values laid over it.
    ///
    /// # Errors
    /// A message naming the keys when the results do not fit together
    /// (a default page larger than the largest page, a default reservation
    /// TTL longer than the longest).
    pub fn apply(&self, limits: Limits) -> Result<Limits, String> {
        // Every field is named today; the update keeps a limit added later
        // (and not yet in the file) at its value instead of failing to build.
        #[allow(clippy::needless_update)]
        let limits = Limits {
            max_message_bytes: self.max_message_bytes.unwrap_or(limits.max_message_bytes),
            max_batch_items: self.max_batch_items.unwrap_or(limits.max_batch_items),
            default_page_size: self.default_page_size.unwrap_or(limits.default_page_size),
            max_page_size: self.max_page_size.unwrap_or(limits.max_page_size),
            request_timeout: self
                .request_timeout_seconds
                .unwrap_or(limits.request_timeout),
            concurrency_per_connection: self
                .concurrency_per_connection
                .unwrap_or(limits.concurrency_per_connection),
            watch_buffer: self.watch_buffer.unwrap_or(limits.watch_buffer),
            max_reservation_ttl_seconds: self
                .max_reservation_ttl_seconds
                .unwrap_or(limits.max_reservation_ttl_seconds),
            default_reservation_ttl_seconds: self
                .default_reservation_ttl_seconds
                .unwrap_or(limits.default_reservation_ttl_seconds),
            job_workers: self.job_workers.unwrap_or(limits.job_workers),
            job_queue: self.job_queue.unwrap_or(limits.job_queue),
            work_threads: self.work_threads.unwrap_or(limits.work_threads),
            work_lease: self.work_lease_seconds.unwrap_or(limits.work_lease),
            work_poll: self.work_poll_seconds.unwrap_or(limits.work_poll),
            max_job_work: self.max_job_work.unwrap_or(limits.max_job_work),
            shutdown_grace: self.shutdown_grace_seconds.unwrap_or(limits.shutdown_grace),
            tcp_keepalive_idle: self
                .tcp_keepalive_idle_seconds
                .unwrap_or(limits.tcp_keepalive_idle),
            tcp_keepalive_interval: self
                .tcp_keepalive_interval_seconds
                .unwrap_or(limits.tcp_keepalive_interval),
            tcp_keepalive_retries: self
                .tcp_keepalive_retries
                .unwrap_or(limits.tcp_keepalive_retries),
            tls_handshake_timeout: self
                .tls_handshake_timeout_seconds
                .unwrap_or(limits.tls_handshake_timeout),
            max_tls_handshakes: self.max_tls_handshakes.unwrap_or(limits.max_tls_handshakes),
            // Limits this section does not name keep their values.
            ..limits
        };
        if limits.default_page_size > limits.max_page_size {
            return Err(format!(
                "[limits] default_page_size ({}) is larger than max_page_size ({})",
                limits.default_page_size, limits.max_page_size
            ));
        }
        if limits.default_reservation_ttl_seconds > limits.max_reservation_ttl_seconds {
            return Err(format!(
                "[limits] default_reservation_ttl_seconds ({}) is longer than max_reservation_ttl_seconds ({})",
                limits.default_reservation_ttl_seconds, limits.max_reservation_ttl_seconds
            ));
        }
        Ok(limits)
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl ConfigFile {
    /// Parses `text`, the contents of `path` (named in errors; relative
    /// paths inside are resolved against its directory).
    ///
    /// # Errors
    /// [`ConfigError::Parse`] with line and column; [`ConfigError::Conflict`]
    /// for limits that do not fit together.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: ConfigFile = toml::from_str(text).map_err(|error| {
            let (line, column) = error
                .span()
                .map_or((1, 1), |span| line_column(text, span.start));
            ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                message: error.message().trim().to_string(),
            }
        })?;
        config
            .limits
            .apply(Limits::default())
            .map_err(|message| ConfigError::Conflict {
                path: path.to_path_buf(),
                message,
            })?;
        let base = path.parent().unwrap_or(Path::new(""));
        let resolve = |p: &mut Option<PathBuf>| {
            if let Some(relative) = p.as_ref().filter(|p| p.is_relative()) {
                *p = Some(base.join(relative));
            }
        };
        resolve(&mut config.data_dir);
        resolve(&mut config.tls.cert);
        resolve(&mut config.tls.key);
        resolve(&mut config.tls.client_ca);
        resolve(&mut config.jwt.public_key);
        resolve(&mut config.jwt.jwks);
        if config.data_dir.is_some() && config.store.is_some() {
            return Err(ConfigError::Conflict {
                path: path.to_path_buf(),
                message: "data_dir and store: give one of them (store is a PostgreSQL URL)".into(),
            });
        }
        if config.jwt.public_key.is_some() && config.jwt.jwks.is_some() {
            return Err(ConfigError::Conflict {
                path: path.to_path_buf(),
                message: "[jwt] public_key and jwks: give one of them".into(),
            });
        }
        Ok(config)
    }

    /// Reads and parses the file at `path`.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when it cannot be read or is larger than
    /// [`MAX_CONFIG_BYTES`]; otherwise as [`ConfigFile::parse`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let read_error = |detail: String| ConfigError::Read {
            path: path.to_path_buf(),
            detail,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| read_error(e.to_string()))?
            .len();
        if size > MAX_CONFIG_BYTES {
            return Err(read_error(format!(
                "{size} bytes; a configuration file may have at most {MAX_CONFIG_BYTES}"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| read_error(e.to_string()))?;
        Self::parse(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::line_column;

    #[test]
    fn line_and_column_count_characters_from_one() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 10), (2, 4));
        assert_eq!(line_column(text, 999), (3, 1));
    }
}
