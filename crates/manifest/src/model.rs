//! The normalised application: what the rest of Trellis works with once a manifest is accepted.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use trellis_control::{ComponentId, Link, ProviderId};

/// A validated and normalised OAM `Application`.
///
/// Names are the manifest's entry names; ids are the lattice ids derived from them (see
/// [`derive_id`]). Every cross-reference has been checked: each link's target names an entry of
/// this application, ids are unique, and inline config does not contradict itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Application {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.annotations.version`, if set.
    pub version: Option<String>,
    /// `metadata.annotations.description`, if set.
    pub description: Option<String>,
    /// Every `metadata.annotations` entry, including `version` and `description`.
    pub annotations: BTreeMap<String, String>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// The manifest file this application was read from (or the origin given to [`crate::parse`]).
    pub manifest_path: PathBuf,
    /// Entries with `type: component`, in manifest order.
    pub components: Vec<Component>,
    /// Entries with `type: capability`, in manifest order.
    pub providers: Vec<Provider>,
    /// One entry per `link` trait, in manifest order.
    pub links: Vec<LinkSpec>,
    /// Named config defined inline with `properties`, wherever it appears: component and
    /// provider `config`, and link `source`/`target` config. Config listed without
    /// `properties` is managed outside the manifest and does not appear here.
    pub configs: BTreeMap<String, BTreeMap<String, String>>,
    /// What the manifest has that wadm accepts with a warning (unknown keys, interfaces the
    /// host does not know), each placed at its line; print them once. Never an error.
    #[serde(skip)]
    pub warnings: Vec<crate::ManifestError>,
    /// The secrets the references in [`Application::configs`] (`SECRET_…` names) resolved
    /// to, by config name: filled by the host when it deploys, never by the parser; each
    /// is the value or why it could not be had (the reason never contains the value).
    #[serde(skip)]
    pub revealed: BTreeMap<String, Result<trellis_control::secret::SecretValue, String>>,
}

impl Application {
    /// The component with manifest name `name`.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// The provider with manifest name `name`.
    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// Every config name the entries and links use (repeats included), whether
    /// [`Application::configs`] defines it or it names config stored beforehand.
    pub fn config_names(&self) -> impl Iterator<Item = &String> {
        let links = self
            .links
            .iter()
            .flat_map(|l| l.link.source_config.iter().chain(&l.link.target_config));
        self.components
            .iter()
            .flat_map(|c| &c.config)
            .chain(self.providers.iter().flat_map(|p| &p.config))
            .chain(links)
    }

    /// The config names used without being defined here: config that must be stored.
    pub fn stored_config_names(&self) -> std::collections::BTreeSet<&String> {
        self.config_names()
            .filter(|name| !self.configs.contains_key(*name))
            .collect()
    }
}

/// A WebAssembly component entry (`type: component`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Component {
    /// The entry's `name`.
    pub name: String,
    /// The lattice id: the `id` property, or one derived with [`derive_id`].
    pub id: ComponentId,
    /// Where the component's bytes come from.
    pub image: ImageRef,
    /// How many instances run, and where.
    pub scale: Scale,
    /// Names of the named config given to the component, in manifest order.
    pub config: Vec<String>,
    /// 1-based line of the entry in the manifest (0 when the position is unknown).
    pub line: usize,
}

/// A capability provider entry (`type: capability`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provider {
    /// The entry's `name`.
    pub name: String,
    /// The lattice id: the `id` property, or one derived with [`derive_id`].
    pub id: ProviderId,
    /// The `image` property exactly as written.
    pub image_ref: String,
    /// The built-in provider Trellis implements for this image, if it recognises it.
    pub builtin: Option<Builtin>,
    /// How many instances run, and where.
    pub scale: Scale,
    /// Names of the named config given to the provider, in manifest order.
    pub config: Vec<String>,
    /// 1-based line of the entry in the manifest (0 when the position is unknown).
    pub line: usize,
}

/// Where a component's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageRef {
    /// A local file from a `file://` reference, made absolute against the manifest's folder.
    /// The file existed when the manifest was parsed.
    File(PathBuf),
    /// An OCI reference such as `ghcr.io/wasmcloud/components/http-hello-world-rust:0.1.0`,
    /// kept as written.
    Remote(String),
}

/// How an entry is scaled: which scaler and its instance count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scale {
    /// `spreadscaler` or `daemonscaler`.
    pub kind: ScalerKind,
    /// For a spread scaler, the total number of instances; for a daemon scaler, the number
    /// of instances on every matching host.
    pub instances: u32,
    /// Placement requirements; empty means "any host".
    pub spread: Vec<Spread>,
}

impl Default for Scale {
    /// What an entry without a scaler trait gets: one instance, anywhere.
    fn default() -> Self {
        Self {
            kind: ScalerKind::Spread,
            instances: 1,
            spread: Vec::new(),
        }
    }
}

/// The two scaler traits wadm knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScalerKind {
    /// `spreadscaler`: a total number of instances spread across matching hosts.
    Spread,
    /// `daemonscaler`: a number of instances on every matching host.
    Daemon,
}

/// One placement requirement of a scaler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spread {
    /// The name of the requirement.
    pub name: String,
    /// Host labels that must all match.
    pub requirements: BTreeMap<String, String>,
    /// Relative share of instances; 100 when the manifest gives none.
    pub weight: u32,
}

/// The weight of a spread that does not give one, as in wadm.
pub const DEFAULT_SPREAD_WEIGHT: u32 = 100;

/// A `link` trait, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkSpec {
    /// Manifest name of the entry that carries the trait (the caller).
    pub source: String,
    /// Manifest name of the link's target (the callee).
    pub target: String,
    /// The link as the control interface carries it; `source_id` and `target` are ids.
    pub link: Link,
    /// 1-based line of the trait in the manifest (0 when the position is unknown).
    pub line: usize,
}

/// A capability provider Trellis implements itself: one of the capability catalogue's
/// built-ins ([`trellis_capabilities::BUILTINS`], where a new backend registers its name and
/// the capability it serves).
///
/// A provider entry whose image is one of wasmCloud's first-party provider images (or a
/// `wasmcloud+builtin://` reference) runs as the matching built-in instead of a downloaded
/// provider binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Builtin(&'static str);

impl Builtin {
    /// `wasi:http/incoming-handler` served from a listening socket: the one built-in that
    /// calls components instead of serving their imports.
    pub const HTTP_SERVER: Builtin = Builtin("http-server");

    /// Every built-in provider, in the catalogue's order.
    pub fn all() -> impl Iterator<Item = Builtin> {
        trellis_capabilities::BUILTINS
            .iter()
            .map(|b| Builtin(b.name))
    }

    /// The image prefix of wasmCloud's first-party providers.
    const OCI_PREFIX: &'static str = "ghcr.io/wasmcloud/";
    /// The schemes for naming a built-in provider without an image: wasmCloud's, and ours
    /// for the providers only Trellis has.
    const BUILTIN_SCHEMES: [&'static str; 2] = ["wasmcloud+builtin://", "trellis+builtin://"];

    /// The built-in that an image reference names, if any.
    ///
    /// Recognises `ghcr.io/wasmcloud/<name>` with any tag or digest (for example
    /// `ghcr.io/wasmcloud/http-server:0.27.0`), `wasmcloud+builtin://<name>` or
    /// `trellis+builtin://<name>`, and wasmCloud's first-party provider archives as its example
    /// manifests name them (`file://…/<name>-provider.par.gz` or
    /// `file://…/provider-<name>.par.gz`; the file need not exist). Anything else is `None`:
    /// such a provider is not built in, which is not an error at parse time.
    ///
    /// ```
    /// use trellis_manifest::Builtin;
    /// assert_eq!(Builtin::from_image_ref("ghcr.io/wasmcloud/http-server:0.27.0"), Some(Builtin::HTTP_SERVER));
    /// assert_eq!(Builtin::from_image_ref("wasmcloud+builtin://keyvalue-redis"), Builtin::from_name("keyvalue-redis"));
    /// assert_eq!(Builtin::from_image_ref("trellis+builtin://keyvalue-local").map(|b| b.name()), Some("keyvalue-local"));
    /// assert_eq!(Builtin::from_image_ref("file://../build/blobstore-fs-provider.par.gz").map(|b| b.name()), Some("blobstore-fs"));
    /// assert_eq!(Builtin::from_image_ref("file://./provider-http-server.par.gz"), Some(Builtin::HTTP_SERVER));
    /// assert_eq!(Builtin::from_image_ref("file://./my-own-provider.par.gz"), None);
    /// assert_eq!(Builtin::from_image_ref("ghcr.io/example/http-server:1"), None);
    /// assert_eq!(Builtin::from_image_ref("ghcr.io/wasmcloud/not-a-provider:1"), None);
    /// ```
    pub fn from_image_ref(r: &str) -> Option<Builtin> {
        let name = if let Some(name) = Self::BUILTIN_SCHEMES
            .iter()
            .find_map(|scheme| r.strip_prefix(scheme))
        {
            name
        } else if let Some(archive) = provider_archive(r) {
            archive
        } else {
            let rest = r.strip_prefix(Self::OCI_PREFIX)?;
            // The repository ends at the tag (`:`) or digest (`@`); a tag must not be empty.
            match rest.find([':', '@']) {
                Some(end) if end + 1 < rest.len() => &rest[..end],
                Some(_) => return None,
                None => rest,
            }
        };
        Self::from_name(name)
    }

    /// The built-in called `name` (as returned by [`Builtin::name`]).
    pub fn from_name(name: &str) -> Option<Builtin> {
        trellis_capabilities::builtin(name).map(|b| Builtin(b.name))
    }

    /// The provider's short name, for example `http-server`.
    pub fn name(&self) -> &'static str {
        self.0
    }

    /// The capability it serves to components that link to it, as `(namespace, package)`
    /// (from the capability catalogue); `None` for the HTTP server, which calls components
    /// instead.
    pub fn provides(&self) -> Option<(&'static str, &'static str)> {
        trellis_capabilities::builtin(self.name()).and_then(|b| b.provides)
    }
}

/// The file name of a provider archive (`file://…/NAME.par.gz`), without its extension.
pub(crate) fn provider_archive(image: &str) -> Option<&str> {
    let path = image.strip_prefix("file://")?;
    let file = path.rsplit('/').next()?;
    let stem = file.strip_suffix(".par.gz")?;
    // wasmCloud names its archives `NAME-provider` (built by `wash build`) or
    // `provider-NAME` (its crates' folders).
    Some(
        stem.strip_suffix("-provider")
            .or_else(|| stem.strip_prefix("provider-"))
            .unwrap_or(stem),
    )
}

impl fmt::Display for Builtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The id wadm gives an entry that has no `id` property: the application name and the entry
/// name, each lower-cased with every character other than an ASCII letter or digit replaced by
/// `_`, joined by `-` (wadm's `compute_component_id`).
///
/// ```
/// assert_eq!(
///     trellis_manifest::derive_id("rust-hello-world", "http-component"),
///     "rust_hello_world-http_component"
/// );
/// ```
pub fn derive_id(app: &str, entry: &str) -> String {
    fn sanitize(part: &str) -> String {
        part.to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect()
    }
    format!("{}-{}", sanitize(app), sanitize(entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_follow_wadm() {
        assert_eq!(
            derive_id("rust-hello-world", "http-component"),
            "rust_hello_world-http_component"
        );
        assert_eq!(derive_id("Rust.KV", "Counter 1"), "rust_kv-counter_1");
        // Non-ASCII letters are replaced too, one `_` per character (after lower-casing).
        assert_eq!(derive_id("app", "ZÄHLER"), "app-z_hler");
    }

    #[test]
    fn builtins_from_oci_and_builtin_refs() {
        assert_eq!(Builtin::all().count(), 12);
        for b in Builtin::all() {
            let oci = format!("ghcr.io/wasmcloud/{}:0.1.0", b.name());
            assert_eq!(Builtin::from_image_ref(&oci), Some(b), "{oci}");
            let builtin = format!("wasmcloud+builtin://{}", b.name());
            assert_eq!(Builtin::from_image_ref(&builtin), Some(b), "{builtin}");
        }
        assert_eq!(
            Builtin::from_image_ref("ghcr.io/wasmcloud/keyvalue-nats@sha256:abcd"),
            Builtin::from_name("keyvalue-nats")
        );
        assert_eq!(
            Builtin::from_image_ref("ghcr.io/wasmcloud/blobstore-fs"),
            Builtin::from_name("blobstore-fs")
        );
    }

    #[test]
    fn other_images_are_not_builtin() {
        for r in [
            "ghcr.io/wasmcloud/components/http-hello-world-rust:0.1.0",
            "ghcr.io/wasmcloud/http-server-extra:0.1.0",
            "ghcr.io/wasmcloud/http-server:",
            "ghcr.io/example/http-server:0.27.0",
            "wasmcloud+builtin://http-servers",
            "wasmcloud+builtin://",
            "file://./provider.par.gz",
            "",
        ] {
            assert_eq!(Builtin::from_image_ref(r), None, "{r}");
        }
    }

    #[test]
    fn builtin_serialises_as_its_name() {
        for b in Builtin::all() {
            let json = serde_json::to_value(b).expect("serialise");
            assert_eq!(json, serde_json::Value::String(b.name().to_owned()));
        }
    }
}
