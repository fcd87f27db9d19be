//! The access log of the real binary at the default log level: one line per
//! request with its RPC, status, latency, request id and peer, no colour
//! codes when stderr is not a terminal, and JSON lines with `--log-format json`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::process::{ServerProcess, spawn_logging};
use spares::cli::client::connect;
use spares::pb;
use std::time::{Duration, Instant};

/// Waits (a hang guard, not a speed assertion: the writer is asynchronous)
/// until a log line contains every one of `needles`, and returns it.
fn wait_for_line(server: &ServerProcess, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = server
            .log
            .lock()
            .unwrap()
            .iter()
            .find(|line| needles.iter().all(|n| line.contains(n)))
            .cloned();
        if let Some(line) = found {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {needles:?}: {:#?}",
            server.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A failing GetPart (with a client request id) and a successful ListLocations.
async fn failing_and_succeeding_calls(url: &spares::cli::client::Target) {
    let mut clients = connect(url).await.unwrap();
    let mut request = tonic::Request::new(pb::GetPartRequest {
        part_id: "NO-SUCH-PART".into(),
    });
    request
        .metadata_mut()
        .insert("x-request-id", "req-failing-1".parse().unwrap());
    let status = clients.network.get_part(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    let answer = clients
        .network
        .list_locations(pb::ListLocationsRequest::default())
        .await
        .unwrap();
    assert_eq!(
        answer.metadata().get("x-request-id").map(|v| !v.is_empty()),
        Some(true),
        "the server echoes a (generated) request id"
    );
}

fn serve_args(dir: &std::path::Path) -> Vec<String> {
    vec![
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        dir.display().to_string(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_is_logged_at_the_default_level_without_colour() {
    let dir = tempfile::tempdir().unwrap();
    let args = serve_args(dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = spawn_logging(&args, None);
    failing_and_succeeding_calls(&server.target()).await;

    let failing = wait_for_line(
        &server,
        &["rpc=spares.v1.NetworkService/GetPart", "status=NOT_FOUND"],
    );
    assert!(failing.contains(" INFO "), "{failing}");
    assert!(failing.contains("request_id=req-failing-1"), "{failing}");
    assert!(failing.contains("peer=127.0.0.1:"), "{failing}");
    // The gate names the caller: the administrator key the harness made.
    assert!(failing.contains("principal=apikey:"), "{failing}");
    let latency: f64 = failing
        .split("latency_ms=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no latency in {failing}"));
    assert!(latency >= 0.0 && latency.is_finite(), "{failing}");

    let ok = wait_for_line(
        &server,
        &["rpc=spares.v1.NetworkService/ListLocations", "status=OK"],
    );
    assert!(ok.contains("latency_ms="), "{ok}");
    let lines = server.log.lock().unwrap().clone();
    assert!(
        lines.iter().all(|line| !line.contains('\u{1b}')),
        "colour codes in a redirected log: {lines:#?}"
    );
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_carry_the_access_fields() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--log-format".to_string(), "json".to_string()];
    args.extend(serve_args(dir.path()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = spawn_logging(&args, None);
    failing_and_succeeding_calls(&server.target()).await;

    let line = wait_for_line(&server, &["NetworkService/GetPart", "NOT_FOUND"]);
    let value: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(value["target"], "spares::access");
    assert_eq!(value["level"], "INFO");
    assert_eq!(value["rpc"], "spares.v1.NetworkService/GetPart");
    assert_eq!(value["status"], "NOT_FOUND");
    assert_eq!(value["request_id"], "req-failing-1");
    let latency = value["latency_ms"]
        .as_f64()
        .expect("latency_ms is a number");
    assert!(latency >= 0.0);
    server.kill();
}
