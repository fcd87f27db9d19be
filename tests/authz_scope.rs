//! Scope beyond the table: a dealer cannot see, confirm or release another
//! dealer's reservation, and cannot tell it from an id that does not exist
//! (same code, same message); dealers reserve only for their own stores;
//! ordering apps never reserve; warehouses record movements only at their
//! locations; jobs belong to the principal that started them (only it and
//! administrators cancel; planners read every job; dealers none); job ids
//! are not guessable; a dealer's availability stream carries network-wide
//! stock changes; and a principal past its rate limit is refused with a
//! retry hint while another principal is served.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestServer;
use spares::auth::Role;
use spares::config::Limits;
use spares::demo::DemoConfig;
use spares::domain::network::LocationKind;
use spares::pb;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::Code;

async fn with_small_demo(limits: Limits) -> TestServer {
    TestServer::with_demo(
        DemoConfig {
            seed: 5,
            parts: 40,
            stores: 12,
            ..DemoConfig::default()
        },
        limits,
    )
    .await
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

/// The message with the id replaced, to compare refusals of different ids.
fn shape(status: &tonic::Status, id: &str) -> (Code, String) {
    (status.code(), status.message().replace(id, "<id>"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dealer_cannot_see_confirm_or_release_another_dealers_reservation() {
    let server = with_small_demo(Limits::default()).await;
    let [(store_a, part_a), (store_b, _)] = server.two_stocked_stores();
    let dealer_a = server.key(Role::Dealer, &[&store_a], &[]);
    let dealer_b = server.key(Role::Dealer, &[&store_b], &[]);
    let mut a = server.clients_as(Some(&dealer_a)).await;
    let mut b = server.clients_as(Some(&dealer_b)).await;

    // B watches network-wide availability while A reserves.
    let mut stream = b
        .availability
        .watch_availability(pb::WatchAvailabilityRequest {
            part_ids: vec![part_a.clone()],
            location_ids: vec![],
        })
        .await
        .unwrap()
        .into_inner();

    let held = a
        .availability
        .reserve(reserve("a-1", &part_a, &store_a))
        .await
        .expect("a dealer reserves at its own store")
        .into_inner();
    let id = held.reservation_id.clone();

    let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("B's stream carries A's stock change")
        .unwrap()
        .unwrap();
    let Some(pb::stock_event::Event::Changed(position)) = event.event else {
        panic!("expected a stock change: {event:?}");
    };
    assert_eq!(position.location_id, store_a, "network-wide stock changes");

    // Another dealer's reservation answers exactly as an unknown id.
    let missing = "R99999999999999999999";
    let get = |client: &mut spares::cli::client::Clients, id: &str| {
        let mut client = client.availability.clone();
        let id = id.to_string();
        async move {
            client
                .get_reservation(pb::GetReservationRequest { reservation_id: id })
                .await
        }
    };
    let hidden = get(&mut b, &id).await.unwrap_err();
    let unknown = get(&mut b, missing).await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    assert_eq!(shape(&hidden, &id), shape(&unknown, missing));

    let confirm = |id: &str, key: &str| pb::ConfirmReservationRequest {
        reservation_id: id.into(),
        idempotency_key: key.into(),
        ..Default::default()
    };
    let hidden = b
        .availability
        .confirm_reservation(confirm(&id, "b-confirm"))
        .await
        .unwrap_err();
    let unknown = b
        .availability
        .confirm_reservation(confirm(missing, "b-confirm-2"))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    assert_eq!(shape(&hidden, &id), shape(&unknown, missing));

    let release = |id: &str, key: &str| pb::ReleaseReservationRequest {
        reservation_id: id.into(),
        idempotency_key: key.into(),
    };
    let hidden = b
        .availability
        .release_reservation(release(&id, "b-release"))
        .await
        .unwrap_err();
    let unknown = b
        .availability
        .release_reservation(release(missing, "b-release-2"))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    assert_eq!(shape(&hidden, &id), shape(&unknown, missing));

    let listed = |client: &mut spares::cli::client::Clients| {
        let mut client = client.availability.clone();
        async move {
            client
                .list_reservations(pb::ListReservationsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .reservations
                .into_iter()
                .map(|r| r.reservation_id)
                .collect::<Vec<_>>()
        }
    };
    assert!(
        !listed(&mut b).await.contains(&id),
        "B does not list A's reservation"
    );
    assert_eq!(listed(&mut a).await, vec![id.clone()], "A lists its own");

    // B's attempts changed nothing: A's reservation is still pending, and A
    // confirms it.
    let mut admin = server.clients().await;
    let still = get(&mut admin, &id).await.unwrap().into_inner();
    assert_eq!(still.state, pb::ReservationState::Pending as i32);
    a.availability
        .confirm_reservation(confirm(&id, "a-confirm"))
        .await
        .expect("A confirms its own reservation");

    // Dealers reserve only for their stores; ordering apps never reserve.
    let refused = a
        .availability
        .reserve(reserve("a-2", &part_a, &store_b))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains(&store_a),
        "{}",
        refused.message()
    );
    let ordering = server.key(Role::OrderingApp, &[], &[]);
    let mut app = server.clients_as(Some(&ordering)).await;
    let order = pb::PromiseOrderRequest {
        destination_location_id: store_a.clone(),
        lines: vec![pb::OrderLine {
            line_id: "1".into(),
            part_id: part_a.clone(),
            quantity: 1,
        }],
        reserve: true,
        idempotency_key: "app-1".into(),
        ..Default::default()
    };
    let refused = app
        .availability
        .promise_order(order.clone())
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::PermissionDenied,
        "{}",
        refused.message()
    );
    let asked = app
        .availability
        .promise_order(pb::PromiseOrderRequest {
            reserve: false,
            idempotency_key: String::new(),
            ..order.clone()
        })
        .await;
    assert!(asked.is_ok(), "an ordering app may ask: {asked:?}");
    let refused = b.availability.promise_order(order).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "B for A's store");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warehouse_records_movements_only_at_its_locations() {
    let server = with_small_demo(Limits::default()).await;
    let [(store, part), _] = server.two_stocked_stores();
    let network = server.spares.network();
    let warehouse = network
        .locations
        .values()
        .find(|l| l.kind == LocationKind::RegionalWarehouse)
        .unwrap()
        .id
        .clone();
    let key = server.key(Role::Warehouse, &[], &[&warehouse]);
    let mut clients = server.clients_as(Some(&key)).await;
    let at = |key: &str, location: &str| pb::RecordMovementsRequest {
        movements: vec![common::receipt(key, &part, location, 1)],
    };
    clients
        .inventory
        .record_movements(at("w-1", &warehouse))
        .await
        .expect("at its own location");
    let refused = clients
        .inventory
        .record_movements(at("w-2", &store))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("movements[0].location_id"),
        "{}",
        refused.message()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_belong_to_the_principal_that_started_them() {
    let server = with_small_demo(Limits::default()).await;
    let [(store, _), _] = server.two_stocked_stores();
    let owner_key = server.key(Role::Planner, &[], &[]);
    let other_key = server.key(Role::Planner, &[], &[]);
    let dealer_key = server.key(Role::Dealer, &[&store], &[]);
    let mut owner = server.clients_as(Some(&owner_key)).await;
    let mut other = server.clients_as(Some(&other_key)).await;
    let mut dealer = server.clients_as(Some(&dealer_key)).await;
    let job = owner
        .planning
        .simulate(pb::SimulateRequest {
            settings: Some(pb::SimulationSettings {
                horizon_days: 2000,
                warmup_days: 30,
                replications: 200,
                seed: 3,
                part_ids: vec![],
            }),
            scenarios: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let id = job.job_id.clone();
    let owner_id = format!(
        "apikey:{}",
        spares::auth::keys::key_id_of(&owner_key).unwrap()
    );
    assert_eq!(job.owner, owner_id);
    // job-<sequence>-<128 random bits>: not guessable from another id.
    let random = id.rsplit('-').next().unwrap();
    assert_eq!(random.len(), 32, "{id}");
    assert!(random.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");

    let get = pb::GetJobRequest { job_id: id.clone() };
    other
        .planning
        .get_job(get.clone())
        .await
        .expect("planners read every job");
    let refused = dealer.planning.get_job(get).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "dealers see no job");
    let listed = dealer
        .planning
        .list_jobs(pb::ListJobsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(listed.code(), Code::PermissionDenied);

    let cancel = pb::CancelJobRequest { job_id: id.clone() };
    let refused = other.planning.cancel_job(cancel.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("owner"), "{}", refused.message());
    let cancelled = owner
        .planning
        .cancel_job(cancel.clone())
        .await
        .expect("the owner cancels its job")
        .into_inner();
    assert_eq!(cancelled.job_id, id);
    let mut admin = server.clients().await;
    admin
        .planning
        .cancel_job(cancel)
        .await
        .expect("administrators cancel any job");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_the_rate_is_refused_for_that_principal_only() {
    let server = TestServer::start_with(Limits {
        rate_per_principal_per_second: 0.5,
        rate_burst_per_principal: 5,
        ..Limits::default()
    })
    .await;
    let planner = server.key(Role::Planner, &[], &[]);
    let mut busy = server.clients_as(Some(&planner)).await;
    let mut refused = None;
    let mut served = 0;
    for _ in 0..20 {
        match busy
            .network
            .list_locations(pb::ListLocationsRequest::default())
            .await
        {
            Ok(_) => served += 1,
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    assert_eq!(served, 5, "the burst is served");
    let refused = refused.expect("the call past the burst is refused");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("retry after"),
        "{}",
        refused.message()
    );
    let hint: u64 = refused
        .metadata()
        .get("retry-after")
        .expect("a retry-after hint")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&hint), "seconds until a token: {hint}");
    let mut other = server.clients().await;
    other
        .network
        .list_locations(pb::ListLocationsRequest::default())
        .await
        .expect("another principal is still served");
    server.stop().await;
}
