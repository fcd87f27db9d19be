//! Bearer JWT verification against a configured public key (PEM) or JWKS
//! file: a good token is accepted and its claims read; expired, not yet
//! valid, wrong audience, wrong issuer, bad signature, `alg: none`, HS256
//! signed with the public key, another algorithm, an unknown `kid`,
//! mistyped time claims and a missing role are all refused. Keys are made
//! in the test (rcgen, P-256) and tokens signed with ring.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use jsonwebtoken::Algorithm;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};
use spares::auth::bearer::JwtAuthenticator;
use spares::clock::ManualClock;
use spares::identity::jwt::{JwtError, JwtKeySource, JwtSettings, JwtVerifier};
use std::path::Path;
use std::sync::Arc;

/// The verifier's "now" in every test (2027-01-15).
const NOW: i64 = 1_800_000_000;
const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "spares";

/// A P-256 signing key and its public key as PEM.
struct SigningKey {
    pair: EcdsaKeyPair,
    public_pem: String,
}

impl SigningKey {
    fn new() -> Self {
        let generated = rcgen::KeyPair::generate().unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &generated.serialize_der(),
            &SystemRandom::new(),
        )
        .unwrap();
        Self {
            pair,
            public_pem: generated.public_key_pem(),
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .unwrap()
            .as_ref()
            .to_vec()
    }

    /// The public key as a JWK.
    fn jwk(&self, kid: &str) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
    }
}

/// `header.claims.signature`, signed by `sign` over `header.claims`.
fn token(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = URL_SAFE_NO_PAD.encode(sign(message.as_bytes()));
    format!("{message}.{signature}")
}

fn good_claims() -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice@dealer-one",
        "exp": NOW + 600, "iat": NOW - 60,
        "spares_role": "dealer", "spares_stores": ["S1", "S2"],
    })
}

fn es256() -> Value {
    json!({"alg": "ES256", "typ": "JWT"})
}

fn pem_verifier(dir: &Path, key: &SigningKey) -> JwtVerifier {
    let path = dir.join("idp.pem");
    std::fs::write(&path, &key.public_pem).unwrap();
    JwtVerifier::load(JwtSettings::new(
        Algorithm::ES256,
        JwtKeySource::PublicKeyPem(path),
        ISSUER,
        AUDIENCE,
    ))
    .unwrap()
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

#[test]
fn a_good_token_is_accepted_and_its_claims_read() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::new();
    let verifier = pem_verifier(dir.path(), &key);
    let claims = verifier
        .verify(&token(&es256(), &good_claims(), |m| key.sign(m)), NOW)
        .unwrap();
    assert_eq!(claims.subject, "alice@dealer-one");
    assert_eq!(claims.role, "dealer");
    assert_eq!(claims.stores, ["S1", "S2"]);
    assert!(claims.locations.is_empty());
    assert_eq!(claims.expires_at, NOW + 600);

    // `aud` may be a list holding the audience; within the leeway (30 s)
    // a just-expired token still passes.
    let listed = with(good_claims(), "aud", json!(["other", AUDIENCE]));
    assert!(
        verifier
            .verify(&token(&es256(), &listed, |m| key.sign(m)), NOW)
            .is_ok()
    );
    let just_expired = with(good_claims(), "exp", json!(NOW - 10));
    assert!(
        verifier
            .verify(&token(&es256(), &just_expired, |m| key.sign(m)), NOW)
            .is_ok()
    );
}

#[test]
fn expired_wrong_audience_wrong_issuer_and_not_yet_valid_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::new();
    let verifier = pem_verifier(dir.path(), &key);
    let check = |claims: Value| verifier.verify(&token(&es256(), &claims, |m| key.sign(m)), NOW);
    assert_eq!(
        check(with(good_claims(), "exp", json!(NOW - 3600))),
        Err(JwtError::Expired)
    );
    assert_eq!(
        check(with(good_claims(), "aud", json!("someone-else"))),
        Err(JwtError::Audience)
    );
    assert_eq!(
        check(with(good_claims(), "iss", json!("https://evil.example"))),
        Err(JwtError::Issuer)
    );
    assert_eq!(
        check(with(good_claims(), "nbf", json!(NOW + 3600))),
        Err(JwtError::NotYetValid)
    );
    // Time claims of the wrong type are refused, never skipped.
    assert!(matches!(
        check(with(good_claims(), "nbf", json!("99999999999"))),
        Err(JwtError::Claim(_))
    ));
    assert!(matches!(
        check(with(good_claims(), "exp", json!("never"))),
        Err(JwtError::Claim(_))
    ));
    // Required claims.
    for claim in ["exp", "iss", "aud", "sub", "spares_role"] {
        let mut claims = good_claims();
        claims.as_object_mut().unwrap().remove(claim);
        assert!(check(claims).is_err(), "without {claim}");
    }
    assert!(matches!(
        check(with(good_claims(), "spares_stores", json!([1, 2]))),
        Err(JwtError::Claim(_))
    ));
}

#[test]
fn bad_signatures_alg_none_and_algorithm_confusion_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::new();
    let verifier = pem_verifier(dir.path(), &key);

    // Signed by another key.
    let stranger = SigningKey::new();
    assert_eq!(
        verifier.verify(&token(&es256(), &good_claims(), |m| stranger.sign(m)), NOW),
        Err(JwtError::Signature)
    );
    // A good token whose claims were changed after signing.
    let good = token(&es256(), &good_claims(), |m| key.sign(m));
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged_claims =
        URL_SAFE_NO_PAD.encode(with(good_claims(), "spares_role", json!("admin")).to_string());
    parts[1] = &forged_claims;
    assert_eq!(
        verifier.verify(&parts.join("."), NOW),
        Err(JwtError::Signature)
    );

    // `alg: none` with an empty signature.
    let none = token(
        &json!({"alg": "none", "typ": "JWT"}),
        &good_claims(),
        |_| Vec::new(),
    );
    assert!(matches!(
        verifier.verify(&none, NOW),
        Err(JwtError::Malformed(_))
    ));

    // HS256 "signed" with the server's public key as the HMAC secret.
    let hmac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.public_pem.as_bytes());
    let confused = token(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &good_claims(),
        |m| ring::hmac::sign(&hmac_key, m).as_ref().to_vec(),
    );
    assert!(matches!(
        verifier.verify(&confused, NOW),
        Err(JwtError::Algorithm { .. })
    ));

    // Another asymmetric algorithm than the configured one.
    let es384 = token(&json!({"alg": "ES384"}), &good_claims(), |m| key.sign(m));
    assert!(matches!(
        verifier.verify(&es384, NOW),
        Err(JwtError::Algorithm { .. })
    ));

    // Not a token at all, and an oversized one.
    for junk in ["", "a.b", "a.b.c", "....", "eyJhbGciOiJFUzI1NiJ9.e30."] {
        assert!(verifier.verify(junk, NOW).is_err(), "{junk:?}");
    }
    let huge = format!("{}.{}.x", "a".repeat(20_000), "b");
    assert!(matches!(
        verifier.verify(&huge, NOW),
        Err(JwtError::Malformed(_))
    ));
}

#[test]
fn a_jwks_file_picks_the_key_by_kid() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (SigningKey::new(), SigningKey::new());
    let path = dir.path().join("jwks.json");
    let jwks = json!({"keys": [
        first.jwk("k1"),
        second.jwk("k2"),
        // Keys for other uses or algorithms are ignored.
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
    ]});
    std::fs::write(&path, jwks.to_string()).unwrap();
    let verifier = JwtVerifier::load(JwtSettings::new(
        Algorithm::ES256,
        JwtKeySource::Jwks(path),
        ISSUER,
        AUDIENCE,
    ))
    .unwrap();
    let header = |kid: &str| json!({"alg": "ES256", "kid": kid});
    assert!(
        verifier
            .verify(
                &token(&header("k1"), &good_claims(), |m| first.sign(m)),
                NOW
            )
            .is_ok()
    );
    assert!(
        verifier
            .verify(
                &token(&header("k2"), &good_claims(), |m| second.sign(m)),
                NOW
            )
            .is_ok()
    );
    assert_eq!(
        verifier.verify(
            &token(&header("k1"), &good_claims(), |m| second.sign(m)),
            NOW
        ),
        Err(JwtError::Signature)
    );
    assert_eq!(
        verifier.verify(
            &token(&header("k9"), &good_claims(), |m| first.sign(m)),
            NOW
        ),
        Err(JwtError::UnknownKey(Some("k9".into())))
    );
    assert!(matches!(
        verifier.verify(&token(&es256(), &good_claims(), |m| first.sign(m)), NOW),
        Err(JwtError::UnknownKey(None))
    ));
    // The HMAC key in the set is never used, even when a token names it.
    let hmac = token(
        &json!({"alg": "HS256", "kid": "hmac"}),
        &good_claims(),
        |m| {
            ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"secret"), m)
                .as_ref()
                .to_vec()
        },
    );
    assert!(verifier.verify(&hmac, NOW).is_err());
}

#[test]
fn unusable_settings_are_refused_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::new();
    let pem = dir.path().join("idp.pem");
    std::fs::write(&pem, &key.public_pem).unwrap();
    let settings = |algorithm, keys| JwtSettings::new(algorithm, keys, ISSUER, AUDIENCE);

    let hmac = JwtVerifier::load(settings(
        Algorithm::HS256,
        JwtKeySource::PublicKeyPem(pem.clone()),
    ));
    assert!(hmac.unwrap_err().to_string().contains("HS256"));

    let missing = dir.path().join("missing.pem");
    let error = JwtVerifier::load(settings(
        Algorithm::ES256,
        JwtKeySource::PublicKeyPem(missing),
    ))
    .unwrap_err()
    .to_string();
    assert!(error.contains("missing.pem"), "{error}");

    // An EC key configured for RS256.
    let error = JwtVerifier::load(settings(
        Algorithm::RS256,
        JwtKeySource::PublicKeyPem(pem.clone()),
    ))
    .unwrap_err()
    .to_string();
    assert!(error.contains("idp.pem"), "{error}");

    let empty_jwks = dir.path().join("empty.json");
    std::fs::write(&empty_jwks, r#"{"keys": []}"#).unwrap();
    let error = JwtVerifier::load(settings(Algorithm::ES256, JwtKeySource::Jwks(empty_jwks)))
        .unwrap_err()
        .to_string();
    assert!(error.contains("no signing key"), "{error}");

    let mut blank = settings(Algorithm::ES256, JwtKeySource::PublicKeyPem(pem));
    blank.audience = " ".into();
    assert!(JwtVerifier::load(blank).is_err());
}

/// The authenticator over a PEM key file in `dir`, checking tokens against `clock`.
fn authenticator(dir: &Path, key: &SigningKey, clock: &Arc<ManualClock>) -> JwtAuthenticator {
    let path = dir.join("idp.pem");
    std::fs::write(&path, &key.public_pem).unwrap();
    let settings = JwtSettings::new(
        Algorithm::ES256,
        JwtKeySource::PublicKeyPem(path),
        ISSUER,
        AUDIENCE,
    );
    JwtAuthenticator::load(settings, clock.clone()).unwrap()
}

#[test]
fn a_remembered_token_still_expires_and_a_reload_forgets_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_second(NOW).unwrap()));
    let auth = authenticator(dir.path(), &key, &clock);
    let good = token(&es256(), &good_claims(), |m| key.sign(m));
    let first = auth.principal(&good).unwrap();
    assert_eq!(auth.remembered_tokens(), 1);
    let again = auth.principal(&good).unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "the second call is served from memory"
    );
    assert_eq!(again.id, "jwt:alice@dealer-one");

    // A refused token is not remembered.
    let forged = token(&es256(), &good_claims(), |m| SigningKey::new().sign(m));
    assert!(auth.principal(&forged).is_err());
    assert_eq!(auth.remembered_tokens(), 1);

    // Past exp plus the leeway the remembered token is refused like any other.
    let leeway = i64::try_from(spares::identity::jwt::DEFAULT_LEEWAY_SECONDS).unwrap();
    clock.set(Timestamp::from_second(NOW + 600 + leeway).unwrap());
    assert!(auth.principal(&good).is_ok(), "the last valid second");
    clock.set(Timestamp::from_second(NOW + 601 + leeway).unwrap());
    let expired = auth.principal(&good).unwrap_err();
    assert!(expired.contains("expired"), "{expired}");

    // A reload with another key forgets the tokens the old key signed.
    clock.set(Timestamp::from_second(NOW).unwrap());
    assert!(auth.principal(&good).is_ok());
    let rotated = SigningKey::new();
    std::fs::write(dir.path().join("idp.pem"), &rotated.public_pem).unwrap();
    auth.reload().unwrap();
    assert_eq!(auth.remembered_tokens(), 0);
    assert!(
        auth.principal(&good).is_err(),
        "the old key's token after rotation"
    );
    let fresh = token(&es256(), &good_claims(), |m| rotated.sign(m));
    assert!(auth.principal(&fresh).is_ok());
}

#[test]
fn a_clock_set_back_before_the_verification_checks_the_token_again() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_second(NOW).unwrap()));
    let auth = authenticator(dir.path(), &key, &clock);
    let leeway = i64::try_from(spares::identity::jwt::DEFAULT_LEEWAY_SECONDS).unwrap();
    let claims = with(good_claims(), "nbf", json!(NOW));
    let good = token(&es256(), &claims, |m| key.sign(m));
    assert!(auth.principal(&good).is_ok());
    // Before nbf less the leeway the token is not yet valid, remembered or not.
    clock.set(Timestamp::from_second(NOW - leeway - 1).unwrap());
    let early = auth.principal(&good).unwrap_err();
    assert!(early.contains("not yet valid"), "{early}");
}
