//! `spares serve`'s bearer-JWT flags (`--jwt-public-key | --jwt-jwks`,
//! `--jwt-algorithm`, `--jwt-issuer`, `--jwt-audience`, and their SPARES_*
//! environment variables), laid over the configuration file's `[jwt]`
//! section into the verifier's settings.

use crate::config_file::JwtSection;
use crate::identity::jwt::{DEFAULT_LEEWAY_SECONDS, JwtKeySource, JwtSettings};
use std::path::PathBuf;

/// Bearer JWT flags of `spares serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeJwtArgs {
    /// Accept bearer JWTs signed by this public key (PEM).
    #[arg(
        long,
        env = "SPARES_JWT_PUBLIC_KEY",
        value_name = "FILE",
        conflicts_with = "jwt_jwks"
    )]
    pub jwt_public_key: Option<PathBuf>,
    /// Accept bearer JWTs signed by a key of this JWKS file (the token's
    /// `kid` picks it).
    #[arg(long, env = "SPARES_JWT_JWKS", value_name = "FILE")]
    pub jwt_jwks: Option<PathBuf>,
    /// The one JWT signature algorithm accepted (RS256, RS384, RS512, PS256,
    /// PS384, PS512, ES256, ES384 or EdDSA); never read from the token.
    #[arg(long, env = "SPARES_JWT_ALGORITHM", value_name = "ALG")]
    pub jwt_algorithm: Option<String>,
    /// Required `iss` of bearer JWTs.
    #[arg(long, env = "SPARES_JWT_ISSUER", value_name = "ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` of bearer JWTs.
    #[arg(long, env = "SPARES_JWT_AUDIENCE", value_name = "AUDIENCE")]
    pub jwt_audience: Option<String>,
}

impl ServeJwtArgs {
    /// The JWT settings from these flags over the file's `[jwt]` section;
    /// `None` when neither names a key (JWTs are then not accepted).
    ///
    /// # Errors
    /// A message naming the missing or bad setting: a key without
    /// algorithm, issuer or audience, an issuer, audience or algorithm
    /// without a key, or an unknown or shared-secret algorithm.
    pub fn settings(&self, file: &JwtSection) -> Result<Option<JwtSettings>, String> {
        let keys = match (&self.jwt_public_key, &self.jwt_jwks) {
            (Some(pem), _) => Some(JwtKeySource::PublicKeyPem(pem.clone())),
            (None, Some(jwks)) => Some(JwtKeySource::Jwks(jwks.clone())),
            (None, None) => match (&file.public_key, &file.jwks) {
                (Some(pem), _) => Some(JwtKeySource::PublicKeyPem(pem.clone())),
                (None, Some(jwks)) => Some(JwtKeySource::Jwks(jwks.clone())),
                (None, None) => None,
            },
        };
        let algorithm = match &self.jwt_algorithm {
            Some(text) => Some(parse_algorithm(text)?),
            None => file.algorithm,
        };
        let issuer = self.jwt_issuer.clone().or_else(|| file.issuer.clone());
        let audience = self.jwt_audience.clone().or_else(|| file.audience.clone());
        let Some(keys) = keys else {
            if algorithm.is_some() || issuer.is_some() || audience.is_some() {
                return Err("JWT: an algorithm, issuer or audience is set but no key: give --jwt-public-key FILE or --jwt-jwks FILE (or [jwt] public_key / jwks)".into());
            }
            return Ok(None);
        };
        let missing = |what: &str, flag: &str, key: &str| {
            format!("JWT: a key is configured but no {what}: give {flag} (or [jwt] {key})")
        };
        let algorithm = algorithm.ok_or_else(|| {
            missing(
                "algorithm (it is pinned, never read from the token; e.g. RS256 or ES256)",
                "--jwt-algorithm ALG",
                "algorithm",
            )
        })?;
        let issuer = issuer.ok_or_else(|| missing("issuer", "--jwt-issuer ISSUER", "issuer"))?;
        let audience =
            audience.ok_or_else(|| missing("audience", "--jwt-audience AUDIENCE", "audience"))?;
        let mut settings = JwtSettings::new(algorithm, keys, &issuer, &audience);
        settings.leeway_seconds = file.leeway_seconds.unwrap_or(DEFAULT_LEEWAY_SECONDS);
        if let Some(claim) = &file.role_claim {
            settings.role_claim.clone_from(claim);
        }
        if let Some(claim) = &file.stores_claim {
            settings.stores_claim.clone_from(claim);
        }
        if let Some(claim) = &file.locations_claim {
            settings.locations_claim.clone_from(claim);
        }
        Ok(Some(settings))
    }
}

fn parse_algorithm(text: &str) -> Result<jsonwebtoken::Algorithm, String> {
    use jsonwebtoken::Algorithm;
    match text.trim().parse::<Algorithm>() {
        Ok(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) => Err(format!(
            "--jwt-algorithm {text}: a shared-secret algorithm is not accepted (anyone able to verify could mint tokens); use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA"
        )),
        Ok(algorithm) => Ok(algorithm),
        Err(_) => Err(format!(
            "--jwt-algorithm: unknown `{text}` (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
        )),
    }
}
