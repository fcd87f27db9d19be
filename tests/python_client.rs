//! A Python grpcio client with default settings (4 MB receive limit) fetches
//! a what-if result larger than 4 MB through GetJobResult's pages, and GetJob
//! answers it with the result's size instead of the result. Skips with a
//! message when python3 or grpcio is missing (`.ci/run` installs grpcio).
//!
//! On the full demo: `spares demo`, then `spares simulate --replications 200
//! --lead-time-shock '*:2' --demand-multiplier 1.5` and
//! `SPARES_API_KEY=spk_... python3 tests/python/fetch_job_result.py 127.0.0.1:50051 JOB_ID`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, python_with_grpcio};
use spares::config::Limits;
use spares::demo::DemoConfig;
use spares::pb;
use std::process::Command;
use std::time::Duration;
use tokio_stream::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_on_default_settings_fetches_a_result_over_4_mb() {
    if !python_with_grpcio("python_grpcio_on_default_settings_fetches_a_result_over_4_mb") {
        return;
    }
    let server = TestServer::with_demo(
        DemoConfig {
            seed: 7,
            parts: 60,
            stores: 40,
            ..DemoConfig::default()
        },
        Limits::default(),
    )
    .await;
    let mut clients = server.clients().await;
    let shock = |name: &str, multiplier: f64| pb::Scenario {
        name: name.into(),
        changes: vec![pb::ScenarioChange {
            change: Some(pb::scenario_change::Change::LeadTimeShock(
                pb::LeadTimeShock {
                    location_id: String::new(),
                    multiplier,
                },
            )),
        }],
    };
    let job = clients
        .planning
        .simulate(pb::SimulateRequest {
            settings: Some(pb::SimulationSettings {
                horizon_days: 60,
                warmup_days: 10,
                replications: 4,
                seed: 3,
                part_ids: vec![],
            }),
            scenarios: vec![
                shock("slow lanes", 2.0),
                shock("very slow lanes", 3.0),
                shock("fast lanes", 0.5),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let mut watch = clients
        .planning
        .watch_job(pb::WatchJobRequest {
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut last = job;
    while let Ok(Some(update)) = tokio::time::timeout(Duration::from_secs(600), watch.next()).await
    {
        last = update.unwrap();
    }
    assert_eq!(
        last.state,
        pb::JobState::Succeeded as i32,
        "{}",
        last.message
    );
    assert!(
        last.result_bytes > 4 * 1024 * 1024,
        "the fixture must make a result over 4 MiB, made {} bytes",
        last.result_bytes
    );
    assert!(last.result_json.is_empty(), "too large to send inline");

    let address = server.url.trim_start_matches("http://").to_string();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/fetch_job_result.py"
    );
    let job_id = last.job_id.clone();
    let key = server.admin_key.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, &address, &job_id])
            .env("SPARES_API_KEY", key)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    eprintln!("python client: {report}");
    assert_eq!(report["get_job_inline_bytes"], 0);
    assert_eq!(report["get_job_result_bytes"], last.result_bytes);
    assert_eq!(report["total_bytes"], last.result_bytes);
    assert!(report["pages"].as_u64().unwrap() >= 3);
    assert!(report["largest_message_bytes"].as_u64().unwrap() < 4 * 1024 * 1024);
    let keys: Vec<&str> = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(keys.contains(&"baseline") && keys.contains(&"comparisons"));

    // The Rust client's follow() pages the same result back in whole.
    let full = spares::cli::jobs::full_result(&mut clients.planning, &last)
        .await
        .unwrap();
    assert_eq!(full.len() as u64, last.result_bytes);
    server.stop().await;
}
