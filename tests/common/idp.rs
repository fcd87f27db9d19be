//! A test identity provider: a P-256 key made in the test (rcgen), its
//! public key as a PEM file, and ES256 bearer JWTs signed with ring, with
//! whatever claims a test wants (expired, another audience, forged).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};
use spares::identity::jwt::{JwtKeySource, JwtSettings};
use std::path::{Path, PathBuf};

/// The issuer of every test token.
pub const ISSUER: &str = "https://idp.example.test";
/// The audience the test servers require.
pub const AUDIENCE: &str = "spares";

/// The provider: its signing key and public key file.
pub struct Idp {
    pair: EcdsaKeyPair,
    /// The public key, PEM, as written to [`Idp::public_key`].
    pub public_pem: String,
    /// Where the public key is.
    pub public_key: PathBuf,
}

impl Idp {
    /// A fresh key; the public key is written to `dir/idp.pem`.
    pub fn new(dir: &Path) -> Self {
        let generated = rcgen::KeyPair::generate().unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &generated.serialize_der(),
            &SystemRandom::new(),
        )
        .unwrap();
        let public_pem = generated.public_key_pem();
        let public_key = dir.join("idp.pem");
        std::fs::write(&public_key, &public_pem).unwrap();
        Self {
            pair,
            public_pem,
            public_key,
        }
    }

    /// The server's settings for this provider (ES256, [`ISSUER`], [`AUDIENCE`]).
    pub fn settings(&self) -> JwtSettings {
        JwtSettings::new(
            Algorithm::ES256,
            JwtKeySource::PublicKeyPem(self.public_key.clone()),
            ISSUER,
            AUDIENCE,
        )
    }

    /// `claims` signed with this provider's key.
    pub fn sign(&self, claims: &Value) -> String {
        sign_with(&json!({"alg": "ES256", "typ": "JWT"}), claims, |message| {
            self.pair
                .sign(&SystemRandom::new(), message)
                .unwrap()
                .as_ref()
                .to_vec()
        })
    }

    /// A good token for `subject` with `role` and `stores`, valid for ten
    /// minutes after `now` (seconds since the epoch).
    pub fn token(&self, subject: &str, role: &str, stores: &[&str], now: i64) -> String {
        self.sign(&claims(subject, role, stores, now))
    }
}

/// The claims of a good token valid for ten minutes after `now`.
pub fn claims(subject: &str, role: &str, stores: &[&str], now: i64) -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": subject,
        "iat": now - 60, "exp": now + 600,
        "spares_role": role, "spares_stores": stores,
    })
}

/// `header.claims.signature`, the signature made by `sign` over
/// `header.claims`.
pub fn sign_with(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = URL_SAFE_NO_PAD.encode(sign(message.as_bytes()));
    format!("{message}.{signature}")
}
