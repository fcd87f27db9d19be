//! The policy history over gRPC: applying a plan sets the policies of every
//! echelon it decided (depot, regional and store), records what each replaced,
//! and `RollbackPlan` restores them exactly; the history survives a restart
//! and a backup -> restore, and bad rollbacks name the plan.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, location, small_network};
use spares::config::Limits;
use spares::domain::network::{Network, Policy};
use spares::pb;
use spares::store::sled_store::SledStore;
use std::collections::BTreeMap;
use tonic::Code;

type Policies = BTreeMap<(String, String), Policy>;

fn policies(network: &Network) -> Policies {
    network.policies.clone()
}

/// DEP -> RWH -> STR (small_network's DEP and STR, with a regional between)
/// and a hand-set policy at the store that the plan will replace.
async fn network_with_a_policy(server: &TestServer) {
    let mut c = server.clients().await;
    small_network(&mut c).await;
    c.network
        .upsert_locations(pb::UpsertLocationsRequest {
            locations: vec![
                location(
                    "RWH",
                    pb::LocationKind::RegionalWarehouse,
                    "America/Chicago",
                    "DEP",
                ),
                location("STR", pb::LocationKind::Store, "America/Chicago", "RWH"),
            ],
        })
        .await
        .unwrap();
    c.planning
        .set_policies(pb::SetPoliciesRequest {
            policies: vec![pb::Policy {
                part_id: "P1".into(),
                location_id: "STR".into(),
                kind: pb::PolicyKind::MinMax as i32,
                order_up_to: 6,
                reorder_point: 2,
                protected_quantity: 2,
                source: "import".into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap();
}

fn levels(rows: &[(&str, &str, u64)]) -> Vec<(String, String, u64)> {
    rows.iter()
        .map(|(p, l, q)| (p.to_string(), l.to_string(), *q))
        .collect()
}

async fn history(
    c: &mut spares::cli::client::Clients,
    plan_id: &str,
) -> pb::GetPolicyHistoryResponse {
    c.planning
        .get_policy_history(pb::GetPolicyHistoryRequest {
            plan_id: plan_id.into(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_sets_every_echelon_and_rolls_back_exactly() {
    let server = TestServer::start().await;
    network_with_a_policy(&server).await;
    let mut c = server.clients().await;
    let before = policies(&server.spares.network());
    let plan = levels(&[
        ("P1", "DEP", 7),
        ("P1", "RWH", 3),
        ("P1", "STR", 1),
        ("P2", "STR", 2),
    ]);
    let header = server
        .spares
        .apply_plan(&plan, "optimize:job-000001")
        .unwrap();
    assert_eq!(header.plan_id, "plan-000001");
    assert_eq!(header.changes, 4);
    // Every echelon is set; the store's protection is cut to its new level.
    let now = policies(&server.spares.network());
    for (part, location, level) in &plan {
        let policy = &now[&(part.clone(), location.clone())];
        assert_eq!(policy.order_up_to, *level, "{part} at {location}");
        assert_eq!(policy.source, "optimize:job-000001");
    }
    assert_eq!(now[&("P1".into(), "STR".into())].protected_quantity, 1);
    // The history lists the plan and what each policy was before.
    let listed = history(&mut c, "").await;
    assert_eq!(listed.plans.len(), 1);
    assert_eq!(listed.plans[0].source, "optimize:job-000001");
    let detail = history(&mut c, "plan-000001").await;
    assert_eq!(detail.changes.len(), 4);
    let store = detail
        .changes
        .iter()
        .find(|ch| ch.part_id == "P1" && ch.location_id == "STR")
        .unwrap();
    assert_eq!(store.before.as_ref().unwrap().order_up_to, 6);
    assert_eq!(store.after.as_ref().unwrap().order_up_to, 1);
    let depot = detail
        .changes
        .iter()
        .find(|ch| ch.location_id == "DEP")
        .unwrap();
    assert!(depot.before.is_none(), "no depot policy before the plan");
    // Roll back: exactly the policies before, and the rollback is plan 2.
    let rollback = c
        .planning
        .rollback_plan(pb::RollbackPlanRequest {
            plan_id: "plan-000001".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rollback.plan_id, "plan-000002");
    assert_eq!(rollback.rolls_back_plan_id, "plan-000001");
    assert_eq!(policies(&server.spares.network()), before);
    let listed = history(&mut c, "").await;
    assert_eq!(listed.plans.len(), 2);
    assert_eq!(listed.plans[0].rolled_back_by_plan_id, "plan-000002");
    // Undone once, it cannot be undone again; the message names it.
    let again = c
        .planning
        .rollback_plan(pb::RollbackPlanRequest {
            plan_id: "plan-000001".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    assert!(again.message().contains("plan-000001"), "{again:?}");
    // What is on disk is what is in memory, after a restart too.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, Limits::default()).await;
    assert_eq!(policies(&server.spares.network()), before);
    let mut c = server.clients().await;
    assert_eq!(history(&mut c, "").await.plans.len(), 2);
    // Rolling back the rollback puts the plan back in force.
    c.planning
        .rollback_plan(pb::RollbackPlanRequest {
            plan_id: "plan-000002".into(),
        })
        .await
        .unwrap();
    assert_eq!(policies(&server.spares.network()), now);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_is_refused_after_a_later_change_and_for_bad_ids() {
    let server = TestServer::start().await;
    network_with_a_policy(&server).await;
    let mut c = server.clients().await;
    server
        .spares
        .apply_plan(
            &levels(&[("P1", "STR", 4), ("P2", "STR", 1)]),
            "optimize:job-000001",
        )
        .unwrap();
    // A later hand-set policy at one of its part-locations.
    c.planning
        .set_policies(pb::SetPoliciesRequest {
            policies: vec![pb::Policy {
                part_id: "P2".into(),
                location_id: "STR".into(),
                order_up_to: 9,
                reorder_point: 8,
                source: "by hand".into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap();
    let after_hand = policies(&server.spares.network());
    let refused = c
        .planning
        .rollback_plan(pb::RollbackPlanRequest {
            plan_id: "plan-000001".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("P2 at STR"), "{refused:?}");
    assert_eq!(
        policies(&server.spares.network()),
        after_hand,
        "nothing changed"
    );
    let cases = [("plan-999999", Code::NotFound), ("", Code::InvalidArgument)];
    for (plan_id, code) in cases {
        let status = c
            .planning
            .rollback_plan(pb::RollbackPlanRequest {
                plan_id: plan_id.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{plan_id}: {status:?}");
        assert!(status.message().contains("plan"), "{status:?}");
    }
    let status = c
        .planning
        .get_policy_history(pb::GetPolicyHistoryRequest {
            plan_id: "plan-999999".into(),
            page: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    // A plan naming an unknown location changes nothing.
    let error = server
        .spares
        .apply_plan(&levels(&[("P1", "NOWHERE", 1)]), "x")
        .unwrap_err();
    assert!(error.to_string().contains("levels[0]"), "{error}");
    assert_eq!(history(&mut c, "").await.plans.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_survives_a_backup_and_restore() {
    let server = TestServer::start().await;
    network_with_a_policy(&server).await;
    let before = policies(&server.spares.network());
    server
        .spares
        .apply_plan(
            &levels(&[("P1", "DEP", 5), ("P1", "STR", 2)]),
            "optimize:job-000001",
        )
        .unwrap();
    let mut file = Vec::new();
    server.spares.backup(&mut file).unwrap();
    let text = String::from_utf8(file.clone()).unwrap();
    assert!(
        text.contains("\"collection\":\"plan_history\""),
        "history in the backup"
    );
    let original = server.spares.plan("plan-000001").unwrap();
    server.stop().await;
    let restored_dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(restored_dir.path()).unwrap();
        spares::service::backup::restore_backup(&store, file.as_slice()).unwrap();
    }
    let server = TestServer::start_in(restored_dir, Limits::default()).await;
    assert_eq!(server.spares.plan("plan-000001").unwrap(), original);
    let mut c = server.clients().await;
    c.planning
        .rollback_plan(pb::RollbackPlanRequest {
            plan_id: "plan-000001".into(),
        })
        .await
        .unwrap();
    assert_eq!(policies(&server.spares.network()), before);
    server.stop().await;
}

/// A job's plan goes in once: applying again under the same source (a job
/// re-run after a takeover) returns the plan already in the history and
/// changes nothing.
#[tokio::test]
async fn a_plan_applied_once_per_source_is_not_applied_again() {
    let server = TestServer::start().await;
    network_with_a_policy(&server).await;
    let plan = levels(&[("P1", "DEP", 7), ("P1", "STR", 1)]);
    let (first, applied) = server
        .spares
        .apply_plan_once(&plan, "optimize:job-000009")
        .unwrap();
    assert!(applied);
    let after_first = policies(&server.spares.network());
    let (again, applied) = server
        .spares
        .apply_plan_once(&levels(&[("P1", "DEP", 9)]), "optimize:job-000009")
        .unwrap();
    assert!(!applied);
    assert_eq!(again, first);
    assert_eq!(policies(&server.spares.network()), after_first);
    assert_eq!(server.spares.plan_history().unwrap().len(), 1);
    // Another source is another plan.
    let (other, applied) = server
        .spares
        .apply_plan_once(&levels(&[("P1", "DEP", 9)]), "optimize:job-000010")
        .unwrap();
    assert!(applied);
    assert_eq!(other.plan_id, "plan-000002");
}
