//! Quick start: a small shop instrumented with the plain OpenTelemetry API,
//! three services (each its own provider, as separate processes would have),
//! exporting through otelite. At the end it shuts the providers down, which
//! flushes the spans and sends the exporter's counters, and prints how many
//! spans got through each stage of the pipeline.
//!
//! ```text
//! cargo run -p otelite-backend -- serve          # OTLP on :4318, query API on :16686
//! cargo run --example quickstart
//! ```
//!
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (default `http://127.0.0.1:4318`) says where
//! to send, `OTELITE_QUERY_URL` (default `http://127.0.0.1:16686`) where to
//! read the rates.

use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::error::Error;
use std::time::Duration;

const SERVICES: [&str; 3] = ["shop-frontend", "shop-cart", "shop-payments"];

fn provider(service: &str) -> Result<SdkTracerProvider, Box<dyn Error>> {
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service.to_owned())
        .with_attribute(KeyValue::new("deployment.environment.name", "quickstart"))
        .build();
    let mut builder = otelite_exporter::OteliteExporter::builder();
    // The exporter reads the OTEL_* variables itself; only the default differs.
    let configured = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()));
    if !configured {
        builder = builder.with_endpoint("http://127.0.0.1:4318");
    }
    Ok(builder.build_provider(resource)?)
}

/// One checkout: frontend → cart → payments, the card declined on order 3.
fn checkout(providers: &[SdkTracerProvider; 3], order: i64) {
    let [frontend, cart, payments] = providers.each_ref().map(|p| p.tracer("quickstart"));
    let mut request = frontend
        .span_builder("POST /checkout")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("order.id", order),
            KeyValue::new("user.premium", order % 2 == 0),
        ])
        .start(&frontend);
    request.add_event("order.received", vec![KeyValue::new("items", 2 * order)]);
    // In real services the context travels in a `traceparent` header.
    let cx = Context::new().with_remote_span_context(request.span_context().clone());

    let mut reserve = cart
        .span_builder("reserve items")
        .with_kind(SpanKind::Server)
        .start_with_context(&cart, &cx);
    reserve.set_attribute(KeyValue::new("cart.total", 19.99 * order as f64));
    let reserve_cx = Context::new().with_remote_span_context(reserve.span_context().clone());
    let mut query = cart
        .span_builder("SELECT stock")
        .with_kind(SpanKind::Client)
        .start_with_context(&cart, &reserve_cx);
    query.set_attribute(KeyValue::new("db.system", "sqlite"));
    std::thread::sleep(Duration::from_millis(3));
    query.end();
    reserve.end();

    let mut charge = payments
        .span_builder("charge card")
        .with_kind(SpanKind::Server)
        .start_with_context(&payments, &cx);
    if order == 3 {
        charge.add_event(
            "exception",
            vec![
                KeyValue::new("exception.type", "CardDeclined"),
                KeyValue::new("exception.message", "card declined"),
            ],
        );
        charge.set_status(Status::error("card declined"));
        request.set_status(Status::error("payment failed"));
        request.set_attribute(KeyValue::new("http.response.status_code", 402));
    } else {
        request.set_attribute(KeyValue::new("http.response.status_code", 200));
    }
    std::thread::sleep(Duration::from_millis(2));
    charge.end();
    request.end();
}

fn print_rates(query_url: &str) -> Result<(), Box<dyn Error>> {
    let url = format!("{query_url}/api/rates");
    let report: serde_json::Value = reqwest::blocking::get(&url)?.error_for_status()?.json()?;
    println!("\nSpans that got through each stage ({url}):");
    let services = report["services"].as_array().cloned().unwrap_or_default();
    for service in services
        .iter()
        .filter(|s| SERVICES.iter().any(|name| s["service"] == *name))
    {
        println!("  {}", service["service"].as_str().unwrap_or("?"));
        for stage in service["stages"].as_array().into_iter().flatten() {
            let n = stage["n"]
                .as_u64()
                .map_or("-".to_owned(), |n| n.to_string());
            let rate = stage["rate"]
                .as_f64()
                .map_or("-".to_owned(), |r| format!("{:.1}%", r * 100.0));
            println!(
                "    {:<9} {:>6} spans  {:>7}",
                stage["stage"].as_str().unwrap_or("?"),
                n,
                rate
            );
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let providers = [
        provider(SERVICES[0])?,
        provider(SERVICES[1])?,
        provider(SERVICES[2])?,
    ];
    for order in 1..=3 {
        checkout(&providers, order);
    }
    for provider in providers {
        // Flushes the spans, then sends the final counters.
        if let Err(error) = provider.shutdown() {
            eprintln!("exporter shutdown: {error} (is the backend running?)");
        }
    }
    println!("Sent 3 checkouts (12 spans) from {}.", SERVICES.join(", "));

    let query_url =
        std::env::var("OTELITE_QUERY_URL").unwrap_or_else(|_| "http://127.0.0.1:16686".to_owned());
    let query_url = query_url.trim_end_matches('/');
    // No wait needed: the backend answers an export only after its commit,
    // and shutdown waited for those answers.
    if let Err(error) = print_rates(query_url) {
        eprintln!("could not read the rates from {query_url}: {error}");
        eprintln!("is the backend running? `cargo run -p otelite-backend -- serve`");
        std::process::exit(1);
    }
    println!("\nNext:");
    println!("  traces of a service: {query_url}/api/otelite/search?service=shop-frontend");
    println!("  one trace:           {query_url}/api/otelite/traces/<traceId from the search>");
    println!(
        "  rates for a window:  {query_url}/api/rates?service=shop-payments&start=<ns>&end=<ns>"
    );
    Ok(())
}
