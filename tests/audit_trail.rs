//! The audit trail end to end: a scripted session over gRPC by several
//! principals (administrator, warehouse, planner, two dealers) performs every
//! kind of mutation, and `ListAuditEvents` shows each exactly once, in order,
//! with its principal, RPC, idempotency keys and the status the client saw,
//! and no read-only call. `ListMovements` filters by part, location, actor
//! and time and pages without repeating or skipping an entry; a warehouse
//! reads only its own locations. An idempotency key another principal used
//! is not revealed. The CLI (`spares movements list|record`, `spares audit`)
//! prints the rows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, location, part, receipt};
use spares::auth::Role;
use spares::cli::client::Clients;
use spares::pb;
use tonic::Code;

/// One mutating call as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    principal: String,
    rpc: &'static str,
    keys: Vec<String>,
    code: i32,
}

/// A caller: its key, principal id and clients.
struct Caller {
    key: String,
    principal: String,
    clients: Clients,
}

async fn caller(server: &TestServer, key: String) -> Caller {
    let principal = format!("apikey:{}", spares::auth::keys::key_id_of(&key).unwrap());
    let clients = server.clients_as(Some(&key)).await;
    Caller {
        key,
        principal,
        clients,
    }
}

/// The session's log of mutating calls.
#[derive(Default)]
struct Script {
    expected: Vec<Expected>,
}

impl Script {
    /// Notes a mutating call's outcome and returns its reply.
    fn note<T>(
        &mut self,
        who: &Caller,
        rpc: &'static str,
        keys: &[&str],
        result: Result<tonic::Response<T>, tonic::Status>,
    ) -> Result<T, tonic::Status> {
        let code = match &result {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        };
        self.expected.push(Expected {
            principal: who.principal.clone(),
            rpc,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            code: code as i32,
        });
        result.map(tonic::Response::into_inner)
    }
}

fn movement(
    key: &str,
    kind: pb::MovementKind,
    part: &str,
    at: &str,
    quantity: i64,
) -> pb::MovementRequest {
    pb::MovementRequest {
        kind: kind as i32,
        ..receipt(key, part, at, quantity)
    }
}

fn movements(list: Vec<pb::MovementRequest>) -> pb::RecordMovementsRequest {
    pb::RecordMovementsRequest { movements: list }
}

fn reserve(key: &str, part: &str, at: &str) -> pb::ReserveRequest {
    pb::ReserveRequest {
        idempotency_key: key.into(),
        part_id: part.into(),
        location_id: at.into(),
        quantity: 1,
        ttl_seconds: 3600,
        ..Default::default()
    }
}

async fn all_events(
    admin: &mut Clients,
    filter: pb::ListAuditEventsRequest,
    page_size: u32,
) -> Vec<pb::AuditEvent> {
    let mut request = filter;
    let mut events = Vec::new();
    loop {
        request.page = Some(pb::PageRequest {
            page_size,
            page_token: request.page.map(|p| p.page_token).unwrap_or_default(),
        });
        let page = admin
            .admin
            .list_audit_events(request.clone())
            .await
            .unwrap()
            .into_inner();
        assert!(page.events.len() <= page_size as usize);
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return events;
        }
        request.page = Some(pb::PageRequest {
            page_size,
            page_token: page.next_page_token,
        });
    }
}

async fn all_movements(
    who: &mut Clients,
    filter: pb::ListMovementsRequest,
    page_size: u32,
) -> Vec<pb::MovementEntry> {
    let mut request = filter;
    let mut token = String::new();
    let mut entries = Vec::new();
    loop {
        request.page = Some(pb::PageRequest {
            page_size,
            page_token: token,
        });
        let page = who
            .inventory
            .list_movements(request.clone())
            .await
            .unwrap()
            .into_inner();
        assert!(page.movements.len() <= page_size as usize);
        entries.extend(page.movements);
        if page.next_page_token.is_empty() {
            return entries;
        }
        token = page.next_page_token;
    }
}

fn sequences(entries: &[pb::MovementEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.sequence).collect()
}

/// Runs the built binary with the server's URL and `key`; returns stdout.
async fn cli(server: &TestServer, key: &str, args: &[&str]) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_spares"));
    command
        .args(args)
        .args(["--server", &server.url, "--api-key", key])
        .env_remove("SPARES_API_KEY")
        .env("RUST_LOG", "warn");
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "spares {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutation_is_audited_once_with_its_principal_and_reads_are_not() {
    let server = TestServer::start().await;
    let mut admin = caller(&server, server.admin_key.clone()).await;
    let mut script = Script::default();
    let started = server.spares.clock().now();

    // Master data (administrator).
    let reply = admin
        .clients
        .network
        .upsert_locations(pb::UpsertLocationsRequest {
            locations: vec![
                location("DEP", pb::LocationKind::FactoryDepot, "America/Chicago", ""),
                location("STR", pb::LocationKind::Store, "America/Chicago", "DEP"),
            ],
        })
        .await;
    script
        .note(
            &admin,
            "/spares.v1.NetworkService/UpsertLocations",
            &[],
            reply,
        )
        .unwrap();
    let reply = admin
        .clients
        .network
        .upsert_parts(pb::UpsertPartsRequest {
            parts: vec![part("P1"), part("P2"), part("P3")],
        })
        .await;
    script
        .note(&admin, "/spares.v1.NetworkService/UpsertParts", &[], reply)
        .unwrap();
    // Keys bound to locations are made once the locations exist.
    let mut warehouse = caller(&server, server.key(Role::Warehouse, &[], &["DEP"])).await;
    let mut planner = caller(&server, server.key(Role::Planner, &[], &[])).await;
    let mut dealer = caller(&server, server.key(Role::Dealer, &["STR"], &[])).await;
    let mut other_dealer = caller(&server, server.key(Role::Dealer, &["STR"], &[])).await;

    // Movements (warehouse at DEP): a batch of two receipts, an issue, an
    // issue past the stock (refused by the ledger), and one at a location
    // that is not its own (refused by the handler's scope check).
    let reply = warehouse
        .clients
        .inventory
        .record_movements(movements(vec![
            receipt("w-1", "P1", "DEP", 10),
            receipt("w-2", "P2", "DEP", 5),
        ]))
        .await;
    script
        .note(
            &warehouse,
            "/spares.v1.InventoryService/RecordMovements",
            &["w-1", "w-2"],
            reply,
        )
        .unwrap();
    let reply = warehouse
        .clients
        .inventory
        .record_movements(movements(vec![movement(
            "w-3",
            pb::MovementKind::Issue,
            "P1",
            "DEP",
            1,
        )]))
        .await;
    script
        .note(
            &warehouse,
            "/spares.v1.InventoryService/RecordMovements",
            &["w-3"],
            reply,
        )
        .unwrap();
    let reply = warehouse
        .clients
        .inventory
        .record_movements(movements(vec![movement(
            "w-4",
            pb::MovementKind::Issue,
            "P2",
            "DEP",
            100,
        )]))
        .await;
    let refused = script
        .note(
            &warehouse,
            "/spares.v1.InventoryService/RecordMovements",
            &["w-4"],
            reply,
        )
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let reply = warehouse
        .clients
        .inventory
        .record_movements(movements(vec![receipt("w-5", "P1", "STR", 1)]))
        .await;
    let refused = script
        .note(
            &warehouse,
            "/spares.v1.InventoryService/RecordMovements",
            &["w-5"],
            reply,
        )
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // An hour later: stock at the store (administrator) and a policy (planner).
    server.clock.advance_seconds(3600);
    let later = server.spares.clock().now();
    let reply = admin
        .clients
        .inventory
        .record_movements(movements(vec![receipt("a-1", "P1", "STR", 4)]))
        .await;
    script
        .note(
            &admin,
            "/spares.v1.InventoryService/RecordMovements",
            &["a-1"],
            reply,
        )
        .unwrap();
    let reply = planner
        .clients
        .planning
        .set_policies(pb::SetPoliciesRequest {
            policies: vec![pb::Policy {
                part_id: "P1".into(),
                location_id: "STR".into(),
                kind: pb::PolicyKind::BaseStock as i32,
                order_up_to: 4,
                ..Default::default()
            }],
        })
        .await;
    script
        .note(
            &planner,
            "/spares.v1.PlanningService/SetPolicies",
            &[],
            reply,
        )
        .unwrap();

    // Reservations (dealer): reserve and confirm, reserve and release, and
    // an order promise that reserves.
    let reply = dealer
        .clients
        .availability
        .reserve(reserve("d-1", "P1", "STR"))
        .await;
    let held = script
        .note(
            &dealer,
            "/spares.v1.AvailabilityService/Reserve",
            &["d-1"],
            reply,
        )
        .unwrap();
    let reply = dealer
        .clients
        .availability
        .confirm_reservation(pb::ConfirmReservationRequest {
            reservation_id: held.reservation_id.clone(),
            idempotency_key: "d-2".into(),
            ..Default::default()
        })
        .await;
    script
        .note(
            &dealer,
            "/spares.v1.AvailabilityService/ConfirmReservation",
            &["d-2"],
            reply,
        )
        .unwrap();
    let reply = dealer
        .clients
        .availability
        .reserve(reserve("d-3", "P1", "STR"))
        .await;
    let held = script
        .note(
            &dealer,
            "/spares.v1.AvailabilityService/Reserve",
            &["d-3"],
            reply,
        )
        .unwrap();
    let reply = dealer
        .clients
        .availability
        .release_reservation(pb::ReleaseReservationRequest {
            reservation_id: held.reservation_id.clone(),
            idempotency_key: "d-4".into(),
        })
        .await;
    script
        .note(
            &dealer,
            "/spares.v1.AvailabilityService/ReleaseReservation",
            &["d-4"],
            reply,
        )
        .unwrap();
    let order = |reserve: bool, key: &str| pb::PromiseOrderRequest {
        lines: vec![pb::OrderLine {
            line_id: "1".into(),
            part_id: "P1".into(),
            quantity: 1,
        }],
        destination_location_id: "STR".into(),
        reserve,
        idempotency_key: key.into(),
        ..Default::default()
    };
    // Without `reserve` an order promise only reads: not in the trail.
    let _ = dealer
        .clients
        .availability
        .promise_order(order(false, ""))
        .await;
    let reply = dealer
        .clients
        .availability
        .promise_order(order(true, "d-5"))
        .await;
    let _ = script.note(
        &dealer,
        "/spares.v1.AvailabilityService/PromiseOrder",
        &["d-5"],
        reply,
    );

    // Idempotency keys are per principal: another dealer reusing "d-1" with
    // another payload is a fresh reservation, not ALREADY_EXISTS (which would
    // tell it the key exists); the owner reusing it with another payload is.
    let reply = other_dealer
        .clients
        .availability
        .reserve(pb::ReserveRequest {
            ttl_seconds: 60,
            ..reserve("d-1", "P1", "STR")
        })
        .await;
    let theirs = script
        .note(
            &other_dealer,
            "/spares.v1.AvailabilityService/Reserve",
            &["d-1"],
            reply,
        )
        .expect("another principal's key is not revealed");
    assert_ne!(theirs.reservation_id, held.reservation_id);
    let reply = dealer
        .clients
        .availability
        .reserve(pb::ReserveRequest {
            ttl_seconds: 60,
            ..reserve("d-1", "P1", "STR")
        })
        .await;
    let conflict = script
        .note(
            &dealer,
            "/spares.v1.AvailabilityService/Reserve",
            &["d-1"],
            reply,
        )
        .unwrap_err();
    assert_eq!(conflict.code(), Code::AlreadyExists);

    // Keys, a job, a retirement and a backup.
    let reply = admin
        .clients
        .admin
        .create_api_key(pb::CreateApiKeyRequest {
            role: pb::Role::OrderingApp as i32,
            name: "temporary".into(),
            ..Default::default()
        })
        .await;
    let created = script
        .note(&admin, "/spares.v1.AdminService/CreateApiKey", &[], reply)
        .unwrap();
    let key_id = created.key.as_ref().unwrap().key_id.clone();
    let reply = admin
        .clients
        .admin
        .revoke_api_key(pb::RevokeApiKeyRequest { key_id })
        .await;
    script
        .note(&admin, "/spares.v1.AdminService/RevokeApiKey", &[], reply)
        .unwrap();
    let reply = planner
        .clients
        .planning
        .simulate(pb::SimulateRequest {
            settings: Some(pb::SimulationSettings {
                horizon_days: 30,
                warmup_days: 0,
                replications: 2,
                seed: 1,
                part_ids: vec![],
            }),
            scenarios: vec![],
        })
        .await;
    let job = script.note(&planner, "/spares.v1.PlanningService/Simulate", &[], reply);
    if let Ok(job) = job {
        let reply = planner
            .clients
            .planning
            .cancel_job(pb::CancelJobRequest { job_id: job.job_id })
            .await;
        let _ = script.note(&planner, "/spares.v1.PlanningService/CancelJob", &[], reply);
    }
    let reply = admin
        .clients
        .network
        .retire(pb::RetireRequest {
            part_ids: vec!["P3".into()],
            ..Default::default()
        })
        .await;
    script
        .note(&admin, "/spares.v1.NetworkService/Retire", &[], reply)
        .unwrap();
    let mut stream = admin
        .clients
        .admin
        .backup(pb::BackupRequest {})
        .await
        .map(|r| r.into_inner());
    if let Ok(chunks) = stream.as_mut() {
        while chunks.message().await.unwrap().is_some() {}
    }
    script
        .note(
            &admin,
            "/spares.v1.AdminService/Backup",
            &[],
            stream.map(tonic::Response::new),
        )
        .unwrap();

    // Reads of every kind: none of them is in the trail.
    let _ = admin
        .clients
        .inventory
        .get_stock(pb::GetStockRequest {
            part_id: "P1".into(),
            ..Default::default()
        })
        .await;
    let _ = dealer
        .clients
        .availability
        .where_is(pb::WhereIsRequest {
            part_id: "P1".into(),
            ..Default::default()
        })
        .await;
    let _ = dealer
        .clients
        .availability
        .list_reservations(pb::ListReservationsRequest::default())
        .await;
    let _ = planner
        .clients
        .planning
        .get_policies(pb::GetPoliciesRequest {
            part_id: "P1".into(),
            ..Default::default()
        })
        .await;
    let _ = admin
        .clients
        .admin
        .list_api_keys(pb::ListApiKeysRequest::default())
        .await;
    let _ = planner
        .clients
        .inventory
        .list_movements(pb::ListMovementsRequest::default())
        .await;
    // A call the gate refuses (a dealer may not record movements) is in the
    // access log, not the trail.
    let refused = dealer
        .clients
        .inventory
        .record_movements(movements(vec![receipt("x", "P1", "STR", 1)]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // The trail, read in pages of 3: each mutation once, in order, as the
    // client saw it.
    let events = all_events(&mut admin.clients, pb::ListAuditEventsRequest::default(), 3).await;
    let seen: Vec<Expected> = events
        .iter()
        .map(|e| Expected {
            principal: e.principal_id.clone(),
            rpc: script
                .expected
                .iter()
                .map(|x| x.rpc)
                .find(|rpc| *rpc == e.rpc)
                .unwrap_or_else(|| panic!("a call that is not a mutation of the script: {e:?}")),
            keys: e.idempotency_keys.clone(),
            code: e.status_code,
        })
        .collect();
    assert_eq!(seen, script.expected);
    assert!(
        script.expected.len() >= 20,
        "{} mutations",
        script.expected.len()
    );
    let ids: Vec<u64> = events.iter().map(|e| e.event_id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let roles: Vec<&str> = events.iter().map(|e| e.role.as_str()).collect();
    assert!(
        roles.contains(&"warehouse") && roles.contains(&"dealer") && roles.contains(&"planner")
    );
    assert!(
        events
            .iter()
            .all(|e| !e.idempotency_keys.iter().any(|k| k.starts_with("spk_")))
    );

    // Filters: by principal, by RPC (method name), by time.
    let by_dealer = all_events(
        &mut admin.clients,
        pb::ListAuditEventsRequest {
            principal_id: dealer.principal.clone(),
            ..Default::default()
        },
        100,
    )
    .await;
    let dealer_calls = script
        .expected
        .iter()
        .filter(|x| x.principal == dealer.principal)
        .count();
    assert_eq!(by_dealer.len(), dealer_calls);
    let recorded = all_events(
        &mut admin.clients,
        pb::ListAuditEventsRequest {
            rpc: "RecordMovements".into(),
            ..Default::default()
        },
        100,
    )
    .await;
    assert_eq!(recorded.len(), 5);
    let before = all_events(
        &mut admin.clients,
        pb::ListAuditEventsRequest {
            until: Some(spares::api::convert::timestamp_to_pb(later)),
            ..Default::default()
        },
        100,
    )
    .await;
    assert_eq!(
        before.len(),
        6,
        "the master data and the warehouse's four calls"
    );
    // Only administrators read the trail.
    let refused = planner
        .clients
        .admin
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // The movement log: every entry carries its actor; filters and pages.
    let log = all_movements(&mut admin.clients, pb::ListMovementsRequest::default(), 100).await;
    let paged = all_movements(&mut admin.clients, pb::ListMovementsRequest::default(), 2).await;
    assert_eq!(
        sequences(&paged),
        sequences(&log),
        "pages of 2 neither repeat nor skip"
    );
    assert_eq!(
        sequences(&log),
        (1..=sequences(&log).len() as u64).collect::<Vec<_>>()
    );
    let actors: Vec<&str> = log.iter().map(|e| e.actor_id.as_str()).collect();
    assert_eq!(
        &actors[..4],
        [
            &warehouse.principal,
            &warehouse.principal,
            &warehouse.principal,
            &admin.principal
        ]
        .map(String::as_str)
    );
    assert!(
        log.iter()
            .filter(|e| e.cause == "reserve")
            .all(|e| e.actor_id == dealer.principal || e.actor_id == other_dealer.principal)
    );
    let by_warehouse = all_movements(
        &mut admin.clients,
        pb::ListMovementsRequest {
            actor_id: warehouse.principal.clone(),
            ..Default::default()
        },
        100,
    )
    .await;
    assert_eq!(sequences(&by_warehouse), [1, 2, 3]);
    assert!(by_warehouse.iter().all(|e| e.actor_role == "warehouse"));
    let of_p2 = all_movements(
        &mut admin.clients,
        pb::ListMovementsRequest {
            part_id: "P2".into(),
            ..Default::default()
        },
        100,
    )
    .await;
    assert_eq!(sequences(&of_p2), [2]);
    assert_eq!(of_p2[0].idempotency_key, "w-2");
    assert_eq!(of_p2[0].cause, "receipt");
    let at_store = all_movements(
        &mut admin.clients,
        pb::ListMovementsRequest {
            location_id: "STR".into(),
            ..Default::default()
        },
        1,
    )
    .await;
    assert!(
        at_store
            .iter()
            .all(|e| e.legs.iter().any(|l| l.location_id == "STR"))
    );
    assert_eq!(
        at_store.len(),
        log.len() - 3,
        "all but the warehouse's three at DEP"
    );
    let early = all_movements(
        &mut admin.clients,
        pb::ListMovementsRequest {
            since: Some(spares::api::convert::timestamp_to_pb(started)),
            until: Some(spares::api::convert::timestamp_to_pb(later)),
            ..Default::default()
        },
        100,
    )
    .await;
    assert_eq!(sequences(&early), [1, 2, 3]);

    // A warehouse reads its own location only.
    let own = all_movements(
        &mut warehouse.clients,
        pb::ListMovementsRequest {
            location_id: "DEP".into(),
            ..Default::default()
        },
        100,
    )
    .await;
    assert_eq!(sequences(&own), [1, 2, 3]);
    for asked in ["STR", ""] {
        let refused = warehouse
            .clients
            .inventory
            .list_movements(pb::ListMovementsRequest {
                location_id: asked.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{asked:?}");
    }
    let refused = dealer
        .clients
        .inventory
        .list_movements(pb::ListMovementsRequest {
            location_id: "STR".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // The CLI prints the same rows.
    let recorded = cli(
        &server,
        &warehouse.key,
        &[
            "movements",
            "record",
            "--kind",
            "receipt",
            "--part",
            "P2",
            "--location",
            "DEP",
            "--quantity",
            "2",
            "--key",
            "cli-1",
        ],
    )
    .await;
    let next = log.len() as u64 + 1;
    assert!(
        recorded.contains("cli-1") && recorded.contains(&next.to_string()),
        "{recorded}"
    );
    let listed = cli(
        &server,
        &warehouse.key,
        &["movements", "list", "--location", "DEP", "--part", "P2"],
    )
    .await;
    assert!(
        listed.contains("w-2") && listed.contains("cli-1"),
        "{listed}"
    );
    assert!(
        listed.contains(&warehouse.principal) && listed.contains("+2 available@DEP"),
        "{listed}"
    );
    assert!(
        !listed.contains("w-3"),
        "P1's issue is filtered out: {listed}"
    );
    let by_actor = cli(
        &server,
        &admin.key,
        &["movements", "list", "--actor", &admin.principal],
    )
    .await;
    assert!(
        by_actor.contains("a-1") && !by_actor.contains("w-1"),
        "{by_actor}"
    );
    let audit = cli(
        &server,
        &admin.key,
        &[
            "audit",
            "--rpc",
            "RecordMovements",
            "--principal",
            &warehouse.principal,
        ],
    )
    .await;
    let rows: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains("InventoryService/RecordMovements"))
        .collect();
    assert_eq!(rows.len(), 5, "four scripted calls and the CLI's: {audit}");
    assert!(
        audit.contains("w-1 w-2")
            && audit.contains("FailedPrecondition")
            && audit.contains("cli-1"),
        "{audit}"
    );

    server.stop().await;
}
