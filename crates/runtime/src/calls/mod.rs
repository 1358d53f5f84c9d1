//! Calls between components: a component imports an interface that a link points at another
//! component, which exports it.
//!
//! The caller side: when a component is prepared, `crate::linker::for_component` defines
//! every function of an interface it imports through a link to a component on a copy of the
//! host's linker, as a dynamic host function that [`forward`]s it. A call hands the arguments, as component-model values, to the host's
//! [`CallRouter`], which decides where the target runs: on this host (the values go straight
//! into a fresh instance of the target, no encoding, no network), or on another host (the
//! values are encoded as wRPC and travel over NATS).
//!
//! The callee side, [`crate::ExportedComponent`] (in `exported.rs`), serves the plain-value
//! functions a component exports, to local callers as values and to remote ones as wRPC
//! bytes, with the [`Signature`]s and [`codec`] kept here.
//!
//! Only plain values cross: functions whose types hold resources, streams or futures are
//! refused when the caller is prepared, with the function named.

pub(crate) mod codec;

use crate::invoke::InvokeError;
use futures::future::BoxFuture;
use std::sync::Arc;
use trellis_control::{ComponentId, LinkName};
use wasmtime::component::types::ComponentFunc;
use wasmtime::component::{Type, Val};

/// A link from a component's imports to another component's exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentLink {
    /// WIT namespace, for example `example`.
    pub namespace: String,
    /// WIT package, for example `greeter`.
    pub package: String,
    /// The interfaces of the package it carries, for example `greet`.
    pub interfaces: Vec<String>,
    /// The target component's id.
    pub target: ComponentId,
    /// The link name (`default` unless the manifest names it).
    pub name: LinkName,
}

impl ComponentLink {
    pub(crate) fn carries(&self, namespace: &str, package: &str, interface: &str) -> bool {
        self.namespace == namespace
            && self.package == package
            && self.interfaces.iter().any(|i| i == interface)
    }
}

/// Where a component's calls through its component links go; given by the host.
#[derive(Clone)]
pub struct ComponentCalls {
    /// Finds the target of each call and runs it.
    pub router: Arc<dyn CallRouter>,
    /// The component's links to other components.
    pub links: Vec<ComponentLink>,
}

/// Runs calls that components make through component links. The host implements it: it
/// knows which components run here and how to reach the others.
pub trait CallRouter: Send + Sync + 'static {
    /// Runs `call` and returns its results.
    fn call(&self, call: Call) -> BoxFuture<'static, Result<Reply, CallError>>;
}

/// What a called function returned.
pub enum Reply {
    /// From a component on this host.
    Values(Values),
    /// From another host: the results, wRPC-encoded.
    Encoded(Vec<u8>),
}

/// Component-model values, passed between components on one host untouched.
pub struct Values(pub(crate) Vec<Val>);

/// The types of one function's parameters and results.
pub(crate) struct Signature {
    pub(crate) params: Vec<Type>,
    pub(crate) results: Vec<Type>,
}

impl Signature {
    pub(crate) fn of(ty: &ComponentFunc) -> Self {
        Self {
            params: ty.params().map(|(_, t)| t).collect(),
            results: ty.results().collect(),
        }
    }

    /// The first type that cannot cross between components, if any.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        self.params
            .iter()
            .chain(&self.results)
            .try_for_each(codec::check_type)
    }
}

/// Who a call is from and to, fixed per imported function.
pub(crate) struct Route {
    pub(crate) source: ComponentId,
    pub(crate) target: ComponentId,
    pub(crate) link_name: LinkName,
    pub(crate) instance: String,
    pub(crate) function: String,
    pub(crate) signature: Arc<Signature>,
}

/// One call a component makes through a component link.
pub struct Call {
    pub(crate) route: Arc<Route>,
    pub(crate) params: Vec<Val>,
}

impl Call {
    /// The calling component.
    pub fn source(&self) -> &ComponentId {
        &self.route.source
    }

    /// The id of the component the link points at.
    pub fn target(&self) -> &ComponentId {
        &self.route.target
    }

    /// The link's name.
    pub fn link_name(&self) -> &LinkName {
        &self.route.link_name
    }

    /// The interface, as imported: `namespace:package/interface@version`.
    pub fn instance(&self) -> &str {
        &self.route.instance
    }

    /// The function's name within the interface.
    pub fn function(&self) -> &str {
        &self.route.function
    }

    /// The arguments, wRPC-encoded, for a call to another host.
    pub fn encode_params(&self) -> Result<Vec<u8>, CallError> {
        let mut out = Vec::new();
        codec::encode_all(&self.params, &self.route.signature.params, &mut out)
            .map_err(CallError::Encoding)?;
        Ok(out)
    }

    /// Whether `bytes` hold all of this call's encoded results (so the transport can stop
    /// reading), or cannot be its results at all (so it can stop too).
    pub fn results_complete(&self, bytes: &[u8]) -> bool {
        codec::complete(bytes, &self.route.signature.results).unwrap_or(true)
    }

    fn describe(&self) -> String {
        format!(
            "call from `{}` to `{}.{}` on component `{}`",
            self.route.source, self.route.instance, self.route.function, self.route.target
        )
    }
}

/// Why a call between components failed. The caller's instance traps with this message.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No host runs the target component.
    #[error("component `{target}` is not running{where_}")]
    NotRunning {
        /// The target's id.
        target: ComponentId,
        /// Where it was looked for, for example ` on this host or any host of lattice default`.
        where_: String,
    },
    /// The target does not export the function, or exports it with another type.
    #[error("component `{target}` does not export {what}")]
    NoSuchFunction {
        /// The target's id.
        target: ComponentId,
        /// The function, and what it exports instead.
        what: String,
    },
    /// The target failed while running the call: trap, deadline, no instance; as reported by
    /// another host, or by the host the target runs on (busy).
    #[error("{0}")]
    Failed(String),
    /// The target, on this host, failed while running the call: trap, deadline, no instance.
    #[error(transparent)]
    Invoke(#[from] InvokeError),
    /// The call did not complete in time.
    #[error("no reply from component `{target}` within {after:?}")]
    Timeout {
        /// The target's id.
        target: ComponentId,
        /// The timeout.
        after: std::time::Duration,
    },
    /// The arguments or results could not be encoded or decoded.
    #[error("bad call encoding: {0}")]
    Encoding(String),
    /// Arguments or results larger than the host allows.
    #[error("{what} of {size} bytes is over the limit of {limit} bytes (--max-call-size)")]
    TooLarge {
        /// `arguments` or `results`.
        what: &'static str,
        /// Their size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The lattice could not carry the call.
    #[error("lattice transport: {0}")]
    Transport(String),
}

/// Runs one guest call through the router and writes the results back.
pub(crate) async fn forward(
    router: &dyn CallRouter,
    route: Arc<Route>,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let call = Call {
        route: route.clone(),
        params: params.to_vec(),
    };
    let describe = call.describe();
    let fail = |e: &dyn std::fmt::Display| wasmtime::format_err!("{describe} failed: {e}");
    let values = match router.call(call).await.map_err(|e| fail(&e))? {
        Reply::Values(Values(values)) => values,
        Reply::Encoded(bytes) => codec::decode_all(&bytes, &route.signature.results)
            .map_err(|e| fail(&format!("bad results: {e}")))?,
    };
    if values.len() != results.len() {
        return Err(fail(&format!(
            "{} results where {} were expected",
            values.len(),
            results.len()
        )));
    }
    for (slot, value) in results.iter_mut().zip(values) {
        *slot = value;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
