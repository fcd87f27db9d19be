//! Test certificates made with rcgen inside the test: a CA, a server
//! certificate for `localhost` and 127.0.0.1, and client certificates,
//! written as PEM files into a temporary directory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use spares::api::tls::TlsFiles;
use spares::cli::client::ClientTls;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// A certificate authority that signs server and client certificates.
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    /// The CA certificate, PEM.
    pub pem: String,
}

/// A certificate and its private key, PEM.
pub struct Pair {
    /// Certificate.
    pub cert: String,
    /// Private key.
    pub key: String,
}

impl Ca {
    /// A fresh self-signed CA called `name`.
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).unwrap().pem();
        Self { params, key, pem }
    }

    fn sign(&self, params: &CertificateParams) -> Pair {
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap().pem();
        Pair {
            cert,
            key: key.serialize_pem(),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server(&self) -> Pair {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(&params)
    }

    /// A client certificate with this common name and, if given, a URI SAN.
    pub fn client(&self, common_name: &str, uri: Option<&str>) -> Pair {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        if let Some(uri) = uri {
            params
                .subject_alt_names
                .push(SanType::URI(uri.try_into().unwrap()));
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(&params)
    }
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A CA, a server certificate and a client certificate (common name
/// `client`) on disk.
pub struct TlsSetup {
    /// The directory holding the files.
    pub dir: tempfile::TempDir,
    /// The CA.
    pub ca: Ca,
    /// `ca.pem`.
    pub ca_path: PathBuf,
    /// `server.pem`.
    pub server_cert: PathBuf,
    /// `server.key`.
    pub server_key: PathBuf,
    /// `client.pem`.
    pub client_cert: PathBuf,
    /// `client.key`.
    pub client_key: PathBuf,
}

impl TlsSetup {
    /// Makes and writes the files.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("spares test CA");
        let server = ca.server();
        let client = ca.client("client", None);
        let ca_path = write(dir.path(), "ca.pem", &ca.pem);
        let server_cert = write(dir.path(), "server.pem", &server.cert);
        let server_key = write(dir.path(), "server.key", &server.key);
        let client_cert = write(dir.path(), "client.pem", &client.cert);
        let client_key = write(dir.path(), "client.key", &client.key);
        Self {
            dir,
            ca,
            ca_path,
            server_cert,
            server_key,
            client_cert,
            client_key,
        }
    }

    /// The server's files, with the CA as the client CA when `mutual`.
    pub fn server_files(&self, mutual: bool) -> TlsFiles {
        TlsFiles {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            client_ca: mutual.then(|| self.ca_path.clone()),
        }
    }

    /// A client trusting the CA, without a client certificate.
    pub fn client(&self) -> ClientTls {
        ClientTls {
            ca_cert: self.ca_path.clone(),
            ..ClientTls::default()
        }
    }

    /// A client trusting the CA, presenting `client.pem`.
    pub fn client_with_certificate(&self) -> ClientTls {
        ClientTls {
            client_cert: Some(self.client_cert.clone()),
            client_key: Some(self.client_key.clone()),
            ..self.client()
        }
    }
}
