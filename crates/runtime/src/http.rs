//! Serving `wasi:http/incoming-handler`: a fresh store and instance per request.

use crate::state::InstanceBounds;
use crate::state::InstanceState;
use crate::{Component, InstanceContext, Runtime};
use bytes::Bytes;
use std::time::Duration;
use trellis_control::ComponentId;
use wasmtime::component::InstancePre;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

/// The body of a response produced by a guest.
pub type OutgoingBody = wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// Why a component cannot be prepared for HTTP.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// It does not export the handler this kind of invocation calls.
    #[error(
        "component `{id}` does not export {interface}, so it cannot {purpose} (it exports: {exports})"
    )]
    NotAHandler {
        /// Component id.
        id: ComponentId,
        /// The missing export, for example `wasi:http/incoming-handler`.
        interface: &'static str,
        /// What the export is for, for example `handle HTTP requests`.
        purpose: &'static str,
        /// What it exports instead.
        exports: String,
    },
    /// An import could not be resolved against the host.
    #[error("component `{id}` cannot be linked: {reason}")]
    Link {
        /// Component id.
        id: ComponentId,
        /// wasmtime's explanation, naming the import.
        reason: String,
    },
}

/// Why an invocation failed. Each variant maps to a distinct HTTP status in the host.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The guest trapped (panic, unreachable, stack overflow, out of memory).
    #[error("component `{id}` trapped: {message}")]
    Trap {
        /// Component id.
        id: ComponentId,
        /// The trap and its wasm backtrace.
        message: String,
    },
    /// The guest ran past the execution deadline and was stopped.
    #[error("component `{id}` exceeded its execution time limit of {limit:?} and was stopped")]
    Deadline {
        /// Component id.
        id: ComponentId,
        /// The limit.
        limit: Duration,
    },
    /// No instance could be created (for example the instance pool is exhausted).
    #[error("component `{id}` could not be instantiated: {reason}")]
    Instantiate {
        /// Component id.
        id: ComponentId,
        /// Why.
        reason: String,
    },
    /// The guest returned without setting a response.
    #[error("component `{id}` returned without sending a response")]
    NoResponse {
        /// Component id.
        id: ComponentId,
    },
    /// The guest answered with a `wasi:http` error code instead of a response.
    #[error("component `{id}` answered with error code {code}")]
    ErrorCode {
        /// Component id.
        id: ComponentId,
        /// The code, as text.
        code: String,
    },
    /// The request could not be handed to the guest (for example no `Host` header).
    #[error("bad request for component `{id}`: {reason}")]
    BadRequest {
        /// Component id.
        id: ComponentId,
        /// Why.
        reason: String,
    },
}

/// A component prepared once to serve HTTP; cheap to clone and share across tasks.
#[derive(Clone)]
pub struct HttpComponent {
    pre: ProxyPre<InstanceState>,
    context: InstanceContext,
    bounds: InstanceBounds,
}

impl HttpComponent {
    pub(crate) fn prepare(
        runtime: &Runtime,
        component: &Component,
        context: InstanceContext,
    ) -> Result<Self, PrepareError> {
        let instance_pre = instance_pre(
            runtime,
            component,
            &context,
            "wasi:http/incoming-handler",
            "handle HTTP requests",
        )?;
        let pre = ProxyPre::new(instance_pre).map_err(|e| link_error(component, e))?;
        Ok(Self {
            pre,
            context,
            bounds: InstanceBounds::from(&runtime.limits),
        })
    }

    /// The id of the component this serves.
    pub fn id(&self) -> &ComponentId {
        &self.context.component_id
    }

    /// Handles one request in a fresh instance.
    ///
    /// The instance runs on its own task so that the response can stream while the guest
    /// keeps writing the body; the task, and with it the instance, is stopped at the
    /// execution deadline whatever the guest is doing.
    pub async fn handle<B>(
        &self,
        request: hyper::Request<B>,
    ) -> Result<hyper::Response<OutgoingBody>, InvokeError>
    where
        B: http_body::Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Send + 'static,
    {
        let id = self.context.component_id.clone();
        let limit = self.bounds.max_execution_time;
        let mut store = self
            .bounds
            .new_store(self.pre.engine(), self.context.clone());

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let bad_request = |e: wasmtime::Error| InvokeError::BadRequest {
            id: id.clone(),
            reason: format!("{e:#}"),
        };
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .map_err(bad_request)?;
        let out = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .map_err(bad_request)?;
        let pre = self.pre.clone();

        let task = spawn_with_deadline(id.clone(), limit, async move {
            let proxy = pre
                .instantiate_async(&mut store)
                .await
                .map_err(GuestFailure::Instantiate)?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
                .map_err(GuestFailure::Call)
        });

        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(InvokeError::ErrorCode {
                id,
                code: format!("{code:?}"),
            }),
            // The guest dropped the outparam without setting it: the task tells why.
            Err(_) => match task.await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => Err(InvokeError::NoResponse { id }),
                Err(join) => Err(InvokeError::Trap {
                    id,
                    message: format!("host task failed: {join}"),
                }),
            },
        }
    }
}

/// Checks that `component` exports `export` and resolves its imports against the host's
/// linker (and its component links) once, for every kind of invocation.
pub(crate) fn instance_pre(
    runtime: &Runtime,
    component: &Component,
    context: &InstanceContext,
    export: &'static str,
    purpose: &'static str,
) -> Result<InstancePre<InstanceState>, PrepareError> {
    let exported = crate::imports::InterfaceName::parse(export)
        .is_some_and(|n| component.exports_interface(n.namespace, n.package, n.interface));
    if !exported {
        return Err(PrepareError::NotAHandler {
            id: component.id.clone(),
            interface: export,
            purpose,
            exports: component.exports.join(", "),
        });
    }
    let linker = crate::calls::linker_for(runtime, component, context)?;
    linker
        .as_ref()
        .unwrap_or(&runtime.linker)
        .instantiate_pre(&component.component)
        .map_err(|e| link_error(component, e))
}

pub(crate) fn link_error(component: &Component, e: wasmtime::Error) -> PrepareError {
    PrepareError::Link {
        id: component.id.clone(),
        reason: format!("{e:#}"),
    }
}

/// Runs a guest invocation on its own task, so that the execution deadline stops the
/// instance wherever it is (also while the caller streams its output).
pub(crate) fn spawn_with_deadline<T: Send + 'static>(
    id: ComponentId,
    limit: Duration,
    run: impl Future<Output = Result<T, GuestFailure>> + Send + 'static,
) -> tokio::task::JoinHandle<Result<T, InvokeError>> {
    tokio::spawn(async move {
        run_with_deadline(limit, run)
            .await
            .map_err(|f| f.into_invoke_error(&id, limit))
    })
}

/// Runs a guest invocation on the current task, stopped at the execution deadline.
pub(crate) async fn run_with_deadline<T>(
    limit: Duration,
    run: impl Future<Output = Result<T, GuestFailure>>,
) -> Result<T, GuestFailure> {
    match tokio::time::timeout(limit, run).await {
        Ok(result) => result,
        Err(_) => Err(GuestFailure::Timeout),
    }
}

pub(crate) enum GuestFailure {
    Instantiate(wasmtime::Error),
    Call(wasmtime::Error),
    Timeout,
}

impl GuestFailure {
    pub(crate) fn into_invoke_error(self, id: &ComponentId, limit: Duration) -> InvokeError {
        match self {
            GuestFailure::Timeout => InvokeError::Deadline {
                id: id.clone(),
                limit,
            },
            GuestFailure::Instantiate(e) => InvokeError::Instantiate {
                id: id.clone(),
                reason: format!("{e:#}"),
            },
            GuestFailure::Call(e) => {
                if matches!(
                    e.downcast_ref::<wasmtime::Trap>(),
                    Some(wasmtime::Trap::Interrupt)
                ) {
                    InvokeError::Deadline {
                        id: id.clone(),
                        limit,
                    }
                } else {
                    InvokeError::Trap {
                        id: id.clone(),
                        message: format!("{e:?}"),
                    }
                }
            }
        }
    }
}
