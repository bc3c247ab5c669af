//! Query latency through the Jaeger v1 HTTP API, for any server that speaks
//! it: otelite's query listener and Jaeger's own `jaeger_query`, so that
//! `scripts/bench-peers.sh` times both with the same client and requests.
//!
//! `cargo run --release --example peer_queries -- --endpoint http://127.0.0.1:16686
//!  [--rounds 100] [--service frontend] [--tag-key enduser.id]`
//!
//! Trace ids, and the values of `--tag-key` searched for, come from the
//! server itself (a search by service, before timing), so the client needs
//! to know nothing of what the load sent; with the realistic workload's
//! `enduser.id` the attribute search looks for one user's traces.
//! Prints one `query NAME p50_ms P50 p99_ms P99 rounds N` line per query;
//! `services` (the smallest answer) is the same-run baseline.

use clap::Parser;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Parser)]
#[command(about = "Jaeger v1 API query latencies")]
struct Args {
    /// Base URL of the Jaeger v1 HTTP API (`/api/...` is appended).
    #[arg(long, default_value = "http://127.0.0.1:16686")]
    endpoint: String,
    /// Requests per query.
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    /// Service searched for.
    #[arg(long, default_value = "frontend")]
    service: String,
    /// Attribute searched for (with the service: Jaeger's search requires
    /// one), with the values the service's root spans carry.
    #[arg(long, default_value = "enduser.id")]
    tag_key: String,
    /// Traces per search answer.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Searched window: from this many hours before now to a day after.
    #[arg(long, default_value_t = 48)]
    hours: u64,
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("GET {path}: {source}")]
    Http {
        path: String,
        source: reqwest::Error,
    },
    #[error("GET {path}: status {status}: {body}")]
    Status {
        path: String,
        status: u16,
        body: String,
    },
    #[error("GET {path}: answer is not Jaeger's JSON: {why}")]
    Shape { path: String, why: String },
    #[error("no span of the traces found has the attribute {0:?}")]
    NoTagValues(String),
    #[error("the search by service found no trace: nothing to fetch by id")]
    NoTraces,
}

struct Client {
    http: reqwest::blocking::Client,
    base: String,
}

impl Client {
    /// The answer's body, after checking the status.
    fn get(&self, path: &str) -> Result<Vec<u8>, Error> {
        let http_error = |source| Error::Http {
            path: path.to_string(),
            source,
        };
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .map_err(http_error)?;
        let status = response.status();
        let body = response.bytes().map_err(http_error)?;
        if !status.is_success() {
            return Err(Error::Status {
                path: path.to_string(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).chars().take(300).collect(),
            });
        }
        Ok(body.to_vec())
    }

    /// `data` of a Jaeger v1 answer.
    fn data(&self, path: &str) -> Result<Vec<serde_json::Value>, Error> {
        let body = self.get(path)?;
        let shape = |why: String| Error::Shape {
            path: path.to_string(),
            why,
        };
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| shape(e.to_string()))?;
        match value.get("data") {
            Some(serde_json::Value::Array(items)) => Ok(items.clone()),
            Some(serde_json::Value::Null) | None => Ok(Vec::new()),
            Some(other) => Err(shape(format!("data is {other}"))),
        }
    }

    /// Sorted latencies of `paths`, each asked once; every answer must have
    /// at least `min_items` items in `data`.
    fn time(&self, paths: &[String], min_items: usize) -> Result<Vec<Duration>, Error> {
        let mut times = Vec::with_capacity(paths.len());
        for path in paths {
            let started = Instant::now();
            let items = self.data(path)?;
            times.push(started.elapsed());
            if items.len() < min_items {
                return Err(Error::Shape {
                    path: path.clone(),
                    why: format!("{} items, expected at least {min_items}", items.len()),
                });
            }
        }
        times.sort();
        Ok(times)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted
        .get(index.min(sorted.len().saturating_sub(1)))
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

fn report(name: &str, times: &[Duration]) {
    println!(
        "query {name} p50_ms {:.2} p99_ms {:.2} rounds {}",
        percentile(times, 0.50),
        percentile(times, 0.99),
        times.len()
    );
}

/// `%`-encodes a query parameter's value (Jaeger's tags are JSON).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The first string value of attribute `key` on a span of a Jaeger JSON trace.
fn tag_value(trace: &serde_json::Value, key: &str) -> Option<String> {
    trace
        .get("spans")?
        .as_array()?
        .iter()
        .filter_map(|span| span.get("tags")?.as_array())
        .flatten()
        .find(|tag| tag.get("key").and_then(|k| k.as_str()) == Some(key))?
        .get("value")?
        .as_str()
        .map(str::to_string)
}

fn run(args: &Args) -> Result<(), Error> {
    let client = Client {
        http: reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|source| Error::Http {
                path: String::new(),
                source,
            })?,
        base: args.endpoint.trim_end_matches('/').to_string(),
    };
    const HOUR_US: u64 = 3_600_000_000;
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let window = format!(
        "start={}&end={}",
        now_us.saturating_sub(args.hours * HOUR_US),
        now_us + 24 * HOUR_US
    );
    let service = encode(&args.service);
    let by_service = format!(
        "/api/traces?service={service}&limit={}&{window}",
        args.limit
    );

    // The ids and attribute values to ask for, from the server.
    let seed = format!(
        "/api/traces?service={service}&limit={}&{window}",
        args.rounds
    );
    let traces = client.data(&seed)?;
    let ids: Vec<String> = traces
        .iter()
        .filter_map(|trace| trace.get("traceID")?.as_str().map(str::to_string))
        .collect();
    if ids.is_empty() {
        return Err(Error::NoTraces);
    }
    let values: Vec<String> = traces
        .iter()
        .filter_map(|trace| tag_value(trace, &args.tag_key))
        .collect();
    if values.is_empty() {
        return Err(Error::NoTagValues(args.tag_key.clone()));
    }
    let by_id: Vec<String> = (0..args.rounds)
        .map(|i| format!("/api/traces/{}", ids[i % ids.len()]))
        .collect();
    let by_tag: Vec<String> = (0..args.rounds)
        .map(|i| {
            let tags = serde_json::json!({ &args.tag_key: values[i % values.len()] });
            format!(
                "/api/traces?service={service}&tags={}&limit={}&{window}",
                encode(&tags.to_string()),
                args.limit
            )
        })
        .collect();
    let repeat = |path: &str| vec![path.to_string(); args.rounds];

    report("services", &client.time(&repeat("/api/services"), 1)?);
    report("trace_by_id", &client.time(&by_id, 1)?);
    report("search_service", &client.time(&repeat(&by_service), 1)?);
    report("search_attribute", &client.time(&by_tag, 1)?);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("peer_queries: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
