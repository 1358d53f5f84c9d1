//! The planning function of Trellis's wadm-compatible deployment manager.
//!
//! [`plan`] takes the apps that should be deployed ([`DesiredApp`]), the names of apps that
//! were undeployed, and what the lattice looks like now ([`Observed`]), and returns the
//! [`Action`]s that bring the lattice to the declared state plus a status per app
//! ([`Plan`]). It does no I/O: the caller gathers host inventories, links and config, sends
//! the actions as control-interface requests, and plans again when events arrive.
//!
//! # Rules
//!
//! - Every resource the plan creates is annotated with [`APP_ANNOTATION`] (the app name),
//!   [`MANAGED_ANNOTATION`] ([`MANAGED_BY`]) and [`VERSION_ANNOTATION`] (the app version). A
//!   component or provider whose annotations do not say it is managed by this app is never
//!   touched, even with the same id: the entry is `failed` with a conflict message, and the
//!   host is not used for that entry.
//! - Spread scalers split `instances` over their spreads by weight (largest remainder), then
//!   evenly over each spread's eligible hosts (not draining, labels matching every
//!   requirement), keeping instances where they already are. A host's share is the
//!   component's `max_instances` there. Daemon scalers run `instances` on every eligible host.
//! - A provider runs on every host where a component linked to it (either direction) is
//!   placed, plus as many hosts as its own scaler asks for; never twice on one host.
//! - Named config is put when the lattice lacks it or holds other values; it is never
//!   deleted. Declared links are put when not present; links from this app's entries that the
//!   app no longer declares are deleted.
//! - Undeployed apps lose every resource annotated as theirs (components scaled to 0,
//!   providers stopped, links from their ids deleted); config stays.
//! - Planning against the state a plan produces yields no actions.
//!
//! Actions come in this order: config puts, provider starts, component scale-ups, link puts;
//! then link deletions, component stops (`count` 0), provider stops. Within each group: apps
//! by name (desired apps, then undeployed ones), entries in manifest order, hosts by id.

mod model;
mod placement;
mod planner;

pub use model::{
    Action, AppStatus, ComponentStatus, DesiredApp, EntryKind, FailedComponent, Observed,
    ObservedComponent, ObservedHost, ObservedProvider, Plan, StatusType,
};
pub use planner::plan;

use std::collections::BTreeMap;
use trellis_manifest::{Application, ImageRef};

/// The annotation naming the app that manages a resource; its value is the app name.
pub const APP_ANNOTATION: &str = "wasmcloud.dev/appspec";
/// The annotation naming the deployment manager that manages a resource; its value is
/// [`MANAGED_BY`].
pub const MANAGED_ANNOTATION: &str = "wasmcloud.dev/managed-by";
/// The value of [`MANAGED_ANNOTATION`] on resources the planner manages, as wadm writes it.
pub const MANAGED_BY: &str = "wadm";
/// The annotation carrying the app version that created a resource. Informational: a
/// resource whose only difference is this annotation is not re-issued.
pub const VERSION_ANNOTATION: &str = "trellis.dev/app-version";

/// The image reference a component entry deploys: `file://{absolute path}` for a local file,
/// the reference as written otherwise.
pub fn image_ref(image: &ImageRef) -> String {
    match image {
        ImageRef::File(path) => format!("file://{}", path.display()),
        ImageRef::Remote(r) => r.clone(),
    }
}

/// The app that manages a resource with these annotations: `Some(app)` when
/// [`MANAGED_ANNOTATION`] is [`MANAGED_BY`] and [`APP_ANNOTATION`] names an app.
pub fn managed_app(annotations: &BTreeMap<String, String>) -> Option<&str> {
    if annotations.get(MANAGED_ANNOTATION).map(String::as_str) != Some(MANAGED_BY) {
        return None;
    }
    annotations.get(APP_ANNOTATION).map(String::as_str)
}

/// The warm-instance setting the manifest gives component `name` of `app`, if any
/// ([`trellis_manifest::warm`]). The plan passes it to the component's hosts as the
/// [`WARM_ANNOTATION`] of `component.scale`, and scales again when it changes.
pub fn warm_setting<'a>(app: &'a Application, name: &str) -> Option<&'a String> {
    trellis_manifest::warm::lookup(&app.annotations, name).map(|(_, value)| value)
}

pub use trellis_manifest::warm::WARM_ANNOTATION;

/// The annotations the plan gives the resources of app `name` at `version`.
pub fn managed_annotations(name: &str, version: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (APP_ANNOTATION.to_owned(), name.to_owned()),
        (MANAGED_ANNOTATION.to_owned(), MANAGED_BY.to_owned()),
        (VERSION_ANNOTATION.to_owned(), version.to_owned()),
    ])
}
