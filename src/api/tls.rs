//! TLS for the gRPC server: rustls with its ring provider (no OpenSSL, no
//! aws-lc), the certificate chain and key read from PEM files, optional
//! client-certificate verification (mutual TLS), and reloading the files
//! without a restart.
//!
//! The server does its own handshakes (see [`tls_incoming`]) rather than
//! handing tonic a fixed certificate, so a reload takes effect for the next
//! connection while open connections keep the certificate they started with.

use crate::config::Limits;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};

/// Where the server's TLS material lives. All three are PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain, leaf first.
    pub cert: PathBuf,
    /// The server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// With this, every client must present a certificate issued by one of
    /// these CAs (mutual TLS); without it, clients present none.
    pub client_ca: Option<PathBuf>,
}

/// Why the TLS material could not be loaded. Each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file holds no PEM certificate, or a malformed one.
    #[error("{}: {detail}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The file holds no PEM private key, or a malformed one.
    #[error("{}: {detail}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// rustls refused the combination (a key that does not match the
    /// certificate, a client CA it cannot use).
    #[error("{}: {detail}", path.display())]
    Config {
        /// The file the refusal is about.
        path: PathBuf,
        /// rustls's reason.
        detail: String,
    },
}

/// What a file looked like when last loaded; a change means "reload".
type Stamp = Vec<Option<(SystemTime, u64)>>;

/// The server's TLS configuration, swappable while serving.
#[derive(Debug)]
pub struct ServerTls {
    files: TlsFiles,
    current: RwLock<Arc<rustls::ServerConfig>>,
    loaded: Mutex<Stamp>,
}

impl ServerTls {
    /// Reads the files and builds the configuration.
    ///
    /// # Errors
    /// A [`TlsError`] naming the file that is missing, unreadable, holds no
    /// PEM certificate or key, or that rustls refuses (a key that does not
    /// match the certificate).
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let stamp = stamp(&files);
        let config = build(&files)?;
        Ok(Self {
            files,
            current: RwLock::new(Arc::new(config)),
            loaded: Mutex::new(stamp),
        })
    }

    /// Reads the files again and, if they make a valid configuration, uses
    /// it for every connection from now on. On error the previous
    /// configuration stays in force, so a half-written rotation never takes
    /// the server down.
    ///
    /// # Errors
    /// As [`ServerTls::load`].
    pub fn reload(&self) -> Result<(), TlsError> {
        let stamp = stamp(&self.files);
        let config = build(&self.files)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
        *self.loaded.lock().unwrap_or_else(PoisonError::into_inner) = stamp;
        Ok(())
    }

    /// Reloads if any file's modification time or size changed since the
    /// last load. Returns whether it reloaded.
    ///
    /// # Errors
    /// As [`ServerTls::load`]; the files are tried again at the next call.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = stamp(&self.files);
        if *self.loaded.lock().unwrap_or_else(PoisonError::into_inner) == now {
            return Ok(false);
        }
        self.reload().map(|()| true)
    }

    /// Checks the files every `interval` and reloads when they change;
    /// failures are logged and the old configuration kept. Runs forever:
    /// spawn it and drop the handle with the server.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            let tls = self.clone();
            match tokio::task::spawn_blocking(move || tls.reload_if_changed()).await {
                Ok(Ok(true)) => tracing::info!("TLS certificate files changed: reloaded"),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "TLS files changed but cannot be used; keeping the previous certificate")
                }
                _ => {}
            }
        }
    }

    /// The files this configuration is read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Whether clients must present a certificate (mutual TLS).
    pub fn requires_client_certificate(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// An acceptor with the configuration in force now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

fn stamp(files: &TlsFiles) -> Stamp {
    [
        Some(&files.cert),
        Some(&files.key),
        files.client_ca.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|path| {
        std::fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    })
    .collect()
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Every PEM certificate in `path`, in order.
///
/// # Errors
/// [`TlsError::Read`] or [`TlsError::Certificate`] (none found, or one
/// malformed).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate {
            path: path.to_path_buf(),
            detail: format!("malformed PEM certificate: {e}"),
        })?;
    if certificates.is_empty() {
        return Err(TlsError::Certificate {
            path: path.to_path_buf(),
            detail: "no PEM certificate (-----BEGIN CERTIFICATE-----) found".into(),
        });
    }
    Ok(certificates)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Key {
        path: path.to_path_buf(),
        detail: format!("no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
    })
}

fn config_error(path: &Path, error: impl std::fmt::Display) -> TlsError {
    TlsError::Config {
        path: path.to_path_buf(),
        detail: error.to_string(),
    }
}

/// The rustls configuration for `files`: ring only, TLS 1.2 and 1.3, ALPN
/// `h2` (gRPC clients such as grpcio insist on it).
fn build(files: &TlsFiles) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certificates = read_certificates(&files.cert)?;
    let key = read_key(&files.key)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(&files.cert, e))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in read_certificates(path)? {
                roots.add(certificate).map_err(|e| config_error(path, e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| config_error(path, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certificates, key)
        .map_err(|e| config_error(&files.key, e))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Turns accepted TCP connections into TLS connections. Handshakes run
/// concurrently, each bounded by [`Limits::tls_handshake_timeout`], and at
/// most [`Limits::max_tls_handshakes`] at once (past that a new connection
/// is closed), so slow or silent clients cannot stall the accept loop or
/// pile up. A failed handshake (a plaintext client, an unknown or missing
/// client certificate) closes that connection and is logged at debug level.
/// The stream ends, and the listener is dropped, when the server stops
/// reading it.
pub fn tls_incoming<S>(
    accepted: S,
    tls: Arc<ServerTls>,
    limits: &Limits,
) -> ReceiverStream<io::Result<TlsStream<TcpStream>>>
where
    S: Stream<Item = io::Result<TcpStream>> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(64);
    let timeout = limits.tls_handshake_timeout;
    let handshakes = Arc::new(Semaphore::new(limits.max_tls_handshakes.max(1)));
    tokio::spawn(async move {
        let mut accepted = pin!(accepted);
        loop {
            let next = tokio::select! {
                () = sender.closed() => break,
                next = accepted.next() => next,
            };
            let stream = match next {
                None => break,
                Some(Err(error)) => {
                    if sender.send(Err(error)).await.is_err() {
                        break;
                    }
                    continue;
                }
                Some(Ok(stream)) => stream,
            };
            let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                tracing::warn!("too many TLS handshakes in progress; closing a new connection");
                continue;
            };
            let acceptor = tls.acceptor();
            let sender = sender.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let peer = stream.peer_addr().ok();
                match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let _ = sender.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => tracing::debug!(?peer, %error, "TLS handshake failed"),
                    Err(_) => tracing::debug!(?peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}
