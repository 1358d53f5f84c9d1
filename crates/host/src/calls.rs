//! Calls between components: where a component's calls through its component links go, and
//! how this host's components answer calls from other hosts.
//!
//! A call whose target runs on this host goes straight into a fresh instance of it, under
//! its concurrency limit: values are handed over as they are, nothing is encoded and nothing
//! touches NATS. Otherwise, on a lattice, the call travels as wRPC on the RPC connection to
//! whichever host runs the target (`trellis_lattice::wrpc`). In embedded mode there is no
//! other host, so the call fails with "not running".
//!
//! Every component running here can also be called by name with values as text
//! (`trellis.call`, what `trellis call` sends; [`Host::call_by_name`]), under the same
//! concurrency limit, in a fresh instance with the same memory limit and deadline.

use crate::Host;
use crate::limiter::ConcurrencyLimiter;
use crate::sync;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use tracing::Instrument as _;
use trellis_control::ctl::{CallComponent, CallReply};
use trellis_control::{ComponentId, CtlResponse, error_text};
use trellis_lattice::wrpc::{
    HandlerError, Incoming, Invocation, RpcError, Serving, WrpcClient, WrpcHandler,
};
use trellis_manifest::Application;
use trellis_runtime::{Call, CallError, CallRouter, ComponentLink, ExportedComponent, Reply};

/// A component on this host, which answers calls.
struct Exported {
    component: ExportedComponent,
    limiter: Arc<ConcurrencyLimiter>,
    /// Its wRPC subscription, on a lattice, when it serves calls from other components.
    _serving: Option<Serving>,
}

/// The host's side of calls between components.
#[derive(Default)]
pub(crate) struct Calls {
    exported: RwLock<HashMap<String, Arc<Exported>>>,
    client: tokio::sync::OnceCell<WrpcClient>,
}

/// Whether a link with this package is served by a provider rather than a component (the
/// capability catalogue says which packages built-in providers serve).
pub(crate) fn provider_package(namespace: &str, package: &str) -> bool {
    trellis_capabilities::find(namespace, package).is_some_and(|c| c.provider_served())
}

/// The links from component `name` of `app` to other components, by target id. A link's
/// target that is not an entry of `app` is a component elsewhere in the lattice.
pub(crate) fn component_links(app: &Application, name: &str) -> Vec<ComponentLink> {
    app.links
        .iter()
        .filter(|l| l.source == name && app.provider(&l.target).is_none())
        .filter(|l| {
            app.component(&l.target).is_some()
                || !provider_package(&l.link.wit_namespace, &l.link.wit_package)
        })
        .map(|l| ComponentLink {
            namespace: l.link.wit_namespace.clone(),
            package: l.link.wit_package.clone(),
            interfaces: l.link.interfaces.clone(),
            target: app
                .component(&l.target)
                .map_or_else(|| ComponentId::new(l.target.clone()), |c| c.id.clone()),
            name: l.link.name.clone(),
        })
        .collect()
}

/// Routes the calls of this host's components.
pub(crate) struct Router {
    pub(crate) host: Weak<Host>,
}

impl CallRouter for Router {
    fn call(&self, call: Call) -> BoxFuture<'static, Result<Reply, CallError>> {
        let host = self.host.upgrade();
        Box::pin(async move {
            match host {
                Some(host) => host.route_call(call).await,
                None => Err(CallError::Transport("the host is shutting down".into())),
            }
        })
    }
}

fn busy(id: &ComponentId, full: impl std::fmt::Display) -> String {
    format!("component `{id}` is busy: {full}")
}

impl Host {
    /// Routes `call`, counted in the metrics as a call (and, when the target runs here, as
    /// an invocation of the target).
    async fn route_call(&self, call: Call) -> Result<Reply, CallError> {
        let source = call.source().as_str().to_owned();
        let target = call.target().as_str().to_owned();
        let local = sync::read(&self.calls.exported).contains_key(&target);
        let started = std::time::Instant::now();
        let span = tracing::info_span!(
            "call",
            otel.name = %format!("call {target} {}.{}", call.instance(), call.function()),
            otel.kind = "client",
            component_id = %source,
            target = %target,
            locality = if local { "local" } else { "remote" },
        );
        let result = self.route_call_unmetered(call).instrument(span).await;
        self.metrics
            .call(&source, &target, !local, result.is_ok(), started.elapsed());
        if local {
            self.metrics.invocation(
                &target,
                "call",
                result
                    .as_ref()
                    .err()
                    .map(|_| crate::metrics::Failure::Other),
            );
        }
        result
    }

    async fn route_call_unmetered(&self, call: Call) -> Result<Reply, CallError> {
        let local = sync::read(&self.calls.exported)
            .get(call.target().as_str())
            .cloned();
        if let Some(target) = local {
            let _permit = target
                .limiter
                .acquire()
                .await
                .map_err(|full| CallError::Failed(busy(call.target(), full)))?;
            return target.component.call(call).await.map(Reply::Values);
        }
        let target = call.target().clone();
        let Some(connections) = self.lattice.connections() else {
            return Err(CallError::NotRunning {
                target,
                where_: " on this host (embedded mode has no lattice to reach other hosts)".into(),
            });
        };
        let client = self
            .calls
            .client
            .get_or_try_init(|| WrpcClient::new(connections.rpc.clone(), self.lattice.name()))
            .await
            .map_err(|e| CallError::Transport(error_text(&e)))?;
        let params = call.encode_params()?;
        let traceparent = crate::trace::traceparent();
        let invocation = Invocation {
            target: call.target().as_str(),
            instance: call.instance(),
            function: call.function(),
            source: call.source().as_str(),
            link_name: call.link_name().as_str(),
            traceparent: traceparent.as_deref(),
        };
        let limits = self.config.call_limits;
        match client
            .invoke(&invocation, &params, |b| call.results_complete(b), limits)
            .await
        {
            Ok(bytes) => Ok(Reply::Encoded(bytes)),
            Err(RpcError::NotRunning) => Err(CallError::NotRunning {
                target,
                where_: format!(" on any host of lattice `{}`", self.lattice.name()),
            }),
            Err(RpcError::Timeout(after)) => Err(CallError::Timeout { target, after }),
            Err(RpcError::TooLarge { what, size, limit }) => {
                Err(CallError::TooLarge { what, size, limit })
            }
            Err(RpcError::Remote(message)) => Err(CallError::Failed(message)),
            Err(e) => Err(CallError::Transport(error_text(&e))),
        }
    }

    /// Makes `component` answer calls: by name (`trellis call`), and from other components
    /// when it exports interfaces they can call: from this host at once, and from the
    /// lattice when there is one.
    pub(crate) async fn export_component(
        &self,
        component: ExportedComponent,
        limiter: Arc<ConcurrencyLimiter>,
    ) {
        let id = component.id().to_string();
        let connections = self
            .lattice
            .connections()
            .filter(|_| component.serves_calls());
        let serving = match connections {
            Some(connections) => {
                let handler = Arc::new(Handler {
                    component: component.clone(),
                    limiter: limiter.clone(),
                    metrics: self.metrics.clone(),
                });
                match trellis_lattice::wrpc::serve(
                    connections.rpc.clone(),
                    self.lattice.name(),
                    &id,
                    handler,
                    self.config.call_limits,
                )
                .await
                {
                    Ok(serving) => {
                        let interfaces: Vec<_> = component.interfaces().collect();
                        tracing::info!(component_id = %id, ?interfaces, "serving calls on the lattice");
                        Some(serving)
                    }
                    Err(e) => {
                        tracing::warn!(component_id = %id, error = %error_text(&e), "cannot serve calls on the lattice; callers on this host still reach it");
                        None
                    }
                }
            }
            None => None,
        };
        sync::write(&self.calls.exported).insert(
            id,
            Arc::new(Exported {
                component,
                limiter,
                _serving: serving,
            }),
        );
    }

    /// Stops answering calls to component `id` (and unsubscribes from the lattice).
    pub(crate) fn unexport_component(&self, id: &str) {
        sync::write(&self.calls.exported).remove(id);
    }

    /// Answers `trellis.call`: runs a function that a component running here exports, named
    /// and with arguments as text, under the component's concurrency limit. The arguments and
    /// the reply are bounded by `--max-call-size`, like calls between hosts.
    pub(crate) async fn call_by_name(&self, call: CallComponent) -> CtlResponse<CallReply> {
        let target = sync::read(&self.calls.exported)
            .get(call.component_id.as_str())
            .cloned();
        let Some(target) = target else {
            let mut running: Vec<String> =
                sync::read(&self.calls.exported).keys().cloned().collect();
            running.sort_unstable();
            let running = if running.is_empty() {
                "none".to_owned()
            } else {
                running.join(", ")
            };
            return CtlResponse::error(format!(
                "component `{}` is not running on host {} (it runs: {running}); `trellis get inventory` lists what runs where",
                call.component_id, self.id
            ));
        };
        let limit = self.config.call_limits.max_size;
        let size: usize = call.args.iter().map(String::len).sum();
        if size > limit {
            return CtlResponse::error(format!(
                "arguments of {size} bytes are over the limit of {limit} bytes (--max-call-size)"
            ));
        }
        let _permit = match target.limiter.acquire().await {
            Ok(permit) => permit,
            Err(full) => return CtlResponse::error(busy(&call.component_id, full)),
        };
        tracing::debug!(component_id = %call.component_id, function = %call.function, "call by name");
        match target
            .component
            .call_by_name(&call.function, &call.args)
            .await
        {
            Ok(reply) => {
                let size: usize = reply
                    .results
                    .iter()
                    .map(|r| r.wave.len() + r.json.to_string().len())
                    .sum();
                if size > limit {
                    return CtlResponse::error(format!(
                        "the results of `{}` take {size} bytes as text, over the limit of {limit} bytes (--max-call-size)",
                        reply.function
                    ));
                }
                CtlResponse::ok(reply)
            }
            Err(e) => CtlResponse::error(e.to_string()),
        }
    }

    /// Calls `instance.function` of component `target` for the host itself (a provider that
    /// calls components, such as the wadm status provider), with wRPC-encoded `params`: on
    /// this host under the target's concurrency limit, else over the lattice like any call.
    /// `source` names the caller in the lattice's call headers; `complete` says when the
    /// encoded results are all there.
    pub(crate) async fn call_encoded(
        &self,
        source: &str,
        target: &ComponentId,
        instance: &str,
        function: &str,
        params: &[u8],
        complete: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<u8>, CallError> {
        let local = sync::read(&self.calls.exported)
            .get(target.as_str())
            .cloned();
        if let Some(exported) = local {
            let _permit = exported
                .limiter
                .acquire()
                .await
                .map_err(|full| CallError::Failed(busy(target, full)))?;
            return exported
                .component
                .call_encoded(instance, function, params)
                .await;
        }
        let Some(connections) = self.lattice.connections() else {
            return Err(CallError::NotRunning {
                target: target.clone(),
                where_: " on this host".into(),
            });
        };
        let client = self
            .calls
            .client
            .get_or_try_init(|| WrpcClient::new(connections.rpc.clone(), self.lattice.name()))
            .await
            .map_err(|e| CallError::Transport(error_text(&e)))?;
        let traceparent = crate::trace::traceparent();
        let invocation = Invocation {
            target: target.as_str(),
            instance,
            function,
            source,
            link_name: "default",
            traceparent: traceparent.as_deref(),
        };
        match client
            .invoke(&invocation, params, complete, self.config.call_limits)
            .await
        {
            Ok(bytes) => Ok(bytes),
            Err(RpcError::NotRunning) => Err(CallError::NotRunning {
                target: target.clone(),
                where_: format!(" on any host of lattice `{}`", self.lattice.name()),
            }),
            Err(RpcError::Timeout(after)) => Err(CallError::Timeout {
                target: target.clone(),
                after,
            }),
            Err(RpcError::Remote(message)) => Err(CallError::Failed(message)),
            Err(e) => Err(CallError::Transport(error_text(&e))),
        }
    }
}

/// Answers wRPC calls to one component of this host.
struct Handler {
    component: ExportedComponent,
    limiter: Arc<ConcurrencyLimiter>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl WrpcHandler for Handler {
    fn params_complete(
        &self,
        instance: &str,
        function: &str,
        bytes: &[u8],
    ) -> Result<bool, HandlerError> {
        self.component
            .params_complete(instance, function, bytes)
            .map_err(|e| HandlerError::Refused(e.into()))
    }

    fn call(&self, call: Incoming) -> BoxFuture<'static, Result<Vec<u8>, HandlerError>> {
        let component = self.component.clone();
        let limiter = self.limiter.clone();
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let _permit = limiter
                .acquire()
                .await
                .map_err(|full| HandlerError::Failed(busy(component.id(), full).into()))?;
            tracing::debug!(component_id = %component.id(), source = ?call.source, instance = %call.instance, function = %call.function, "call from the lattice");
            let span = tracing::info_span!(
                "call.serve",
                otel.name = %format!("serve {}.{}", call.instance, call.function),
                otel.kind = "server",
                component_id = %component.id(),
                source = call.source.as_deref().unwrap_or_default(),
            );
            crate::trace::set_parent(&span, call.traceparent.as_deref());
            let result = component
                .call_encoded(&call.instance, &call.function, &call.params)
                .instrument(span)
                .await;
            metrics.invocation(
                component.id().as_str(),
                "call",
                result
                    .as_ref()
                    .err()
                    .map(|_| crate::metrics::Failure::Other),
            );
            result.map_err(|e| HandlerError::Failed(e.into()))
        })
    }
}
