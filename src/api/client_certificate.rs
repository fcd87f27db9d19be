//! Mutual TLS as a credential: the verified client certificate of the
//! connection (tonic puts it in every request's extensions) turned into a
//! principal by the one mapping of [`crate::identity::certificate`]
//! (`spares://role/<role>[/store/<id>]...`, id `cert:<common name>`).
//!
//! How it combines with the other credentials: the gate asks this
//! authenticator LAST, so a request that carries an API key or a bearer
//! JWT acts as that key or token, and the certificate then only admitted
//! the connection (rustls checked it against `--client-ca`). A request with
//! no header credentials acts as its certificate's principal. A certificate
//! without a `spares://role/` URI names no one (it may be a transport-only
//! certificate), so such a request without header credentials is refused
//! as having no credentials; a certificate whose URI is malformed or names
//! an unknown role is refused as invalid.

use crate::auth::{Authenticator, Credentials, Principal, Role, Verdict};
use crate::identity::certificate::{CertificateError, identity_from_certificate};
use std::sync::Arc;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// Authenticates by the connection's client certificate.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientCertificateAuthenticator;

/// The principal a verified client certificate (DER) stands for.
///
/// # Errors
/// [`CertificateError`] when it names no one ([`CertificateError::NoUri`])
/// or names someone badly (a malformed URI, an unknown role).
pub fn principal_of(certificate: &[u8]) -> Result<Principal, CertificateError> {
    let certificate = tokio_rustls::rustls::pki_types::CertificateDer::from(certificate);
    let identity = identity_from_certificate(&certificate)?;
    let role = identity
        .role
        .parse::<Role>()
        .map_err(|e| CertificateError::BadUri {
            uri: format!("spares://role/{}", identity.role),
            reason: e.to_string(),
        })?;
    Ok(Principal {
        id: identity.id,
        role,
        stores: identity.stores,
        locations: identity.locations,
    })
}

impl Authenticator for ClientCertificateAuthenticator {
    fn authenticate(&self, credentials: &Credentials<'_>) -> Verdict {
        let Some(leaf) = credentials
            .extensions
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(TlsConnectInfo::peer_certs)
        else {
            return Verdict::Absent;
        };
        let Some(leaf) = leaf.first() else {
            return Verdict::Absent;
        };
        match principal_of(leaf.as_ref()) {
            Ok(principal) => Verdict::Accepted(Arc::new(principal)),
            Err(CertificateError::NoUri) => Verdict::Absent,
            Err(error) => {
                tracing::info!(%error, "client certificate names no principal");
                Verdict::Refused
            }
        }
    }

    fn accepts(&self) -> &'static str {
        "a client certificate with a `spares://role/<role>[/store/<id>]` URI subject alternative name"
    }
}
