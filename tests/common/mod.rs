//! Shared fixtures for integration tests: a real server on 127.0.0.1:0 over a
//! temporary sled directory, with a manual clock.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod process;
pub mod raw;

use jiff::Timestamp;
use spares::api::server::{Security, serve_with};
use spares::api::tls::ServerTls;
use spares::auth::Role;
use spares::cli::client::{Clients, Target, connect};
use spares::clock::ManualClock;
use spares::config::Limits;
use spares::pb;
use spares::service::Spares;
use spares::store::sled_store::SledStore;
use std::sync::Arc;
use tempfile::TempDir;
use tokio::sync::oneshot;

/// A running server and what a test needs to drive it. Authentication is
/// on, as in production: the harness creates an administrator key before the
/// server starts, and [`TestServer::clients`] present it.
pub struct TestServer {
    pub url: String,
    /// The administrator key every harness client presents.
    pub admin_key: String,
    pub spares: Arc<Spares>,
    pub clock: Arc<ManualClock>,
    pub dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with default limits.
    pub async fn start() -> Self {
        Self::start_with(Limits::default()).await
    }

    /// Starts a server with `limits` and loads a demo network built by
    /// `config` at 2026-11-23T14:00:00Z (master data and opening movements).
    pub async fn with_demo(config: spares::demo::DemoConfig, limits: Limits) -> Self {
        let server = Self::start_with(limits).await;
        let now: jiff::Timestamp = "2026-11-23T14:00:00Z".parse().unwrap();
        let demo = spares::demo::build_demo(&config, now).unwrap();
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
        server
    }

    /// Starts a server with the given limits.
    pub async fn start_with(limits: Limits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, limits).await
    }

    /// Starts a server over an existing data directory.
    pub async fn start_in(dir: TempDir, limits: Limits) -> Self {
        Self::start_serving(dir, limits, None).await
    }

    /// Starts a server over TLS; its `url` is `https://127.0.0.1:PORT`.
    pub async fn start_tls(tls: Arc<ServerTls>) -> Self {
        Self::start_serving(tempfile::tempdir().unwrap(), Limits::default(), Some(tls)).await
    }

    /// Starts a server over `dir`, over TLS when `tls` is given.
    pub async fn start_serving(dir: TempDir, limits: Limits, tls: Option<Arc<ServerTls>>) -> Self {
        Self::start_secured(dir, limits, move |_| Security {
            tls,
            ..Security::default()
        })
        .await
    }

    /// Starts a server over `dir` whose security `secure` makes from the
    /// service (authenticators that read its clock, TLS, API keys on or
    /// off). The administrator key is created whatever `secure` says.
    pub async fn start_secured(
        dir: TempDir,
        limits: Limits,
        secure: impl FnOnce(&Arc<Spares>) -> Security,
    ) -> Self {
        let clock = Arc::new(ManualClock::new(
            "2026-11-23T14:00:00Z".parse::<Timestamp>().unwrap(),
        ));
        let store = SledStore::open(dir.path()).unwrap();
        let spares = Arc::new(Spares::new(Arc::new(store), clock.clone(), limits).unwrap());
        let admin_key = create_key(&spares, Role::Admin, &[], &[]);
        let security = secure(&spares);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if security.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = spares.clone();
        let handle = tokio::spawn(async move {
            serve_with(
                server,
                listener,
                async {
                    let _ = stopped.await;
                },
                security,
            )
            .await
            .unwrap();
        });
        Self {
            url,
            admin_key,
            spares,
            clock,
            dir,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Stops the server and waits until it has let go of the store.
    pub async fn stop(mut self) -> TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
        let TestServer { dir, .. } = self;
        dir
    }

    /// Two stores (in id order), each holding at least two available units of some part:
    /// (store, part).
    pub fn two_stocked_stores(&self) -> [(String, String); 2] {
        let network = self.spares.network();
        let mut found = Vec::new();
        // Locations are keyed by id, so this walks them in id order.
        for location in network.locations.values() {
            if location.kind != spares::domain::network::LocationKind::Store {
                continue;
            }
            let balances = self
                .spares
                .store()
                .balances(None, Some(&location.id))
                .unwrap();
            if let Some(b) = balances.iter().find(|b| b.available >= 2) {
                found.push((location.id.clone(), b.part_id.clone()));
            }
            if found.len() == 2 {
                break;
            }
        }
        assert_eq!(found.len(), 2, "the demo has two stocked stores");
        [found[0].clone(), found[1].clone()]
    }

    /// Clients presenting the administrator key.
    pub async fn clients(&self) -> Clients {
        connect(self.target()).await.unwrap()
    }

    /// The server's URL with the administrator key.
    pub fn target(&self) -> Target {
        Target::new(self.url.clone(), Some(self.admin_key.clone()))
    }

    /// Clients presenting `key` (`None`: anonymous).
    pub async fn clients_as(&self, key: Option<&str>) -> Clients {
        connect(Target::new(self.url.clone(), key.map(str::to_string)))
            .await
            .unwrap()
    }

    /// Creates a key with `role` and scope; returns the whole key.
    pub fn key(&self, role: Role, stores: &[&str], locations: &[&str]) -> String {
        create_key(&self.spares, role, stores, locations)
    }

    /// A raw-call channel presenting the administrator key.
    pub async fn raw_channel(&self) -> spares::cli::client::AuthChannel {
        raw::channel_as(&self.url, Some(&self.admin_key)).await
    }
}

/// Creates a key in `spares` directly (as `spares keys create` does).
pub fn create_key(spares: &Spares, role: Role, stores: &[&str], locations: &[&str]) -> String {
    let (_, key) = spares
        .create_api_key(spares::service::keys::NewApiKey {
            role,
            stores: stores.iter().map(|s| s.to_string()).collect(),
            locations: locations.iter().map(|s| s.to_string()).collect(),
            name: format!("test {role}"),
            created_by: "test".into(),
        })
        .unwrap();
    key
}

/// Creates an administrator key in the data directory `dir` (no server may
/// be using it), for tests that start the binary: the record `spares keys
/// create` writes, put straight into the store.
pub fn admin_key_in(dir: &std::path::Path) -> String {
    use spares::auth::keys::{ApiKeyRecord, COLLECTION, generate};
    use spares::store::Store;
    let store = SledStore::open(dir).unwrap();
    let new = generate().unwrap();
    let record = ApiKeyRecord {
        key_id: new.key_id.clone(),
        role: Role::Admin,
        stores: Vec::new(),
        locations: Vec::new(),
        name: "test admin".into(),
        created_at: Timestamp::now(),
        created_by: "test".into(),
        revoked_at: None,
        sha256: new.sha256,
    };
    store
        .put_record(
            COLLECTION,
            &record.key_id,
            &serde_json::to_vec(&record).unwrap(),
        )
        .unwrap();
    new.key
}
pub fn location(id: &str, kind: pb::LocationKind, tz: &str, source: &str) -> pb::Location {
    pb::Location {
        id: id.into(),
        name: id.into(),
        kind: kind as i32,
        latitude_deg: 41.88,
        longitude_deg: -87.63,
        time_zone: tz.into(),
        calendar: None,
        order_cutoff_local: Some(pb::TimeOfDay {
            hour: 16,
            minute: 0,
        }),
        handling_minutes: 30,
        replenishment_source_id: source.into(),
        country_code: "US".into(),
    }
}

pub fn part(id: &str) -> pb::Part {
    pb::Part {
        id: id.into(),
        description: format!("part {id}"),
        unit_cost_usd: 100.0,
        criticality: pb::Criticality::Critical as i32,
        kind: pb::PartKind::Consumable as i32,
        successor_part_id: String::new(),
        interchangeability: 0,
        ..Default::default()
    }
}

pub fn receipt(key: &str, part: &str, location: &str, quantity: i64) -> pb::MovementRequest {
    pb::MovementRequest {
        idempotency_key: key.into(),
        kind: pb::MovementKind::Receipt as i32,
        part_id: part.into(),
        location_id: location.into(),
        quantity,
        ..Default::default()
    }
}

/// A depot and a store in Chicago, and parts P1..P3.
pub async fn small_network(clients: &mut Clients) {
    clients
        .network
        .upsert_locations(pb::UpsertLocationsRequest {
            locations: vec![
                location("DEP", pb::LocationKind::FactoryDepot, "America/Chicago", ""),
                location("STR", pb::LocationKind::Store, "America/Chicago", "DEP"),
            ],
        })
        .await
        .unwrap();
    clients
        .network
        .upsert_parts(pb::UpsertPartsRequest {
            parts: vec![part("P1"), part("P2"), part("P3")],
        })
        .await
        .unwrap();
}

/// Whether `python3` with grpcio is available; when it is not, prints a
/// visible SKIPPED line naming `test` and how to install it.
pub fn python_with_grpcio(test: &str) -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", "import grpc"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!(
            "SKIPPED {test}: python3 with grpcio not found (`python3 -m pip install grpcio`; .ci/run does)"
        );
    }
    found
}
