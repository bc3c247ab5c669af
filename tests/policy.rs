//! Keep/drop rules from a config file, against the real `otelite serve`
//! on both stores, with the official Python SDK sending: spans a rule drops
//! are acknowledged, counted at analyze by rule and shown apart from losses
//! (`/api/rates`, `otelite rates` with `--db`/`--clickhouse-url` and
//! `--server`, `/metrics`), and are not searchable; the trace-id decision
//! is the same for a trace's spans across batches and a restart.

use crate::support::fixtures::{self, otlp_request};
use crate::support::process::{ServeProcess, blocking, otelite_bin};
use crate::support::stores::StoreAt;
use crate::support::{
    PolicyDrop, ServiceRates, Store, WAIT, eventually, for_each_store, foreign, unique_trace_id,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use otelite_model::SpanId;
use prost::Message;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

const RULES: &str = r#"
[[drop]]
name = "health-checks"
span_name = "GET /health*"

[[sample]]
name = "shop-half"
service = "shop"
keep = 0.5
"#;

// Trace ids whose low 56 bits (the last 14 hex digits) put them on either
// side of half of 2^56 (0x80000000000000): kept at 0.5 from 0x80… up.
const KEPT_A: &str = "aaaaaaaaaaaaaaaaaac0000000000001";
const DROPPED_B: &str = "bbbbbbbbbbbbbbbbbb20000000000002";
const KEPT_C: &str = "cccccccccccccccccc90000000000003";
const BELOW_D: &str = "dddddddddddddddddd10000000000004";

/// One batch from the Python SDK: `service`'s traces, `(id, span names)`.
async fn send(endpoint: String, service: &str, traces: &[(&str, &[&str])]) {
    let traces: Vec<Value> = traces
        .iter()
        .map(|(id, spans)| serde_json::json!({ "traceId": id, "spans": spans }))
        .collect();
    let spec = Value::Array(traces).to_string();
    let service = service.to_owned();
    let _: Value = blocking(move || {
        let mut command = Command::new(foreign::python());
        command
            .arg(foreign::clients_dir().join("python/policy_client.py"))
            .args([&endpoint, &service, &spec]);
        foreign::run_for(command)
    })
    .await;
}

async fn get(url: String) -> (u16, String) {
    let reply = reqwest::get(&url).await.expect("GET reaches the backend");
    let status = reply.status().as_u16();
    (status, reply.text().await.expect("read body"))
}

async fn rates_of(server: &ServeProcess, service: &str) -> Option<ServiceRates> {
    let (status, body) = get(server.query_url(&format!("/api/rates?service={service}"))).await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).expect("rates are JSON");
    let services: Vec<ServiceRates> =
        serde_json::from_value(body["services"].clone()).expect("documented shape");
    services.into_iter().find(|s| s.service == service)
}

async fn wait_for_process_count(server: &ServeProcess, service: &str, n: u64) -> ServiceRates {
    eventually(
        || rates_of(server, service),
        |r| r.as_ref().is_some_and(|r| r.n("process") == Some(n)),
    )
    .await
    .unwrap_or_else(|| panic!("/api/rates never listed {service}"))
}

fn drop_of(rule: &str, n: u64, of: u64) -> PolicyDrop {
    PolicyDrop {
        rule: rule.into(),
        n,
        share: Some(n as f64 / of as f64),
    }
}

/// `otelite <args>`, expecting success; stdout.
fn otelite(args: &[String]) -> String {
    let out = Command::new(otelite_bin())
        .args(args)
        .env_remove("OTELITE_SERVER")
        .stdin(Stdio::null())
        .output()
        .expect("run otelite");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "otelite {args:?}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The reading commands' flags for the store itself.
fn store_source(store: &StoreAt) -> Vec<String> {
    match store {
        StoreAt::Sqlite { db } => vec!["--db".into(), db.display().to_string()],
        StoreAt::ClickHouse {
            server, database, ..
        } => vec!["--clickhouse-url".into(), server.otelite_url(database)],
    }
}

fn write_rules(dir: &Path) -> String {
    let path = dir.join("rules.toml");
    std::fs::write(&path, RULES).expect("write the rules file");
    path.display().to_string()
}

async fn stop(mut server: ServeProcess) {
    blocking(move || {
        server.signal("TERM");
        let status = server.wait_exit(WAIT);
        assert!(status.is_some_and(|s| s.success()), "{status:?}");
    })
    .await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    rules_drop_spans_counted_apart_from_losses
);

async fn rules_drop_spans_counted_apart_from_losses(store: Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = write_rules(dir.path());
    let at = StoreAt::new(store, dir.path(), "policy").await;
    let server = at.serve(&["--config", &rules]).await;

    // Batch 1. shop: A kept (its health check dropped), B's two spans out
    // of the sample, C only a health check. cart: D, which no sample rule
    // covers, is kept although its id is below shop's threshold.
    send(
        server.otlp_url(),
        "shop",
        &[
            (KEPT_A, &["checkout", "GET /healthz"]),
            (DROPPED_B, &["checkout", "db.query"]),
            (KEPT_C, &["GET /healthz"]),
        ],
    )
    .await;
    send(server.otlp_url(), "cart", &[(BELOW_D, &["cart.add"])]).await;
    let first = wait_for_process_count(&server, "shop", 5).await;
    assert_eq!(first.n("analyze"), Some(1), "{first:#?}");

    // Acknowledged: 200 and no partial success for a request of which a
    // rule drops one span.
    let trace = unique_trace_id(7);
    let spans = [
        fixtures::span(trace, SpanId([1; 8]))
            .service("probe")
            .name("GET /healthz")
            .build(),
        fixtures::span(trace, SpanId([2; 8]))
            .service("probe")
            .name("probe.work")
            .build(),
    ];
    let body = otlp_request(&spans).encode_to_vec();
    let reply = reqwest::Client::new()
        .post(format!("{}/v1/traces", server.otlp_url()))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .expect("POST reaches the backend");
    assert_eq!(reply.status().as_u16(), 200);
    let answer = ExportTraceServiceResponse::decode(reply.bytes().await.expect("body"))
        .expect("an OTLP response");
    assert_eq!(answer.partial_success, None, "a drop is not a rejection");

    // Batch 2 after a restart: A again kept, B again dropped.
    stop(server).await;
    let server = at.serve(&["--config", &rules]).await;
    send(
        server.otlp_url(),
        "shop",
        &[(KEPT_A, &["payment"]), (DROPPED_B, &["payment"])],
    )
    .await;
    let shop = wait_for_process_count(&server, "shop", 7).await;

    // shop: 7 processed; health-checks dropped 2, shop-half 3; 2 kept and
    // stored; nothing lost, so every rate against the spans kept is 1.
    assert_eq!(
        shop.counts(),
        vec![None, None, None, Some(7), Some(2), Some(2)],
        "{shop:#?}"
    );
    let analyze = shop.stage("analyze");
    assert_eq!(
        analyze.dropped,
        vec![drop_of("health-checks", 2, 7), drop_of("shop-half", 3, 7)]
    );
    assert_eq!(analyze.lost, Some(0), "drops are no loss: {shop:#?}");
    assert!(analyze.reasons.is_empty(), "{shop:#?}");
    for stage in ["process", "analyze", "store"] {
        assert_eq!(shop.stage(stage).rate, Some(1.0), "{stage}: {shop:#?}");
    }
    let cart = rates_of(&server, "cart").await.expect("cart listed");
    assert_eq!(cart.counts()[3..], [Some(1), Some(1), Some(1)]);
    assert!(cart.stage("analyze").dropped.is_empty());
    let probe = rates_of(&server, "probe").await.expect("probe listed");
    assert_eq!(
        probe.stage("analyze").dropped,
        vec![drop_of("health-checks", 1, 2)]
    );

    // Dropped spans are not stored: B and C are not found, A holds only
    // its kept spans from both batches, D is there for cart.
    for gone in [DROPPED_B, KEPT_C] {
        let (status, body) = get(server.query_url(&format!("/api/otelite/traces/{gone}"))).await;
        assert_eq!(status, 404, "{gone}: {body}");
    }
    let (status, body) = get(server.query_url(&format!("/api/otelite/traces/{KEPT_A}"))).await;
    assert_eq!(status, 200, "{body}");
    let kept: Value = serde_json::from_str(&body).expect("JSON");
    let mut names: Vec<&str> = kept["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["checkout", "payment"]);
    let (status, body) = get(server.query_url(&format!("/api/otelite/traces/{BELOW_D}"))).await;
    assert_eq!(status, 200, "{body}");
    let (_, found) =
        get(server.query_url("/api/otelite/search?operation=GET%20%2Fhealthz&service=shop")).await;
    let found: Value = serde_json::from_str(&found).expect("JSON");
    assert_eq!(found["traces"], serde_json::json!([]), "{found}");

    // /metrics: a counter by rule.
    let (_, metrics) = get(server.query_url("/metrics")).await;
    for line in [
        "otelite_policy_dropped_spans_total{rule=\"health-checks\",service=\"shop\"} 2\n",
        "otelite_policy_dropped_spans_total{rule=\"shop-half\",service=\"shop\"} 3\n",
        "otelite_policy_dropped_spans_total{rule=\"health-checks\",service=\"probe\"} 1\n",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }

    // otelite rates, from the store and from the server: the same JSON as
    // /api/rates, and the table says what each rule dropped.
    let (_, api) = get(server.query_url("/api/rates")).await;
    let api: Value = serde_json::from_str(&api).expect("JSON");
    let server_flags = vec!["--server".to_owned(), server.query_url("")];
    for source in [store_source(&at), server_flags] {
        let json_args = [vec!["rates".into(), "--json".into()], source.clone()].concat();
        let json = blocking(move || otelite(&json_args)).await;
        let json: Value = serde_json::from_str(&json).expect("rates --json is JSON");
        assert_eq!(json["services"], api["services"], "{source:?}");
        let table_args = [
            vec!["rates".into(), "--service".into(), "shop".into()],
            source,
        ]
        .concat();
        let table = blocking(move || otelite(&table_args)).await;
        assert!(
            table.contains("analyze: health-checks 2 (28.6%), shop-half 3 (42.9%)"),
            "{table}"
        );
        assert!(table.contains("DROPPED BY POLICY"), "{table}");
    }
    stop(server).await;
}

/// The rules hold for OTLP/gRPC as for OTLP/HTTP: a call of which a rule
/// drops one span is answered OK without partial success, and the drop is
/// counted by rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_apply_to_otlp_over_grpc() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = write_rules(dir.path());
    let at = StoreAt::new(Store::Sqlite, dir.path(), "policy-grpc").await;
    let server = at.serve(&["--config", &rules]).await;
    let trace = unique_trace_id(11);
    let spans = [
        fixtures::span(trace, SpanId([1; 8]))
            .service("probe")
            .name("GET /healthz")
            .build(),
        fixtures::span(trace, SpanId([2; 8]))
            .service("probe")
            .name("probe.work")
            .build(),
    ];
    let mut client = TraceServiceClient::connect(format!("http://{}", server.grpc))
        .await
        .expect("a gRPC connection to otelite");
    let answer = client
        .export(otlp_request(&spans))
        .await
        .expect("the call is answered OK")
        .into_inner();
    assert_eq!(answer.partial_success, None, "a drop is not a rejection");
    let probe = wait_for_process_count(&server, "probe", 2).await;
    assert_eq!(
        probe.counts()[3..],
        [Some(2), Some(1), Some(1)],
        "{probe:#?}"
    );
    assert_eq!(
        probe.stage("analyze").dropped,
        vec![drop_of("health-checks", 1, 2)]
    );
    stop(server).await;
}

/// A bad rule stops the start, and the message names it.
#[tokio::test]
async fn a_bad_rule_is_refused_at_start_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[[drop]]\nname = \"health-checks\"\nspan_name = \"GET /healthz\"\n\
         [[sample]]\nname = \"most\"\nkeep = 2\n",
    )
    .expect("write config");
    let db = dir.path().join("otelite.db");
    let out = blocking(move || {
        Command::new(otelite_bin())
            .args(["serve", "--config"])
            .arg(&config)
            .arg("--db")
            .arg(&db)
            .args([
                "--otlp-listen",
                "127.0.0.1:0",
                "--otlp-grpc-listen",
                "127.0.0.1:0",
                "--query-listen",
                "127.0.0.1:0",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run otelite serve")
    })
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("rule `most`: keep must be a fraction from 0 to 1, not 2"),
        "{stderr}"
    );
    assert!(!dir.path().join("otelite.db").exists(), "nothing created");
}
