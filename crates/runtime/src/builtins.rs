//! The interfaces every component gets without a link: `wasi:logging/logging` (unversioned,
//! and `@0.1.0-draft` as wasmCloud v1's SDK names it), which writes to the host's log under
//! the component's id, and `wasi:config/{runtime,store}`, which read
//! the config the host resolved for the component.
//!
//! Like the capability bindings, these implement the generated host traits on a small view
//! ([`Builtins`]) that the linker borrows from the store's data, so this module does not
//! know the store's type.

use crate::output::GUEST_LOG;
use std::collections::BTreeMap;
use trellis_control::ComponentId;
use wasmtime::component::{HasData, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        path: ["../../wit/logging", "../../wit/config"],
        inline: "
            package trellis:host;
            world imports {
                import wasi:logging/logging;
                import wasi:config/runtime@0.2.0-draft;
                import wasi:config/store@0.2.0-draft;
            }
        ",
    });
}

use bindings::wasi::config::{runtime as config_runtime, store as config_store};
use bindings::wasi::logging::logging;

/// What logging and config see of an instance: who it is and its config.
pub(crate) struct Builtins<'a> {
    /// Attached to every log line the guest writes.
    pub(crate) component_id: &'a ComponentId,
    /// What `wasi:config` returns.
    pub(crate) config: &'a BTreeMap<String, String>,
    /// Also told of each line (the host's log stream), when anyone listens.
    pub(crate) observer: Option<&'a dyn crate::Observer>,
}

/// Adds `wasi:logging/logging` and `wasi:config/{runtime,store}` to `linker`; `view` picks
/// out what they need from the store's data.
pub(crate) fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> Builtins<'_>,
) -> wasmtime::Result<()> {
    logging::add_to_linker::<T, HasBuiltins>(linker, view)?;
    // The versioned name of the same interface (wit/logging-draft): its `level` enum has the
    // same cases, and component types match by structure, so the generated type lifts it.
    linker.instance(LOGGING_DRAFT)?.func_wrap(
        "log",
        move |mut store: wasmtime::StoreContextMut<'_, T>,
              (level, context, message): (logging::Level, String, String)| {
            logging::Host::log(&mut view(store.data_mut()), level, context, message);
            Ok(())
        },
    )?;
    config_runtime::add_to_linker::<T, HasBuiltins>(linker, view)?;
    config_store::add_to_linker::<T, HasBuiltins>(linker, view)?;
    Ok(())
}

/// `wasi:logging/logging` as wasmCloud v1 components import it.
const LOGGING_DRAFT: &str = "wasi:logging/logging@0.1.0-draft";

/// Tells the generated `add_to_linker` functions that the host traits are implemented by a
/// [`Builtins`] view borrowed from the store.
struct HasBuiltins;

impl HasData for HasBuiltins {
    type Data<'a> = Builtins<'a>;
}

impl logging::Host for Builtins<'_> {
    fn log(&mut self, level: logging::Level, context: String, message: String) {
        if let Some(observer) = self.observer {
            use trellis_control::logs::LogLevel;
            let level = match level {
                logging::Level::Trace => LogLevel::Trace,
                logging::Level::Debug => LogLevel::Debug,
                logging::Level::Info => LogLevel::Info,
                logging::Level::Warn => LogLevel::Warn,
                logging::Level::Error => LogLevel::Error,
                logging::Level::Critical => LogLevel::Critical,
            };
            observer.log(level, "logging", &context, &message);
        }
        let component_id = self.component_id.as_str();
        match level {
            logging::Level::Trace => {
                tracing::trace!(target: GUEST_LOG, component_id = %component_id, context = %context, "{message}")
            }
            logging::Level::Debug => {
                tracing::debug!(target: GUEST_LOG, component_id = %component_id, context = %context, "{message}")
            }
            logging::Level::Info => {
                tracing::info!(target: GUEST_LOG, component_id = %component_id, context = %context, "{message}")
            }
            logging::Level::Warn => {
                tracing::warn!(target: GUEST_LOG, component_id = %component_id, context = %context, "{message}")
            }
            logging::Level::Error | logging::Level::Critical => {
                tracing::error!(target: GUEST_LOG, component_id = %component_id, context = %context, critical = matches!(level, logging::Level::Critical), "{message}")
            }
        }
    }
}

impl Builtins<'_> {
    fn config_value(&self, key: &str) -> Option<String> {
        self.config.get(key).cloned()
    }

    fn config_pairs(&self) -> Vec<(String, String)> {
        self.config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

// `runtime` and `store` are two names of one interface; both read the same values.
impl config_runtime::Host for Builtins<'_> {
    fn get(&mut self, key: String) -> Result<Option<String>, config_runtime::ConfigError> {
        Ok(self.config_value(&key))
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, config_runtime::ConfigError> {
        Ok(self.config_pairs())
    }
}

impl config_store::Host for Builtins<'_> {
    fn get(&mut self, key: String) -> Result<Option<String>, config_store::Error> {
        Ok(self.config_value(&key))
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, config_store::Error> {
        Ok(self.config_pairs())
    }
}
