//! The Prometheus endpoint beside the API: what it exports after real
//! calls (with a real Redis behind the queue gauges), and the shipped
//! Grafana dashboard, which must use only names the server exports.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};

use hotwasm_queue::{RedisOptions, RedisQueue};
use hotwasm_server::metrics::{METRICS, Metrics};
use hotwasm_tests::RedisServer;

use super::*;

/// `GET path` over plain HTTP/1.1 (a blocking socket on a blocking
/// thread); the status line and the body.
async fn get(address: std::net::SocketAddr, path: &str) -> (String, String) {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).expect("connects");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("response");
        let (head, body) = text.split_once("\r\n\r\n").expect("headers end");
        let status = head.lines().next().unwrap_or_default().to_string();
        assert!(
            status.contains("404") || head.to_ascii_lowercase().contains("openmetrics-text"),
            "{head}"
        );
        (status, body.to_string())
    })
    .await
    .expect("request task")
}

/// Samples of an exposition: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn name_of(series: &str) -> &str {
    series.split('{').next().unwrap_or(series)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_real_calls_and_the_dashboard_reads_only_exported_names() {
    let redis = RedisServer::start();
    let queue = Arc::new(
        RedisQueue::connect(RedisOptions::new(redis.url()))
            .await
            .expect("Redis"),
    );
    let running = Setup::new(RuntimeKind::Wasmtime).start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(
        Metrics::new(Arc::clone(&running.server), Some(queue)).serve(listener, async {
            let _ = stopped.await;
        }),
    );

    // A canary serves every Schnorr job: its series count them.
    let set = running.server.host().modules();
    let honest = hotwasm_modules::find("schnorr", "fast")
        .expect("built")
        .bytes;
    let candidate = set
        .compile("schnorr", &hotwasm_tests::second_version(honest, "canary"))
        .expect("the candidate compiles");
    let candidate_id = candidate.id.clone();
    set.set_trial(
        hotwasm_abi::Scheme::Schnorr,
        Some(Arc::new(hotwasm_worker::Trial::new(
            "metrics",
            hotwasm_worker::TrialMode::Canary { fraction: 1.0 },
            candidate,
            false,
        ))),
    );

    // 40 jobs over gRPC, and one refused administration call.
    let jobs = jobs(41, SchemeChoice::Mixed, 40);
    let schnorr = jobs
        .iter()
        .filter(|job| job.scheme == hotwasm_abi::Scheme::Schnorr)
        .count();
    let valid = jobs.iter().filter(|job| job.expect == Some(true)).count();
    let mut client = running.client().await;
    for job in &jobs {
        client.verify(job).await.expect("verify");
    }
    let refused = running
        .client_with(None)
        .await
        .activate_module("schnorr@nothing")
        .await;
    assert!(refused.is_err());

    let (status, text) = get(address, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with EOF");
    let samples = samples(&text);
    let value = |series: &str| {
        samples
            .get(series)
            .copied()
            .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
    };
    assert_eq!(
        value(r#"hotwasm_jobs_total{verdict="valid"}"#),
        valid as f64
    );
    assert_eq!(
        value(r#"hotwasm_jobs_total{verdict="invalid"}"#),
        (jobs.len() - valid) as f64
    );
    assert_eq!(
        value(r#"hotwasm_module_admin_total{action="activate",result="refused"}"#),
        1.0
    );
    assert_eq!(value("hotwasm_grpc_in_flight_calls"), 0.0);
    assert_eq!(value("hotwasm_workers"), 2.0);
    assert_eq!(value("hotwasm_queue_lag_entries"), 0.0);
    let served = value(&format!(
        r#"hotwasm_trial_jobs_total{{scheme="schnorr",candidate="{candidate_id}",mode="canary",outcome="served"}}"#
    ));
    assert_eq!(served, schnorr as f64);
    // Per version: the calls of the serving versions and the canary's add
    // up to the verdicts, and so do the serving histograms' counts.
    let calls: f64 = samples
        .iter()
        .filter(|(series, _)| name_of(series) == "hotwasm_module_calls_total")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(calls + served, jobs.len() as f64);
    let timed: f64 = samples
        .iter()
        .filter(|(series, _)| name_of(series) == "hotwasm_verify_duration_seconds_count")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(timed + served, jobs.len() as f64);

    // Every name the server promises is there.
    let exported: std::collections::BTreeSet<&str> = samples
        .keys()
        .map(|series| name_of(series))
        .map(|name| {
            ["_bucket", "_sum", "_count", "_created"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| METRICS.contains(base))
                .unwrap_or(name)
        })
        .collect();
    for name in METRICS {
        assert!(exported.contains(name), "{name} not exported:\n{text}");
    }

    // The dashboard reads only those names.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../dashboards/grafana/hotwasm.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the dashboard"))
            .expect("the dashboard is JSON");
    let mut used = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(at) = rest.find("hotwasm_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                used.push(name);
            }
        }
    }
    assert!(used.len() >= 10, "{used:?}");
    for name in &used {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        assert!(
            METRICS.contains(&base),
            "the dashboard reads {name}, which the server does not export"
        );
    }

    let (status, _) = get(address, "/elsewhere").await;
    assert!(status.contains("404"), "{status}");
    let _ = stop.send(());
    serving.await.expect("metrics task");
    running.shutdown().await;
}
