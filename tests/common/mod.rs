//! Shared fixtures for integration tests: a real server on 127.0.0.1:0 over a
//! temporary sled directory, with a manual clock.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod process;
pub mod raw;

use jiff::Timestamp;
use spares::api::server::{Security, serve_with};
use spares::api::tls::ServerTls;
use spares::cli::client::{Clients, connect};
use spares::clock::ManualClock;
use spares::config::Limits;
use spares::pb;
use spares::service::Spares;
use spares::store::sled_store::SledStore;
use std::sync::Arc;
use tempfile::TempDir;
use tokio::sync::oneshot;

/// A running server and what a test needs to drive it.
pub struct TestServer {
    pub url: String,
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
        let clock = Arc::new(ManualClock::new(
            "2026-11-23T14:00:00Z".parse::<Timestamp>().unwrap(),
        ));
        let store = SledStore::open(dir.path()).unwrap();
        let spares = Arc::new(Spares::new(Arc::new(store), clock.clone(), limits).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
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
                Security { tls },
            )
            .await
            .unwrap();
        });
        Self {
            url,
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

    pub async fn clients(&self) -> Clients {
        connect(&self.url).await.unwrap()
    }
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
