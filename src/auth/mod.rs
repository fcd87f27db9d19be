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

pub mod bearer;
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

    /// The credential this authenticator accepts and how to present it, for
    /// the refusal of a request that presented none (it says what is
    /// missing, never which keys, subjects or certificates exist).
    fn accepts(&self) -> &'static str;
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
    /// [`AuthError::MissingCredentials`] (naming what this server accepts)
    /// when no credentials were presented; [`AuthError::Unauthenticated`]
    /// when the presented ones do not verify (it does not say why).
    pub fn authenticate(&self, credentials: &Credentials<'_>) -> Result<Arc<Principal>, AuthError> {
        for authenticator in &self.0 {
            match authenticator.authenticate(credentials) {
                Verdict::Absent => continue,
                Verdict::Accepted(principal) => return Ok(principal),
                Verdict::Refused => return Err(AuthError::Unauthenticated),
            }
        }
        Err(AuthError::MissingCredentials {
            accepted: self.accepted(),
        })
    }

    /// What the authenticators accept, as one sentence fragment.
    pub fn accepted(&self) -> String {
        let kinds: Vec<&str> = self.0.iter().map(|a| a.accepts()).collect();
        match kinds.as_slice() {
            [] => "nothing: authentication is on and no credential kind is configured".into(),
            [one] => (*one).to_string(),
            [first @ .., last] => format!("{}, or {last}", first.join(", ")),
        }
    }

    /// How many authenticators there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a request was refused before it reached its handler.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthError {
    /// Credentials that do not verify (maps to `UNAUTHENTICATED`).
    /// Deliberately one message for malformed, unknown, revoked, expired
    /// and forged credentials, so a caller learns nothing about which keys
    /// exist.
    #[error(
        "invalid credentials: the API key, bearer token or client certificate presented does not verify (unknown, revoked, expired, for another audience or forged)"
    )]
    Unauthenticated,
    /// No credentials at all (maps to `UNAUTHENTICATED`): the message names
    /// the kinds of credential this server accepts.
    #[error("no credentials: this server accepts {accepted}")]
    MissingCredentials {
        /// The credential kinds accepted, and how to present them.
        accepted: String,
    },
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
