//! Seeing a running host from outside, for `trellis up`, `trellis dev` and `trellis host`:
//! `--metrics ADDR` (Prometheus `GET /metrics` on a read-only listener of its own), and
//! traces exported over OTLP/HTTP when `--otlp-endpoint` or the standard
//! `OTEL_EXPORTER_OTLP_*` variables say where (docs/tracing.md).
//!
//! Traces use the `opentelemetry` crates: the host makes `tracing` spans, the
//! `tracing-opentelemetry` layer turns them into OpenTelemetry spans, the SDK batches them
//! and `opentelemetry-otlp` sends them. The W3C trace-context propagator carries a trace
//! from an incoming request's `traceparent` header and across hosts in wRPC headers.

use anyhow::Context as _;
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;
use trellis_host::Host;

/// The flags every command that runs a host shares.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct ObserveArgs {
    /// Serve Prometheus metrics on http://ADDR/metrics (read-only; port 0 picks a free
    /// port) [default: off]. docs/metrics.md lists every metric.
    #[arg(long, env = "TRELLIS_METRICS_ADDR", value_name = "ADDR")]
    pub(crate) metrics: Option<SocketAddr>,

    /// Export traces over OTLP/HTTP to this collector, for example http://127.0.0.1:4318
    /// (`/v1/traces` is added) [default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
    /// OTEL_EXPORTER_OTLP_ENDPOINT when set, else no traces]. OTEL_EXPORTER_OTLP_PROTOCOL
    /// picks `http/protobuf` (the default) or `http/json`.
    #[arg(long, value_name = "URL")]
    pub(crate) otlp_endpoint: Option<String>,
}

/// The metrics listener, bound before the host runs anything so that a taken port is an
/// error at start rather than a warning later.
pub(crate) struct MetricsListener(tokio::net::TcpListener);

impl ObserveArgs {
    /// Binds `--metrics`, if given.
    pub(crate) fn bind(&self) -> anyhow::Result<Option<MetricsListener>> {
        let Some(addr) = self.metrics else {
            return Ok(None);
        };
        let listener = trellis_http_server::bind(addr).with_context(|| {
            format!("cannot serve metrics on {addr} (--metrics): is the port taken? pick another address, or port 0 for a free one")
        })?;
        Ok(Some(MetricsListener(listener)))
    }
}

impl MetricsListener {
    /// The address it listens on.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.0.local_addr().ok()
    }

    /// Serves `host`'s metrics until it shuts down; returns the URL to scrape.
    pub(crate) async fn serve(self, host: &Arc<Host>) -> Option<String> {
        let addr = self.local_addr();
        host.serve_metrics(self.0).await;
        addr.map(|a| format!("http://{a}/metrics"))
    }
}

/// Where traces go, when anywhere: the flag, else the standard variables.
fn otlp_endpoint(flag: Option<&str>) -> Option<Option<String>> {
    if std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    if let Some(url) = flag {
        return Some(Some(format!("{}/v1/traces", url.trim_end_matches('/'))));
    }
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    // The exporter reads these itself, with the specification's rules.
    (set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || set("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .then_some(None)
}

/// The process's tracer provider, once [`init_tracing`] made one.
static TRACER: std::sync::OnceLock<opentelemetry_sdk::trace::SdkTracerProvider> =
    std::sync::OnceLock::new();

/// The tracer provider exporting spans, when traces are configured.
pub(crate) fn tracer() -> Option<&'static opentelemetry_sdk::trace::SdkTracerProvider> {
    TRACER.get()
}

/// Sets up the tracer provider that exports spans over OTLP, when `args` (or the
/// environment) configure traces, and installs the W3C trace-context propagator. Call
/// [`shutdown`] before exiting so that the last spans are sent.
pub(crate) fn init_tracing(args: &ObserveArgs) -> anyhow::Result<()> {
    if let Some(provider) = tracer_provider(args)? {
        let _ = TRACER.set(provider);
    }
    Ok(())
}

fn tracer_provider(
    args: &ObserveArgs,
) -> anyhow::Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>> {
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};
    let Some(endpoint) = otlp_endpoint(args.otlp_endpoint.as_deref()) else {
        return Ok(None);
    };
    let protocol = match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
        Ok("http/json") => Protocol::HttpJson,
        Ok("http/protobuf") | Err(_) => Protocol::HttpBinary,
        Ok(other) => anyhow::bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={other} is not supported: use http/protobuf or http/json (Trellis exports over OTLP/HTTP)"
        ),
    };
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol);
    if let Some(endpoint) = endpoint {
        exporter = exporter.with_endpoint(endpoint);
    }
    let exporter = exporter
        .build()
        .context("cannot set up the OTLP trace exporter (--otlp-endpoint, OTEL_EXPORTER_OTLP_*)")?;
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read by the default detectors;
    // without a name of its own the service is `trellis`.
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("trellis");
    }
    let resource = resource
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    Ok(Some(provider))
}

/// Sends the spans still waiting, and stops the exporter.
pub(crate) fn shutdown() {
    if let Some(provider) = tracer()
        && let Err(e) = provider.shutdown()
    {
        eprintln!("warning: could not send the last traces: {e}");
    }
}

/// The layer that turns the host's spans into OpenTelemetry spans, when traces are
/// configured: spans of the host and the runtime at `info`, whatever the log filter says.
pub(crate) fn spans_layer<S>() -> Option<impl tracing_subscriber::Layer<S>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::Layer as _;
    let provider = tracer()?;
    let spans = tracing_subscriber::filter::Targets::new()
        .with_target("trellis_host", tracing::Level::INFO)
        .with_target("trellis_runtime", tracing::Level::INFO);
    Some(
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("trellis"))
            .with_filter(spans),
    )
}
