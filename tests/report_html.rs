//! HTML reports of small seeded Simulate (with one what-if), Frontier and
//! Optimize jobs: fetched through GetJobReport's chunks, self-contained (no `http` anywhere:
//! no link, script or font from outside), and opened in headless Chromium,
//! whose DOM must hold the charts with the expected series and whose console
//! must stay free of errors. Without Chromium (Debian's `chromium`, which
//! `.ci/run` installs) the browser half skips with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestServer;
use spares::config::Limits;
use spares::demo::DemoConfig;
use spares::pb;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokio_stream::StreamExt;

async fn small_demo() -> TestServer {
    TestServer::with_demo(
        DemoConfig {
            seed: 5,
            parts: 30,
            stores: 10,
            ..DemoConfig::default()
        },
        Limits::default(),
    )
    .await
}

async fn wait(server: &TestServer, job: pb::Job) -> pb::Job {
    let mut clients = server.clients().await;
    let mut stream = clients
        .planning
        .watch_job(pb::WatchJobRequest {
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut last = job;
    while let Ok(Some(update)) = tokio::time::timeout(Duration::from_secs(300), stream.next()).await
    {
        last = update.unwrap();
    }
    assert_eq!(
        last.state,
        pb::JobState::Succeeded as i32,
        "{}",
        last.message
    );
    last
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// The `<svg id="ID" ...>...</svg>` element of a page.
fn svg<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<svg id=\"{id}\""))
        .unwrap_or_else(|| panic!("no chart {id}"));
    let end = html[start..].find("</svg>").expect("a closed svg") + start;
    &html[start..end]
}

fn series(svg: &str) -> usize {
    svg.matches("class=\"series\"").count()
}

/// Opens `file` in headless Chromium; returns the DOM and the log.
fn open_in_chromium(browser: &str, file: &Path, profile: &Path) -> (String, String) {
    let output = Command::new("timeout")
        .arg("120")
        .arg(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("run chromium");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn console_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_and_frontier_reports_render_in_a_browser() {
    let server = small_demo().await;
    let mut clients = server.clients().await;
    let simulate = clients
        .planning
        .simulate(pb::SimulateRequest {
            settings: Some(pb::SimulationSettings {
                horizon_days: 120,
                warmup_days: 20,
                replications: 40,
                seed: 11,
                part_ids: vec![],
            }),
            scenarios: vec![pb::Scenario {
                name: "slow lanes".into(),
                changes: vec![pb::ScenarioChange {
                    change: Some(pb::scenario_change::Change::LeadTimeShock(
                        pb::LeadTimeShock {
                            location_id: String::new(),
                            multiplier: 2.0,
                        },
                    )),
                }],
            }],
        })
        .await
        .unwrap()
        .into_inner();
    let simulate = wait(&server, simulate).await;
    let frontier = clients
        .planning
        .frontier(pb::FrontierRequest {
            method: pb::FrontierMethod::VariMetric as i32,
            max_investment_usd: 0.0,
            points: 30,
            part_ids: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let frontier = wait(&server, frontier).await;

    let dir = tempfile::tempdir().unwrap();
    let mut pages = Vec::new();
    for (job, name) in [(&simulate, "simulate.html"), (&frontier, "frontier.html")] {
        let path = dir.path().join(name);
        let said = spares::cli::report::report(&server.target(), &job.job_id, &path)
            .await
            .unwrap();
        assert!(said.contains(&job.job_id), "{said}");
        let html = std::fs::read_to_string(&path).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(
            !html.contains("http"),
            "{name} refers to something outside itself"
        );
        assert!(!html.contains(" src="), "{name} loads something");
        pages.push((path, html));
    }
    // The page as served: one distribution series per plan (baseline and
    // the what-if), each with its four tail markers, and one
    // paired-difference series.
    let sim_html = &pages[0].1;
    assert_eq!(series(svg(sim_html, "distribution")), 2);
    assert_eq!(series(svg(sim_html, "differences")), 1);
    for plan in ["baseline", "slow lanes"] {
        for statistic in ["mean", "p95", "p99", "CVaR95"] {
            let marker = format!("class=\"marker\" data-name=\"{plan} {statistic} $");
            assert!(svg(sim_html, "distribution").contains(&marker), "{marker}");
        }
    }
    let frontier_html = &pages[1].1;
    assert_eq!(series(svg(frontier_html, "frontier")), 1);
    assert!(svg(frontier_html, "frontier").contains("data-name=\"recommended\""));

    // A report of an unfinished or unknown job is refused by code.
    let missing = spares::cli::report::fetch(&server.target(), "job-999999")
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("NOT_FOUND") || missing.to_string().contains("not found"),
        "{missing}"
    );

    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED the browser half of simulate_and_frontier_reports_render_in_a_browser: no chromium on PATH (`apt-get install chromium`; .ci/run does)"
        );
        server.stop().await;
        return;
    };
    for (i, (path, _)) in pages.iter().enumerate() {
        let profile = dir.path().join(format!("profile-{i}"));
        let (dom, log) = open_in_chromium(browser, path, &profile);
        assert!(dom.contains("</html>"), "chromium returned no DOM: {log}");
        assert!(
            console_errors(&log).is_empty(),
            "console errors: {:?}",
            console_errors(&log)
        );
        if i == 0 {
            assert_eq!(series(svg(&dom, "distribution")), 2);
            assert_eq!(series(svg(&dom, "differences")), 1);
            assert!(dom.contains("id=\"locations-table\""));
        } else {
            assert_eq!(series(svg(&dom, "frontier")), 1);
            assert!(svg(&dom, "frontier").contains("class=\"highlight\""));
        }
    }
    server.stop().await;
}

/// `<g class="marker" ...>` elements of a chart.
fn markers(svg: &str) -> usize {
    svg.matches("class=\"marker\"").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimize_report_shows_each_plans_distribution_and_renders_in_a_browser() {
    let server = small_demo().await;
    let mut clients = server.clients().await;
    let job = clients
        .planning
        .optimize(pb::OptimizeRequest {
            settings: Some(pb::SimulationSettings {
                replications: 30,
                seed: 5,
                horizon_days: 365,
                ..Default::default()
            }),
            compare: true,
            time_limit_seconds: 60,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let job = wait(&server, job).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optimize.html");
    let said = spares::cli::report::report(&server.target(), &job.job_id, &path)
        .await
        .unwrap();
    assert!(said.contains(&job.job_id), "{said}");
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        !html.contains("http"),
        "the page refers to something outside itself"
    );
    assert!(!html.contains(" src="), "the page loads something");
    // One distribution per plan, each with its mean, p95, p99 and CVaR95
    // drawn; one paired-difference chart per baseline, on its own scale,
    // with the mean difference and zero marked.
    let distribution = svg(&html, "distribution");
    assert_eq!(series(distribution), 3);
    assert_eq!(markers(distribution), 12);
    for plan in ["consequence", "averages", "metric"] {
        for statistic in ["mean", "p95", "p99", "CVaR95"] {
            let name = format!("data-name=\"{plan} {statistic} ");
            assert!(distribution.contains(&name), "{name}");
        }
    }
    for baseline in ["metric", "averages"] {
        let chart = svg(&html, &format!("differences-{baseline}"));
        assert_eq!(series(chart), 1, "{baseline}");
        assert_eq!(markers(chart), 2, "{baseline}");
        assert!(chart.contains("data-name=\"no difference\""));
    }
    for table in [
        "comparison-table",
        "paired-table",
        "frontier-table",
        "downtime-locations-table",
        "downtime-parts-table",
        "recommendations-table",
        "changes-table",
        "locations-table",
        "parts-table",
    ] {
        assert!(html.contains(&format!("id=\"{table}\"")), "{table}");
    }
    // The result behind the page (paged, as `--csv` reads it).
    let json = spares::cli::jobs::full_result(
        &mut clients.planning,
        &pb::Job {
            result_json: String::new(),
            ..job.clone()
        },
    )
    .await
    .unwrap();
    let result: spares::planning::optimize::OptimizeResult = serde_json::from_str(&json).unwrap();
    // The frontier: METRIC's mean and CVaR95 lines through every frontier
    // point, investment rising, with the plan in force and the recommended
    // plan marked at their mean and CVaR95.
    let frontier = svg(&html, "frontier");
    assert_eq!(series(frontier), 2);
    let points = result.metric_frontier.len();
    assert!(points >= 6, "{points} frontier points");
    assert_eq!(
        frontier
            .matches(&format!("data-points=\"{points}\""))
            .count(),
        2
    );
    assert!(
        result
            .metric_frontier
            .windows(2)
            .all(|w| w[0].investment_usd < w[1].investment_usd)
    );
    for name in [
        "plan in force mean",
        "plan in force CVaR95",
        "recommended mean",
        "recommended CVaR95",
    ] {
        let mark = format!("class=\"highlight\" data-name=\"{name}\"");
        assert!(frontier.contains(&mark), "{mark}");
    }
    let in_force = result
        .in_force
        .as_ref()
        .expect("the plan in force is scored");
    assert!(html.contains(&spares::report::html::money(in_force.investment_usd)));
    // Where the downtime comes from: one row per location (or part) with
    // downtime, adding up to each plan's mean cost per year.
    let consequence = &result.comparison[0];
    assert_eq!(consequence.plan, "consequence");
    for rows in [&result.downtime_by_location, &result.downtime_by_part] {
        let total: f64 = rows.iter().map(|r| r.consequence_cost_per_year).sum();
        assert!(
            (total - consequence.downtime_cost_mean).abs() <= 1e-6 * total.max(1.0),
            "{total} against {}",
            consequence.downtime_cost_mean
        );
        let current: f64 = rows.iter().map(|r| r.in_force_cost_per_year).sum();
        assert!((current - in_force.downtime_cost_mean).abs() <= 1e-6 * current.max(1.0));
    }
    let table_rows = |id: &str| {
        let start = html.find(&format!("id=\"{id}\"")).unwrap();
        let end = html[start..].find("</table>").unwrap() + start;
        html[start..end].matches("<tr>").count() - 1
    };
    assert_eq!(
        table_rows("downtime-locations-table"),
        result.downtime_by_location.len().min(200)
    );
    assert_eq!(
        table_rows("downtime-parts-table"),
        result.downtime_by_part.len().min(200)
    );
    assert_eq!(table_rows("frontier-table"), points + 3);
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED the browser half of optimize_report_shows_each_plans_distribution_and_renders_in_a_browser: no chromium on PATH (`apt-get install chromium`; .ci/run does)"
        );
        server.stop().await;
        return;
    };
    let (dom, log) = open_in_chromium(browser, &path, &dir.path().join("profile"));
    assert!(dom.contains("</html>"), "chromium returned no DOM: {log}");
    assert!(
        console_errors(&log).is_empty(),
        "console errors: {:?}",
        console_errors(&log)
    );
    assert_eq!(series(svg(&dom, "distribution")), 3);
    assert_eq!(series(svg(&dom, "differences-metric")), 1);
    assert_eq!(series(svg(&dom, "differences-averages")), 1);
    assert_eq!(series(svg(&dom, "frontier")), 2);
    assert_eq!(
        svg(&dom, "frontier").matches("class=\"highlight\"").count(),
        4
    );
    for table in [
        "recommendations-table",
        "downtime-locations-table",
        "downtime-parts-table",
    ] {
        assert!(dom.contains(&format!("id=\"{table}\"")), "{table}");
    }
    server.stop().await;
}
