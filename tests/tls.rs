//! TLS end to end, with certificates made by rcgen inside the test: the
//! Rust client, the `spares` binary (server and CLI) and a Python grpcio
//! client connect over TLS; plaintext clients, clients that do not trust
//! the server's CA and, under mutual TLS, clients without a certificate are
//! refused; the certificate is reloaded without a restart (by call, by file
//! change and by SIGHUP), and a broken rotation keeps the old certificate.
//! The Python part skips with a message when python3 or grpcio is missing
//! (`.ci/run` installs grpcio).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/certs.rs"]
mod certs;
mod common;

use certs::{Ca, TlsSetup, write};
use common::{TestServer, python_with_grpcio, small_network};
use spares::api::tls::{ServerTls, TlsFiles};
use spares::cli::client::{ClientError, ClientTls, Target, connect};
use spares::pb;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// `127.0.0.1:PORT` of a test server.
fn address(server: &TestServer) -> String {
    server.url.split("://").nth(1).unwrap().to_string()
}

async fn location_ids(target: &Target) -> Result<Vec<String>, ClientError> {
    let mut clients = connect(target).await?;
    let reply = clients
        .network
        .list_locations(pb::ListLocationsRequest::default())
        .await?
        .into_inner();
    Ok(reply.locations.into_iter().map(|l| l.id).collect())
}

async fn tls_server(setup: &TlsSetup, mutual: bool) -> (TestServer, Arc<ServerTls>) {
    let tls = Arc::new(ServerTls::load(setup.server_files(mutual)).unwrap());
    let server = TestServer::start_tls(tls.clone()).await;
    // Seed through the service directly: the network is what clients read.
    let mut clients = connect(
        &Target::from(&address(&server))
            .api_key(Some(server.admin_key.clone()))
            .tls(Some(setup.client_with_certificate())),
    )
    .await
    .unwrap();
    small_network(&mut clients).await;
    (server, tls)
}

#[tokio::test]
async fn the_rust_client_connects_over_tls_and_a_plaintext_client_is_refused() {
    let setup = TlsSetup::new();
    let (server, _tls) = tls_server(&setup, false).await;
    assert!(server.url.starts_with("https://"), "{}", server.url);

    // HOST:PORT without a scheme means https when a CA file is given.
    let ids = location_ids(
        &Target::from(&address(&server))
            .api_key(Some(server.admin_key.clone()))
            .tls(Some(setup.client())),
    )
    .await
    .unwrap();
    assert_eq!(ids, ["DEP", "STR"]);

    // The same port in plaintext: the handshake never happens, no RPC gets through.
    let plain = match connect(&format!("http://{}", address(&server))).await {
        Err(error) => error.to_string(),
        Ok(mut clients) => clients
            .network
            .list_locations(pb::ListLocationsRequest::default())
            .await
            .expect_err("a plaintext call to a TLS server must fail")
            .to_string(),
    };
    assert!(!plain.is_empty());

    // A client that trusts another CA refuses the server's certificate.
    let other = tempfile::tempdir().unwrap();
    let stranger = ClientTls {
        ca_cert: write(other.path(), "other-ca.pem", &Ca::new("another CA").pem),
        ..ClientTls::default()
    };
    let refused = location_ids(
        &Target::from(&address(&server))
            .api_key(Some(server.admin_key.clone()))
            .tls(Some(stranger)),
    )
    .await
    .expect_err("a certificate from an unknown CA must be refused")
    .to_string();
    assert!(
        refused.contains("UnknownIssuer") || refused.contains("certificate"),
        "{refused}"
    );

    // https without a CA file, and a CA file with http://, are usage errors.
    let no_ca = location_ids(&Target::from(&server.url)).await.unwrap_err();
    assert!(matches!(no_ca, ClientError::Usage(_)), "{no_ca}");
    let mixed = Target::from(&format!("http://{}", address(&server))).tls(Some(setup.client()));
    assert!(matches!(
        location_ids(&mixed).await.unwrap_err(),
        ClientError::Usage(_)
    ));
    server.stop().await;
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_client_ca() {
    let setup = TlsSetup::new();
    let (server, tls) = tls_server(&setup, true).await;
    assert!(tls.requires_client_certificate());
    let with_certificate = Target::from(&address(&server))
        .api_key(Some(server.admin_key.clone()))
        .tls(Some(setup.client_with_certificate()));
    assert_eq!(
        location_ids(&with_certificate).await.unwrap(),
        ["DEP", "STR"]
    );

    let without = Target::from(&address(&server))
        .api_key(Some(server.admin_key.clone()))
        .tls(Some(setup.client()));
    let refused = location_ids(&without).await;
    assert!(refused.is_err(), "no client certificate must be refused");

    // A certificate from a CA the server does not trust is refused too.
    let other = Ca::new("another CA").client("intruder", None);
    let cert = write(setup.dir.path(), "intruder.pem", &other.cert);
    let key = write(setup.dir.path(), "intruder.key", &other.key);
    let intruder = ClientTls {
        client_cert: Some(cert),
        client_key: Some(key),
        ..setup.client()
    };
    assert!(
        location_ids(
            &Target::from(&address(&server))
                .api_key(Some(server.admin_key.clone()))
                .tls(Some(intruder))
        )
        .await
        .is_err()
    );
    server.stop().await;
}

#[tokio::test]
async fn a_new_certificate_is_used_after_reload_and_a_broken_one_is_not() {
    let setup = TlsSetup::new();
    let (server, tls) = tls_server(&setup, false).await;
    let old_client = Target::from(&address(&server))
        .api_key(Some(server.admin_key.clone()))
        .tls(Some(setup.client()));
    assert!(location_ids(&old_client).await.is_ok());
    assert!(!tls.reload_if_changed().unwrap(), "nothing changed yet");

    // Rotate to a certificate from a new CA.
    let new_ca = Ca::new("rotated CA");
    let new_pair = new_ca.server();
    write(setup.dir.path(), "server.pem", &new_pair.cert);
    write(setup.dir.path(), "server.key", &new_pair.key);
    assert!(tls.reload_if_changed().unwrap(), "the files changed");
    let new_client = Target::from(&address(&server))
        .api_key(Some(server.admin_key.clone()))
        .tls(Some(ClientTls {
            ca_cert: write(setup.dir.path(), "new-ca.pem", &new_ca.pem),
            ..ClientTls::default()
        }));
    assert_eq!(location_ids(&new_client).await.unwrap(), ["DEP", "STR"]);
    assert!(
        location_ids(&old_client).await.is_err(),
        "the old CA no longer matches"
    );

    // A half-written rotation (a key that is not PEM) is refused and the
    // certificate in force stays.
    write(setup.dir.path(), "server.key", "not a key");
    let error = tls.reload().unwrap_err().to_string();
    assert!(error.contains("server.key"), "{error}");
    assert!(location_ids(&new_client).await.is_ok());
    server.stop().await;
}

#[test]
fn bad_tls_files_are_named_in_the_error() {
    let setup = TlsSetup::new();
    let missing = TlsFiles {
        cert: setup.dir.path().join("nope.pem"),
        ..setup.server_files(false)
    };
    let error = ServerTls::load(missing).unwrap_err().to_string();
    assert!(error.contains("nope.pem"), "{error}");

    let key_as_cert = TlsFiles {
        cert: setup.server_key.clone(),
        ..setup.server_files(false)
    };
    let error = ServerTls::load(key_as_cert).unwrap_err().to_string();
    assert!(
        error.contains("server.key") && error.contains("no PEM certificate"),
        "{error}"
    );

    // A key that does not belong to the certificate.
    let mismatched = TlsFiles {
        key: setup.client_key.clone(),
        ..setup.server_files(false)
    };
    let error = ServerTls::load(mismatched).unwrap_err().to_string();
    assert!(error.contains("client.key"), "{error}");
}

fn spares_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_spares"))
        .args(args)
        .env_remove("SPARES_CA_CERT")
        .env_remove("SPARES_API_KEY")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_tls_the_cli_connects_and_sighup_reloads() {
    let setup = TlsSetup::new();
    let data = tempfile::tempdir().unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let (cert, key, ca) = (
        path(&setup.server_cert),
        path(&setup.server_key),
        path(&setup.ca_path),
    );
    let data_dir = path(data.path());
    let server = tokio::task::spawn_blocking(move || {
        common::process::spawn(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data_dir,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-reload-seconds",
            "0",
        ])
    })
    .await
    .unwrap();
    let address = server.url.trim_start_matches("http://").to_string();
    let key = server
        .api_key
        .clone()
        .expect("the harness keyed the directory");
    let mut clients = connect(
        &Target::from(&address)
            .tls(Some(setup.client()))
            .api_key(Some(key.clone())),
    )
    .await
    .unwrap();
    small_network(&mut clients).await;

    let address2 = address.clone();
    let ca2 = ca.clone();
    let key2 = key.clone();
    let output = tokio::task::spawn_blocking(move || {
        spares_cli(&[
            "locations",
            "--server",
            &address2,
            "--ca-cert",
            &ca2,
            "--api-key",
            &key2,
        ])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("DEP") && stdout.contains("STR"), "{stdout}");

    // Without --ca-cert the CLI speaks plaintext and the server refuses it.
    let address3 = address.clone();
    let key3 = key.clone();
    let plain = tokio::task::spawn_blocking(move || {
        spares_cli(&["locations", "--server", &address3, "--api-key", &key3])
    })
    .await
    .unwrap();
    assert!(!plain.status.success());

    // Rotate the files, SIGHUP, and the CLI trusting only the new CA gets in.
    let new_ca = Ca::new("rotated CA");
    let new_pair = new_ca.server();
    write(setup.dir.path(), "server.pem", &new_pair.cert);
    write(setup.dir.path(), "server.key", &new_pair.key);
    let new_ca_path = path(&write(setup.dir.path(), "new-ca.pem", &new_ca.pem));
    server.signal(1);
    let mut reloaded = false;
    for _ in 0..100 {
        let (a, c, k) = (address.clone(), new_ca_path.clone(), key.clone());
        let output = tokio::task::spawn_blocking(move || {
            spares_cli(&[
                "locations",
                "--server",
                &a,
                "--ca-cert",
                &c,
                "--api-key",
                &k,
            ])
        })
        .await
        .unwrap();
        if output.status.success() {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        reloaded,
        "SIGHUP did not reload: {:?}",
        server.log.lock().unwrap()
    );
    server.signal(15);
    let status = tokio::task::spawn_blocking(move || server.wait(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_grpcio_client_connects_over_tls_and_mutual_tls() {
    if !python_with_grpcio("a_python_grpcio_client_connects_over_tls_and_mutual_tls") {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/tls_client.py");
    for mutual in [false, true] {
        let setup = TlsSetup::new();
        let (server, _tls) = tls_server(&setup, mutual).await;
        let mut args = vec![
            script.to_string(),
            address(&server),
            setup.ca_path.to_str().unwrap().to_string(),
        ];
        if mutual {
            args.push(setup.client_cert.to_str().unwrap().to_string());
            args.push(setup.client_key.to_str().unwrap().to_string());
        }
        let key = server.admin_key.clone();
        let output = tokio::task::spawn_blocking(move || {
            Command::new("python3")
                .args(&args)
                .env("SPARES_API_KEY", key)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "python failed (mutual: {mutual}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        eprintln!("python client (mutual TLS: {mutual}): {report}");
        assert_eq!(report["health_status"], 1, "SERVING");
        assert_eq!(report["locations"], serde_json::json!(["DEP", "STR"]));
        assert_eq!(report["plaintext_refused"], true);
        server.stop().await;
    }
}

#[test]
fn a_client_certificate_maps_to_an_identity_by_its_spares_uri() {
    use spares::identity::certificate::{CertificateError, identity_from_certificate};
    let setup = TlsSetup::new();
    let leaf = |common_name: &str, uri: Option<&str>| {
        let pair = setup.ca.client(common_name, uri);
        let path = write(setup.dir.path(), &format!("{common_name}.pem"), &pair.cert);
        spares::api::tls::read_certificates(&path)
            .unwrap()
            .remove(0)
    };
    let dealer = identity_from_certificate(&leaf(
        "acme-dealer",
        Some("spares://role/dealer/store/S1/store/S2"),
    ))
    .unwrap();
    assert_eq!(dealer.id, "cert:acme-dealer");
    assert_eq!(dealer.role, "dealer");
    assert_eq!(dealer.stores, ["S1", "S2"]);
    let warehouse =
        identity_from_certificate(&leaf("dock-7", Some("spares://role/warehouse/location/W1")))
            .unwrap();
    assert_eq!(
        (warehouse.role.as_str(), warehouse.locations.as_slice()),
        ("warehouse", &["W1".to_string()][..])
    );
    assert_eq!(
        identity_from_certificate(&leaf("nobody", None)),
        Err(CertificateError::NoUri)
    );
    assert!(matches!(
        identity_from_certificate(&leaf("odd", Some("spares://role/dealer/shop/S1"))),
        Err(CertificateError::BadUri { .. })
    ));
}
