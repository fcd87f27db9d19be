//! Bearer JWTs and client certificates through the real server (the gate,
//! the authorisation table and scope checks all in the path):
//! - a JWT dealer promises and reserves at its own store, is refused
//!   (PERMISSION_DENIED, naming the store) at another, and cannot write
//!   master data; a planner JWT starts a simulation it owns as `jwt:<sub>`;
//! - expired, wrong-audience, wrong-issuer, forged, `alg: none` and
//!   unknown-role tokens are UNAUTHENTICATED with one message, and a good
//!   token stops working once the server's clock passes its expiry;
//! - under mutual TLS, a certificate mapped to a dealer reserves at its
//!   store and is refused elsewhere; a certificate naming no one, without
//!   other credentials, is told what is missing; an API key sent over a
//!   dealer's certificate acts as the key (the documented precedence);
//! - the CLI's `--bearer-token` (and SPARES_BEARER_TOKEN) work, and
//!   `spares serve --jwt-*` starts on a data directory with no API key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/certs.rs"]
mod certs;
mod common;
#[path = "common/idp.rs"]
mod idp;

use certs::{TlsSetup, write};
use common::TestServer;
use idp::{Idp, claims, sign_with};
use jiff::Timestamp;
use serde_json::json;
use spares::api::server::Security;
use spares::api::tls::ServerTls;
use spares::auth::bearer::JwtAuthenticator;
use spares::cli::client::{ClientTls, Clients, Target, connect};
use spares::config::Limits;
use spares::demo::{DemoConfig, build_demo};
use spares::pb;
use std::process::Command;
use std::sync::Arc;
use tonic::Code;

/// Loads a small seeded demo network (12 stores, 40 parts) into `server`.
async fn load_demo(server: &TestServer) {
    let now: Timestamp = "2026-11-23T14:00:00Z".parse().unwrap();
    let demo = build_demo(
        &DemoConfig {
            seed: 5,
            parts: 40,
            stores: 12,
            ..DemoConfig::default()
        },
        now,
    )
    .unwrap();
    let spares = server.spares.clone();
    tokio::task::spawn_blocking(move || {
        spares.load_master_data(&demo.bundle()).unwrap();
        spares
            .load_movements(
                &spares::domain::ledger::Actor::local("test"),
                &demo.movements,
            )
            .unwrap();
    })
    .await
    .unwrap();
}

/// A server accepting bearer JWTs from `idp` (and API keys), over TLS when
/// `tls` is given, holding the small demo.
async fn jwt_server(idp: &Idp, tls: Option<Arc<ServerTls>>) -> TestServer {
    let settings = idp.settings();
    let server = TestServer::start_secured(
        tempfile::tempdir().unwrap(),
        Limits::default(),
        move |spares| Security {
            tls,
            authenticators: vec![Arc::new(
                JwtAuthenticator::load(settings, spares.clock().clone()).unwrap(),
            )],
            ..Security::default()
        },
    )
    .await;
    load_demo(&server).await;
    server
}

fn reserve(key: &str, part: &str, location: &str) -> pb::ReserveRequest {
    pb::ReserveRequest {
        idempotency_key: key.into(),
        part_id: part.into(),
        location_id: location.into(),
        quantity: 1,
        ttl_seconds: 600,
        ..Default::default()
    }
}

/// The server's clock, in seconds since the epoch (tokens are made against it).
fn now(server: &TestServer) -> i64 {
    use spares::clock::Clock;
    server.clock.now().as_second()
}

async fn bearer(server: &TestServer, token: &str) -> Clients {
    connect(Target::new(server.url.clone(), None).bearer_token(Some(token.to_string())))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_dealer_reserves_at_its_store_only_and_a_planner_jwt_simulates() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::new(dir.path());
    let server = jwt_server(&idp, None).await;
    let [(store_a, part_a), (store_b, part_b)] = server.two_stocked_stores();
    let token = idp.token("alice@dealer-a", "dealer", &[&store_a], now(&server));
    let mut dealer = bearer(&server, &token).await;

    let promise = dealer
        .availability
        .promise(pb::PromiseRequest {
            part_id: part_b.clone(),
            quantity: 1,
            destination_location_id: store_a.clone(),
            ..Default::default()
        })
        .await
        .expect("a dealer JWT may ask for a promise")
        .into_inner();
    assert!(promise.as_of.is_some(), "a promise answer: {promise:?}");

    let held = dealer
        .availability
        .reserve(reserve("jwt-a-1", &part_a, &store_a))
        .await
        .expect("a dealer JWT reserves at its own store")
        .into_inner();
    assert_eq!(held.location_id, store_a);

    let refused = dealer
        .availability
        .reserve(reserve("jwt-a-2", &part_b, &store_b))
        .await
        .expect_err("not at another dealer's store");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("jwt:alice@dealer-a") && refused.message().contains(&store_b),
        "names who and where: {}",
        refused.message()
    );
    let master_data = dealer
        .network
        .upsert_parts(pb::UpsertPartsRequest {
            parts: vec![common::part("NEW")],
        })
        .await
        .expect_err("a dealer writes no master data");
    assert_eq!(master_data.code(), Code::PermissionDenied);
    assert!(
        master_data.message().contains("role dealer"),
        "{}",
        master_data.message()
    );

    let planner_token = idp.token("pat@planning", "planner", &[], now(&server));
    let mut planner = bearer(&server, &planner_token).await;
    let job = planner
        .planning
        .simulate(pb::SimulateRequest {
            settings: Some(pb::SimulationSettings {
                replications: 2,
                horizon_days: 30,
                seed: 4,
                ..Default::default()
            }),
            scenarios: vec![],
        })
        .await
        .expect("a planner JWT starts a simulation")
        .into_inner();
    assert_eq!(job.owner, "jwt:pat@planning");
    let reserve_as_planner = planner
        .availability
        .reserve(reserve("jwt-p-1", &part_a, &store_a))
        .await
        .expect_err("planners do not reserve");
    assert_eq!(reserve_as_planner.code(), Code::PermissionDenied);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_unauthenticated_at_the_server_with_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::new(dir.path());
    let server = jwt_server(&idp, None).await;
    let now = now(&server);
    let good = claims("alice", "planner", &[], now);
    let with = |name: &str, value: serde_json::Value| {
        let mut claims = good.clone();
        claims[name] = value;
        claims
    };
    let forger = Idp::new(tempfile::tempdir().unwrap().path());
    let unsigned = sign_with(&json!({"alg": "none", "typ": "JWT"}), &good, |_| Vec::new());
    let cases = [
        ("expired", idp.sign(&with("exp", json!(now - 3600)))),
        (
            "wrong audience",
            idp.sign(&with("aud", json!("another-service"))),
        ),
        (
            "wrong issuer",
            idp.sign(&with("iss", json!("https://evil.example"))),
        ),
        ("forged", forger.sign(&good)),
        ("alg none", unsigned),
        (
            "unknown role",
            idp.sign(&with("spares_role", json!("root"))),
        ),
        ("not a JWT", "not-a-token".to_string()),
    ];
    let mut messages = std::collections::BTreeSet::new();
    for (what, token) in &cases {
        let status = bearer(&server, token)
            .await
            .network
            .list_locations(pb::ListLocationsRequest::default())
            .await
            .expect_err(what);
        assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
        messages.insert(status.message().to_string());
    }
    assert_eq!(
        messages.len(),
        1,
        "one message whatever the reason: {messages:?}"
    );
    assert!(
        messages
            .iter()
            .all(|m| m.starts_with("invalid credentials")),
        "{messages:?}"
    );

    // The good token works, until the server's clock passes its expiry
    // (plus the 30 s leeway).
    let token = idp.sign(&good);
    let mut alice = bearer(&server, &token).await;
    alice
        .network
        .list_locations(pb::ListLocationsRequest::default())
        .await
        .expect("the good token is accepted");
    server.clock.advance_seconds(600 + 31);
    let expired = alice
        .network
        .list_locations(pb::ListLocationsRequest::default())
        .await
        .expect_err("expired by the server's clock");
    assert_eq!(expired.code(), Code::Unauthenticated);
    server.stop().await;
}

/// `127.0.0.1:PORT` of a test server.
fn address(server: &TestServer) -> String {
    server.url.split("://").nth(1).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_mapped_to_a_dealer_reserves_at_its_store_only() {
    let setup = TlsSetup::new();
    let tls = Arc::new(ServerTls::load(setup.server_files(true)).unwrap());
    let server = TestServer::start_tls(tls).await;
    load_demo(&server).await;
    let [(store_a, part_a), (store_b, part_b)] = server.two_stocked_stores();

    let uri = format!("spares://role/dealer/store/{store_a}");
    let pair = setup.ca.client("portal-a", Some(&uri));
    let dealer_tls = ClientTls {
        client_cert: Some(write(setup.dir.path(), "dealer-a.pem", &pair.cert)),
        client_key: Some(write(setup.dir.path(), "dealer-a.key", &pair.key)),
        ..setup.client()
    };
    let as_dealer = Target::from(&address(&server)).tls(Some(dealer_tls.clone()));
    let mut dealer = connect(&as_dealer).await.unwrap();
    let held = dealer
        .availability
        .reserve(reserve("cert-a-1", &part_a, &store_a))
        .await
        .expect("the certificate's dealer reserves at its store")
        .into_inner();
    assert_eq!(held.location_id, store_a);
    let refused = dealer
        .availability
        .reserve(reserve("cert-a-2", &part_b, &store_b))
        .await
        .expect_err("not at another store");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("cert:portal-a") && refused.message().contains(&store_b),
        "{}",
        refused.message()
    );

    // A certificate that names no principal admits the connection but not
    // the call: the refusal says which credentials would do.
    let anonymous = Target::from(&address(&server)).tls(Some(setup.client_with_certificate()));
    let status = connect(&anonymous)
        .await
        .unwrap()
        .network
        .list_locations(pb::ListLocationsRequest::default())
        .await
        .expect_err("a transport-only certificate is no credential");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().starts_with("no credentials")
            && status.message().contains("spares://role/"),
        "{}",
        status.message()
    );

    // A certificate whose URI names an unknown role is an invalid credential.
    let bad = setup.ca.client("odd", Some("spares://role/root"));
    let odd_tls = ClientTls {
        client_cert: Some(write(setup.dir.path(), "odd.pem", &bad.cert)),
        client_key: Some(write(setup.dir.path(), "odd.key", &bad.key)),
        ..setup.client()
    };
    let status = connect(&Target::from(&address(&server)).tls(Some(odd_tls)))
        .await
        .unwrap()
        .network
        .list_locations(pb::ListLocationsRequest::default())
        .await
        .expect_err("an unknown role");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().starts_with("invalid credentials"));

    // An API key sent over the dealer's certificate acts as the key: here
    // the administrator reserves at store B over the same connection kind.
    let mut admin = connect(&as_dealer.api_key(Some(server.admin_key.clone())))
        .await
        .unwrap();
    admin
        .availability
        .reserve(reserve("cert-admin-1", &part_b, &store_b))
        .await
        .expect("the API key decides when one is sent");
    server.stop().await;
}

fn spares_cli() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spares"));
    command
        .env_remove("SPARES_API_KEY")
        .env_remove("SPARES_BEARER_TOKEN")
        .env("RUST_LOG", "warn");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_presents_a_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::new(dir.path());
    let server = jwt_server(&idp, None).await;
    let [(store_a, part_a), _] = server.two_stocked_stores();
    let token = idp.token("alice@dealer-a", "dealer", &[&store_a], now(&server));
    let url = server.url.clone();
    let run = |args: Vec<String>, env_token: Option<String>| {
        let mut command = spares_cli();
        command.args(&args);
        if let Some(token) = env_token {
            command.env("SPARES_BEARER_TOKEN", token);
        }
        command.output().unwrap()
    };
    let flag = vec![
        "stock".to_string(),
        part_a.clone(),
        "--location".into(),
        store_a.clone(),
        "--server".into(),
        url.clone(),
        "--bearer-token".into(),
        token.clone(),
    ];
    let output = tokio::task::spawn_blocking(move || run(flag, None))
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&store_a), "{stdout}");

    let env_args = vec![
        "stock".to_string(),
        part_a.clone(),
        "--server".into(),
        url.clone(),
    ];
    let env_token = token.clone();
    let output = tokio::task::spawn_blocking(move || run(env_args, Some(env_token)))
        .await
        .unwrap();
    assert!(output.status.success(), "SPARES_BEARER_TOKEN: {output:?}");

    let anonymous = vec!["stock".to_string(), part_a.clone(), "--server".into(), url];
    let output = tokio::task::spawn_blocking(move || run(anonymous, None))
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bearer JWT"),
        "says what is accepted: {stderr}"
    );
    server.stop().await;
}

#[test]
fn serve_with_a_jwt_key_starts_without_api_keys_and_the_cli_token_works() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let idp = Idp::new(dir.path());
    let mut child = spares_cli()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .arg("--jwt-public-key")
        .arg(&idp.public_key)
        .args(["--jwt-algorithm", "ES256", "--jwt-issuer", idp::ISSUER])
        .env("SPARES_JWT_AUDIENCE", idp::AUDIENCE)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let address = {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stderr).lines();
        let found = lines.by_ref().map_while(Result::ok).find_map(|line| {
            line.split("serving gRPC on ")
                .nth(1)
                .map(|rest| rest.split(';').next().unwrap_or("").trim().to_string())
        });
        std::thread::spawn(move || lines.for_each(drop));
        found
    };
    let Some(address) = address else {
        let _ = child.kill();
        panic!("spares serve with --jwt-* did not start");
    };
    let now = Timestamp::now().as_second();
    let admin = idp.token("root@ops", "admin", &[], now);
    let output = spares_cli()
        .args(["locations", "--server", &address, "--bearer-token", &admin])
        .output()
        .unwrap();
    let dealer = idp.token("d@x", "dealer", &["S1"], now);
    let upsert = spares_cli()
        .args([
            "keys",
            "list",
            "--server",
            &address,
            "--bearer-token",
            &dealer,
        ])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(output.status.success(), "{output:?}");
    assert!(!upsert.status.success(), "a dealer lists no keys");
    let stderr = String::from_utf8_lossy(&upsert.stderr);
    assert!(stderr.contains("role dealer"), "{stderr}");

    // Both an API key and a token: a usage error, not a silent choice.
    let both = spares_cli()
        .args(["locations", "--server", &address, "--bearer-token", &admin])
        .env("SPARES_API_KEY", "spk_x")
        .output()
        .unwrap();
    assert!(!both.status.success());
    assert!(
        String::from_utf8_lossy(&both.stderr).contains("give one"),
        "{both:?}"
    );
}
