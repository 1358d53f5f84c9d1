//! `wasmcloud:secrets/{store,reveal}@0.1.0-draft`: the secrets the manifest gives a component
//! (its `secrets:` list), which the host fetched and decrypted when it deployed the component.
//! `store.get(name)` hands out an opaque handle by the name the manifest used; only
//! `reveal.reveal` turns a handle into the value, so a guest's use of secrets is easy to audit.
//! The values are [`SecretValue`]s, which never print their contents.

use std::collections::BTreeMap;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

mod bindings {
    wasmtime::component::bindgen!({
        path: ["../../wit/secrets"],
        inline: "
            package trellis:secrets;
            world secrets {
                import wasmcloud:secrets/store@0.1.0-draft;
                import wasmcloud:secrets/reveal@0.1.0-draft;
            }
        ",
        with: {
            "wasmcloud:secrets/store.secret": super::SecretHandle,
        },
        imports: { default: trappable },
    });
}

use bindings::wasmcloud::secrets::{reveal, store};

pub use trellis_control::secret::SecretValue;

/// A component's secrets by the names its manifest gave them.
pub type Secrets = BTreeMap<String, SecretValue>;

/// The guest's handle to one of its secrets: the name it asked for.
pub struct SecretHandle {
    name: String,
}

/// What the bindings see of an instance: its secrets and its resource table.
pub(crate) struct SecretsView<'a> {
    pub(crate) secrets: &'a Secrets,
    pub(crate) table: &'a mut ResourceTable,
}

struct HasSecrets;

impl HasData for HasSecrets {
    type Data<'a> = SecretsView<'a>;
}

/// Adds `wasmcloud:secrets/store` and `reveal` to `linker`.
pub(crate) fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> SecretsView<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<T, HasSecrets>(linker, view)?;
    reveal::add_to_linker::<T, HasSecrets>(linker, view)?;
    Ok(())
}

impl store::Host for SecretsView<'_> {
    fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Resource<SecretHandle>, store::SecretsError>> {
        if !self.secrets.contains_key(&key) {
            return Ok(Err(store::SecretsError::NotFound));
        }
        Ok(Ok(self.table.push(SecretHandle { name: key })?))
    }
}

impl store::HostSecret for SecretsView<'_> {
    fn drop(&mut self, secret: Resource<SecretHandle>) -> wasmtime::Result<()> {
        self.table.delete(secret)?;
        Ok(())
    }
}

impl reveal::Host for SecretsView<'_> {
    fn reveal(&mut self, secret: Resource<SecretHandle>) -> wasmtime::Result<store::SecretValue> {
        let handle = self.table.get(&secret)?;
        // `get` only hands out names it has; the map does not change during an instance's life.
        Ok(match self.secrets.get(&handle.name) {
            Some(SecretValue::String(s)) => store::SecretValue::String(s.clone()),
            Some(SecretValue::Bytes(b)) => store::SecretValue::Bytes(b.clone()),
            None => store::SecretValue::Bytes(Vec::new()),
        })
    }
}
