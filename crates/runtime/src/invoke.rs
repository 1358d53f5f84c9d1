//! What every kind of invocation shares: the errors of preparing and invoking a component,
//! and running a guest under its execution deadline.
//!
//! [`crate::HttpComponent`], [`crate::MessageComponent`] and [`crate::ExportedComponent`] each
//! call a different export, but they fail in the same ways (a trap, the deadline, no instance)
//! and are stopped the same way, so the mapping from wasmtime's errors to [`InvokeError`] lives
//! here once.

use std::time::Duration;
use tracing::Instrument as _;
use trellis_control::ComponentId;

/// Why a component cannot be prepared for a kind of invocation.
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
    #[error("component `{id}` cannot be linked: {source:#}")]
    Link {
        /// Component id.
        id: ComponentId,
        /// wasmtime's explanation, naming the import.
        source: wasmtime::Error,
    },
    /// An import linked to another component is one that calls between components cannot
    /// carry (not an interface, or one with resources, streams or futures).
    #[error("component `{id}` cannot be linked: {reason}")]
    UnsupportedCallImport {
        /// Component id.
        id: ComponentId,
        /// Which import and why, with what to do.
        reason: String,
    },
}

/// Why an invocation failed. Each variant maps to a distinct HTTP status in the host.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The guest trapped (panic, unreachable, stack overflow, out of memory), or the host task
    /// running it failed.
    #[error("component `{id}` trapped: {source:?}")]
    Trap {
        /// Component id.
        id: ComponentId,
        /// The trap and its wasm backtrace (shown with `{:?}`).
        source: wasmtime::Error,
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
    #[error("component `{id}` could not be instantiated: {source:#}")]
    Instantiate {
        /// Component id.
        id: ComponentId,
        /// Why.
        source: wasmtime::Error,
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
    #[error("bad request for component `{id}`: {source:#}")]
    BadRequest {
        /// Component id.
        id: ComponentId,
        /// Why.
        source: wasmtime::Error,
    },
}

/// Runs a guest invocation on its own task, so that the execution deadline stops the
/// instance wherever it is (also while the caller streams its output).
pub(crate) fn spawn_with_deadline<T: Send + 'static>(
    id: ComponentId,
    limit: Duration,
    run: impl Future<Output = Result<T, GuestFailure>> + Send + 'static,
) -> tokio::task::JoinHandle<Result<T, InvokeError>> {
    // The task runs in the caller's span, so that what the guest does (calls, capability
    // operations) shows in the request's trace.
    tokio::spawn(
        async move {
            run_with_deadline(limit, run)
                .await
                .map_err(|f| f.into_invoke_error(&id, limit))
        }
        .instrument(tracing::Span::current()),
    )
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
            GuestFailure::Instantiate(source) => InvokeError::Instantiate {
                id: id.clone(),
                source,
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
                        source: e,
                    }
                }
            }
        }
    }
}

impl InvokeError {
    /// The task running a guest panicked or was cancelled: the invocation failed as if the
    /// guest had trapped.
    pub(crate) fn host_task_failed(id: ComponentId, join: tokio::task::JoinError) -> Self {
        InvokeError::Trap {
            id,
            source: wasmtime::Error::new(join).context("host task failed"),
        }
    }
}
