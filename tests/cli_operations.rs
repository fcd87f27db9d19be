//! The operations CLI against the in-process server, through the built
//! binary: `spares reserve | confirm | release | reservations`, `spares
//! policies get | set`, `spares watch --count`, `spares jobs --owner`, with
//! `--server HOST:PORT` (no scheme) and a plain `--need-by` date.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, receipt, small_network};
use jiff::Timestamp;
use spares::auth::Role;
use spares::pb;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The binary with `args`, presenting `key`, against `HOST:PORT` (the
/// server's URL without its scheme, as people type it).
fn spares(server: &TestServer, key: &str, args: &[&str]) -> Command {
    let host_port = server.url.trim_start_matches("http://").to_string();
    let mut command = Command::new(env!("CARGO_BIN_EXE_spares"));
    command
        .args(args)
        .args(["--server", &host_port])
        .env("SPARES_API_KEY", key)
        .env("RUST_LOG", "warn");
    command
}

/// Runs the binary to its end (off the async runtime, which serves it).
async fn run(server: &TestServer, args: &[&str]) -> Output {
    let mut command = spares(server, &server.admin_key, args);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs and insists on success; returns stdout.
async fn ok(server: &TestServer, args: &[&str]) -> String {
    let output = run(server, args).await;
    assert!(
        output.status.success(),
        "spares {args:?} failed: {}",
        stderr(&output)
    );
    stdout(&output)
}

/// The reservation id of `reserved RES-ID pending: ...`.
fn reservation_id(line: &str) -> String {
    line.split_whitespace().nth(1).unwrap().to_string()
}

async fn stocked(server: &TestServer, quantity: i64) {
    let mut c = server.clients().await;
    small_network(&mut c).await;
    c.inventory
        .record_movements(pb::RecordMovementsRequest {
            movements: vec![receipt("r1", "P1", "STR", quantity)],
        })
        .await
        .unwrap();
}

async fn position(server: &TestServer, part: &str) -> pb::StockPosition {
    let mut c = server.clients().await;
    c.inventory
        .get_stock(pb::GetStockRequest {
            part_id: part.into(),
            location_id: "STR".into(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .positions
        .pop()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserve_confirm_release_and_list_over_the_cli() {
    let server = TestServer::start().await;
    // The server's clock at the wall clock, so a need-by date that is in the
    // future here is in the future there too.
    server.clock.set(Timestamp::now());
    stocked(&server, 10).await;

    // A plain date: the end of that day in Chicago (the store's zone).
    let chicago = jiff::tz::TimeZone::get("America/Chicago").unwrap();
    let tomorrow = Timestamp::now()
        .to_zoned(chicago)
        .date()
        .tomorrow()
        .unwrap();
    let need_by = tomorrow.to_string();
    let expected_end = spares::cli::operations::end_of_day(tomorrow, "America/Chicago").unwrap();
    let args = [
        "reserve",
        "P1",
        "3",
        "--at",
        "STR",
        "--key",
        "k-1",
        "--need-by",
        &need_by,
    ];
    let first = ok(&server, &args).await;
    assert!(
        first.starts_with("reserved ") && first.contains("pending: 3 x P1 at STR"),
        "{first}"
    );
    assert!(
        first.contains(&expected_end.strftime("%Y-%m-%d %H:%M:%SZ").to_string()),
        "held until the end of {need_by} in Chicago ({expected_end}): {first}"
    );
    let held = reservation_id(&first);
    let again = ok(&server, &args).await;
    assert_eq!(reservation_id(&again), held, "the same key is a replay");
    let mut c = server.clients().await;
    let stored = c
        .availability
        .get_reservation(pb::GetReservationRequest {
            reservation_id: held.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        stored.expires_at.unwrap().seconds,
        expected_end.as_second(),
        "expires exactly at the end of the day"
    );
    assert_eq!(position(&server, "P1").await.available, 7);

    let second = ok(
        &server,
        &["reserve", "P1", "2", "--at", "STR", "--ttl", "600"],
    )
    .await;
    let voided = reservation_id(&second);
    let pending = ok(
        &server,
        &["reservations", "--location", "STR", "--state", "pending"],
    )
    .await;
    assert!(
        pending.contains(&held) && pending.contains(&voided),
        "{pending}"
    );

    let confirmed = ok(&server, &["confirm", &held]).await;
    assert!(confirmed.contains("posted"), "{confirmed}");
    let replayed = ok(&server, &["confirm", &held]).await;
    assert!(
        replayed.contains("posted"),
        "a repeated confirm is a replay: {replayed}"
    );
    let released = ok(&server, &["release", &voided]).await;
    assert!(released.contains("voided"), "{released}");
    let none = ok(&server, &["reservations", "--state", "pending"]).await;
    assert!(none.contains("no reservations match"), "{none}");
    let all = ok(&server, &["reservations", "--part", "P1"]).await;
    assert!(all.contains("posted") && all.contains("voided"), "{all}");
    let p1 = position(&server, "P1").await;
    assert_eq!((p1.on_hand, p1.reserved, p1.available), (7, 0, 7));

    // Too much: the server's refusal is the command's error.
    let short = run(&server, &["reserve", "P1", "100", "--at", "STR"]).await;
    assert!(!short.status.success());
    assert!(
        stderr(&short).contains("not in a state required"),
        "FAILED_PRECONDITION: {}",
        stderr(&short)
    );
    // A bad date is refused before any call; a past one warns.
    let bad = run(
        &server,
        &[
            "reserve",
            "P1",
            "1",
            "--at",
            "STR",
            "--need-by",
            "2026-13-01",
        ],
    )
    .await;
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("--need-by"), "{}", stderr(&bad));
    let late = run(
        &server,
        &[
            "promise",
            "P1",
            "1",
            "--to",
            "STR",
            "--need-by",
            "2020-01-01",
        ],
    )
    .await;
    assert!(late.status.success(), "{}", stderr(&late));
    assert!(stderr(&late).contains("in the past"), "{}", stderr(&late));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_get_and_set_over_the_cli() {
    let server = TestServer::start().await;
    stocked(&server, 1).await;
    let set = ok(
        &server,
        &[
            "policies",
            "set",
            "P1",
            "STR",
            "--order-up-to",
            "4",
            "--protect",
            "1",
        ],
    )
    .await;
    assert!(set.contains("P1 at STR: - -> S=4 protect 1"), "{set}");
    let changed = ok(&server, &["policies", "set", "P1", "STR", "--protect", "2"]).await;
    assert!(
        changed.contains("S=4 protect 1 -> S=4 protect 2"),
        "{changed}"
    );
    let shown = ok(&server, &["policies", "get", "--part", "P1"]).await;
    assert!(
        shown.contains("S=4 protect 2") && shown.contains("cli"),
        "{shown}"
    );
    let mut c = server.clients().await;
    let stored = c
        .planning
        .get_policies(pb::GetPoliciesRequest {
            part_id: "P1".into(),
            location_id: "STR".into(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .policies;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].order_up_to, stored[0].protected_quantity),
        (4, 2)
    );
    let nothing = run(&server, &["policies", "set", "P1", "STR"]).await;
    assert!(!nothing.status.success());
    let none = ok(&server, &["policies", "get", "--part", "P2"]).await;
    assert!(none.contains("no policy matches"), "{none}");
    server.stop().await;
}

/// Lines a child writes to one of its pipes, as they come.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for the next line containing `text` (a hang guard, not a timing
/// assertion).
async fn next_line(lines: &mpsc::Receiver<String>, text: &str) -> String {
    let wanted = text.to_string();
    loop {
        let line = lines.recv_timeout(Duration::from_secs(120));
        match line {
            Ok(line) if line.contains(&wanted) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line with {wanted:?}: {e}"),
        }
        tokio::task::yield_now().await;
    }
}

async fn record(server: &TestServer, key: &str, part: &str, quantity: i64) {
    let mut c = server.clients().await;
    c.inventory
        .record_movements(pb::RecordMovementsRequest {
            movements: vec![receipt(key, part, "STR", quantity)],
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_the_events_of_its_parts_until_count() {
    let server = TestServer::start().await;
    stocked(&server, 1).await;
    let mut child = spares(
        &server,
        &server.admin_key,
        &["watch", "--part", "P1", "--count", "2"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let out = lines_of(child.stdout.take().unwrap());
    let err = lines_of(child.stderr.take().unwrap());
    next_line(&err, "watching").await;
    // P2 is not watched; P1's two receipts are the two events.
    record(&server, "w0", "P2", 9).await;
    record(&server, "w1", "P1", 4).await;
    let first = next_line(&out, "P1").await;
    record(&server, "w2", "P1", 2).await;
    let second = next_line(&out, "P1").await;
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "--count 2 ends the watch");
    assert!(
        first.contains("stock P1 at STR") && first.contains("on hand 5"),
        "{first}"
    );
    assert!(second.contains("on hand 7"), "{second}");
    let rest: Vec<String> = out.try_iter().collect();
    assert!(rest.iter().all(|l| !l.contains("P2")), "{rest:?}");
    server.stop().await;
}

/// A server holding a small seeded demo network (40 parts, 12 stores).
async fn with_small_demo() -> TestServer {
    let config = spares::demo::DemoConfig {
        seed: 5,
        parts: 40,
        stores: 12,
        ..spares::demo::DemoConfig::default()
    };
    TestServer::with_demo(config, spares::config::Limits::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_list_by_owner() {
    let server = with_small_demo().await;
    let keys = [
        server.key(Role::Planner, &[], &[]),
        server.key(Role::Planner, &[], &[]),
    ];
    let mut ids = Vec::new();
    for key in &keys {
        let mut planner = server.clients_as(Some(key)).await;
        let job = planner
            .planning
            .simulate(pb::SimulateRequest {
                settings: Some(pb::SimulationSettings {
                    horizon_days: 30,
                    warmup_days: 1,
                    replications: 2,
                    seed: 3,
                    part_ids: vec![],
                }),
                scenarios: vec![],
            })
            .await
            .unwrap()
            .into_inner();
        ids.push((job.job_id, job.owner));
    }
    let (mine, owner) = &ids[0];
    let (theirs, other_owner) = &ids[1];
    assert_ne!(owner, other_owner);
    let listed = ok(&server, &["jobs", "--owner", owner]).await;
    assert!(
        listed.contains(mine.as_str()) && !listed.contains(theirs.as_str()),
        "{listed}"
    );
    let everyone = ok(&server, &["jobs"]).await;
    assert!(
        everyone.contains(mine.as_str()) && everyone.contains(theirs.as_str()),
        "{everyone}"
    );
    let mut c = server.clients().await;
    let page = c
        .planning
        .list_jobs(pb::ListJobsRequest {
            owner: other_owner.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let listed: Vec<&str> = page.jobs.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(listed, vec![theirs.as_str()]);
    let nobody = c
        .planning
        .list_jobs(pb::ListJobsRequest {
            owner: "apikey:nobody".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(nobody.jobs.is_empty());
    server.stop().await;
}

/// Rows of `DIR/NAME.csv` read back with the `csv` crate (header excluded).
fn csv_rows(dir: &std::path::Path, name: &str) -> Vec<csv::StringRecord> {
    let path = dir.join(format!("{name}.csv"));
    let mut reader = csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        !reader.headers().unwrap().is_empty(),
        "{name} has a header row"
    );
    reader.records().map(Result::unwrap).collect()
}

fn count(value: &serde_json::Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_csv_writes_every_row_of_the_paged_result() {
    let server = with_small_demo().await;
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("sim");
    let printed = ok(
        &server,
        &[
            "simulate",
            "--replications",
            "4",
            "--horizon-days",
            "60",
            "--warmup-days",
            "10",
            "--seed",
            "9",
            "--lead-time-shock",
            "*:2",
            "--csv",
            dir.to_str().unwrap(),
        ],
    )
    .await;
    assert!(printed.contains("CSV files to"), "{printed}");
    let job_id = printed.split_whitespace().next().unwrap().to_string();
    let mut c = server.clients().await;
    let job = c
        .planning
        .get_job(pb::GetJobRequest { job_id })
        .await
        .unwrap()
        .into_inner();
    let json = spares::cli::jobs::full_result(&mut c.planning, &job)
        .await
        .unwrap();
    let result: serde_json::Value = serde_json::from_str(&json).unwrap();
    let baseline = &result["baseline"];
    for table in ["parts", "locations", "part_locations", "replication_totals"] {
        let expected = count(&baseline[table]);
        assert!(expected > 0, "the result has {table}");
        let rows = csv_rows(&dir, &format!("baseline.{table}"));
        assert_eq!(rows.len(), expected, "baseline.{table}.csv has every row");
        assert!(
            printed.contains(&format!("baseline.{table}.csv: {expected} rows")),
            "{printed}"
        );
    }
    // The what-if's per-part differences carry their comparison's index.
    let comparisons = result["comparisons"].as_array().unwrap();
    let differences: usize = comparisons.iter().map(|c| count(&c["parts"])).sum();
    assert!(differences > 0);
    assert_eq!(csv_rows(&dir, "comparisons.parts").len(), differences);
    let summary = csv_rows(&dir, "summary");
    assert!(
        summary
            .iter()
            .any(|r| &r[0] == "baseline.seed" && &r[1] == "9"),
        "{summary:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecast_csv_writes_every_series() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("demand.csv");
    std::fs::write(
        &file,
        "item_id,1996-01,1996-02,1996-03,1996-04\nA,0,2,0,1\nB,1,0,0,3\nC,0,0,0,0\n",
    )
    .unwrap();
    let dir = work.path().join("out");
    let output = tokio::task::spawn_blocking({
        let (file, dir) = (file.clone(), dir.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_spares"))
                .arg("forecast")
                .arg(&file)
                .arg("--csv")
                .arg(&dir)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let rows = csv_rows(&dir, "forecasts");
    assert_eq!(rows.len(), 3, "one row per series");
    let mut reader = csv::Reader::from_path(dir.join("forecasts.csv")).unwrap();
    let part = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "part_id");
    let parts: Vec<&str> = rows
        .iter()
        .map(|r| &r[part.expect("a part_id column")])
        .collect();
    assert_eq!(parts, ["A", "B", "C"]);
}
