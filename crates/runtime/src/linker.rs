//! Building the [`Linker`] a component is instantiated with, in one place.
//!
//! [`host`] builds the host's linker once per [`crate::Runtime`]: the WASI 0.2 interfaces
//! (CLI, I/O, clocks, random, filesystem, sockets), the `wasi:http` types and outgoing
//! handler, the [`crate::builtins`] (`wasi:logging`, `wasi:config`) and the bindings of every
//! capability in [`crate::capabilities`], each handed a view of [`InstanceState`] so that no
//! binding names the store's type. [`for_component`] adds, when a component is prepared, a
//! dynamic function for every import it reaches through a link to another component
//! ([`crate::calls`]).
//!
//! What [`host`] serves without a link is what [`crate::imports::classify`] calls
//! [`crate::imports::ImportSource::Host`]; the two change together.

use crate::builtins;
use crate::bus;
use crate::calls::{self, ComponentLink, Route, Signature};
use crate::capabilities::{blobstore, keyvalue, messaging, messaging_v3, postgres};
use crate::component::Component;
use crate::invoke::PrepareError;
use crate::links;
use crate::secrets;
use crate::state::{InstanceContext, InstanceState};
use std::borrow::Cow;
use std::sync::Arc;
use tracing::Instrument as _;
use wasmtime::Engine;
use wasmtime::component::Linker;
use wasmtime::component::types::ComponentItem;

/// The host's linker: everything a component may import from the host itself or through a
/// link to a capability provider.
pub(crate) fn host(engine: &Engine) -> wasmtime::Result<Linker<InstanceState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    // WASI 0.3 (`@0.3.x` names, beside the 0.2 ones): CLI, clocks, random, filesystem,
    // sockets and `wasi:http`'s types and client, for components built for WASI 0.3.
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    builtins::add_to_linker(&mut linker, InstanceState::builtins)?;
    bus::add_to_linker(&mut linker, InstanceState::bus)?;
    secrets::add_to_linker(&mut linker, InstanceState::secrets)?;
    keyvalue::add_to_linker(&mut linker, InstanceState::keyvalue)?;
    messaging::add_to_linker(&mut linker, InstanceState::messaging)?;
    messaging_v3::add_to_linker(&mut linker, InstanceState::messaging_v3)?;
    blobstore::add_to_linker(&mut linker, InstanceState::blobstore)?;
    postgres::add_to_linker(&mut linker, InstanceState::postgres)?;
    Ok(linker)
}

/// The linker `component` is instantiated with: the host's own when it has no links to
/// other components and imports no types-only interface, otherwise a copy with an empty
/// instance for every types-only import and a dynamic function for every function it imports
/// through a link to a component.
pub(crate) fn for_component<'a>(
    host: &'a Linker<InstanceState>,
    engine: &Engine,
    component: &Component,
    context: &InstanceContext,
) -> Result<Cow<'a, Linker<InstanceState>>, PrepareError> {
    let calls = context.calls.as_ref().filter(|c| !c.links.is_empty());
    if calls.is_none() && component.types_only.is_empty() {
        return Ok(Cow::Borrowed(host));
    }
    let mut linker = host.clone();
    // An interface of types only has nothing to implement: an empty instance satisfies it.
    // One the host defines already (a capability's `types`) stays as it is.
    for name in &component.types_only {
        let _ = linker.instance(name);
    }
    let Some(calls) = calls else {
        return Ok(Cow::Owned(linker));
    };
    let refuse = |reason: String| PrepareError::UnsupportedCallImport {
        id: component.id.clone(),
        reason,
    };
    let link_error = |source: wasmtime::Error| PrepareError::Link {
        id: component.id.clone(),
        source,
    };
    // A component link may carry an interface the host also serves (a component can
    // implement wasi:keyvalue for another): the link wins.
    linker.allow_shadowing(true);
    let ty = component.component.component_type();
    for (import, item) in ty.imports(engine) {
        let Some(name) = crate::imports::InterfaceName::parse(import) else {
            continue;
        };
        // Every link carrying this interface, one route per link name; each call takes the
        // one the instance selected (`wasmcloud:bus/lattice`), `default` unless it chose.
        let links: Vec<&ComponentLink> = calls
            .links
            .iter()
            .filter(|l| l.carries(name.namespace, name.package, name.interface))
            .collect();
        let Some(first) = links.first() else {
            continue;
        };
        let key = links::interface_key(name.namespace, name.package, name.interface);
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            return Err(refuse(format!("import `{import}` is not an interface")));
        };
        let mut functions = Vec::new();
        for (function, export) in instance.exports(engine) {
            match export.ty {
                ComponentItem::ComponentFunc(f) => functions.push((function.to_owned(), f)),
                ComponentItem::Resource(_) => {
                    return Err(refuse(format!(
                        "`{import}` defines resource `{function}`; calls between components carry plain values only, so an interface with resources cannot be linked to component `{}`",
                        first.target
                    )));
                }
                _ => {}
            }
        }
        let mut root = linker.instance(import).map_err(link_error)?;
        for (function, f) in functions {
            let signature = Arc::new(Signature::of(&f));
            if let Err(kind) = signature.check() {
                return Err(refuse(format!(
                    "`{import}` function `{function}` passes a {kind}; calls between components carry plain values only (no resources, streams or futures)"
                )));
            }
            let routes: Arc<[Arc<Route>]> = links
                .iter()
                .map(|link| {
                    Arc::new(Route {
                        source: component.id.clone(),
                        target: link.target.clone(),
                        link_name: link.name.clone(),
                        instance: import.to_owned(),
                        function: function.clone(),
                        signature: signature.clone(),
                    })
                })
                .collect();
            let router = calls.router.clone();
            let key = key.clone();
            root.func_new_async(&function, move |store, _ty, params, results| {
                let chosen = store.data().selection.name(&key);
                let route = routes
                    .iter()
                    .find(|r| r.link_name.as_str() == chosen)
                    .cloned()
                    .ok_or_else(|| no_link(&routes, chosen));
                let router = router.clone();
                // A reused instance's calls nest under the request it serves, as a fresh
                // instance's do under the span its task runs in.
                let span = store
                    .data()
                    .request_span
                    .clone()
                    .unwrap_or_else(tracing::Span::current);
                Box::new(
                    async move { calls::forward(&*router, route?, params, results).await }
                        .instrument(span),
                )
            })
            .map_err(link_error)?;
        }
    }
    Ok(Cow::Owned(linker))
}

/// The trap of a call through a link name the component has no link of.
fn no_link(routes: &[Arc<Route>], name: &str) -> wasmtime::Error {
    let first = &routes[0];
    let names: Vec<&str> = routes.iter().map(|r| r.link_name.as_str()).collect();
    wasmtime::format_err!(
        "call from `{}` to `{}.{}` failed: it has no link named `{name}` carrying the interface (its links carrying it are named: {}); set-link-name chose `{name}`",
        first.source,
        first.instance,
        first.function,
        names.join(", ")
    )
}
