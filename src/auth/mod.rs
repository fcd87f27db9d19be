//! Who may do what. A request is authenticated by the first
//! [`Authenticator`] that recognises its credentials (API keys today; bearer
//! JWTs and client certificates plug in the same way), which yields a
//! [`Principal`]; the one authorisation table ([`table`]) says which roles
//! may call each RPC; handlers narrow it by scope (a dealer's stores, a
//! warehouse's locations, a job's owner). The tower layer that applies all
//! this to every request is `api::gate`.
//!
//! Nothing here knows protobuf; the gRPC codes of [`AuthError`] are chosen
//! in `api::status`.

pub mod keys;
pub mod principal;
pub mod rate;
pub mod table;

pub use principal::{Principal, Role};
use std::sync::Arc;

/// What an authenticator sees of a request: its headers (metadata) and its
/// extensions (where the transport puts, e.g., the peer's TLS certificates).
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// The request headers.
    pub headers: &'a http::HeaderMap,
    /// The request extensions.
    pub extensions: &'a http::Extensions,
}

/// An authenticator's answer about one request.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// No credentials of this kind: ask the next authenticator.
    Absent,
    /// Valid credentials: the caller.
    Accepted(Arc<Principal>),
    /// Credentials of this kind that do not verify (unknown, revoked,
    /// expired, forged). The request is refused without asking further.
    Refused,
}

/// One kind of credential (API key, bearer JWT, client certificate).
/// Implementations must be cheap: they run on every request.
pub trait Authenticator: Send + Sync + std::fmt::Debug + 'static {
    /// Looks at the request's credentials.
    fn authenticate(&self, credentials: &Credentials<'_>) -> Verdict;
}

/// The authenticators of a server, asked in order.
#[derive(Debug, Clone, Default)]
pub struct Authenticators(Vec<Arc<dyn Authenticator>>);

impl Authenticators {
    /// No authenticator yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `authenticator` after those already added.
    pub fn with(mut self, authenticator: Arc<dyn Authenticator>) -> Self {
        self.0.push(authenticator);
        self
    }

    /// The caller of a request: the first authenticator that does not answer
    /// [`Verdict::Absent`] decides.
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`] when no credentials were presented or
    /// the presented ones do not verify (the error does not say which).
    pub fn authenticate(&self, credentials: &Credentials<'_>) -> Result<Arc<Principal>, AuthError> {
        for authenticator in &self.0 {
            match authenticator.authenticate(credentials) {
                Verdict::Absent => continue,
                Verdict::Accepted(principal) => return Ok(principal),
                Verdict::Refused => return Err(AuthError::Unauthenticated),
            }
        }
        Err(AuthError::Unauthenticated)
    }
}

/// Why a request was refused before it reached its handler.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthError {
    /// No valid credentials (maps to `UNAUTHENTICATED`). Deliberately one
    /// message for missing, malformed, unknown and revoked credentials, so a
    /// caller learns nothing about which keys exist.
    #[error(
        "missing or invalid credentials: send an API key in the `x-api-key` header (or `authorization: Bearer <key>`); an administrator creates keys with `spares keys create`"
    )]
    Unauthenticated,
    /// The caller's role may not call this RPC (maps to `PERMISSION_DENIED`).
    #[error("role {role} may not call {rpc}")]
    PermissionDenied {
        /// The caller's role.
        role: Role,
        /// The RPC, as `spares.v1.Service/Method`.
        rpc: String,
    },
    /// The caller has used up its request budget (maps to
    /// `RESOURCE_EXHAUSTED` with a `retry-after` hint).
    #[error(
        "rate limit of {principal} exceeded: {rate_per_second} requests a second (burst {burst}); retry after {retry_after_ms} ms"
    )]
    RateLimited {
        /// The caller.
        principal: String,
        /// The sustained rate allowed.
        rate_per_second: f64,
        /// The burst allowed.
        burst: u32,
        /// How long until one request is allowed again, in milliseconds.
        retry_after_ms: u64,
    },
}
