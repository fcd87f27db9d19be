//! PlanningService over gRPC: Optimize (with the out-of-sample comparison), Frontier,
//! Forecast, cancellation and field-naming errors, on a small seeded demo.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestServer;
use spares::demo::{DemoConfig, build_demo};
use spares::pb;
use spares::planning::frontier::FrontierResult;
use spares::planning::optimize::OptimizeResult;
use tonic::Code;

const DEMO_SEED: u64 = 11;

async fn demo_server() -> TestServer {
    let server = TestServer::start().await;
    let now = server.spares.clock().now();
    let demo = build_demo(
        &DemoConfig {
            seed: DEMO_SEED,
            parts: 40,
            stores: 12,
            ..DemoConfig::default()
        },
        now,
    )
    .unwrap();
    server.spares.load_master_data(&demo.bundle()).unwrap();
    server
        .spares
        .load_movements(
            &spares::domain::ledger::Actor::local("test"),
            &demo.movements,
        )
        .unwrap();
    server
}

/// Polls until the job ends (no wall-clock assertion; the test harness bounds it).
async fn finish(clients: &mut spares::cli::client::Clients, job: pb::Job) -> pb::Job {
    loop {
        let j = clients
            .planning
            .get_job(pb::GetJobRequest {
                job_id: job.job_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if matches!(
            pb::JobState::try_from(j.state),
            Ok(pb::JobState::Succeeded | pb::JobState::Failed | pb::JobState::Cancelled)
        ) {
            return j;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn optimize_request(seed: u64, scenarios: u32) -> pb::OptimizeRequest {
    pb::OptimizeRequest {
        settings: Some(pb::SimulationSettings {
            replications: scenarios,
            seed,
            horizon_days: 365,
            ..Default::default()
        }),
        compare: true,
        time_limit_seconds: 60,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimize_compares_three_plans_at_equal_investment() {
    let server = demo_server().await;
    let mut clients = server.clients().await;
    let job = clients
        .planning
        .optimize(optimize_request(5, 200))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.seed, 5);
    let done = finish(&mut clients, job).await;
    assert_eq!(
        pb::JobState::try_from(done.state),
        Ok(pb::JobState::Succeeded),
        "{}",
        done.message
    );
    let result: OptimizeResult = serde_json::from_str(&done.result_json).unwrap();
    println!("{}", done.summary);
    let plans: Vec<&str> = result.comparison.iter().map(|p| p.plan.as_str()).collect();
    assert_eq!(plans, vec!["consequence", "averages", "metric"]);
    let network = server.spares.network();
    let dearest = result
        .part_ids
        .iter()
        .map(|p| network.parts[p].unit_cost_usd)
        .fold(0.0, f64::max);
    let target = result.comparison[0].investment_usd;
    for plan in &result.comparison {
        // Equal within rounding: scaled plans never exceed the target and stop short of it
        // by less than one unit of the dearest part, unless the plan's own model sees no
        // benefit in more stock, which its note must then say (METRIC's Poisson model on
        // the demo's lumpy demand histories).
        assert!(plan.investment_usd <= target + 0.01, "{plan:?}");
        assert!(
            target - plan.investment_usd <= dearest || plan.note.contains("sees no benefit"),
            "{plan:?} vs {target}"
        );
        for v in [
            plan.downtime_cost_mean,
            plan.downtime_cost_p95,
            plan.downtime_cost_p99,
            plan.downtime_cost_cvar95,
            plan.emergency_shipments,
        ] {
            assert!(v.is_finite() && v >= 0.0, "{plan:?}");
        }
    }
    assert!(result.evaluation_seed.is_some_and(|s| s != 5));
    assert!(!result.recommendations.is_empty());
    assert!(
        result
            .recommendations
            .iter()
            .filter(|r| r.order_up_to > 0)
            .all(|r| r.explanation.contains("CVaR95"))
    );
    println!(
        "{}",
        spares::cli::planning::comparison_table(&result.comparison)
    );
    // The product claim, out of sample on a fresh seed: at equal investment the
    // consequence plan's CVaR95 downtime cost is below the averages plan's.
    let (consequence, averages) = (&result.comparison[0], &result.comparison[1]);
    assert!(
        consequence.downtime_cost_cvar95 < averages.downtime_cost_cvar95,
        "{consequence:?} vs {averages:?}"
    );
    assert_eq!(
        result.model,
        spares::planning::optimize::TrainingModel::Echelons
    );
    // No budget: cost mode, every echelon decided (the demo's depots and regionals too).
    assert_eq!(result.mode, spares::planning::optimize::PlanMode::Cost);
    let upstream: Vec<&(String, String, u64)> = result
        .levels
        .iter()
        .filter(|(_, l, _)| {
            network.locations[l].kind != spares::domain::network::LocationKind::Store
        })
        .collect();
    assert!(!upstream.is_empty());
    assert_eq!(result.paired.len(), 4, "{:?}", result.paired);
    assert!(
        result
            .comparison
            .iter()
            .all(|r| r.in_sample_cvar95.is_some())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lead_time_model_is_solved_by_the_named_backend() {
    let server = demo_server().await;
    let mut clients = server.clients().await;
    let job = clients
        .planning
        .optimize(pb::OptimizeRequest {
            model: pb::TrainingModel::LeadTime as i32,
            backend: pb::SolverBackend::Clarabel as i32,
            compare: false,
            ..optimize_request(9, 20)
        })
        .await
        .unwrap()
        .into_inner();
    let done = finish(&mut clients, job).await;
    assert_eq!(
        pb::JobState::try_from(done.state),
        Ok(pb::JobState::Succeeded),
        "{}",
        done.message
    );
    let result: OptimizeResult = serde_json::from_str(&done.result_json).unwrap();
    assert_eq!(
        result.model,
        spares::planning::optimize::TrainingModel::LeadTime
    );
    assert_eq!(result.scenarios, 20);
    // 468 part-locations x 20 scenarios: the joint LP, by the backend asked for.
    assert_eq!(result.method, spares_solver::scenario::Method::Joint);
    assert_eq!(result.backend, Some(spares_solver::lp::Backend::Clarabel));
    assert!(result.comparison.is_empty());
    assert_eq!(result.levels.len(), result.part_locations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frontier_is_monotone() {
    let server = demo_server().await;
    let mut clients = server.clients().await;
    let job = clients
        .planning
        .frontier(pb::FrontierRequest {
            method: pb::FrontierMethod::VariMetric as i32,
            points: 15,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let done = finish(&mut clients, job).await;
    assert_eq!(
        pb::JobState::try_from(done.state),
        Ok(pb::JobState::Succeeded),
        "{}",
        done.message
    );
    let result: FrontierResult = serde_json::from_str(&done.result_json).unwrap();
    assert!(result.points.len() >= 2 && result.points.len() <= 15);
    for w in result.points.windows(2) {
        assert!(w[1].investment_usd >= w[0].investment_usd);
        assert!(w[1].expected_backorders <= w[0].expected_backorders + 1e-9);
    }
    let first = &result.points[0];
    let last = result.points.last().unwrap();
    assert!(last.expected_backorders < first.expected_backorders);
}

#[tokio::test]
async fn forecast_matches_the_croston_oracle() {
    let server = TestServer::start().await;
    let mut clients = server.clients().await;
    let series = pb::DemandSeries {
        part_id: "P".into(),
        quantities: vec![0, 0, 3, 0, 0, 0, 2, 0, 5, 0, 0, 1],
        ..Default::default()
    };
    for (method, expected) in [
        (pb::ForecastMethod::Croston, 0.969_241),
        (pb::ForecastMethod::Sba, 0.920_779),
    ] {
        let answer = clients
            .planning
            .forecast(pb::ForecastRequest {
                series: vec![series.clone()],
                method: method as i32,
                alpha: 0.1,
                lead_time_periods: 3,
                seed: 9,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let f = &answer.forecasts[0];
        assert!((f.demand_per_period - expected).abs() < 1e-6, "{f:?}");
        assert_eq!(
            f.demand_class,
            pb::DemandClass::Intermittent as i32,
            "{f:?}"
        );
        assert!(f.lead_time_demand_p50 <= f.lead_time_demand_p90);
        assert!(f.lead_time_demand_p90 <= f.lead_time_demand_p99);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_an_optimize_job() {
    let server = demo_server().await;
    let mut clients = server.clients().await;
    let job = clients
        .planning
        .optimize(optimize_request(3, 5_000))
        .await
        .unwrap()
        .into_inner();
    clients
        .planning
        .cancel_job(pb::CancelJobRequest {
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap();
    let done = finish(&mut clients, job).await;
    assert_eq!(
        pb::JobState::try_from(done.state),
        Ok(pb::JobState::Cancelled),
        "{}",
        done.message
    );
}

#[tokio::test]
async fn bad_inputs_name_the_field() {
    let server = demo_server().await;
    let mut clients = server.clients().await;
    let cases: Vec<(pb::OptimizeRequest, Code, &str)> = vec![
        (
            pb::OptimizeRequest {
                budget_usd: -1.0,
                ..optimize_request(1, 10)
            },
            Code::FailedPrecondition,
            "budget_usd",
        ),
        (
            pb::OptimizeRequest {
                budget_usd: f64::NAN,
                ..optimize_request(1, 10)
            },
            Code::InvalidArgument,
            "budget_usd",
        ),
        (
            pb::OptimizeRequest {
                cvar_alpha: 1.5,
                ..optimize_request(1, 10)
            },
            Code::InvalidArgument,
            "cvar_alpha",
        ),
        (
            pb::OptimizeRequest {
                critical_fill_rate_floor: 1.0,
                ..optimize_request(1, 10)
            },
            Code::InvalidArgument,
            "critical_fill_rate_floor",
        ),
        (
            pb::OptimizeRequest {
                settings: Some(pb::SimulationSettings {
                    part_ids: vec!["NO-SUCH-PART".into()],
                    ..Default::default()
                }),
                ..Default::default()
            },
            Code::NotFound,
            "NO-SUCH-PART",
        ),
        (
            pb::OptimizeRequest {
                time_limit_seconds: 1_000_000,
                ..optimize_request(1, 10)
            },
            Code::OutOfRange,
            "time_limit_seconds",
        ),
    ];
    for (request, code, field) in cases {
        let status = clients.planning.optimize(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{field}: {status:?}");
        assert!(status.message().contains(field), "{field}: {status:?}");
    }
    if !cfg!(feature = "highs") {
        let status = clients
            .planning
            .optimize(pb::OptimizeRequest {
                backend: pb::SolverBackend::Highs as i32,
                ..optimize_request(1, 10)
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    }
    let status = clients
        .planning
        .forecast(pb::ForecastRequest {
            series: vec![pb::DemandSeries {
                quantities: vec![1, 0],
                ..Default::default()
            }],
            alpha: 2.0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("alpha"), "{status:?}");
    let status = clients
        .planning
        .frontier(pb::FrontierRequest {
            max_investment_usd: -5.0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("max_investment_usd"),
        "{status:?}"
    );
}
