//! Bearer JWTs from an organisation's identity provider, verified against a
//! configured public key (PEM) or JWKS file: signature, issuer, audience,
//! expiry and not-before (with a small leeway). The algorithm is pinned by
//! configuration and never taken from the token, so `alg: none` and the
//! HS256-with-the-public-key confusion are refused; only asymmetric
//! algorithms can be configured.
//!
//! Claims (names configurable, defaults shown): `sub` is the caller's id,
//! `spares_role` its role (`dealer`, `ordering_app`, `planner`, `warehouse`,
//! `admin`), `spares_stores` a dealer's store ids and `spares_locations` a
//! warehouse's location ids (arrays of strings). `iss`, `aud`, `exp` and
//! `sub` are required; `nbf` is checked when present.
//!
//! Signatures are checked by ring (through [`super::jwt_ring`]), the same
//! provider rustls uses, so no second crypto library is built.

use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Longest bearer token accepted, in bytes: ID-provider tokens are a few
/// KiB; anything larger is refused before it is parsed.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Leeway on `exp` and `nbf` when none is configured: clocks of the
/// identity provider and the server may differ by this much.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;

/// Where the verification keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKeySource {
    /// One public key, PEM (`-----BEGIN PUBLIC KEY-----`, or an RSA
    /// public key).
    PublicKeyPem(PathBuf),
    /// A JWKS file (`{"keys": [...]}`); a token's `kid` picks the key.
    Jwks(PathBuf),
}

/// How bearer JWTs are verified and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// The one algorithm accepted (RS256/384/512, PS256/384/512, ES256,
    /// ES384 or EdDSA). Tokens naming another are refused.
    pub algorithm: Algorithm,
    /// The verification keys.
    pub keys: JwtKeySource,
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud` (the token's `aud` may be a list containing it).
    pub audience: String,
    /// Leeway on `exp` and `nbf`, in seconds.
    pub leeway_seconds: u64,
    /// Claim holding the role name.
    pub role_claim: String,
    /// Claim holding a dealer's store ids.
    pub stores_claim: String,
    /// Claim holding a warehouse's location ids.
    pub locations_claim: String,
}

impl JwtSettings {
    /// Settings with the default claim names and leeway.
    pub fn new(algorithm: Algorithm, keys: JwtKeySource, issuer: &str, audience: &str) -> Self {
        Self {
            algorithm,
            keys,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
            role_claim: "spares_role".into(),
            stores_claim: "spares_stores".into(),
            locations_claim: "spares_locations".into(),
        }
    }
}

/// Why the JWT settings cannot be used. Each names the file or value.
#[derive(Debug, thiserror::Error)]
pub enum JwtConfigError {
    /// The key file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file holds no usable key for the algorithm.
    #[error("{}: {detail}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The algorithm is not an asymmetric one.
    #[error(
        "JWT algorithm {0:?} is not accepted: use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA (a shared secret would let anyone holding it mint tokens)"
    )]
    Algorithm(Algorithm),
    /// Issuer or audience is empty.
    #[error("JWT {0} must not be empty")]
    Empty(&'static str),
}

/// Why a token was refused. The caller is told only "invalid credentials";
/// this is for the server's log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts, bad JSON, an unknown `alg` (including
    /// `none`), or larger than [`MAX_TOKEN_BYTES`].
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header names an algorithm other than the configured one.
    #[error("token algorithm {found} is not the configured {expected}")]
    Algorithm {
        /// The configured algorithm.
        expected: String,
        /// The token's.
        found: String,
    },
    /// No configured key matches the token's `kid`.
    #[error("no key for kid {0:?}")]
    UnknownKey(Option<String>),
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// `exp` (plus leeway) has passed.
    #[error("expired")]
    Expired,
    /// `nbf` (minus leeway) is still ahead.
    #[error("not yet valid")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    Issuer,
    /// `aud` does not contain the configured audience.
    #[error("wrong audience")]
    Audience,
    /// A required claim is missing or has the wrong type.
    #[error("claim {0}: missing or of the wrong type")]
    Claim(String),
}

/// What a verified token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// `sub`.
    pub subject: String,
    /// The role claim, as written (the caller maps it to a role).
    pub role: String,
    /// The stores claim (empty when absent).
    pub stores: Vec<String>,
    /// The locations claim (empty when absent).
    pub locations: Vec<String>,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: i64,
}

/// Verifies bearer JWTs with fixed settings and keys.
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    settings: JwtSettings,
    validation: Validation,
    /// Keys by `kid`; a key without one is stored under `None`.
    keys: HashMap<Option<String>, DecodingKey>,
}

/// The registered claims every token must carry, typed: a string `exp` or
/// `nbf` fails to deserialize and the token is refused (never skipped).
#[derive(Deserialize)]
struct Registered {
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    sub: String,
}

fn is_asymmetric(algorithm: Algorithm) -> bool {
    !matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    )
}

impl JwtVerifier {
    /// Reads the keys and prepares verification.
    ///
    /// # Errors
    /// [`JwtConfigError`] for an HMAC algorithm, an empty issuer or
    /// audience, or a key file that cannot be read or holds no key usable
    /// with the algorithm.
    pub fn load(settings: JwtSettings) -> Result<Self, JwtConfigError> {
        super::jwt_ring::install();
        if !is_asymmetric(settings.algorithm) {
            return Err(JwtConfigError::Algorithm(settings.algorithm));
        }
        if settings.issuer.trim().is_empty() {
            return Err(JwtConfigError::Empty("issuer"));
        }
        if settings.audience.trim().is_empty() {
            return Err(JwtConfigError::Empty("audience"));
        }
        let keys = match &settings.keys {
            JwtKeySource::PublicKeyPem(path) => {
                HashMap::from([(None, pem_key(path, settings.algorithm)?)])
            }
            JwtKeySource::Jwks(path) => jwks_keys(path, settings.algorithm)?,
        };
        let mut validation = Validation::new(settings.algorithm);
        // Time is checked below against the caller's clock, on typed claims.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.required_spec_claims = ["exp", "iss", "aud", "sub"]
            .into_iter()
            .map(String::from)
            .collect();
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        Ok(Self {
            settings,
            validation,
            keys,
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &JwtSettings {
        &self.settings
    }

    /// Verifies `token` at `now` (seconds since the Unix epoch).
    ///
    /// # Errors
    /// A [`JwtError`] saying why the token is refused.
    pub fn verify(&self, token: &str, now: i64) -> Result<TokenClaims, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::Malformed(format!(
                "longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| JwtError::Malformed(e.to_string()))?;
        if header.alg != self.settings.algorithm {
            return Err(JwtError::Algorithm {
                expected: format!("{:?}", self.settings.algorithm),
                found: format!("{:?}", header.alg),
            });
        }
        let key = self
            .keys
            .get(&header.kid)
            .or_else(|| match (&header.kid, self.keys.len()) {
                // One configured key without a kid serves tokens with any kid.
                (Some(_), 1) => self.keys.get(&None),
                _ => None,
            })
            .ok_or_else(|| JwtError::UnknownKey(header.kid.clone()))?;
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            key,
            &self.validation,
        )
        .map_err(map_error)?;
        self.claims(data.claims, now)
    }

    fn claims(
        &self,
        claims: serde_json::Map<String, serde_json::Value>,
        now: i64,
    ) -> Result<TokenClaims, JwtError> {
        let object = serde_json::Value::Object(claims);
        let registered: Registered = serde_json::from_value(object.clone())
            .map_err(|e| JwtError::Claim(format!("exp/nbf/sub ({e})")))?;
        let leeway = i64::try_from(self.settings.leeway_seconds).unwrap_or(i64::MAX);
        if now > registered.exp.saturating_add(leeway) {
            return Err(JwtError::Expired);
        }
        if registered
            .nbf
            .is_some_and(|nbf| nbf.saturating_sub(leeway) > now)
        {
            return Err(JwtError::NotYetValid);
        }
        if registered.sub.trim().is_empty() {
            return Err(JwtError::Claim("sub".into()));
        }
        let role = match object.get(&self.settings.role_claim) {
            Some(serde_json::Value::String(role)) => role.clone(),
            _ => return Err(JwtError::Claim(self.settings.role_claim.clone())),
        };
        Ok(TokenClaims {
            subject: registered.sub,
            role,
            stores: strings(&object, &self.settings.stores_claim)?,
            locations: strings(&object, &self.settings.locations_claim)?,
            expires_at: registered.exp,
        })
    }
}

/// An optional claim holding a list of strings (a single string is taken
/// as a list of one).
fn strings(object: &serde_json::Value, claim: &str) -> Result<Vec<String>, JwtError> {
    match object.get(claim) {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::String(one)) => Ok(vec![one.clone()]),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| JwtError::Claim(claim.to_string()))
            })
            .collect(),
        Some(_) => Err(JwtError::Claim(claim.to_string())),
    }
}

fn map_error(error: jsonwebtoken::errors::Error) -> JwtError {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => JwtError::Signature,
        ErrorKind::InvalidIssuer => JwtError::Issuer,
        ErrorKind::InvalidAudience => JwtError::Audience,
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::ImmatureSignature => JwtError::NotYetValid,
        ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
            JwtError::Claim(claim.clone())
        }
        ErrorKind::InvalidAlgorithm => JwtError::Algorithm {
            expected: String::new(),
            found: "another".into(),
        },
        _ => JwtError::Malformed(error.to_string()),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, JwtConfigError> {
    std::fs::read(path).map_err(|source| JwtConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn key_error(path: &Path, detail: impl std::fmt::Display) -> JwtConfigError {
    JwtConfigError::Key {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    }
}

fn pem_key(path: &Path, algorithm: Algorithm) -> Result<DecodingKey, JwtConfigError> {
    use jsonwebtoken::AlgorithmFamily;
    let pem = read(path)?;
    let key = match algorithm.family() {
        AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(&pem),
        AlgorithmFamily::Ec => DecodingKey::from_ec_pem(&pem),
        AlgorithmFamily::Ed => DecodingKey::from_ed_pem(&pem),
        AlgorithmFamily::Hmac => return Err(JwtConfigError::Algorithm(algorithm)),
    };
    key.map_err(|e| {
        key_error(
            path,
            format!("no {:?} public key in PEM: {e}", algorithm.family()),
        )
    })
}

fn jwks_keys(
    path: &Path,
    algorithm: Algorithm,
) -> Result<HashMap<Option<String>, DecodingKey>, JwtConfigError> {
    let set: JwkSet = serde_json::from_slice(&read(path)?)
        .map_err(|e| key_error(path, format!("not a JWKS file: {e}")))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let common = &jwk.common;
        if matches!(common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        if let Some(alg) = common.key_algorithm
            && Algorithm::try_from(alg).ok() != Some(algorithm)
        {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        if key.family() != algorithm.family() {
            continue;
        }
        keys.insert(common.key_id.clone(), key);
    }
    if keys.is_empty() {
        return Err(key_error(
            path,
            format!("no signing key for {algorithm:?} in the JWKS"),
        ));
    }
    Ok(keys)
}
