//! What a host counts, for Prometheus (`--metrics ADDR`, [`Host::serve_metrics`]) and for the
//! dashboard (`trellis.stats`, [`Host::stats`]): one set of counters, read both ways.
//!
//! Each host keeps its own [`prometheus_client`] registry (no global one, so two hosts in one
//! process never mix) with `host_id` as a label on every metric. Counters and histograms are
//! updated where things happen (the HTTP dispatch, message and call handling, calls between
//! components, the control handler, the reconciler); gauges that describe the present
//! (instances in use, queue depth, provider health, NATS reconnects) are read from the host's
//! own state on each scrape by [`HostCollector`], so the hot path pays nothing for them.
//!
//! docs/metrics.md lists every metric and label; a test keeps that page and this file in step.

use crate::Host;
use crate::limiter::ConcurrencyLimiter;
use crate::sync;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use trellis_control::stats::{ComponentStats, HostStats, ProviderStats};
use trellis_control::{ComponentId, HostId, ProviderStatus};
use trellis_http_server::{
    IncomingHandler, RequestBody, ResponseBody, ServerLimits, text_response,
};

/// The HTTP status classes counted, in the order `trellis.stats` reports them.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabels {
    component_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    component_id: String,
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InvocationLabels {
    component_id: String,
    /// `message`, `call` (served to another component or `trellis call`) or `watch`.
    kind: &'static str,
    /// `ok` or `error`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    /// The caller.
    component_id: String,
    /// The component called.
    target: String,
    /// `local` (in process) or `remote` (over wRPC to another host).
    locality: &'static str,
    /// `ok` or `error`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallDurationLabels {
    component_id: String,
    target: String,
    locality: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderOperationLabels {
    provider_id: String,
    capability: String,
    operation: String,
    /// `ok` or `error`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControlLabels {
    /// `host.ping`, `component.scale`, …: the operation without the host or name it names.
    operation: String,
    /// `ok` or `error`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    /// What the reconciler asked for: `component.scale`, `link.put`, …
    action: String,
    /// `ok` or `error`.
    outcome: &'static str,
}

fn latency_histogram() -> Histogram {
    // 100 µs to about 6.5 s, doubling.
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

/// A host's metrics. Cheap to update from any task.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<ComponentLabels, Histogram, fn() -> Histogram>,
    invocations: Family<InvocationLabels, Counter>,
    traps: Family<ComponentLabels, Counter>,
    deadline_hits: Family<ComponentLabels, Counter>,
    memory_limit_hits: Family<ComponentLabels, Counter>,
    calls: Family<CallLabels, Counter>,
    call_duration: Family<CallDurationLabels, Histogram, fn() -> Histogram>,
    provider_operations: Family<ProviderOperationLabels, Counter>,
    control_requests: Family<ControlLabels, Counter>,
    reconciler_actions: Family<ActionLabels, Counter>,
    /// Operations and errors per provider, for `trellis.stats` (families cannot be summed).
    provider_totals: Mutex<BTreeMap<String, (u64, u64)>>,
    /// The limiter of each component, read for the gauges.
    limiters: Mutex<BTreeMap<ComponentId, Weak<ConcurrencyLimiter>>>,
}

impl Metrics {
    /// The metrics of host `host_id`; [`Metrics::attach`] adds the gauges read from the host.
    pub(crate) fn new(host_id: &HostId) -> Self {
        let mut registry = Registry::with_prefix_and_labels(
            "trellis",
            [("host_id".into(), host_id.as_str().to_owned().into())].into_iter(),
        );
        let requests = Family::default();
        registry.register(
            "http_requests",
            "HTTP requests answered by a component, by status class",
            requests.clone(),
        );
        let request_duration: Family<ComponentLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time from the request reaching the host to the component's response head, waiting for an instance included",
            Unit::Seconds,
            request_duration.clone(),
        );
        let invocations = Family::default();
        registry.register(
            "component_invocations",
            "Messages, calls and key-value changes a component handled, by kind and outcome",
            invocations.clone(),
        );
        let traps = Family::default();
        registry.register("component_traps", "Instances that trapped", traps.clone());
        let deadline_hits = Family::default();
        registry.register(
            "component_deadline_hits",
            "Invocations stopped at their deadline (--max-execution-time)",
            deadline_hits.clone(),
        );
        let memory_limit_hits = Family::default();
        registry.register(
            "component_memory_limit_hits",
            "Instances refused memory beyond their limit (--max-memory)",
            memory_limit_hits.clone(),
        );
        let calls = Family::default();
        registry.register(
            "calls",
            "Calls from a component to another, in process (local) or over wRPC (remote)",
            calls.clone(),
        );
        let call_duration: Family<CallDurationLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "call_duration",
            "Time a call from a component to another took, as the caller saw it",
            Unit::Seconds,
            call_duration.clone(),
        );
        let provider_operations = Family::default();
        registry.register(
            "provider_operations",
            "Operations components asked of a provider, by capability, operation and outcome",
            provider_operations.clone(),
        );
        let control_requests = Family::default();
        registry.register(
            "control_requests",
            "Control-interface requests this host answered, by operation and outcome",
            control_requests.clone(),
        );
        let reconciler_actions = Family::default();
        registry.register(
            "reconciler_actions",
            "Actions the reconciler took while this host held its lease",
            reconciler_actions.clone(),
        );
        Self {
            registry,
            requests,
            request_duration,
            invocations,
            traps,
            deadline_hits,
            memory_limit_hits,
            calls,
            call_duration,
            provider_operations,
            control_requests,
            reconciler_actions,
            provider_totals: Mutex::default(),
            limiters: Mutex::default(),
        }
    }

    /// Adds the gauges read from `host` on each scrape.
    pub(crate) fn attach(&mut self, host: Weak<Host>) {
        self.registry
            .register_collector(Box::new(HostCollector { host }));
    }

    /// The Prometheus text exposition (OpenMetrics) of everything counted.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Tracks `limiter` as `component`'s, for the gauges (replacing an earlier one).
    pub(crate) fn track(&self, component: &ComponentId, limiter: &Arc<ConcurrencyLimiter>) {
        let mut limiters = sync::lock(&self.limiters);
        limiters.retain(|_, l| l.strong_count() > 0);
        limiters.insert(component.clone(), Arc::downgrade(limiter));
    }

    fn limiter(&self, component: &ComponentId) -> Option<Arc<ConcurrencyLimiter>> {
        sync::lock(&self.limiters)
            .get(component)
            .and_then(Weak::upgrade)
    }

    /// An HTTP request `component` answered with `status` after `elapsed`.
    pub(crate) fn http_request(&self, component: &str, status: StatusCode, elapsed: Duration) {
        let class = STATUS_CLASSES
            .get(usize::from(status.as_u16() / 100).saturating_sub(1))
            .copied()
            .unwrap_or("5xx");
        self.requests
            .get_or_create(&RequestLabels {
                component_id: component.to_owned(),
                status_class: class,
            })
            .inc();
        self.request_duration
            .get_or_create(&ComponentLabels {
                component_id: component.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// A message, call or change `component` handled; `failure` says how it failed, if it did.
    pub(crate) fn invocation(&self, component: &str, kind: &'static str, failure: Option<Failure>) {
        self.invocations
            .get_or_create(&InvocationLabels {
                component_id: component.to_owned(),
                kind,
                outcome: if failure.is_some() { "error" } else { "ok" },
            })
            .inc();
        if let Some(failure) = failure {
            self.failure(component, failure);
        }
    }

    /// An invocation of `component` that trapped or hit its deadline.
    pub(crate) fn failure(&self, component: &str, failure: Failure) {
        let labels = ComponentLabels {
            component_id: component.to_owned(),
        };
        match failure {
            Failure::Trap => {
                self.traps.get_or_create(&labels).inc();
            }
            Failure::Deadline => {
                self.deadline_hits.get_or_create(&labels).inc();
            }
            Failure::Other => {}
        }
    }

    /// `component` was refused memory beyond its limit.
    pub(crate) fn memory_limit_hit(&self, component: &str) {
        self.memory_limit_hits
            .get_or_create(&ComponentLabels {
                component_id: component.to_owned(),
            })
            .inc();
    }

    /// A call from `caller` to `target` that took `elapsed`.
    pub(crate) fn call(
        &self,
        caller: &str,
        target: &str,
        remote: bool,
        ok: bool,
        elapsed: Duration,
    ) {
        let locality = if remote { "remote" } else { "local" };
        self.calls
            .get_or_create(&CallLabels {
                component_id: caller.to_owned(),
                target: target.to_owned(),
                locality,
                outcome: if ok { "ok" } else { "error" },
            })
            .inc();
        self.call_duration
            .get_or_create(&CallDurationLabels {
                component_id: caller.to_owned(),
                target: target.to_owned(),
                locality,
            })
            .observe(elapsed.as_secs_f64());
    }

    /// An operation a component asked of provider `provider`.
    pub(crate) fn provider_operation(
        &self,
        provider: &str,
        capability: &str,
        operation: &str,
        ok: bool,
    ) {
        self.provider_operations
            .get_or_create(&ProviderOperationLabels {
                provider_id: provider.to_owned(),
                capability: capability.to_owned(),
                operation: operation.to_owned(),
                outcome: if ok { "ok" } else { "error" },
            })
            .inc();
        let mut totals = sync::lock(&self.provider_totals);
        let (operations, errors) = totals.entry(provider.to_owned()).or_default();
        *operations += 1;
        *errors += u64::from(!ok);
    }

    /// A control request (`operation` without the host id or name it addresses) answered.
    pub(crate) fn control_request(&self, operation: &str, ok: bool) {
        self.control_requests
            .get_or_create(&ControlLabels {
                operation: operation.to_owned(),
                outcome: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    /// An action the reconciler took.
    pub(crate) fn reconciler_action(&self, action: &str, ok: bool) {
        self.reconciler_actions
            .get_or_create(&ActionLabels {
                action: action.to_owned(),
                outcome: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    /// What `trellis.stats` reports for `component` (limit `max_instances`).
    fn component_stats(&self, component: &ComponentId, max_instances: u32) -> ComponentStats {
        let id = component.as_str().to_owned();
        let labels = ComponentLabels {
            component_id: id.clone(),
        };
        let mut requests = BTreeMap::new();
        let mut errors = 0;
        for class in STATUS_CLASSES {
            let labels = RequestLabels {
                component_id: id.clone(),
                status_class: class,
            };
            // Reading must not create series: a component never asked has no `1xx`.
            let Some(count) = self.requests.get(&labels).map(|c| c.get()) else {
                continue;
            };
            if class == "5xx" {
                errors += count;
            }
            requests.insert(class.to_owned(), count);
        }
        let mut invocations = 0;
        for kind in ["message", "call", "watch"] {
            for outcome in ["ok", "error"] {
                let labels = InvocationLabels {
                    component_id: id.clone(),
                    kind,
                    outcome,
                };
                let count = self.invocations.get(&labels).map_or(0, |c| c.get());
                invocations += count;
                if outcome == "error" {
                    errors += count;
                }
            }
        }
        let limiter = self.limiter(component);
        ComponentStats {
            component_id: component.clone(),
            instances_in_use: limiter.as_ref().map_or(0, |l| l.in_use() as u64),
            max_instances: u64::from(max_instances),
            queued: limiter.as_ref().map_or(0, |l| l.queued() as u64),
            requests,
            invocations,
            errors,
            traps: self.traps.get(&labels).map_or(0, |c| c.get()),
            deadline_hits: self.deadline_hits.get(&labels).map_or(0, |c| c.get()),
            memory_limit_hits: self.memory_limit_hits.get(&labels).map_or(0, |c| c.get()),
        }
    }

    /// The operations and errors counted for `provider`, over every capability and operation.
    fn provider_totals(&self, provider: &str) -> (u64, u64) {
        sync::lock(&self.provider_totals)
            .get(provider)
            .copied()
            .unwrap_or_default()
    }
}

/// What a component's instances tell the host ([`trellis_runtime::Observer`]), counted.
pub(crate) struct ComponentObserver {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) logs: Arc<crate::logs::Logs>,
    pub(crate) component_id: String,
}

impl trellis_runtime::Observer for ComponentObserver {
    fn log(
        &self,
        level: trellis_control::logs::LogLevel,
        source: &'static str,
        context: &str,
        message: &str,
    ) {
        self.logs
            .record(&self.component_id, level, source, context, message);
    }

    fn memory_limit_hit(&self) {
        self.metrics.memory_limit_hit(&self.component_id);
    }

    fn capability_call(
        &self,
        provider: &str,
        capability: &'static str,
        operation: &'static str,
        ok: bool,
    ) {
        self.metrics
            .provider_operation(provider, capability, operation, ok);
    }

    fn traceparent(&self) -> Option<String> {
        crate::trace::traceparent()
    }
}

/// How an invocation failed, as the metrics tell failures apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The instance trapped.
    Trap,
    /// The invocation was stopped at its deadline.
    Deadline,
    /// Anything else (no instance, a bad request, an error value).
    Other,
}

impl Failure {
    /// How `error` failed.
    pub(crate) fn of(error: &trellis_runtime::InvokeError) -> Self {
        match error {
            trellis_runtime::InvokeError::Trap { .. } => Self::Trap,
            trellis_runtime::InvokeError::Deadline { .. } => Self::Deadline,
            _ => Self::Other,
        }
    }
}

/// The gauges: read from the host's state on each scrape.
struct HostCollector {
    host: Weak<Host>,
}

impl std::fmt::Debug for HostCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostCollector")
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider_id: String,
}

impl Collector for HostCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(host) = self.host.upgrade() else {
            return Ok(());
        };
        let inventory = host.inventory();
        let mut gauge = |name: &str,
                         help: &str,
                         values: Vec<(ComponentLabels, i64)>|
         -> Result<(), std::fmt::Error> {
            let family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            let mut family = family;
            for (labels, value) in values {
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
            }
            Ok(())
        };
        let limiters: Vec<(ComponentLabels, Option<Arc<ConcurrencyLimiter>>, u32)> = inventory
            .components
            .iter()
            .map(|c| {
                (
                    ComponentLabels {
                        component_id: c.id.as_str().to_owned(),
                    },
                    host.metrics.limiter(&c.id),
                    c.max_instances,
                )
            })
            .collect();
        gauge(
            "component_instances_in_use",
            "Instances running a request, message or call now",
            limiters
                .iter()
                .map(|(l, limiter, _)| {
                    (l.clone(), limiter.as_ref().map_or(0, |x| x.in_use() as i64))
                })
                .collect(),
        )?;
        gauge(
            "component_instances_max",
            "The most instances that may run at once on this host",
            limiters
                .iter()
                .map(|(l, _, max)| (l.clone(), i64::from(*max)))
                .collect(),
        )?;
        gauge(
            "component_queue_depth",
            "Requests waiting for a free instance now",
            limiters
                .iter()
                .map(|(l, limiter, _)| {
                    (l.clone(), limiter.as_ref().map_or(0, |x| x.queued() as i64))
                })
                .collect(),
        )?;
        let mut up = encoder.encode_descriptor(
            "provider_up",
            "1 when the provider is running and healthy, 0 when it failed or its health check fails",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for provider in &inventory.providers {
            let labels = ProviderLabels {
                provider_id: provider.id.as_str().to_owned(),
            };
            let value = i64::from(matches!(provider.status, ProviderStatus::Running));
            ConstGauge::new(value).encode(up.encode_family(&labels)?)?;
        }
        let dropped = prometheus_client::metrics::counter::ConstCounter::new(host.logs.dropped());
        let metric = encoder.encode_descriptor(
            "log_lines_dropped",
            "Component log lines left out of the NATS log stream because it fell behind",
            None,
            dropped.metric_type(),
        )?;
        dropped.encode(metric)?;
        if let Some(reconnects) = host.lattice.reconnects() {
            let counter = prometheus_client::metrics::counter::ConstCounter::new(reconnects);
            let metric = encoder.encode_descriptor(
                "nats_reconnects",
                "Times this host's NATS connections reconnected",
                None,
                counter.metric_type(),
            )?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

impl Host {
    /// What `trellis.stats` answers: this host's counters, per component and provider.
    pub(crate) fn stats(&self) -> HostStats {
        let inventory = self.inventory();
        HostStats {
            host_id: self.id.clone(),
            at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or_default(),
            components: inventory
                .components
                .iter()
                .map(|c| self.metrics.component_stats(&c.id, c.max_instances))
                .collect(),
            providers: inventory
                .providers
                .iter()
                .map(|p| {
                    let (operations, errors) = self.metrics.provider_totals(p.id.as_str());
                    ProviderStats {
                        provider_id: p.id.clone(),
                        healthy: matches!(p.status, ProviderStatus::Running),
                        operations,
                        errors,
                    }
                })
                .collect(),
        }
    }

    /// Serves `GET /metrics` (the Prometheus text exposition) on `listener` until shutdown.
    /// Read-only: no other path, no other method.
    pub async fn serve_metrics(self: &Arc<Self>, listener: tokio::net::TcpListener) {
        let handler: Arc<dyn IncomingHandler> = Arc::new(Exposition {
            host: Arc::downgrade(self),
        });
        let mut shutdown = self.shutdown.subscribe();
        self.servers.lock().await.spawn(trellis_http_server::serve(
            listener,
            "metrics".into(),
            handler,
            ServerLimits {
                max_request_body_bytes: 0,
                ..ServerLimits::default()
            },
            async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            },
        ));
    }
}

/// The `/metrics` endpoint.
struct Exposition {
    host: Weak<Host>,
}

impl IncomingHandler for Exposition {
    fn handle(
        &self,
        _target: Arc<str>,
        request: Request<RequestBody>,
    ) -> BoxFuture<'static, Response<ResponseBody>> {
        let host = self.host.upgrade();
        Box::pin(async move {
            if request.uri().path() != "/metrics" {
                return text_response(
                    StatusCode::NOT_FOUND,
                    "this endpoint serves only GET /metrics (Prometheus text format)\n",
                );
            }
            if request.method() != http::Method::GET && request.method() != http::Method::HEAD {
                return text_response(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
            }
            let Some(host) = host else {
                return text_response(StatusCode::SERVICE_UNAVAILABLE, "the host is stopping\n");
            };
            let mut response = Response::new(
                http_body_util::Full::new(Bytes::from(host.metrics.encode()))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            );
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        })
    }
}
