//! The authorisation matrix: every RPC the server serves (read from the
//! descriptor sets it registers: spares.v1, health, reflection v1 and
//! v1alpha) x every role, plus an anonymous caller and a dealer of another
//! store, each asserting the exact outcome the one table (`auth::table`)
//! implies:
//! - an RPC without a row fails the test (and a row without an RPC too);
//! - anonymous: UNAUTHENTICATED, except open health and reflection;
//! - a role the row lists: the handler answers, with the same code the
//!   administrator gets for the same (empty) request;
//! - a role it does not list: PERMISSION_DENIED naming the role and RPC.
//!
//! Also: a bad or revoked key is UNAUTHENTICATED with the same message as
//! no key; keys are created, listed and revoked over the admin RPCs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, location, raw};
use prost_reflect::DescriptorPool;
use spares::auth::Role;
use spares::auth::table::{self, Access};
use spares::pb;
use std::collections::BTreeSet;
use tonic::Code;

struct Method {
    path: String,
    streaming: bool,
}

/// Every method of every service the server registers.
fn served_methods() -> Vec<Method> {
    let sets: [&[u8]; 4] = [
        pb::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut methods = Vec::new();
    for set in sets {
        let pool = DescriptorPool::decode(set).unwrap();
        for service in pool.services() {
            for method in service.methods() {
                methods.push(Method {
                    path: format!("/{}/{}", service.full_name(), method.name()),
                    streaming: method.is_server_streaming(),
                });
            }
        }
    }
    methods
}

#[test]
fn every_served_rpc_has_exactly_one_row_and_every_row_an_rpc() {
    let served: BTreeSet<String> = served_methods().into_iter().map(|m| m.path).collect();
    let missing: Vec<&String> = served
        .iter()
        .filter(|p| table::access(p).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "RPCs without a row in src/auth/table.rs: {missing:?}"
    );
    let stale: Vec<&str> = table::TABLE
        .iter()
        .map(|(p, _, _)| *p)
        .filter(|p| !served.contains(*p))
        .collect();
    assert!(stale.is_empty(), "rows for RPCs nobody serves: {stale:?}");
    assert!(served.len() >= 47, "{} RPCs", served.len());
}

/// Allowed by the table, but an empty request is refused by the handler's
/// scope check: a warehouse reads the movement log only naming one of its
/// locations.
const SCOPED_EMPTY_REQUEST: &[(&str, Role)] =
    &[("/spares.v1.InventoryService/ListMovements", Role::Warehouse)];

/// The callers of the matrix.
struct Callers {
    anonymous: Option<String>,
    roles: Vec<(Role, String)>,
    other_dealer: String,
}

async fn callers(server: &TestServer) -> Callers {
    let mut admin = server.clients().await;
    admin
        .network
        .upsert_locations(pb::UpsertLocationsRequest {
            locations: vec![
                location("DEP", pb::LocationKind::FactoryDepot, "America/Chicago", ""),
                location("STR", pb::LocationKind::Store, "America/Chicago", "DEP"),
                location("STR2", pb::LocationKind::Store, "America/Chicago", "DEP"),
            ],
        })
        .await
        .unwrap();
    let roles = Role::ALL
        .into_iter()
        .map(|role| {
            let key = match role {
                Role::Dealer => server.key(role, &["STR"], &[]),
                Role::Warehouse => server.key(role, &[], &["DEP"]),
                _ => server.key(role, &[], &[]),
            };
            (role, key)
        })
        .collect();
    Callers {
        anonymous: None,
        roles,
        other_dealer: server.key(Role::Dealer, &["STR2"], &[]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_by_every_role_gets_the_outcome_the_table_says() {
    let server = TestServer::start_with(spares::config::Limits {
        max_job_work: 1e7,
        ..spares::config::Limits::default()
    })
    .await;
    let callers = callers(&server).await;
    let url = server.url.clone();
    let channel = |key: Option<String>| {
        let url = url.clone();
        async move { raw::channel_as(&url, key.as_deref()).await }
    };
    let anonymous = channel(callers.anonymous.clone()).await;
    let mut cells = 0;
    for method in served_methods() {
        let path = method.path.as_str();
        let access = table::access(path).expect("a row (checked above)");
        let admin_key = &callers
            .roles
            .iter()
            .find(|(r, _)| *r == Role::Admin)
            .unwrap()
            .1;
        let admin = channel(Some(admin_key.clone())).await;
        let (admin_code, admin_message) =
            raw::call(&admin, path, Vec::new(), method.streaming).await;
        assert!(
            !matches!(admin_code, Code::Unauthenticated | Code::PermissionDenied),
            "{path}: admin got {admin_code:?} {admin_message}"
        );

        let (code, message) = raw::call(&anonymous, path, Vec::new(), method.streaming).await;
        match access {
            Access::Health | Access::Reflection => assert_eq!(
                code, admin_code,
                "{path}: anonymous on an open RPC: {message}"
            ),
            Access::Roles(_) => {
                assert_eq!(code, Code::Unauthenticated, "{path}: anonymous: {message}");
                assert!(
                    message.contains("no credentials") && message.contains("API key"),
                    "{message}"
                );
            }
        }
        cells += 1;

        let mut row = callers.roles.clone();
        row.push((Role::Dealer, callers.other_dealer.clone()));
        for (role, key) in &row {
            let caller = channel(Some(key.clone())).await;
            let (code, message) = raw::call(&caller, path, Vec::new(), method.streaming).await;
            if SCOPED_EMPTY_REQUEST.contains(&(path, *role)) {
                // The table lets the role in; the handler's scope check
                // refuses an empty request (it names no location of its own).
                assert_eq!(code, Code::PermissionDenied, "{path}: {role}: {message}");
                assert!(message.contains("location_id"), "{path}: {message}");
            } else if table::allows(path, *role) {
                assert_eq!(
                    code, admin_code,
                    "{path}: {role} is allowed and should get the administrator's answer to the same request: {message} / {admin_message}"
                );
            } else {
                assert_eq!(code, Code::PermissionDenied, "{path}: {role}: {message}");
                let rpc = path.trim_start_matches('/');
                assert!(
                    message.contains(role.name()) && message.contains(rpc),
                    "{path}: the refusal names the role and RPC: {message}"
                );
            }
            cells += 1;
        }
    }
    println!("authz matrix: {cells} cells");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_unknown_and_revoked_keys_are_refused_alike() {
    let server = TestServer::start().await;
    let mut admin = server.clients().await;
    let created = admin
        .admin
        .create_api_key(pb::CreateApiKeyRequest {
            role: pb::Role::Planner as i32,
            name: "a planner".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let key = created.secret.clone();
    let key_id = created.key.as_ref().unwrap().key_id.clone();
    assert!(key.starts_with("spk_") && key.contains(&key_id));

    let mut planner = server.clients_as(Some(&key)).await;
    planner
        .network
        .list_locations(pb::ListLocationsRequest::default())
        .await
        .expect("a new planner key works at once");

    let listed = admin
        .admin
        .list_api_keys(pb::ListApiKeysRequest::default())
        .await
        .unwrap()
        .into_inner();
    let row = listed.keys.iter().find(|k| k.key_id == key_id).unwrap();
    assert_eq!(row.role, pb::Role::Planner as i32);
    assert_eq!(row.name, "a planner");
    assert!(row.created_by.starts_with("apikey:"), "{row:?}");

    // A wrong secret for a real id, an unknown id, garbage and no key at all
    // answer the same, so a caller learns nothing about which ids exist.
    let mut wrong_secret = key.clone();
    wrong_secret.pop();
    wrong_secret.push(if key.ends_with('0') { '1' } else { '0' });
    let unknown = format!("spk_0000000000000000_{}", "ab".repeat(32));
    let mut messages = BTreeSet::new();
    for presented in [
        Some(wrong_secret.as_str()),
        Some(unknown.as_str()),
        Some("garbage"),
    ] {
        let mut clients = server.clients_as(presented).await;
        let status = clients
            .network
            .list_locations(pb::ListLocationsRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{presented:?}");
        messages.insert(status.message().to_string());
    }
    assert_eq!(
        messages.len(),
        1,
        "one message for every refusal: {messages:?}"
    );
    // No credentials at all: the refusal names what is missing (the kinds
    // this server accepts), never which keys exist.
    let status = server
        .clients_as(None)
        .await
        .network
        .list_locations(pb::ListLocationsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().starts_with("no credentials") && status.message().contains("x-api-key"),
        "{}",
        status.message()
    );

    let revoked = admin
        .admin
        .revoke_api_key(pb::RevokeApiKeyRequest {
            key_id: key_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(revoked.revoked_at.is_some());
    let status = planner
        .network
        .list_locations(pb::ListLocationsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        Some(status.message()),
        messages.iter().next().map(String::as_str)
    );
    let unknown_revoke = admin
        .admin
        .revoke_api_key(pb::RevokeApiKeyRequest {
            key_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown_revoke.code(), Code::NotFound);

    // Scope must fit the role.
    let refused = admin
        .admin
        .create_api_key(pb::CreateApiKeyRequest {
            role: pb::Role::Dealer as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("store_ids"),
        "{}",
        refused.message()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_authentication_on_and_no_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = spares::store::SledStore::open(dir.path()).unwrap();
    let spares = std::sync::Arc::new(
        spares::service::Spares::new(
            std::sync::Arc::new(store),
            std::sync::Arc::new(spares::clock::SystemClock),
            spares::config::Limits::default(),
        )
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = spares::api::server::serve(spares, listener, async {})
        .await
        .unwrap_err();
    assert!(
        matches!(error, spares::api::server::ServeError::NoCredentials),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("spares keys create --role admin"),
        "{error}"
    );
}
