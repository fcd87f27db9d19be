//! Mutual TLS: who a verified client certificate stands for. One documented
//! mapping: the certificate carries exactly one URI subject alternative
//! name of the form
//!
//! ```text
//! spares://role/<role>[/store/<store id>]...[/location/<location id>]...
//! ```
//!
//! for example `spares://role/dealer/store/S1/store/S2` or
//! `spares://role/warehouse/location/W1`, and the principal's id is
//! `cert:<subject common name>` (`cert:<the URI>` without a common name).
//! A certificate without such a URI, or with two, identifies no one. The
//! chain itself is checked by rustls against `--client-ca` before any of
//! this runs; this module only reads names.

use tokio_rustls::rustls::pki_types::CertificateDer;

/// The URI prefix that carries a principal.
pub const URI_PREFIX: &str = "spares://role/";

/// Longest id segment (a store or location id) in the URI.
const MAX_SEGMENT_BYTES: usize = 128;

/// What a client certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIdentity {
    /// `cert:<common name>`, or `cert:<URI>` without a common name.
    pub id: String,
    /// The role name from the URI, as written.
    pub role: String,
    /// Store ids (`/store/<id>`).
    pub stores: Vec<String>,
    /// Location ids (`/location/<id>`).
    pub locations: Vec<String>,
}

/// Why a certificate identifies no one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// Not a parsable X.509 certificate.
    #[error("not a parsable X.509 certificate")]
    Malformed,
    /// No `spares://role/...` URI subject alternative name.
    #[error("no {URI_PREFIX}... URI subject alternative name")]
    NoUri,
    /// More than one such URI: ambiguous.
    #[error("more than one {URI_PREFIX}... URI subject alternative name")]
    SeveralUris,
    /// The URI does not follow the grammar.
    #[error("{uri}: {reason}")]
    BadUri {
        /// The URI.
        uri: String,
        /// What is wrong.
        reason: String,
    },
}

/// Reads the identity from a `spares://role/...` URI and the subject's
/// common name.
///
/// # Errors
/// [`CertificateError::BadUri`] for a URI outside the grammar (no role, an
/// unknown key, an empty or overlong id, a missing id).
pub fn identity_from_uri(
    uri: &str,
    common_name: Option<&str>,
) -> Result<CertificateIdentity, CertificateError> {
    let bad = |reason: &str| CertificateError::BadUri {
        uri: uri.to_string(),
        reason: reason.to_string(),
    };
    let rest = uri
        .strip_prefix(URI_PREFIX)
        .ok_or_else(|| bad("does not start with spares://role/"))?;
    let mut segments = rest.split('/');
    let role = segments
        .next()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| bad("no role"))?
        .to_string();
    let (mut stores, mut locations) = (Vec::new(), Vec::new());
    while let Some(key) = segments.next() {
        let id = segments
            .next()
            .filter(|id| !id.is_empty() && id.len() <= MAX_SEGMENT_BYTES)
            .ok_or_else(|| {
                bad(&format!(
                    "`{key}` needs an id of 1 to {MAX_SEGMENT_BYTES} bytes"
                ))
            })?;
        match key {
            "store" => stores.push(id.to_string()),
            "location" => locations.push(id.to_string()),
            other => return Err(bad(&format!("unknown key `{other}` (store, location)"))),
        }
    }
    let id = match common_name.map(str::trim).filter(|cn| !cn.is_empty()) {
        Some(cn) => format!("cert:{cn}"),
        None => format!("cert:{uri}"),
    };
    Ok(CertificateIdentity {
        id,
        role,
        stores,
        locations,
    })
}

/// Reads the identity of a (verified) client certificate.
///
/// # Errors
/// [`CertificateError`]: unparsable, no or several `spares://role/` URIs,
/// or a URI outside the grammar.
pub fn identity_from_certificate(
    certificate: &CertificateDer<'_>,
) -> Result<CertificateIdentity, CertificateError> {
    let parsed =
        webpki::EndEntityCert::try_from(certificate).map_err(|_| CertificateError::Malformed)?;
    let mut uris = parsed
        .valid_uri_names()
        .filter(|uri| uri.starts_with(URI_PREFIX));
    let uri = uris.next().ok_or(CertificateError::NoUri)?;
    if uris.next().is_some() {
        return Err(CertificateError::SeveralUris);
    }
    let common_name = common_name(parsed.subject());
    identity_from_uri(uri, common_name.as_deref())
}

/// The DER object identifier of the X.520 common name (2.5.4.3).
const COMMON_NAME_OID: &[u8] = &[0x55, 0x04, 0x03];

/// One DER element: its tag, its contents, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |n, &b| (n << 8) | usize::from(b));
        (length, &rest[count..])
    };
    if rest.len() < length {
        return None;
    }
    Some((tag, &rest[..length], &rest[length..]))
}

/// The first common name in a DER `Name` (its contents, without the outer
/// SEQUENCE, as webpki gives it): a sequence of SETs of
/// SEQUENCE { OID, value }. `None` if there is none or the DER is broken.
fn common_name(mut name: &[u8]) -> Option<String> {
    while !name.is_empty() {
        let (_, mut set, rest) = element(name)?;
        name = rest;
        while !set.is_empty() {
            let (_, attribute, next) = element(set)?;
            set = next;
            let (_, oid, value) = element(attribute)?;
            if oid == COMMON_NAME_OID {
                let (_, text, _) = element(value)?;
                return String::from_utf8(text.to_vec()).ok();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_grammar_gives_role_and_scope() {
        let dealer =
            identity_from_uri("spares://role/dealer/store/S1/store/S2", Some("acme")).unwrap();
        assert_eq!(dealer.id, "cert:acme");
        assert_eq!(dealer.role, "dealer");
        assert_eq!(dealer.stores, ["S1", "S2"]);
        let warehouse = identity_from_uri("spares://role/warehouse/location/W1", None).unwrap();
        assert_eq!(warehouse.id, "cert:spares://role/warehouse/location/W1");
        assert_eq!(warehouse.locations, ["W1"]);
        for bad in [
            "spares://role/",
            "spares://role/dealer/store",
            "spares://role/dealer/store/",
            "spares://role/dealer/shop/S1",
            "https://role/dealer",
        ] {
            assert!(identity_from_uri(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn common_names_are_read_from_der_names_and_broken_der_is_none() {
        // SET { SEQUENCE { OID 2.5.4.6, PrintableString "US" } },
        // SET { SEQUENCE { OID 2.5.4.3, UTF8String "acme" } }
        let name = [
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'U', b'S', 0x31,
            0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x04, b'a', b'c', b'm', b'e',
        ];
        assert_eq!(common_name(&name).as_deref(), Some("acme"));
        assert_eq!(common_name(&name[..5]), None);
        assert_eq!(common_name(&[0x31, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(common_name(&[]), None);
    }
}
