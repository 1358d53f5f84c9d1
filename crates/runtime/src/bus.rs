//! `wasmcloud:bus/lattice`, at 1.0.0 (what wasmCloud's Rust SDK and the v1 examples import)
//! and 2.0.0: a guest picks, per interface, which of its links its later calls go through
//! (`set-link-name`). Served to every component without a link, on a [`BusView`] of the
//! store's data, like the other bindings.
//!
//! The choice belongs to one instance (one request, message or call) and starts at `default`
//! every time. At 2.0.0 a name that no link of the component carries for one of the listed
//! interfaces is refused with a message and nothing changes; 1.0.0 has no way to say so, so it
//! takes the name and the calls through it fail, naming the missing link.

use crate::capabilities::Linked;
use crate::links::{Links, Selection, interface_key};
use trellis_control::ComponentId;
use trellis_http_client::HttpClient;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// One interface `set-link-name` applies to, as the guest built it.
pub struct CallTarget {
    key: String,
}

mod v1 {
    wasmtime::component::bindgen!({
        path: "../../wit/bus-1.0.0",
        inline: "
            package trellis:bus-one;
            world bus { import wasmcloud:bus/lattice@1.0.0; }
        ",
        imports: { default: trappable },
        with: { "wasmcloud:bus/lattice.call-target-interface": super::CallTarget },
    });
}

mod v2 {
    wasmtime::component::bindgen!({
        path: "../../wit/bus",
        inline: "
            package trellis:bus-two;
            world bus { import wasmcloud:bus/lattice@2.0.0; }
        ",
        imports: { default: trappable },
        with: { "wasmcloud:bus/lattice.call-target-interface": super::CallTarget },
    });
}

use v1::wasmcloud::bus::lattice as lattice1;
use v2::wasmcloud::bus::lattice as lattice2;

/// What `set-link-name` needs of an instance.
pub(crate) struct BusView<'a> {
    /// Whose links, for messages.
    pub(crate) component_id: &'a ComponentId,
    /// The component's links.
    pub(crate) links: &'a Links,
    /// The instance's choice, changed here.
    pub(crate) selection: &'a mut Selection,
    /// The HTTP client outgoing requests use: the hooks hold it, so a new choice for
    /// `wasi:http/outgoing-handler` replaces it.
    pub(crate) http_client: &'a mut Option<Linked<HttpClient>>,
    /// Holds the guest's `call-target-interface`s.
    pub(crate) table: &'a mut ResourceTable,
}

impl BusView<'_> {
    fn targets(&self, interfaces: &[Resource<CallTarget>]) -> wasmtime::Result<Vec<String>> {
        interfaces
            .iter()
            .map(|r| Ok(self.table.get(r)?.key.clone()))
            .collect()
    }

    /// The first interface no link named `name` carries, as the message the guest gets.
    fn missing(&self, name: &str, keys: &[String]) -> Option<String> {
        keys.iter().find(|k| !self.links.carries(name, k)).map(|k| {
            format!(
                "component `{}` has no link named `{name}` carrying `{k}`: add one to the manifest (a link trait with `name: {name}`), or use a name it has",
                self.component_id
            )
        })
    }

    fn select(&mut self, name: &str, keys: Vec<String>) {
        let outgoing = interface_key("wasi", "http", "outgoing-handler");
        let mut http_changed = false;
        for key in keys {
            http_changed |= key == outgoing;
            self.selection.set(key, name);
        }
        if http_changed {
            *self.http_client = self
                .selection
                .capabilities(self.links, &outgoing)
                .http_client
                .clone();
        }
        tracing::debug!(component_id = %self.component_id, link_name = name, "link name set");
    }

    fn new_target(
        &mut self,
        namespace: String,
        package: String,
        interface: String,
    ) -> wasmtime::Result<Resource<CallTarget>> {
        Ok(self.table.push(CallTarget {
            key: interface_key(&namespace, &package, &interface),
        })?)
    }
}

/// Adds both versions of `wasmcloud:bus/lattice` to `linker`.
pub(crate) fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> BusView<'_>,
) -> wasmtime::Result<()> {
    lattice1::add_to_linker::<T, HasBus>(linker, view)?;
    lattice2::add_to_linker::<T, HasBus>(linker, view)?;
    Ok(())
}

struct HasBus;

impl HasData for HasBus {
    type Data<'a> = BusView<'a>;
}

/// `call-target-interface` is the same resource at both versions.
macro_rules! call_target_interface {
    ($lattice:ident) => {
        impl $lattice::HostCallTargetInterface for BusView<'_> {
            fn new(
                &mut self,
                namespace: String,
                package: String,
                interface: String,
            ) -> wasmtime::Result<Resource<CallTarget>> {
                self.new_target(namespace, package, interface)
            }

            fn drop(&mut self, rep: Resource<CallTarget>) -> wasmtime::Result<()> {
                self.table.delete(rep)?;
                Ok(())
            }
        }
    };
}

call_target_interface!(lattice1);
call_target_interface!(lattice2);

impl lattice1::Host for BusView<'_> {
    fn set_link_name(
        &mut self,
        name: String,
        interfaces: Vec<Resource<CallTarget>>,
    ) -> wasmtime::Result<()> {
        let keys = self.targets(&interfaces)?;
        if let Some(missing) = self.missing(&name, &keys) {
            // 1.0.0 cannot refuse: the calls through the missing link will say so.
            tracing::debug!(component_id = %self.component_id, "{missing}");
        }
        self.select(&name, keys);
        Ok(())
    }
}

impl lattice2::Host for BusView<'_> {
    fn set_link_name(
        &mut self,
        name: String,
        interfaces: Vec<Resource<CallTarget>>,
    ) -> wasmtime::Result<Result<(), String>> {
        let keys = self.targets(&interfaces)?;
        if let Some(missing) = self.missing(&name, &keys) {
            return Ok(Err(missing));
        }
        self.select(&name, keys);
        Ok(Ok(()))
    }
}
