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
    /// It does not export the handler.
    #[error(
        "component `{id}` does not export wasi:http/incoming-handler, so it cannot handle HTTP requests (it exports: {exports})"
    )]
    NotAHandler {
        /// Component id.
        id: ComponentId,
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
        if !component.exports_interface("wasi", "http", "incoming-handler") {
            return Err(PrepareError::NotAHandler {
                id: component.id.clone(),
                exports: component.exports.join(", "),
            });
        }
        let link_err = |e: wasmtime::Error| PrepareError::Link {
            id: component.id.clone(),
            reason: format!("{e:#}"),
        };
        let instance_pre: InstancePre<InstanceState> = runtime
            .linker
            .instantiate_pre(&component.component)
            .map_err(link_err)?;
        let pre = ProxyPre::new(instance_pre).map_err(link_err)?;
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

        let task_id = id.clone();
        let task = tokio::spawn(async move {
            let run = async {
                let proxy = pre
                    .instantiate_async(&mut store)
                    .await
                    .map_err(GuestFailure::Instantiate)?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
                    .map_err(GuestFailure::Call)
            };
            match tokio::time::timeout(limit, run).await {
                Ok(result) => result,
                Err(_) => Err(GuestFailure::Timeout),
            }
            .map_err(|f| f.into_invoke_error(&task_id, limit))
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
