//! The W3C trace context across the event bus: a published event carries the publishing span's
//! context (Kafka headers), and a consumer's work on it continues that trace, so one fit is one
//! trace from the gateway through the trainer to the training-data consumer. With no
//! OpenTelemetry layer installed (traces off) the context is empty and nothing is carried.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Header names and values of a trace context (`traceparent`, `tracestate`).
pub type Carrier = Vec<(String, String)>;

struct MapInjector<'a>(&'a mut HashMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct CarrierExtractor<'a>(&'a [(String, String)]);

impl Extractor for CarrierExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// The current span's trace context, empty when it has none.
pub fn current() -> Carrier {
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut map = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MapInjector(&mut map));
    });
    map.into_iter().collect()
}

/// Makes `span` continue the trace `carrier` holds, if it holds one.
pub fn continue_in(span: &tracing::Span, carrier: &[(String, String)]) {
    if carrier.is_empty() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&CarrierExtractor(carrier))
    });
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}
