//! Expensive queries are held to `query_timeout` and stop when their client
//! goes away: on SQLite against the real `otelite serve` (its CPU time read
//! from /proc), on ClickHouse against the suite's server (its running
//! queries read from `system.processes`).

use crate::support::clickhouse;
use crate::support::ledger::{self, Outcome};
use crate::support::process::{ServeProcess, blocking};
use crate::support::{Backend, Store};
use std::time::{Duration, Instant};

/// Spans seeded into SQLite: enough that the search below takes seconds.
const SQLITE_SPANS: usize = 200_000;
const BATCH_SPANS: usize = 10_000;
/// Conditions in the expensive search: each is one more test of every span.
const SQLITE_PREFIXES: usize = 100;
/// `--max-repeated-params` that lets them through.
const SQLITE_PREFIXES_ARG: &str = "100";
/// How long the impatient client waits before it hangs up.
const GIVE_UP: Duration = Duration::from_millis(200);
/// Generous room on a busy machine for a refusal to travel back.
const SLACK: Duration = Duration::from_secs(20);

/// A search that tests every span: each prefix is one more condition
/// (`maxDurationNanos=1`, which SQLite checks on every decoded span, where
/// ClickHouse would read only that column first).
fn expensive_search(first: &str, prefixes: usize, prefix: impl Fn(usize) -> String) -> String {
    let mut query = format!("/api/otelite/search?{first}");
    for i in 0..prefixes {
        query.push_str(&format!("&attributePrefix={}", prefix(i)));
    }
    query
}

/// Sends `path` and gives up after `GIVE_UP`, as an impatient client does.
async fn abandon(url: String) {
    let client = reqwest::Client::new();
    let answer = client.get(url).timeout(GIVE_UP).send().await;
    assert!(
        answer.is_err(),
        "the search must still be running when its client gives up: {answer:?}"
    );
}

/// utime + stime of `pid`, in clock ticks (fields 14 and 15 of stat; the
/// command name, field 2, may hold spaces, so count from its `)`).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/pid/stat");
    let after_name = stat.rsplit_once(')').expect("stat has the name in ()").1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: field 3 (state) is index 0, so 14 and 15 are 11 and 12.
    let tick = |i: usize| fields[i].parse::<u64>().expect("a tick count");
    tick(11) + tick(12)
}

fn ticks_per_second() -> u64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf CLK_TCK");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK is a number")
}

async fn seed_sqlite(server: &ServeProcess) {
    let client = reqwest::Client::new();
    let url = format!("{}/v1/traces", server.otlp_url());
    for _ in 0..SQLITE_SPANS / BATCH_SPANS {
        let batch = ledger::batch("expensive", BATCH_SPANS);
        let outcome = ledger::post(&client, &url, batch.body).await;
        assert!(matches!(outcome, Outcome::Acked), "seeding: {outcome:?}");
    }
}

/// On SQLite, an abandoned search stops burning the server's CPU, and,
/// with the server restarted on the same file with `--query-timeout 100ms`,
/// the same search is answered 503 naming `query_timeout`.
#[tokio::test(flavor = "multi_thread")]
async fn an_abandoned_search_stops_burning_cpu_and_a_long_one_gets_503_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("otelite.db");
    let args = ["--max-repeated-params", SQLITE_PREFIXES_ARG];
    let start = db.clone();
    let mut server = blocking(move || ServeProcess::start(&start, &args)).await;
    seed_sqlite(&server).await;
    let search = expensive_search("maxDurationNanos=1", SQLITE_PREFIXES, |i| {
        format!("load.index={i}")
    });

    abandon(server.query_url(&search)).await;
    // Time for the hang-up to reach the query; then a second of idling.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = cpu_ticks(server.pid());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let burnt = cpu_ticks(server.pid()) - before;
    let per_second = ticks_per_second();
    assert!(
        burnt * 10 < per_second * 3,
        "the server burnt {burnt} ticks ({per_second}/s) in the second after its client left"
    );
    server.kill();

    let limited_args = [
        "--max-repeated-params",
        SQLITE_PREFIXES_ARG,
        "--query-timeout",
        "100ms",
    ];
    let mut limited = blocking(move || ServeProcess::start(&db, &limited_args)).await;
    let asked = Instant::now();
    let answer = reqwest::get(limited.query_url(&search))
        .await
        .expect("the search is answered");
    let status = answer.status().as_u16();
    let body = answer.text().await.expect("the answer's body");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("query_timeout"), "{body}");
    assert!(asked.elapsed() < Duration::from_millis(100) + SLACK);
    limited.kill();
}

/// Spans seeded straight into ClickHouse (an INSERT … SELECT is seconds
/// faster than OTLP), each with `ATTRIBUTES` attributes.
const CLICKHOUSE_SPANS: usize = 300_000;
const ATTRIBUTES: usize = 40;
/// Enough conditions that the search runs for ten seconds and more, few
/// enough that one block of rows (between two checks of a limit or a
/// KILL) takes about a second.
const CLICKHOUSE_PREFIXES: usize = 40;
/// How soon the abandoned search must be gone, well before its natural end.
const KILLED_WITHIN: Duration = Duration::from_secs(5);

async fn seed_clickhouse(database: &str) {
    let server = clickhouse::shared().await;
    let insert = format!(
        "INSERT INTO spans (day, trace_id, span_id, service, name, start_ns, end_ns, \
         duration_ns, attr_keys, attr_values) \
         SELECT today(), toFixedString(concat(reinterpretAsString(number), \
         reinterpretAsString(toUInt64(7))), 16), toFixedString(reinterpretAsString(number), 8), \
         'expensive', 'step', toUInt64(now()) * 1000000000 - number * 1000, \
         toUInt64(now()) * 1000000000 - number * 1000 + 500, 500, \
         arrayMap(i -> concat('qlimit.', toString(i)), range({ATTRIBUTES})), \
         arrayMap(i -> concat('value-', toString(i)), range({ATTRIBUTES})) \
         FROM numbers({CLICKHOUSE_SPANS})"
    );
    server.sql_in(database, &insert).await;
    // Attribute search reads the attribute table (schema version 4).
    let attributes = "INSERT INTO span_attributes (day, key, value, is_string, start_ns, \
         trace_id, span_id, service, name, duration_ns) \
         SELECT day, key, value, 1, start_ns, trace_id, span_id, service, name, duration_ns \
         FROM spans ARRAY JOIN attr_keys AS key, attr_values AS value";
    server.sql_in(database, attributes).await;
}

/// How many of otelite's reads of this test's attributes ClickHouse runs.
async fn running_reads() -> usize {
    let server = clickhouse::shared().await;
    let sql = "SELECT count() FROM system.processes WHERE query_id LIKE 'otelite-%' \
               AND query LIKE '%qlimit.%'";
    server.sql(sql).await.trim().parse().expect("a count")
}

fn database_of(url: &str) -> String {
    url.rsplit('/').next().expect("a path").to_owned()
}

/// On ClickHouse, a search past `query_timeout` is answered 503 naming it,
/// and an abandoned one is killed rather than left running for minutes.
#[tokio::test(flavor = "multi_thread")]
async fn an_abandoned_search_is_killed_and_a_long_one_gets_503_on_clickhouse() {
    let limited = Backend::start_on(Store::ClickHouse, "limits", |config| {
        config.query_limits.query_timeout = Duration::from_secs(1);
        config.query_limits.max_repeated_params = CLICKHOUSE_PREFIXES;
    })
    .await;
    let url = limited.clickhouse_url().expect("a ClickHouse backend");
    let database = database_of(&url);
    seed_clickhouse(&database).await;
    let search = expensive_search("limit=20", CLICKHOUSE_PREFIXES, |i| {
        format!("qlimit.{i}=value")
    });

    let asked = Instant::now();
    let (status, body) = limited.get_json(&search).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.to_string().contains("query_timeout"), "{body}");
    assert!(asked.elapsed() < Duration::from_secs(1) + SLACK);

    // The same database, with a limit far away.
    let patient = Backend::start_on(Store::ClickHouse, "limits", |config| {
        config.clickhouse_url = url.clone();
        config.query_limits.query_timeout = Duration::from_secs(3600);
        config.query_limits.max_repeated_params = CLICKHOUSE_PREFIXES;
    })
    .await;
    let running = tokio::spawn(abandon(patient.query_url(&search)));
    let seen = crate::support::eventually(running_reads, |n| *n > 0).await;
    assert_eq!(seen, 1);
    running.await.expect("the impatient client");
    let gone = Instant::now();
    while running_reads().await > 0 {
        assert!(
            gone.elapsed() < KILLED_WITHIN,
            "the abandoned search still runs in ClickHouse"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
