//! Trace context across hosts: the W3C `traceparent` of the current span, for the headers of
//! a call to another host, and a span's parent taken from an incoming one (an HTTP request's
//! header, a call's wRPC header).
//!
//! The host only makes `tracing` spans (`http.request`, `message`, `call`, and the runtime's
//! capability calls); the CLI decides whether they become OpenTelemetry spans exported over
//! OTLP (docs/tracing.md), and installs the W3C propagator these use through
//! `opentelemetry::global`. When it does not, the current span has no OpenTelemetry
//! context, nothing is injected, and a parent from outside is ignored.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The current span's trace context as a `traceparent` value, when it is traced.
pub(crate) fn traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = Carrier::default();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut carrier));
    carrier.traceparent
}

/// Makes `span` a child of the span `traceparent` names (a malformed value is ignored: the
/// span starts a trace of its own).
pub(crate) fn set_parent(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    let carrier = Carrier {
        traceparent: Some(traceparent.to_owned()),
    };
    let context = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    if context.span().span_context().is_valid() {
        // Fails only when the span is not recorded by an OpenTelemetry layer: nothing to do.
        let _ = span.set_parent(context);
    }
}

/// `traceparent` as a propagator reads and writes it.
#[derive(Default)]
struct Carrier {
    traceparent: Option<String>,
}

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        if key == "traceparent" {
            self.traceparent = Some(value);
        }
    }
}

impl Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent")
            .then_some(self.traceparent.as_deref())
            .flatten()
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}
