//! Bearer JWTs as credentials: `authorization: Bearer <JWT>` verified by
//! [`crate::identity::jwt::JwtVerifier`] against the injected clock, and the
//! token's claims turned into a [`Principal`] (`jwt:<sub>`, the role claim,
//! the stores and locations claims). A bearer value that is an API key
//! (`spk_...`) is left to the API-key authenticator.
//!
//! The verification keys can be replaced while serving ([`JwtAuthenticator::reload`]),
//! so an identity provider's key rotation needs no restart: publish the new
//! key next to the old one in the JWKS file, reload, and drop the old key
//! once no token signed by it is still valid.
//!
//! A signature check (ES256, RS256) costs tens of microseconds, more than the
//! promise it guards, and a client presents the same token on every call
//! until it expires. So a token that verified is remembered, by the SHA-256
//! of its text, with its principal: the same token again is accepted without
//! a signature check while the clock is at or after the instant it verified
//! and at or before its `exp` plus the leeway (the checks verification made
//! hold for every such instant). A reload forgets every remembered token, so
//! a key taken out of the file stops working at once. Refused tokens are not
//! remembered. At most [`MAX_REMEMBERED_TOKENS`] are kept.

use super::keys::{KEY_PREFIX, bearer};
use super::principal::{Principal, Role};
use super::{Authenticator, Credentials, Verdict};
use crate::clock::Clock;
use crate::identity::jwt::{JwtConfigError, JwtKeySource, JwtSettings, JwtVerifier};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

/// Most verified tokens remembered at once; when full, expired ones are
/// dropped, and if none is, all are forgotten.
pub const MAX_REMEMBERED_TOKENS: usize = 4096;

/// The principal-id prefix of a JWT subject, so `jwt:alice` can never be
/// mistaken for an API key (`apikey:`) or a certificate (`cert:`).
pub const JWT_ID_PREFIX: &str = "jwt:";

/// When the key file was last read (modification time and size).
type Stamp = Option<(SystemTime, u64)>;

/// A token that verified: its principal, the instant it verified and the
/// last instant it stays valid (`exp` plus the leeway), in Unix seconds.
struct Remembered {
    principal: Arc<Principal>,
    verified_at: i64,
    valid_until: i64,
}

/// Authenticates bearer JWTs.
pub struct JwtAuthenticator {
    verifier: RwLock<Arc<JwtVerifier>>,
    loaded: Mutex<Stamp>,
    clock: Arc<dyn Clock>,
    /// Verified tokens by the SHA-256 of their text (see the module docs).
    remembered: Mutex<HashMap<[u8; 32], Remembered>>,
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("settings", self.current().settings())
            .finish_non_exhaustive()
    }
}

fn key_path(settings: &JwtSettings) -> &Path {
    match &settings.keys {
        JwtKeySource::PublicKeyPem(path) | JwtKeySource::Jwks(path) => path,
    }
}

fn stamp(path: &Path) -> Stamp {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

impl JwtAuthenticator {
    /// Reads the keys of `settings`; tokens are checked against `clock`.
    ///
    /// # Errors
    /// As [`JwtVerifier::load`]: an HMAC algorithm, an empty issuer or
    /// audience, or a key file that cannot be read or holds no usable key.
    pub fn load(settings: JwtSettings, clock: Arc<dyn Clock>) -> Result<Self, JwtConfigError> {
        let loaded = stamp(key_path(&settings));
        let verifier = JwtVerifier::load(settings)?;
        Ok(Self {
            verifier: RwLock::new(Arc::new(verifier)),
            loaded: Mutex::new(loaded),
            clock,
            remembered: Mutex::new(HashMap::new()),
        })
    }

    fn current(&self) -> Arc<JwtVerifier> {
        self.verifier
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the key file again and, if it holds usable keys, verifies with
    /// them from now on. On error the previous keys stay in force.
    ///
    /// # Errors
    /// As [`JwtAuthenticator::load`].
    pub fn reload(&self) -> Result<(), JwtConfigError> {
        let settings = self.current().settings().clone();
        let loaded = stamp(key_path(&settings));
        let verifier = JwtVerifier::load(settings)?;
        *self
            .verifier
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(verifier);
        *self.loaded.lock().unwrap_or_else(PoisonError::into_inner) = loaded;
        self.remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        Ok(())
    }

    /// Reloads if the key file's modification time or size changed since
    /// the last load; returns whether it reloaded.
    ///
    /// # Errors
    /// As [`JwtAuthenticator::load`]; the file is tried again next time.
    pub fn reload_if_changed(&self) -> Result<bool, JwtConfigError> {
        let now = stamp(key_path(self.current().settings()));
        if *self.loaded.lock().unwrap_or_else(PoisonError::into_inner) == now {
            return Ok(false);
        }
        self.reload().map(|()| true)
    }

    /// The principal a token stands for at the clock's now.
    ///
    /// # Errors
    /// A message for the server's log (never shown to the caller): why the
    /// token does not verify, or a role claim naming no role.
    pub fn principal(&self, token: &str) -> Result<Arc<Principal>, String> {
        let now = self.clock.now().as_second();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(known) = self
            .remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&digest)
            && known.verified_at <= now
            && now <= known.valid_until
        {
            return Ok(known.principal.clone());
        }
        let verifier = self.current();
        let claims = verifier.verify(token, now).map_err(|e| e.to_string())?;
        let role = claims.role.parse::<Role>().map_err(|e| e.to_string())?;
        let principal = Arc::new(Principal {
            id: format!("{JWT_ID_PREFIX}{}", claims.subject),
            role,
            stores: claims.stores,
            locations: claims.locations,
        });
        let leeway = i64::try_from(verifier.settings().leeway_seconds).unwrap_or(i64::MAX);
        let mut remembered = self
            .remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A reload while this token verified with the old keys must not leave
        // it remembered under the new ones.
        if Arc::ptr_eq(&verifier, &self.current()) {
            if remembered.len() >= MAX_REMEMBERED_TOKENS {
                remembered.retain(|_, r| now <= r.valid_until);
                if remembered.len() >= MAX_REMEMBERED_TOKENS {
                    remembered.clear();
                }
            }
            remembered.insert(
                digest,
                Remembered {
                    principal: principal.clone(),
                    verified_at: now,
                    valid_until: claims.expires_at.saturating_add(leeway),
                },
            );
        }
        Ok(principal)
    }

    /// How many verified tokens are remembered now.
    pub fn remembered_tokens(&self) -> usize {
        self.remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Authenticator for JwtAuthenticator {
    fn authenticate(&self, credentials: &Credentials<'_>) -> Verdict {
        let Some(value) = credentials.headers.get(http::header::AUTHORIZATION) else {
            return Verdict::Absent;
        };
        let Some(token) = value.to_str().ok().and_then(bearer) else {
            return Verdict::Refused;
        };
        if token.starts_with(KEY_PREFIX) {
            return Verdict::Absent;
        }
        match self.principal(token) {
            Ok(principal) => Verdict::Accepted(principal),
            Err(reason) => {
                tracing::info!(%reason, "bearer JWT refused");
                Verdict::Refused
            }
        }
    }

    fn accepts(&self) -> &'static str {
        "a bearer JWT from the configured identity provider (`authorization: Bearer <JWT>`)"
    }
}
