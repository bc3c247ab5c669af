//! otelite's own routes, through the router without sockets, on a seeded
//! store; and every route of the OpenAPI document answering as it says.

use super::{OPENAPI, router};
use crate::storage::QueueLimits;
use crate::storage::sqlite::{SqliteStore, WriterThread};
use crate::test_fixtures::{self as fixtures, resource};
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use otelite_model::{AnyValue, Resource, Span, SpanKind};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

fn span(service: &Arc<Resource>, trace: u8, id: u8, parent: Option<u8>, error: bool) -> Span {
    let start = 1_000 * u64::from(id);
    let kind = if parent.is_none() {
        SpanKind::Server
    } else {
        SpanKind::Client
    };
    fixtures::span(trace, id)
        .resource(service)
        .parent(parent)
        .kind(kind)
        .times(start, start + 700)
        .error(error)
        .attribute("http.route", AnyValue::String(format!("/r{id}")))
        .build()
}

/// Trace 1: web (root) → db (error); trace 2: web only.
async fn seeded()
-> Result<(tempfile::TempDir, SqliteStore, WriterThread), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (store, writer) = SqliteStore::open(
        &dir.path().join("q.db"),
        QueueLimits {
            requests: 4,
            spans: 100,
        },
    )?;
    let (web, db) = (resource("web"), resource("db"));
    for spans in [
        vec![
            span(&web, 1, 1, None, false),
            span(&db, 1, 2, Some(1), true),
        ],
        vec![span(&web, 2, 3, None, false)],
    ] {
        fixtures::write(&store, spans, 0).await?;
    }
    Ok((dir, store, writer))
}

async fn get(
    store: &SqliteStore,
    uri: &str,
) -> Result<(StatusCode, Value), Box<dyn std::error::Error>> {
    let response = router(store.clone(), Arc::default())
        .oneshot(Request::get(uri).body(Body::empty())?)
        .await?;
    let status = response.status();
    let text = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"text/plain"));
    let bytes = response.into_body().collect().await?.to_bytes();
    if text {
        return Ok((status, Value::String(String::from_utf8(bytes.to_vec())?)));
    }
    Ok((status, serde_json::from_slice(&bytes)?))
}

fn ids(body: &Value) -> Vec<String> {
    body["traces"]
        .as_array()
        .map(|traces| {
            traces
                .iter()
                .map(|t| t["traceId"].as_str().unwrap_or("")[..2].to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn search_parameters_filter_and_page() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = seeded().await?;
    let search = |q: &str| format!("/api/otelite/search?{q}");
    assert_eq!(ids(&get(&store, &search("")).await?.1), ["02", "01"]);
    assert_eq!(ids(&get(&store, &search("service=db")).await?.1), ["01"]);
    assert_eq!(
        ids(&get(&store, &search("kind=server&service=web")).await?.1),
        ["02", "01"]
    );
    assert_eq!(ids(&get(&store, &search("error=true")).await?.1), ["01"]);
    // `error=false` is no filter, as documented: traces with and without errors.
    assert_eq!(
        ids(&get(&store, &search("error=false")).await?.1),
        ["02", "01"]
    );
    // A one-value parameter given twice is refused, not one copy picked.
    let (status, body) = get(&store, &search("service=db&service=web")).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.to_string().contains("service is given 2 times"),
        "{body}"
    );
    assert_eq!(
        ids(&get(&store, &search("attribute=http.route%3D%2Fr3"))
            .await?
            .1),
        ["02"]
    );
    assert_eq!(
        ids(&get(
            &store,
            &search("attribute=http.route%3D%2Fr3&attribute=service.name%3Ddb")
        )
        .await?
        .1),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&get(&store, &search("attribute=service.name%3Ddb")).await?.1),
        ["01"]
    );
    assert_eq!(
        ids(&get(&store, &search("minDurationNanos=701")).await?.1),
        Vec::<String>::new()
    );
    let (_, first) = get(&store, &search("limit=1")).await?;
    assert_eq!(ids(&first), ["02"]);
    let cursor = first["nextCursor"]
        .as_str()
        .ok_or("a full page has a next cursor")?
        .to_owned();
    let (_, second) = get(&store, &search(&format!("limit=1&cursor={cursor}"))).await?;
    assert_eq!(ids(&second), ["01"]);

    let summary = &get(&store, &search("service=db")).await?.1["traces"][0];
    assert_eq!(summary["services"].as_array().map(Vec::len), Some(2));
    assert_eq!(summary["errorCount"], 1);

    for (bad, names) in [
        ("kind=sideways", "kind"),
        ("limit=0", "limit"),
        ("start=soon", "start"),
        ("attribute=novalue", "attribute"),
        ("cursor=nonsense", "cursor"),
        ("colour=red", "colour"),
        ("start=5&end=4", "start"),
    ] {
        let (status, body) = get(&store, &search(bad)).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{bad}: {message}");
    }
    drop(store);
    writer.join();
    Ok(())
}

#[tokio::test]
async fn dependencies_show_the_call_from_web_to_db() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = seeded().await?;
    let (status, body) = get(&store, "/api/otelite/dependencies").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["dependencies"],
        serde_json::json!([{"parent": "web", "child": "db", "callCount": 1, "errorCount": 1}])
    );
    drop(store);
    writer.join();
    Ok(())
}

#[tokio::test]
async fn operations_of_a_service_with_kinds() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = seeded().await?;
    let (status, body) = get(&store, "/api/otelite/services/web/operations").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({ "service": "web", "operations": [
            { "name": "op1", "kind": "server" }, { "name": "op3", "kind": "server" }
        ]})
    );
    let (_, body) = get(&store, "/api/otelite/services/db/operations?kind=server").await?;
    assert_eq!(
        body["operations"],
        serde_json::json!([]),
        "a known service, no such kind"
    );
    let (status, body) = get(&store, "/api/otelite/services/nobody/operations").await?;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "service \"nobody\" not found");
    let (status, body) = get(&store, "/api/otelite/services/web/operations?kind=odd").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    drop(store);
    writer.join();
    Ok(())
}

/// Resolves a `$ref` within the document.
fn resolve<'a>(doc: &'a Value, node: &'a Value) -> &'a Value {
    match node["$ref"].as_str().and_then(|r| r.strip_prefix("#/")) {
        Some(path) => path.split('/').fold(doc, |at, part| &at[part]),
        None => node,
    }
}

#[tokio::test]
async fn every_documented_route_answers_as_the_document_says()
-> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = seeded().await?;
    let doc: Value = serde_json::from_str(OPENAPI)?;
    let paths = doc["paths"].as_object().ok_or("paths")?;
    assert!(paths.len() >= 6);
    for (path, item) in paths {
        let operation = &item["get"];
        let mut uri = path.clone();
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] == "path" {
                let example = parameter["example"]
                    .as_str()
                    .ok_or("path parameters have examples")?;
                uri = uri.replace(
                    &format!("{{{}}}", parameter["name"].as_str().unwrap_or_default()),
                    example,
                );
            }
        }
        let (status, body) = get(&store, &uri).await?;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        let schema = resolve(
            &doc,
            &operation["responses"]["200"]["content"]["application/json"]["schema"],
        );
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            assert!(body.get(name).is_some(), "{uri} lacks {name}: {body}");
        }
        // Where the document promises a 400, a bad parameter gets it.
        if operation["responses"].get("400").is_some() {
            // A bad trace id, else an unknown (or bad) `start`.
            let bad = if path.contains("{traceId}") {
                path.replace("{traceId}", "xyz")
            } else {
                format!("{uri}?start=-1")
            };
            let (status, body) = get(&store, &bad).await?;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
            assert!(body["error"].is_string(), "{bad}: {body}");
        }
    }
    drop(store);
    writer.join();
    Ok(())
}

#[tokio::test]
async fn a_trace_carries_its_exact_duration() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = seeded().await?;
    let (status, body) = get(&store, &format!("/api/otelite/traces/{}", "01".repeat(16))).await?;
    assert_eq!(status, StatusCode::OK);
    // Span 1 runs 1000..1700 ns, span 2 2000..2700 ns.
    assert_eq!(body["durationNanos"], 1700);
    assert_eq!(body["spans"].as_array().map(Vec::len), Some(2));
    for span in body["spans"].as_array().into_iter().flatten() {
        assert_eq!(span["durationNanos"], 700, "{span}");
        assert!(
            span["spanId"].is_string(),
            "the span's own fields are kept: {span}"
        );
    }
    drop(store);
    writer.join();
    Ok(())
}

/// `n` copies of `name=value`, joined into a query string.
fn repeated(name: &str, value: &str, n: usize) -> String {
    vec![format!("{name}={value}"); n].join("&")
}

#[tokio::test]
async fn a_parameter_repeated_past_the_cap_gets_400() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = seeded().await?;
    let max = super::budget_defaults::MAX_REPEATED_PARAMS;
    let prefixes = repeated("attributePrefix", "http.route%3D%2Fr", max + 1);
    let (status, body) = get(&store, &format!("/api/otelite/search?{prefixes}")).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|m| m.contains("attributePrefix") && m.contains("max_repeated_params")),
        "{body}"
    );
    let tags = repeated("tag", "http.route:%2Fr1", max + 1);
    let (status, body) = get(&store, &format!("/api/traces?service=web&{tags}")).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], 400, "{body}");
    // At the cap, the search runs.
    let prefixes = repeated("attributePrefix", "http.route%3D%2Fr", max);
    let (status, body) = get(&store, &format!("/api/otelite/search?{prefixes}")).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    drop(store);
    writer.join();
    Ok(())
}

#[tokio::test]
async fn repeated_trace_ids_are_merged_and_capped() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = seeded().await?;
    let one = "01".repeat(16);
    let (status, body) = get(&store, &format!("/api/traces?traceID={one}&traceID={one}")).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1), "{body}");
    // Leading zeros dropped, as Jaeger writes ids, is the same id.
    let short = &one[1..];
    let (status, body) = get(
        &store,
        &format!("/api/traces?traceID={one}&traceID={short}"),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1), "{body}");
    let max = super::budget_defaults::MAX_TRACE_IDS;
    let distinct: Vec<String> = (1..=max + 1).map(|n| format!("traceID={n:x}")).collect();
    let (status, body) = get(&store, &format!("/api/traces?{}", distinct.join("&"))).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["errors"][0]["msg"]
            .as_str()
            .is_some_and(|m| m.contains("max_trace_ids")),
        "{body}"
    );
    drop(store);
    writer.join();
    Ok(())
}

/// Every answer of the query listener, page or API, tells the browser not
/// to frame it, not to sniff its type, and to run only otelite's scripts.
#[tokio::test]
async fn pages_and_api_answers_carry_the_browser_defences() -> Result<(), Box<dyn std::error::Error>>
{
    let (_dir, store, writer) = seeded().await?;
    for uri in [
        "/",
        "/ui/app.js",
        "/api/otelite/services",
        "/api/traces?limit=x",
        "/healthz",
    ] {
        let response = router(store.clone(), Arc::default())
            .oneshot(Request::get(uri).body(Body::empty())?)
            .await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{uri}");
        assert_eq!(
            header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{uri}"
        );
        let policy = header("content-security-policy").unwrap_or_default();
        assert!(policy.contains("script-src 'self'"), "{uri}: {policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{uri}: {policy}");
    }
    drop(store);
    writer.join();
    Ok(())
}
