//! API keys: `spk_<id>_<secret>`, where the id is 64 random bits (hex) that
//! name the key in lists, logs and revocations, and the secret is 256 random
//! bits (hex). Only the SHA-256 of the whole key is stored; a presented key
//! is checked with one hash-map lookup by id, one SHA-256 and one
//! constant-time comparison (microseconds), and an unknown id costs the same
//! hash and comparison against a dummy digest, so timing does not tell which
//! ids exist.

use super::principal::{Principal, Role};
use super::{Authenticator, Credentials, Verdict};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use subtle::ConstantTimeEq;

/// Store collection holding one [`ApiKeyRecord`] (JSON) per key id. A new
/// collection: absent, that is empty, in directories written before keys
/// existed, so it needs no layout step.
pub const COLLECTION: &str = "api_keys";

/// Every key starts with this, so a key is recognisable in a config file or
/// a leaked log, and told apart from a JWT in an `authorization` header.
pub const KEY_PREFIX: &str = "spk_";

/// The request header carrying an API key (`authorization: Bearer spk_...`
/// is accepted too).
pub const KEY_HEADER: &str = "x-api-key";

/// Random bytes in a key id (64 bits: unique among keys, not secret).
const ID_BYTES: usize = 8;
/// Random bytes in a key secret (256 bits).
const SECRET_BYTES: usize = 32;
/// Length of a whole key: prefix, id, separator, secret (hex).
const KEY_LEN: usize = KEY_PREFIX.len() + 2 * ID_BYTES + 1 + 2 * SECRET_BYTES;

/// A stored API key: who it stands for and the SHA-256 of the key. The key
/// itself is shown once, when it is created, and never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// The key's id (16 hex digits, the middle part of the key).
    pub key_id: String,
    /// The role it grants.
    pub role: Role,
    /// A dealer's stores.
    #[serde(default)]
    pub stores: Vec<String>,
    /// A warehouse's locations.
    #[serde(default)]
    pub locations: Vec<String>,
    /// A label for people ("Acme dealer portal"), free text.
    #[serde(default)]
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it (a principal id, or `offline` for `spares keys create`).
    #[serde(default)]
    pub created_by: String,
    /// When it was revoked; a revoked key authenticates nothing.
    #[serde(default)]
    pub revoked_at: Option<Timestamp>,
    /// SHA-256 of the whole key, hex.
    pub sha256: String,
}

impl ApiKeyRecord {
    /// The principal a request presenting this key acts as.
    pub fn principal(&self) -> Principal {
        Principal {
            id: principal_id(&self.key_id),
            role: self.role,
            stores: self.stores.clone(),
            locations: self.locations.clone(),
        }
    }
}

/// The principal id of the API key `key_id` (`apikey:<id>`), distinct from
/// any JWT subject or certificate name.
pub fn principal_id(key_id: &str) -> String {
    format!("apikey:{key_id}")
}

/// A freshly generated key: its id and the whole key (shown once).
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The id.
    pub key_id: String,
    /// The whole key, `spk_<id>_<secret>`.
    pub key: String,
    /// SHA-256 of `key`, hex.
    pub sha256: String,
}

/// Generates a key from the operating system's random source.
///
/// # Errors
/// The operating system could not supply random bytes.
pub fn generate() -> std::io::Result<NewKey> {
    use rand::TryRng;
    let mut bytes = [0u8; ID_BYTES + SECRET_BYTES];
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(std::io::Error::other)?;
    let key_id = hex(&bytes[..ID_BYTES]);
    let key = format!("{KEY_PREFIX}{key_id}_{}", hex(&bytes[ID_BYTES..]));
    let sha256 = hex(&digest(&key));
    Ok(NewKey {
        key_id,
        key,
        sha256,
    })
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        out[i] = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The id of a well-formed key (`spk_` + 16 hex + `_` + 64 hex), or `None`.
pub fn key_id_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    if key.len() != KEY_LEN || !key.is_ascii() {
        return None;
    }
    let (id, secret) = rest.split_at(2 * ID_BYTES);
    let secret = secret.strip_prefix('_')?;
    let hex_digits = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_digits(id) && hex_digits(secret)).then_some(id)
}

/// A key as the ring holds it.
#[derive(Debug)]
struct Entry {
    sha256: [u8; 32],
    principal: Arc<Principal>,
    active: bool,
}

/// The keys in memory, by id: what authentication reads on every request.
/// Loaded from the store when the service opens and updated after each
/// durable create or revoke.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: RwLock<HashMap<String, Entry>>,
}

impl KeyRing {
    /// A ring holding `records`.
    pub fn new(records: impl IntoIterator<Item = ApiKeyRecord>) -> Self {
        let ring = Self::default();
        for record in records {
            ring.upsert(&record);
        }
        ring
    }

    /// Adds or replaces a key (a revoked record deactivates it). A record
    /// whose digest is not 64 hex digits authenticates nothing.
    pub fn upsert(&self, record: &ApiKeyRecord) {
        let (sha256, well_formed) = match unhex(&record.sha256) {
            Some(digest) => (digest, true),
            None => ([0; 32], false),
        };
        let entry = Entry {
            sha256,
            principal: Arc::new(record.principal()),
            active: well_formed && record.revoked_at.is_none(),
        };
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(record.key_id.clone(), entry);
    }

    /// Replaces every key with `records` (the store's keys, read again
    /// after another server changed them): a key revoked there stops
    /// authenticating here.
    pub fn replace(&self, records: impl IntoIterator<Item = ApiKeyRecord>) {
        let fresh = Self::new(records);
        let keys = fresh.keys.into_inner().unwrap_or_else(|e| e.into_inner());
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
    }

    /// How many keys authenticate (not revoked).
    pub fn active(&self) -> usize {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        keys.values().filter(|e| e.active).count()
    }

    /// How many active keys have the admin role.
    pub fn active_admins(&self) -> usize {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        keys.values()
            .filter(|e| e.active && e.principal.role == Role::Admin)
            .count()
    }

    /// The principal of `key`, if it is a well-formed, known, active key
    /// whose digest matches. Costs one SHA-256 whatever the outcome.
    pub fn verify(&self, key: &str) -> Option<Arc<Principal>> {
        let presented = digest(key);
        let id = key_id_of(key)?;
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        // An unknown id is compared against a digest no key has, so it costs
        // the same as a wrong secret.
        let (stored, principal) = match keys.get(id) {
            Some(entry) if entry.active => (entry.sha256, Some(&entry.principal)),
            _ => ([0xa5; 32], None),
        };
        let equal: bool = presented.ct_eq(&stored).into();
        principal.filter(|_| equal).cloned()
    }
}

/// Authenticates API keys from the `x-api-key` header or an
/// `authorization: Bearer spk_...` header (a bearer value without the
/// `spk_` prefix is left to other authenticators, such as JWT).
#[derive(Debug, Clone)]
pub struct ApiKeyAuthenticator {
    ring: Arc<KeyRing>,
}

impl ApiKeyAuthenticator {
    /// Checks keys against `ring`.
    pub fn new(ring: Arc<KeyRing>) -> Self {
        Self { ring }
    }
}

/// The bearer token of an `authorization` header value, if it is one.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl Authenticator for ApiKeyAuthenticator {
    fn authenticate(&self, credentials: &Credentials<'_>) -> Verdict {
        let header = credentials.headers.get(KEY_HEADER);
        let presented = match header {
            Some(value) => value.to_str().ok(),
            None => credentials
                .headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(bearer)
                .filter(|token| token.starts_with(KEY_PREFIX)),
        };
        match (header, presented) {
            (None, None) => Verdict::Absent,
            (_, Some(key)) => match self.ring.verify(key) {
                Some(principal) => Verdict::Accepted(principal),
                None => Verdict::Refused,
            },
            // An x-api-key header that is not text.
            (Some(_), None) => Verdict::Refused,
        }
    }

    fn accepts(&self) -> &'static str {
        "an API key (`x-api-key: spk_...` or `authorization: Bearer spk_...`; an administrator creates keys with `spares keys create`)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(new: &NewKey, role: Role) -> ApiKeyRecord {
        ApiKeyRecord {
            key_id: new.key_id.clone(),
            role,
            stores: vec!["S1".into()],
            locations: Vec::new(),
            name: "test".into(),
            created_at: Timestamp::UNIX_EPOCH,
            created_by: "offline".into(),
            revoked_at: None,
            sha256: new.sha256.clone(),
        }
    }

    #[test]
    fn a_generated_key_verifies_and_tampering_does_not() {
        let new = generate().expect("random bytes");
        assert_eq!(new.key.len(), KEY_LEN);
        assert_eq!(key_id_of(&new.key), Some(new.key_id.as_str()));
        let ring = KeyRing::new([record(&new, Role::Dealer)]);
        let principal = ring.verify(&new.key).expect("the key verifies");
        assert_eq!(principal.role, Role::Dealer);
        assert_eq!(principal.id, format!("apikey:{}", new.key_id));
        let mut tampered = new.key.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert!(ring.verify(&tampered).is_none());
        assert!(ring.verify("spk_short").is_none());
        assert!(ring.verify("").is_none());
        let other = generate().expect("random bytes");
        assert!(ring.verify(&other.key).is_none(), "an unknown id");
    }

    #[test]
    fn a_revoked_key_authenticates_nothing() {
        let new = generate().expect("random bytes");
        let mut stored = record(&new, Role::Admin);
        let ring = KeyRing::new([stored.clone()]);
        assert_eq!(ring.active_admins(), 1);
        stored.revoked_at = Some(Timestamp::UNIX_EPOCH);
        ring.upsert(&stored);
        assert!(ring.verify(&new.key).is_none());
        assert_eq!(ring.active(), 0);
    }

    #[test]
    fn the_authenticator_reads_either_header_and_leaves_other_bearers_alone() {
        let new = generate().expect("random bytes");
        let auth = ApiKeyAuthenticator::new(Arc::new(KeyRing::new([record(&new, Role::Planner)])));
        let extensions = http::Extensions::new();
        let verdict = |name: &str, value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
            auth.authenticate(&Credentials {
                headers: &headers,
                extensions: &extensions,
            })
        };
        assert!(matches!(
            verdict(KEY_HEADER, &new.key),
            Verdict::Accepted(_)
        ));
        let bearer = format!("Bearer {}", new.key);
        assert!(matches!(
            verdict("authorization", &bearer),
            Verdict::Accepted(_)
        ));
        assert!(matches!(verdict(KEY_HEADER, "spk_nope"), Verdict::Refused));
        assert!(matches!(
            verdict("authorization", "Bearer eyJhbGciOi"),
            Verdict::Absent
        ));
        let none = http::HeaderMap::new();
        assert!(matches!(
            auth.authenticate(&Credentials {
                headers: &none,
                extensions: &extensions,
            }),
            Verdict::Absent
        ));
    }
}
