//! The Prometheus endpoint after a scripted session: request counters and
//! latency histograms for every RPC called (by status), ledger writes and
//! flushes, reservations, jobs, watch streams and process metrics, read over
//! HTTP and parsed by a strict text-format parser.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, receipt, small_network};
use spares::pb;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;

/// One sample line.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text exposition format (0.0.4) strictly: every line is a
/// comment, a HELP or TYPE line, or a sample of a family declared by a TYPE
/// line before it, with well-formed labels and a number. Returns the samples
/// and each family's type.
fn parse_exposition(text: &str) -> (Vec<Sample>, HashMap<String, String>) {
    let mut types = HashMap::new();
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("{}", at("TYPE without a type")));
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{}",
                at("unknown type")
            );
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "{}",
                at("family declared twice")
            );
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with('#') {
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => (&line[..i], &line[i..]),
            None => panic!("{}", at("sample without a value")),
        };
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{}",
            at("bad metric name")
        );
        let mut labels = BTreeMap::new();
        let rest = if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let mut end = None;
            while let Some(&(i, c)) = chars.peek() {
                if c == '}' {
                    end = Some(i);
                    break;
                }
                if c == ',' {
                    chars.next();
                    continue;
                }
                let mut key = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c == '=' {
                        break;
                    }
                    key.push(c);
                    chars.next();
                }
                assert_eq!(chars.next().map(|x| x.1), Some('='), "{}", at("label"));
                assert_eq!(chars.next().map(|x| x.1), Some('"'), "{}", at("label"));
                let mut value = String::new();
                loop {
                    match chars.next().map(|x| x.1) {
                        Some('\\') => match chars.next().map(|x| x.1) {
                            Some('n') => value.push('\n'),
                            Some(c @ ('\\' | '"')) => value.push(c),
                            _ => panic!("{}", at("bad escape")),
                        },
                        Some('"') => break,
                        Some(c) => value.push(c),
                        None => panic!("{}", at("unterminated label value")),
                    }
                }
                assert!(labels.insert(key, value).is_none(), "{}", at("label twice"));
            }
            let end = end.unwrap_or_else(|| panic!("{}", at("labels without `}`")));
            &body[end + 1..]
        } else {
            rest
        };
        let value_text = rest.trim().split(' ').next().unwrap();
        let value: f64 = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("{}", at("bad value"))),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "{}",
            at("sample of an undeclared family")
        );
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    (samples, types)
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v))
        })
        .map(|s| s.value)
        .reduce(|a, b| a + b)
}

/// GET /metrics over plain HTTP/1.1.
async fn scrape(address: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("the endpoint answers")
    .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("headers and body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    body.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_after_a_session_shows_what_happened() {
    let server = TestServer::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let endpoint = tokio::spawn(spares::metrics::endpoint::serve_metrics(listener, async {
        let _ = stopped.await;
    }));
    let before = parse_exposition(&scrape(address).await).0;
    let count = |samples: &[Sample], rpc: &str, status: &str| {
        value(
            samples,
            "spares_rpc_requests_total",
            &[("rpc", rpc), ("status", status)],
        )
        .unwrap_or(0.0)
    };

    // The session: master data, a receipt, a reservation confirmed, a
    // failing lookup, and a watch stream left open during the scrape.
    let mut clients = server.clients().await;
    small_network(&mut clients).await;
    clients
        .inventory
        .record_movements(pb::RecordMovementsRequest {
            movements: vec![receipt("m-1", "P1", "STR", 5)],
        })
        .await
        .unwrap();
    let reservation = clients
        .availability
        .reserve(pb::ReserveRequest {
            idempotency_key: "r-1".into(),
            part_id: "P1".into(),
            location_id: "STR".into(),
            quantity: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    clients
        .availability
        .confirm_reservation(pb::ConfirmReservationRequest {
            idempotency_key: "c-1".into(),
            reservation_id: reservation.reservation_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let missing = clients
        .network
        .get_part(pb::GetPartRequest {
            part_id: "NOPE".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let mut watch = clients
        .inventory
        .watch_stock(pb::WatchStockRequest::default())
        .await
        .unwrap()
        .into_inner();
    clients
        .inventory
        .record_movements(pb::RecordMovementsRequest {
            movements: vec![receipt("m-2", "P2", "STR", 1)],
        })
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(30), watch.next())
        .await
        .expect("a stock event")
        .expect("the stream is open")
        .unwrap();
    assert!(event.event.is_some());

    let text = scrape(address).await;
    let (after, types) = parse_exposition(&text);
    for (rpc, status, calls) in [
        ("spares.v1.NetworkService/UpsertLocations", "OK", 1.0),
        ("spares.v1.NetworkService/UpsertParts", "OK", 1.0),
        ("spares.v1.InventoryService/RecordMovements", "OK", 2.0),
        ("spares.v1.AvailabilityService/Reserve", "OK", 1.0),
        (
            "spares.v1.AvailabilityService/ConfirmReservation",
            "OK",
            1.0,
        ),
        ("spares.v1.NetworkService/GetPart", "NOT_FOUND", 1.0),
    ] {
        assert!(
            count(&after, rpc, status) - count(&before, rpc, status) >= calls,
            "{rpc} {status}: {text}"
        );
        let labels = [("rpc", rpc), ("status", status)];
        let histogram_count =
            value(&after, "spares_rpc_duration_seconds_count", &labels).unwrap_or(0.0);
        assert!(histogram_count >= calls, "{rpc} {status} latency count");
        let inf = value(
            &after,
            "spares_rpc_duration_seconds_bucket",
            &[("rpc", rpc), ("status", status), ("le", "+Inf")],
        );
        assert_eq!(inf, Some(histogram_count), "+Inf bucket = count");
        assert!(value(&after, "spares_rpc_duration_seconds_sum", &labels).unwrap() >= 0.0);
    }
    assert_eq!(types["spares_rpc_duration_seconds"], "histogram");
    assert_eq!(types["spares_rpc_requests_total"], "counter");
    let grew = |name: &str, labels: &[(&str, &str)], by: f64| {
        let b = value(&before, name, labels).unwrap_or(0.0);
        let a = value(&after, name, labels).unwrap_or(0.0);
        assert!(a - b >= by, "{name} {labels:?}: {b} -> {a}");
    };
    grew("spares_ledger_writes_total", &[], 3.0);
    grew("spares_ledger_entries_total", &[], 2.0);
    grew("spares_store_flush_duration_seconds_count", &[], 3.0);
    grew("spares_reservations_total", &[("state", "pending")], 1.0);
    grew("spares_reservations_total", &[("state", "posted")], 1.0);
    assert!(
        value(&after, "spares_watch_streams", &[("stream", "stock")]).unwrap_or(0.0) >= 1.0,
        "the open watch stream is counted"
    );
    assert!(types.contains_key("spares_watch_lagged_events_total"));
    assert!(types.contains_key("spares_jobs"));
    assert!(types.contains_key("spares_job_duration_seconds"));
    if cfg!(target_os = "linux") {
        assert!(value(&after, "process_resident_memory_bytes", &[]).unwrap() > 0.0);
        assert!(value(&after, "process_open_fds", &[]).unwrap() > 0.0);
    }
    drop(watch);
    let _ = stop.send(());
    let _ = endpoint.await;
    server.stop().await;
}

#[test]
fn the_parser_refuses_what_prometheus_would() {
    let good = "# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\\\"\"} 3\n";
    let (samples, _) = parse_exposition(good);
    assert_eq!(samples[0].labels["k"], "v\"");
    for bad in [
        "a_total 1\n",                               // undeclared
        "# TYPE a counter\na{k=\"v} 1\n",            // unterminated
        "# TYPE a counter\na x\n",                   // not a number
        "# TYPE a counter\n# TYPE a counter\na 1\n", // declared twice
    ] {
        assert!(
            std::panic::catch_unwind(|| parse_exposition(bad)).is_err(),
            "{bad:?} parsed"
        );
    }
}
