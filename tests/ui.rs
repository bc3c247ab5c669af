//! The web UI in a real headless Chromium (Debian's `chromium`, driven by
//! `tests/clients/browser/ui.js` through playwright-core) against a backend
//! seeded through the real OTLP path with known traces: every page loads
//! without console errors and shows the seeded data, the waterfall's bars
//! sit where the spans' times put them, a 10 000-span trace draws only the
//! rows in view, a loss at `collect` is marked in the funnel and over time,
//! spans a keep/drop rule dropped are labelled with the rule, apart from
//! losses and in another colour, the upstream loss estimate from orphans is
//! labelled as an estimate,
//! and the empty-database, unknown-trace and backend-error messages show;
//! a graph of 11 services is laid out with no line through a box or label,
//! the trace view's state survives a reload, operations sort naturally, and
//! the pages hold up at 400, 420 and 768 px; against a server with a query
//! token the UI signs in, refuses a wrong token, keeps the session over a
//! reload and signs out; losses at collect, process and store (a real full
//! disk) are each marked at their stage. A screenshot of each page is written to
//! `target/ui-screenshots/` (the test prints the path).
//!
//! Chromium, Node and the npm packages come from `.ci/run`; the test fails,
//! never skips, when one is missing.

use crate::support::fixtures::{self, otlp_request};
use crate::support::small_disk::{self, SmallDisk};
use crate::support::{self, Backend, GatedProxy};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt, TraceFlags, TraceState, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{BatchConfigBuilder, SdkTracer};
use otelite_model::{SpanId, TraceId};
use prost::Message;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The browser script gets this long for all its pages.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(300);
const MS: u64 = 1_000_000;
/// The UI backend's `max_spans_per_answer`: the big trace takes two pages.
const BIG_TRACE_PAGE: usize = 6_000;

const INSTALL_HINT: &str = "install what `.ci/run` installs for the UI test: \
    `apt-get install -y chromium nodejs npm` and `(cd tests/clients/browser && npm ci)`";

/// Chromium, Node and playwright-core, or a panic that says how to get them.
fn browser_tools() -> String {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing; {INSTALL_HINT}"
    );
    let script_dir = support::foreign::clients_dir().join("browser");
    assert!(
        script_dir.join("node_modules/playwright-core").is_dir(),
        "tests/clients/browser/node_modules lacks playwright-core; {INSTALL_HINT}"
    );
    let node = std::env::var("OTELITE_NODE").unwrap_or_else(|_| "node".to_owned());
    match Command::new(&node).arg("--version").output() {
        Ok(out) if out.status.success() => node,
        Ok(out) => panic!("{node} --version failed: {out:?}; {INSTALL_HINT}"),
        Err(e) => panic!("cannot run {node} ({e}); {INSTALL_HINT}"),
    }
}

/// Where the screenshots go: `target/ui-screenshots/` of this workspace.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("create the screenshot directory");
    dir
}

/// One span the UI must draw: where it sits in the trace and how it is marked.
struct Expected {
    context: SpanContext,
    name: &'static str,
    service: &'static str,
    offset_ms: u64,
    duration_ms: u64,
    error: bool,
    critical: bool,
}

/// Starts a span at `offset_ms` into the trace under `parent` (or as a
/// root), ends it `duration_ms` later and returns what the UI should show.
#[allow(clippy::too_many_arguments)] // a table row, read at the call site
fn span(
    tracer: &SdkTracer,
    (service, base): (&'static str, SystemTime),
    parent: Option<&SpanContext>,
    name: &'static str,
    kind: SpanKind,
    (offset_ms, duration_ms): (u64, u64),
    error: Option<&'static str>,
    critical: bool,
) -> Expected {
    let at = |ms: u64| base + Duration::from_millis(ms);
    let cx = parent.map_or_else(Context::new, |p| {
        Context::new().with_remote_span_context(p.clone())
    });
    let mut span = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_start_time(at(offset_ms))
        .start_with_context(tracer, &cx);
    if let Some(message) = error {
        span.set_status(Status::error(message));
    }
    if name == "charge" {
        span.set_attribute(KeyValue::new("payment.amount", 42.5));
        span.add_event_with_timestamp(
            "retry",
            at(offset_ms + 20),
            vec![KeyValue::new("attempt", 2)],
        );
    }
    let context = span.span_context().clone();
    span.end_with_timestamp(at(offset_ms + duration_ms));
    Expected {
        context,
        name,
        service,
        offset_ms,
        duration_ms,
        error: error.is_some(),
        critical,
    }
}

/// The checkout trace across frontend and payments (the spans in the
/// waterfall's order), and a one-span health check trace.
fn seed_with_sdk(frontend: &SdkTracer, payments: &SdkTracer) -> (Vec<Expected>, Expected) {
    let base = SystemTime::now() - Duration::from_secs(20);
    let (fe, pay) = (("frontend", base), ("payments", base));
    let root = span(
        frontend,
        fe,
        None,
        "GET /checkout",
        SpanKind::Server,
        (0, 100),
        None,
        true,
    );
    let load = span(
        frontend,
        fe,
        Some(&root.context),
        "load-cart",
        SpanKind::Internal,
        (5, 30),
        None,
        true,
    );
    // Overlaps charge, ends before it: off the critical path.
    let audit = span(
        frontend,
        fe,
        Some(&root.context),
        "audit",
        SpanKind::Internal,
        (30, 30),
        None,
        false,
    );
    let charge = span(
        frontend,
        fe,
        Some(&root.context),
        "charge",
        SpanKind::Client,
        (40, 55),
        Some("payment declined"),
        true,
    );
    let server = span(
        payments,
        pay,
        Some(&charge.context),
        "POST /charge",
        SpanKind::Server,
        (45, 45),
        Some("card refused"),
        true,
    );
    let query = span(
        payments,
        pay,
        Some(&server.context),
        "db.query",
        SpanKind::Client,
        (50, 20),
        None,
        true,
    );
    let health = span(
        frontend,
        (fe.0, base + Duration::from_secs(1)),
        None,
        "GET /health",
        SpanKind::Server,
        (0, 3),
        None,
        true,
    );
    (vec![root, load, audit, charge, server, query], health)
}

/// A 10 000-span trace of service batch-job (a root, 99 batches of 100
/// items), posted as one OTLP/HTTP protobuf request. Returns its id and the
/// id of the span drawn last.
async fn seed_big_trace(backend: &Backend) -> (String, String) {
    let trace_id = support::unique_trace_id(0xb1);
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
        - 60_000 * MS;
    let make = |n: u64, parent: Option<u64>, name: String, from: u64, len: u64| {
        fixtures::span(trace_id, SpanId((n + 1).to_be_bytes()))
            .parent_span_id(parent.map(|p| SpanId((p + 1).to_be_bytes())))
            .flags(1)
            .service("batch-job")
            .name(name)
            .times(start + from, start + from + len)
            .build()
    };
    let mut spans = vec![make(0, None, "GET /batch".into(), 0, 1_000 * MS)];
    for batch in 0..99u64 {
        let id = 1 + batch * 101;
        spans.push(make(
            id,
            Some(0),
            format!("batch {batch}"),
            batch * 10 * MS,
            10 * MS,
        ));
        for item in 0..100u64 {
            let from = batch * 10 * MS + item * MS / 10;
            spans.push(make(
                id + 1 + item,
                Some(id),
                format!("item {batch}.{item}"),
                from,
                MS / 10,
            ));
        }
    }
    assert_eq!(spans.len(), 10_000);
    let last = spans.last().expect("spans").span_id.to_hex();
    let reply = backend
        .post(
            "/v1/traces",
            "application/x-protobuf",
            None,
            otlp_request(&spans).encode_to_vec(),
        )
        .await;
    assert_eq!(reply.status, 200, "the big trace is accepted: {reply:?}");
    (trace_id.to_hex(), last)
}

/// Loss at `collect`, as in `loss.rs`: the first export hangs in a closed
/// proxy while 500 spans end, so the SDK's 16-span queue overflows. The
/// spans share a remote parent that never arrives (one orphan trace).
/// Returns the service's stage counts once everything that got through is
/// stored.
async fn seed_loss(backend: &Backend) -> support::ServiceRates {
    let proxy = GatedProxy::start(backend.otlp, false).await;
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(16)
        .with_max_export_batch_size(16)
        .with_scheduled_delay(Duration::from_millis(1))
        .build();
    let provider = support::otelite_provider(&proxy.url(), "lossy", Some(batch));
    let parent = SpanContext::new(
        opentelemetry::trace::TraceId::from_bytes(support::unique_trace_id(0x10).0),
        opentelemetry::trace::SpanId::from_bytes([0x10; 8]),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let cx = Context::new().with_remote_span_context(parent);
    let tracer = provider.tracer("otelite-e2e-ui");
    for i in 0..500 {
        tracer
            .span_builder(format!("burst-{i}"))
            .start_with_context(&tracer, &cx)
            .end();
    }
    proxy.open();
    support::shutdown(provider).await;
    let rates = backend
        .wait_for_rates("lossy", |r| {
            r.n("total").is_some() && r.n("store") == r.n("transmit")
        })
        .await;
    assert!(
        rates.n("collect") < rates.n("total"),
        "the queue overflowed: {rates:#?}"
    );
    rates
}

/// The rule the UI's backend applies: health checks of the `noisy` service.
fn noisy_health_checks() -> otelite_backend::analyze::Policy {
    use otelite_backend::analyze::policy::{DropRule, Pattern};
    otelite_backend::analyze::Policy {
        drops: vec![DropRule {
            name: "health-checks".into(),
            service: Some(Pattern::new("noisy")),
            span_name: Some(Pattern::new("GET /healthz")),
            attribute: None,
        }],
        samples: Vec::new(),
    }
}

/// Four spans of `noisy`, one a health check its rule drops: 3 stored.
async fn seed_policy_drop(backend: &Backend) {
    let trace_id = support::unique_trace_id(0x70);
    let spans: Vec<_> = ["GET /healthz", "work 1", "work 2", "work 3"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            fixtures::span(trace_id, SpanId([i as u8 + 1; 8]))
                .service("noisy")
                .name(*name)
                .build()
        })
        .collect();
    let reply = backend
        .post(
            "/v1/traces",
            "application/x-protobuf",
            None,
            otlp_request(&spans).encode_to_vec(),
        )
        .await;
    assert_eq!(reply.status, 200, "the noisy batch is accepted: {reply:?}");
}

/// The service graph that provoked the hand-made layout's faults: ten
/// services, a hub, four-digit counts, and calls that skip layers
/// (`parent`, `child`, calls, errors among them).
const GRAPH: [(&str, &str, u64, u64); 17] = [
    ("web", "gateway", 3436, 35),
    ("mobile", "gateway", 903, 35),
    ("gateway", "auth", 1200, 0),
    ("gateway", "users", 850, 12),
    ("gateway", "orders", 640, 3),
    ("gateway", "search", 410, 0),
    ("orders", "payments", 320, 9),
    ("orders", "inventory", 300, 0),
    ("payments", "db", 310, 1),
    ("inventory", "db", 295, 0),
    ("users", "db", 700, 0),
    ("users", "cache", 690, 0),
    ("auth", "cache", 1150, 0),
    ("search", "cache", 400, 0),
    ("gateway", "db", 88, 2),
    ("web", "db", 12, 0),
    ("mobile", "cache", 5, 0),
];

/// Seeds [`GRAPH`]: per edge one trace, a root span of the caller and as
/// many child spans of the callee as it has calls, the first `errors` of
/// them failed. Returns once the dependencies API counts every call.
async fn seed_graph(backend: &Backend) {
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
        - 120_000 * MS;
    for (n, (parent, child, calls, errors)) in GRAPH.into_iter().enumerate() {
        let trace_id = support::unique_trace_id(0x60 + n as u8);
        let id = |k: u64| SpanId((k + 1).to_be_bytes());
        let mut spans = vec![
            fixtures::span(trace_id, id(0))
                .flags(1)
                .service(parent)
                .name(format!("call {child}"))
                .times(start, start + 10 * MS)
                .build(),
        ];
        spans.extend((1..=calls).map(|k| {
            fixtures::span(trace_id, id(k))
                .parent_span_id(Some(id(0)))
                .flags(1)
                .service(child)
                .name("serve")
                .times(start + MS, start + 2 * MS)
                .error(k <= errors)
                .build()
        }));
        let body = otlp_request(&spans).encode_to_vec();
        let reply = backend
            .post("/v1/traces", "application/x-protobuf", None, body)
            .await;
        assert_eq!(reply.status, 200, "{parent} → {child} accepted: {reply:?}");
    }
    let want: u64 = GRAPH.iter().map(|e| e.2).sum();
    let counted = |deps: &Value| -> u64 {
        deps["dependencies"]
            .as_array()
            .map(|edges| edges.iter().filter_map(|e| e["callCount"].as_u64()).sum())
            .unwrap_or(0)
    };
    let (_, deps) = support::eventually(
        || backend.get_json("/api/otelite/dependencies"),
        |(_, deps)| counted(deps) == want,
    )
    .await;
    assert_eq!(counted(&deps), want, "every seeded call counted: {deps}");
}

/// Runs the browser script on `expectations` and returns its result line.
fn run_browser(node: &str, expectations: &Value) -> Value {
    run_browser_script(node, "ui.js", expectations)
}

/// Runs `tests/clients/browser/<script>` on `expectations`.
fn run_browser_script(node: &str, script: &str, expectations: &Value) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("expect.json");
    std::fs::write(&file, expectations.to_string()).expect("write expectations");
    let script = support::foreign::clients_dir().join("browser").join(script);
    let mut child = Command::new(node)
        .arg(&script)
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {node} {}: {e}", script.display()));
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    while child.try_wait().expect("wait for node").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("node output");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the browser checks failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("ui.js printed no result line ({e}):\n{stdout}\n{stderr}"))
}

fn expected_json(span: &Expected, trace_start_ms: u64) -> Value {
    json!({
        "id": span.context.span_id().to_string(),
        "name": span.name,
        "service": span.service,
        "offsetNs": (span.offset_ms - trace_start_ms) * MS,
        "durationNs": span.duration_ms * MS,
        "error": span.error,
        "critical": span.critical,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_in_a_real_browser() {
    let node = browser_tools();
    // The big trace is past this cap: its page opens with the first spans
    // and "Load more spans" brings the rest.
    // No grace period: the lossy service's orphans (their parent never
    // comes) count as soon as they are stored.
    let backend = Backend::start_with(|config| {
        config.policy = noisy_health_checks();
        config.query_limits.max_spans_per_answer = BIG_TRACE_PAGE;
        config.query_limits.orphan_grace = Duration::ZERO;
    })
    .await;
    let empty = Backend::start().await;
    let graph = Backend::start().await;
    seed_graph(&graph).await;

    let scope = InstrumentationScope::builder("otelite-e2e-ui")
        .with_version("1.0.0")
        .build();
    let providers: Vec<_> = ["frontend", "payments"]
        .iter()
        .map(|service| support::otelite_provider(&backend.otlp_url(), service, None))
        .collect();
    let tracers: Vec<_> = providers
        .iter()
        .map(|p| p.tracer_with_scope(scope.clone()))
        .collect();
    let (checkout, health) = seed_with_sdk(&tracers[0], &tracers[1]);
    for provider in providers {
        support::shutdown(provider).await;
    }
    let (big_id, big_last) = seed_big_trace(&backend).await;
    let lossy = seed_loss(&backend).await;
    seed_policy_drop(&backend).await;

    let checkout_id = checkout[0].context.trace_id().to_string();
    let health_id = health.context.trace_id().to_string();
    backend.wait_for_trace(&checkout_id, checkout.len()).await;
    backend.wait_for_trace(&health_id, 1).await;
    backend.wait_for_trace(&big_id, 10_000).await;
    let lossy_stored = lossy.n("store").expect("lossy stored spans");
    let stored = [
        ("frontend", 5),
        ("payments", 2),
        ("batch-job", 10_000),
        ("lossy", lossy_stored),
        ("noisy", 3),
    ];
    for (service, n) in stored {
        backend
            .wait_for_rates(service, |r| r.n("store") == Some(n))
            .await;
    }
    let (status, deps) = backend.get_json("/api/otelite/dependencies").await;
    assert_eq!(status, 200, "{deps}");
    let edges = deps["dependencies"]
        .as_array()
        .expect("dependencies")
        .clone();
    assert!(
        edges
            .iter()
            .any(|e| e["parent"] == "frontend" && e["child"] == "payments" && e["callCount"] == 1),
        "the seeded call frontend → payments: {deps}"
    );

    let shots = screenshot_dir();
    let expectations = json!({
        "chromium": CHROMIUM,
        "base": format!("http://{}", backend.query),
        "emptyBase": format!("http://{}", empty.query),
        "graph": {
            "base": format!("http://{}", graph.query),
            "edges": GRAPH.iter().map(|(parent, child, calls, errors)| json!({
                "parent": parent, "child": child, "callCount": calls, "errorCount": errors,
            })).collect::<Vec<_>>(),
        },
        "screenshots": shots,
        "unknownTraceId": TraceId([0x5e; 16]).to_hex(),
        "stored": stored.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "edges": edges,
        "lossAtCollect": lossy.n("total").zip(lossy.n("collect")).map(|(t, c)| t - c),
        // 1 of the 4 spans that reached analyze.
        "policyDrop": {
            "service": "noisy",
            "stage": "analyze",
            "rule": "health-checks",
            "text": "dropped by policy `health-checks`: 25 % (1)",
        },
        "traces": {
            "checkout": {
                "id": checkout_id,
                "root": "GET /checkout",
                "durationNs": 100 * MS,
                "durationText": "100ms",
                "spans": checkout.iter().map(|s| expected_json(s, 0)).collect::<Vec<_>>(),
            },
            "health": { "id": health_id, "root": "GET /health" },
            "big": { "id": big_id, "spanCount": 10_000, "firstPage": BIG_TRACE_PAGE, "lastSpanId": big_last },
        },
    });
    let result = tokio::task::spawn_blocking(move || run_browser(&node, &expectations))
        .await
        .expect("browser thread");
    let written = result["screenshots"].as_array().expect("screenshots");
    for file in written {
        let path = PathBuf::from(file.as_str().expect("path"));
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "screenshot {} was written", path.display());
    }
    println!(
        "UI screenshots ({}) in {}; figures: {}",
        written.len(),
        shots.display(),
        result["figures"]
    );
}

/// The UI against a server started with `--query-token`: the sign-in form
/// shows, a wrong token is refused with a message, the right one shows the
/// seeded trace (search and trace pages), a reload keeps the session, the
/// token is in no URL the browser asked for and in sessionStorage only,
/// and signing out brings the form back (`tests/clients/browser/signin.js`).
#[tokio::test(flavor = "multi_thread")]
async fn sign_in_with_the_query_token() {
    const TOKEN: &str = "ui-query-token-7c1e";
    let node = browser_tools();
    let backend = Backend::start_with(|config| {
        config.query_token = Some(otelite_backend::net::BearerToken::new(TOKEN));
    })
    .await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64;
    let trace_id = support::unique_trace_id(0x51);
    let span = fixtures::span(trace_id, SpanId([0, 0, 0, 0, 0, 0, 0, 1]))
        .flags(1)
        .service("signed-in")
        .name("GET /private")
        .times(now - 60_000 * MS, now - 59_990 * MS)
        .build();
    let body = otlp_request(&[span]).encode_to_vec();
    // 200 means committed: the trace is there for the browser.
    let reply = backend
        .post("/v1/traces", "application/x-protobuf", None, body)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");

    let expectations = json!({
        "chromium": CHROMIUM,
        "base": format!("http://{}", backend.query),
        "token": TOKEN,
        "wrongToken": "not-the-token",
        "traceId": trace_id.to_hex(),
        "root": "GET /private",
        "screenshots": screenshot_dir(),
    });
    let result =
        tokio::task::spawn_blocking(move || run_browser_script(&node, "signin.js", &expectations))
            .await
            .expect("browser thread");
    assert_eq!(result["ok"], true, "{result}");
}

/// Spans lost at three stages, each in a service of its own, on a backend
/// whose database sits on a small file system: `lossy`'s SDK queue
/// overflows (collect, `queue_full`), `rejected` sends a span with an
/// all-zero id (process, `invalid_span_id`), and `disk-full` sends while the
/// disk is full (store, `write_failed`). The rates page marks each loss at
/// its stage with its reason and the all-services funnel all three, with
/// the hop of a Collector whose pushed counters say it lost spans
/// (`tests/clients/browser/funnel.js`); the screenshot is
/// `funnel-three-stages.png`.
#[tokio::test(flavor = "multi_thread")]
async fn loss_at_three_stages_in_the_funnel() {
    let node = browser_tools();
    let disk = SmallDisk::mount("16m");
    let db = disk.path().join("otelite.db");
    let backend = Backend::start_with(|config| config.db_path = db).await;

    let lossy = seed_loss(&backend).await;
    let at_collect = lossy
        .n("total")
        .zip(lossy.n("collect"))
        .map(|(total, collected)| total - collected)
        .expect("the SDK's counts");

    let request = fixtures::one_invalid_of_three(support::unique_trace_id(0x3a), "rejected");
    let reply = backend
        .post(
            "/v1/traces",
            "application/x-protobuf",
            None,
            request.encode_to_vec(),
        )
        .await;
    assert_eq!(reply.status, 200, "a partial success: {reply:?}");
    backend
        .wait_for_rates("rejected", |r| r.n("store") == Some(2))
        .await;

    // A Collector in front of some app reports its exporter lost 10 of 50.
    let reply = backend
        .post(
            "/v1/metrics",
            "application/x-protobuf",
            None,
            collector_counters(40, 10).encode_to_vec(),
        )
        .await;
    assert_eq!(reply.status, 200, "the Collector's counters: {reply:?}");

    let filler = disk.fill();
    let url = format!("{}/v1/traces", backend.otlp_url());
    let (_, refused) =
        small_disk::send_until_refused(&reqwest::Client::new(), &url, "disk-full").await;
    std::fs::remove_file(filler).expect("remove the filler");
    let at_store = refused.len() * small_disk::SPANS;

    let expectations = json!({
        "chromium": CHROMIUM,
        "base": format!("http://{}", backend.query),
        "screenshots": screenshot_dir(),
        "losses": [
            ["lossy", "collect", format!("−{at_collect} lost (queue_full {at_collect})")],
            ["rejected", "process", "−1 lost (invalid_span_id 1)"],
            ["disk-full", "store", format!("−{at_store} lost (write_failed {at_store})")],
        ],
        "collectorLoss": "−10 lost (send_failed(Unavailable) 10)",
    });
    let result =
        tokio::task::spawn_blocking(move || run_browser_script(&node, "funnel.js", &expectations))
            .await
            .expect("browser thread");
    assert_eq!(result["ok"], true, "{result}");
    println!("funnel with loss at three stages: {}", result["screenshot"]);
}

/// What a Collector's internal telemetry pushes about its OTLP exporter
/// (names and attributes as v0.165 sends them): `sent` spans handed on,
/// `failed` lost after its retries with `error.type` Unavailable.
fn collector_counters(
    sent: u64,
    failed: u64,
) -> opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    let text = |key: &str, value: &str| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64;
    let counter = |name: &str, value: u64, attributes: Vec<KeyValue>| {
        fixtures::cumulative_sum(name, value as i64, attributes, now - 60_000 * MS, now)
    };
    let exporter = || text("exporter", "otlp_http/otelite");
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    text("service.name", "otelcol-contrib"),
                    text("service.instance.id", "ui-collector-1"),
                ],
                ..Resource::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    counter("otelcol_exporter_sent_spans", sent, vec![exporter()]),
                    counter(
                        "otelcol_exporter_send_failed_spans",
                        failed,
                        vec![exporter(), text("error.type", "Unavailable")],
                    ),
                ],
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    }
}
