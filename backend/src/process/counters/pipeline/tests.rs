use super::*;

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: AnyValue::String(value.into()),
    }
}

/// An exporter's point attributes, as the SDKs send them.
fn exporter(name: &str, address: Option<&str>, port: Option<i64>) -> Vec<KeyValue> {
    let mut attributes = vec![text("otel.component.name", name)];
    attributes.extend(address.map(|a| text("server.address", a)));
    attributes.extend(port.map(|p| KeyValue {
        key: "server.port".into(),
        value: AnyValue::Int(p),
    }));
    attributes
}

fn processor(name: &str) -> Vec<KeyValue> {
    vec![text("otel.component.name", name)]
}

/// An otelite with OTLP/HTTP on `http` and OTLP/gRPC on `grpc`, both bound
/// to `ip`, that got the metrics at `host:port`.
fn otelite(ip: [u8; 4], http: u16, grpc: u16, host: &str, port: u16) -> Destination {
    Destination {
        host: Some(host.into()),
        port: Some(port),
        listeners: vec![SocketAddr::from((ip, http)), SocketAddr::from((ip, grpc))],
    }
}

/// The names of the exporters counted, of those given.
fn counted_exporters(exporters: &[Vec<KeyValue>], to: &Destination) -> Vec<String> {
    let views: Vec<&[KeyValue]> = exporters.iter().map(Vec::as_slice).collect();
    let counted = counted(&[], &views, to);
    exporters
        .iter()
        .filter(|e| counted.exporter(e))
        .filter_map(|e| component(e).map(str::to_owned))
        .collect()
}

#[test]
fn spans_sent_over_grpc_count_when_the_metrics_came_over_http() {
    let exporters = [
        exporter("otlp_grpc_span_exporter/0", Some("localhost"), Some(4317)),
        exporter("otlp_http_span_exporter/0", Some("localhost"), Some(9411)),
    ];
    let to = otelite([127, 0, 0, 1], 4318, 4317, "localhost", 4318);
    assert_eq!(
        counted_exporters(&exporters, &to),
        vec!["otlp_grpc_span_exporter/0"]
    );
}

#[test]
fn a_port_mapping_counts_the_port_the_metrics_came_to() {
    // In a container on 4318, published on the host as 14318.
    let exporters = [
        exporter("otlp_http_span_exporter/0", Some("127.0.0.1"), Some(14318)),
        exporter("otlp_http_span_exporter/1", Some("127.0.0.1"), Some(4000)),
    ];
    let to = otelite([0, 0, 0, 0], 4318, 4317, "127.0.0.1", 14318);
    assert_eq!(
        counted_exporters(&exporters, &to),
        vec!["otlp_http_span_exporter/0"]
    );
}

#[test]
fn of_two_exporters_on_our_port_the_one_addressed_here_counts() {
    // Another backend on the same port number, on another host.
    let exporters = [
        exporter(
            "otlp_http_span_exporter/0",
            Some("collector.internal"),
            Some(4318),
        ),
        exporter("otlp_http_span_exporter/1", Some("127.0.0.1"), Some(4318)),
    ];
    // Metrics sent to `localhost`, spans to `127.0.0.1`: both loopback.
    let to = otelite([0, 0, 0, 0], 4318, 4317, "localhost", 4318);
    assert_eq!(
        counted_exporters(&exporters, &to),
        vec!["otlp_http_span_exporter/1"]
    );
    // The host the metrics were sent to, by name.
    let exporters = [
        exporter(
            "otlp_http_span_exporter/0",
            Some("otelite.internal"),
            Some(4318),
        ),
        exporter(
            "otlp_http_span_exporter/1",
            Some("jaeger.internal"),
            Some(4318),
        ),
    ];
    let to = otelite([0, 0, 0, 0], 4318, 4317, "otelite.internal", 4318);
    assert_eq!(
        counted_exporters(&exporters, &to),
        vec!["otlp_http_span_exporter/0"]
    );
    // A listener's own address; `::1` is loopback as `localhost` is.
    let exporters = [
        exporter("otlp_http_span_exporter/0", Some("10.1.2.3"), Some(4318)),
        exporter("otlp_http_span_exporter/1", Some("10.9.9.9"), Some(4318)),
        exporter("otlp_http_span_exporter/2", Some("[::1]"), Some(4318)),
    ];
    let to = otelite([10, 1, 2, 3], 4318, 4317, "otelite.internal", 4318);
    assert_eq!(
        counted_exporters(&exporters, &to),
        vec!["otlp_http_span_exporter/0"]
    );
}

#[test]
fn without_addresses_the_port_decides() {
    let exporters = [
        exporter("otlp_http_span_exporter/0", None, Some(4318)),
        exporter("otlp_http_span_exporter/1", None, Some(5000)),
    ];
    let to = otelite([127, 0, 0, 1], 4318, 4317, "127.0.0.1", 4318);
    assert_eq!(
        counted_exporters(&exporters, &to),
        vec!["otlp_http_span_exporter/0"]
    );
    // Where neither address names us, both on our port count: nothing
    // tells them apart.
    let exporters = [
        exporter("otlp_http_span_exporter/0", Some("a.example"), Some(4318)),
        exporter("otlp_http_span_exporter/1", Some("b.example"), Some(4318)),
    ];
    assert_eq!(
        counted_exporters(&exporters, &to),
        vec!["otlp_http_span_exporter/0", "otlp_http_span_exporter/1"]
    );
}

#[test]
fn unnamed_exporters_are_told_apart_by_their_endpoint() {
    let exporters = [
        exporter("", Some("127.0.0.1"), Some(4318)),
        exporter("", Some("127.0.0.1"), Some(9)),
        exporter("", None, None),
    ]
    .map(|mut e| {
        e.remove(0);
        e
    });
    let to = otelite([127, 0, 0, 1], 4318, 4317, "127.0.0.1", 4318);
    let views: Vec<&[KeyValue]> = exporters.iter().map(Vec::as_slice).collect();
    let counted = counted(&[], &views, &to);
    let kept: Vec<bool> = exporters.iter().map(|e| counted.exporter(e)).collect();
    assert_eq!(kept, vec![true, false, true]);
}

#[test]
fn the_processor_of_the_same_rank_as_the_exporter_sending_here_counts() {
    // Made in pairs: a batch processor and OTLP exporter to a collector,
    // then another pair to otelite.
    let processors = [
        processor("batching_span_processor/0"),
        processor("batching_span_processor/1"),
    ];
    let exporters = [
        exporter("otlp_http_span_exporter/0", Some("localhost"), Some(9)),
        exporter("otlp_http_span_exporter/1", Some("localhost"), Some(4318)),
    ];
    let to = otelite([127, 0, 0, 1], 4318, 4317, "localhost", 4318);
    let p: Vec<&[KeyValue]> = processors.iter().map(Vec::as_slice).collect();
    let e: Vec<&[KeyValue]> = exporters.iter().map(Vec::as_slice).collect();
    let counted = counted(&p, &e, &to);
    let kept: Vec<bool> = processors.iter().map(|p| counted.processor(p)).collect();
    assert_eq!(kept, vec![false, true]);
}

#[test]
fn ranks_follow_the_sdks_numbers_not_the_text() {
    let processors: Vec<Vec<KeyValue>> = (0..12)
        .map(|i| processor(&format!("batching_span_processor/{i}")))
        .collect();
    let exporters: Vec<Vec<KeyValue>> = (0..12)
        .map(|i| {
            let port = if i == 10 { 4318 } else { 9 };
            exporter(&format!("otlp_http_span_exporter/{i}"), None, Some(port))
        })
        .collect();
    let to = otelite([127, 0, 0, 1], 4318, 4317, "localhost", 4318);
    let p: Vec<&[KeyValue]> = processors.iter().map(Vec::as_slice).collect();
    let e: Vec<&[KeyValue]> = exporters.iter().map(Vec::as_slice).collect();
    let counted = counted(&p, &e, &to);
    assert_eq!(
        counted.processor.as_deref(),
        Some("batching_span_processor/10")
    );
}

#[test]
fn with_an_exporter_that_reports_nothing_the_first_processor_counts() {
    // A console exporter (no counters of its own) beside the OTLP one.
    let processors = [
        processor("batching_span_processor/1"),
        processor("batching_span_processor/0"),
    ];
    let exporters = [exporter(
        "otlp_http_span_exporter/0",
        Some("localhost"),
        Some(4318),
    )];
    let to = otelite([127, 0, 0, 1], 4318, 4317, "localhost", 4318);
    let p: Vec<&[KeyValue]> = processors.iter().map(Vec::as_slice).collect();
    let e: Vec<&[KeyValue]> = exporters.iter().map(Vec::as_slice).collect();
    let counted = counted(&p, &e, &to);
    assert_eq!(
        counted.processor.as_deref(),
        Some("batching_span_processor/0")
    );
    // One processor: all its series count, whatever their name.
    let one = [processor("simple_span_processor/0")];
    let p: Vec<&[KeyValue]> = one.iter().map(Vec::as_slice).collect();
    assert_eq!(counted_one(&p, &e, &to), None);
}

fn counted_one(p: &[&[KeyValue]], e: &[&[KeyValue]], to: &Destination) -> Option<String> {
    counted(p, e, to).processor
}
