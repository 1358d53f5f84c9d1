//! From the manifest as written ([`raw`]) to the checked [`Application`].
//!
//! Deserialisation has already enforced the shape; this module enforces the rules that span
//! fields: names and ids are unique, links point at entries of the manifest, config names mean
//! one thing, `file://` images exist. It stops at the first problem, reported at the field
//! that causes it.

use crate::error::{ErrorKind, ManifestError, closest, list};
use crate::image::{self, ImageSpec};
use crate::model::{
    Application, Builtin, Component, DEFAULT_SPREAD_WEIGHT, ImageRef, LinkSpec, Provider, Scale,
    ScalerKind, Spread, derive_id,
};
use crate::positions::Positions;
use crate::raw;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use trellis_control::secret::{SECRET_POLICY_TYPE, SecretReference};
use trellis_control::{ComponentId, Link, LinkName, ProviderId};

/// The only `apiVersion` wadm accepts.
pub const OAM_API_VERSION: &str = "core.oam.dev/v1beta1";
/// The only `kind` wadm accepts.
pub const APPLICATION_KIND: &str = "Application";
/// The trait types Trellis implements.
pub const SUPPORTED_TRAITS: [&str; 3] = [SPREADSCALER, DAEMONSCALER, LINK];

const SPREADSCALER: &str = "spreadscaler";
const DAEMONSCALER: &str = "daemonscaler";
const LINK: &str = "link";

/// Where the manifest came from, for resolving paths and placing errors.
pub(crate) struct Source<'a> {
    pub file: &'a Path,
    /// The absolute folder `file://` paths are relative to.
    pub base_dir: PathBuf,
    pub positions: Positions,
    /// What was accepted with a warning so far, in the order found.
    pub warnings: std::cell::RefCell<Vec<ManifestError>>,
    /// Whether a `file://` component must exist already (not for a tool about to build it).
    pub files_must_exist: bool,
}

impl Source<'_> {
    /// Records a warning: something wadm accepts that Trellis accepts too, and says so.
    pub(crate) fn warn(&self, warning: ManifestError) {
        self.warnings.borrow_mut().push(warning);
    }

    /// An error at `path`, placed at the line and column where that field is written.
    pub(crate) fn error(
        &self,
        kind: ErrorKind,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> ManifestError {
        let path = path.into();
        let (line, column) = self.positions.find(&path).unzip();
        ManifestError::new(kind, self.file, path, message).at(line, column)
    }

    fn line(&self, path: &str) -> usize {
        self.positions.line(path).unwrap_or(0)
    }
}

/// The entries as first seen: name and id, before traits are looked at.
struct EntryInfo<'m> {
    raw: &'m raw::Entry,
    path: String,
    id: String,
}

/// A named config and where it was first defined with properties.
struct ConfigDef {
    properties: BTreeMap<String, String>,
    path: String,
}

/// The interfaces a link binds, for detecting two links that bind the same import.
struct LinkKey {
    source: usize,
    namespace: String,
    package: String,
    name: String,
    interfaces: Vec<String>,
    path: String,
}

pub(crate) fn normalize(
    manifest: raw::Manifest,
    src: &Source<'_>,
) -> Result<Application, ManifestError> {
    check_header(&manifest, src)?;
    let app_name = manifest.metadata.name.as_str();
    let policies = secret_policies(&manifest.spec.policies, src)?;
    let entries = first_pass(&manifest.spec.components, app_name, src)?;
    let mut builder = Builder {
        src,
        entries: &entries,
        configs: BTreeMap::new(),
        link_keys: Vec::new(),
        app_name,
        policies,
    };

    let mut components = Vec::new();
    let mut providers = Vec::new();
    let mut links = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let props = &entry.raw.properties;
        let props_path = format!("{}.properties", entry.path);
        let mut config = match &props.config {
            Some(list) => builder.config_list(list, &format!("{props_path}.config"))?,
            None => Vec::new(),
        };
        if let Some(secrets) = &props.secrets {
            config.extend(builder.secret_list(secrets, &format!("{props_path}.secrets"))?);
        }
        let (scale, entry_links) = builder.traits(index)?;
        links.extend(entry_links);
        let line = src.line(&entry.path);
        // Presence was checked in the first pass; an empty string falls to the image checks.
        let image = props.image.as_deref().unwrap_or_default();
        match entry.raw.kind {
            raw::EntryKind::Component => components.push(Component {
                name: entry.raw.name.clone(),
                id: ComponentId::new(entry.id.clone()),
                image: component_image(entry, image, src)?,
                scale,
                config,
                line,
            }),
            raw::EntryKind::Capability => {
                if image.trim().is_empty() {
                    return Err(src
                        .error(
                            ErrorKind::Invalid,
                            format!("{props_path}.image"),
                            "the image is empty",
                        )
                        .with_hint(
                            "give the provider's OCI reference, \
                             such as `ghcr.io/wasmcloud/http-server:0.27.0`",
                        ));
                }
                providers.push(Provider {
                    name: entry.raw.name.clone(),
                    id: ProviderId::new(entry.id.clone()),
                    image_ref: image.to_owned(),
                    builtin: Builtin::from_image_ref(image),
                    scale,
                    config,
                    line,
                })
            }
        }
    }

    check_warm_annotations(&manifest.metadata.annotations, &components, src)?;
    let annotations = manifest.metadata.annotations;
    Ok(Application {
        name: manifest.metadata.name.clone(),
        version: annotations.get("version").cloned(),
        description: annotations.get("description").cloned(),
        annotations,
        labels: manifest.metadata.labels,
        manifest_path: src.file.to_path_buf(),
        components,
        providers,
        links,
        configs: builder
            .configs
            .into_iter()
            .map(|(name, def)| (name, def.properties))
            .collect(),
        warnings: src.warnings.take(),
        revealed: BTreeMap::new(),
    })
}

/// The secrets policies of `spec.policies` by name, with their `backend`. Trellis keeps
/// every secret in its own store, whatever the backend (said once, as a warning, for a
/// backend other than wasmCloud's NATS KV one).
fn secret_policies(
    policies: &[raw::Policy],
    src: &Source<'_>,
) -> Result<BTreeMap<String, Option<String>>, ManifestError> {
    let mut out = BTreeMap::new();
    for (i, policy) in policies.iter().enumerate() {
        let path = format!("spec.policies[{i}]");
        if out.contains_key(&policy.name) {
            return Err(src
                .error(
                    ErrorKind::Invalid,
                    format!("{path}.name"),
                    format!("duplicate policy name `{}`", policy.name),
                )
                .with_hint("give every policy its own name"));
        }
        if policy.policy_type != SECRET_POLICY_TYPE {
            // Other policy types configure things Trellis does not have; wadm keeps them
            // for whoever reads them.
            src.warn(src.error(
                ErrorKind::Ignored,
                format!("{path}.type"),
                format!(
                    "policy `{}` has type `{}`, which Trellis does not use; only `{SECRET_POLICY_TYPE}` policies mean something here",
                    policy.name, policy.policy_type
                ),
            ));
            out.insert(policy.name.clone(), None);
            continue;
        }
        let backend = policy
            .properties
            .get("backend")
            .cloned()
            .unwrap_or_default();
        if backend.is_empty() {
            return Err(src
                .error(
                    ErrorKind::Invalid,
                    format!("{path}.properties"),
                    format!("secrets policy `{}` has no `backend`", policy.name),
                )
                .with_hint("add `backend: nats-kv` (Trellis keeps secrets in its own store: `trellis secret put`)"));
        }
        if !matches!(backend.as_str(), "nats-kv" | "trellis") {
            src.warn(src.error(
                ErrorKind::Ignored,
                format!("{path}.properties.backend"),
                format!(
                    "secrets backend `{backend}` is not used: Trellis keeps secrets in its own encrypted store (`trellis secret put`), whatever the policy names"
                ),
            ));
        }
        out.insert(policy.name.clone(), Some(backend));
    }
    Ok(out)
}

fn check_header(manifest: &raw::Manifest, src: &Source<'_>) -> Result<(), ManifestError> {
    if manifest.api_version != OAM_API_VERSION {
        return Err(src
            .error(
                ErrorKind::Invalid,
                "apiVersion",
                format!(
                    "unsupported apiVersion `{}`; wadm manifests are `{OAM_API_VERSION}`",
                    manifest.api_version
                ),
            )
            .with_hint(format!("set `apiVersion: {OAM_API_VERSION}`")));
    }
    if manifest.kind != APPLICATION_KIND {
        return Err(src
            .error(
                ErrorKind::Invalid,
                "kind",
                format!(
                    "unsupported kind `{}`; wadm manifests are of kind `{APPLICATION_KIND}`",
                    manifest.kind
                ),
            )
            .with_hint(format!("set `kind: {APPLICATION_KIND}`")));
    }
    let name = &manifest.metadata.name;
    if name.is_empty() {
        return Err(src
            .error(
                ErrorKind::Invalid,
                "metadata.name",
                "the application name is empty",
            )
            .with_hint("name the application, for example `name: hello-world`"));
    }
    // wadm's rule (`^[-\w]+$`): the name becomes part of NATS subjects and KV keys.
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(src
            .error(
                ErrorKind::Invalid,
                "metadata.name",
                format!(
                    "the application name `{name}` contains {c:?}; \
                     only letters, digits, `-` and `_` are allowed"
                ),
            )
            .with_hint(format!("for example `{}`", sanitize_name(name))));
    }
    if manifest
        .metadata
        .annotations
        .get("version")
        .is_some_and(|v| v == "latest")
    {
        return Err(src
            .error(
                ErrorKind::Invalid,
                "metadata.annotations.version",
                "`latest` is reserved and cannot be an application version",
            )
            .with_hint("use a concrete version such as `v0.1.0`, or leave `version` out"));
    }
    for (what, map) in [
        ("annotations", &manifest.metadata.annotations),
        ("labels", &manifest.metadata.labels),
    ] {
        if let Some(key) = map.keys().find(|k| !valid_oam_key(k)) {
            return Err(src
                .error(
                    ErrorKind::Invalid,
                    format!("metadata.{what}.{key}"),
                    format!("`{key}` is not a valid OAM {} key", &what[..what.len() - 1]),
                )
                .with_hint(
                    "keys are `name` or `prefix/name`: a name is up to 63 letters, digits, `-`, `_` or `.`, \
                     starting and ending with a letter or digit; a prefix is a DNS subdomain such as `wasmcloud.dev`",
                ));
        }
    }
    Ok(())
}

/// Every `trellis.dev/warm…` annotation can be read and names a component of the app.
fn check_warm_annotations(
    annotations: &BTreeMap<String, String>,
    components: &[Component],
    src: &Source<'_>,
) -> Result<(), ManifestError> {
    use crate::warm::{HINT, WARM_ANNOTATION, WarmSetting};
    for (key, value) in annotations {
        let name = match key.strip_prefix(WARM_ANNOTATION) {
            Some("") => None,
            Some(rest) => match rest.strip_prefix('.') {
                Some(name) => Some(name),
                None => continue,
            },
            None => continue,
        };
        let path = format!("metadata.annotations.{key}");
        if let Err(e) = WarmSetting::parse(value) {
            return Err(src
                .error(
                    ErrorKind::Invalid,
                    path,
                    format!("`{value}` is not a warm-instance setting: {e}"),
                )
                .with_hint(HINT));
        }
        if let Some(name) = name
            && !components.iter().any(|c| c.name == name)
        {
            let names: Vec<&str> = components.iter().map(|c| c.name.as_str()).collect();
            return Err(src
                .error(
                    ErrorKind::Invalid,
                    path,
                    format!("`{key}` names no component of this app"),
                )
                .with_hint(format!(
                    "the components are: {}; write `{WARM_ANNOTATION}.<component name>`",
                    names.join(", ")
                )));
        }
    }
    Ok(())
}

/// wadm's rule for annotation and label keys (after the OAM metadata spec): `name` or
/// `prefix/name`, where the prefix is a DNS subdomain.
fn valid_oam_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => valid_dns_subdomain(prefix) && valid_label_name(name),
        None => valid_label_name(key),
    }
}

fn valid_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.len() <= 63
                && part.starts_with(|c: char| c.is_ascii_alphabetic())
                && part.ends_with(|c: char| c.is_ascii_alphanumeric())
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn valid_label_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn sanitize_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Names, ids, unsupported features and the presence of images: everything links need to
/// resolve before any entry's traits are read.
fn first_pass<'m>(
    raw_entries: &'m [raw::Entry],
    app_name: &str,
    src: &Source<'_>,
) -> Result<Vec<EntryInfo<'m>>, ManifestError> {
    let mut entries: Vec<EntryInfo<'m>> = Vec::with_capacity(raw_entries.len());
    for (index, raw) in raw_entries.iter().enumerate() {
        let path = format!("spec.components[{index}]");
        let what = match raw.kind {
            raw::EntryKind::Component => "component",
            raw::EntryKind::Capability => "capability provider",
        };
        if raw.name.is_empty() {
            return Err(src
                .error(
                    ErrorKind::Invalid,
                    format!("{path}.name"),
                    format!("the {what} has an empty name"),
                )
                .with_hint("every entry needs a name; links refer to entries by it"));
        }
        if let Some(first) = entries.iter().find(|e| e.raw.name == raw.name) {
            return Err(src
                .error(
                    ErrorKind::Invalid,
                    format!("{path}.name"),
                    format!(
                        "duplicate name `{}`: {}{} has the same name",
                        raw.name,
                        first.path,
                        at_line(src, &first.path)
                    ),
                )
                .with_hint(
                    "every component and capability needs a unique name; \
                     links refer to entries by it",
                ));
        }

        let props = &raw.properties;
        let props_path = format!("{path}.properties");
        if let Some(app) = &props.application {
            return Err(src
                .error(
                    ErrorKind::Unsupported,
                    format!("{props_path}.application"),
                    format!(
                        "references to shared applications (here `{}` in `{}`) are not supported by Trellis yet",
                        app.component, app.name
                    ),
                )
                .with_hint("give the entry its own `image` instead"));
        }
        if props.image.is_none() {
            return Err(src
                .error(
                    ErrorKind::Invalid,
                    &props_path,
                    format!("the {what} `{}` has no `image`", raw.name),
                )
                .with_hint(match raw.kind {
                    raw::EntryKind::Component => {
                        "set `image: file://./build/<name>.wasm` for a local build, or an OCI reference"
                    }
                    raw::EntryKind::Capability => "set `image` to the provider's OCI reference",
                }));
        }

        let (id, id_path) = match &props.id {
            Some(id) if id.trim().is_empty() => {
                return Err(src
                    .error(
                        ErrorKind::Invalid,
                        format!("{props_path}.id"),
                        "the id is empty",
                    )
                    .with_hint(format!(
                        "leave `id` out to get `{}`, or give a non-empty id",
                        derive_id(app_name, &raw.name)
                    )));
            }
            Some(id) => (id.clone(), format!("{props_path}.id")),
            None => (derive_id(app_name, &raw.name), format!("{path}.name")),
        };
        if let Some(first) = entries.iter().find(|e| e.id == id) {
            return Err(src
                .error(
                    ErrorKind::Invalid,
                    id_path,
                    format!(
                        "duplicate id `{id}`: `{}` at {}{} has the same id",
                        first.raw.name,
                        first.path,
                        at_line(src, &first.path)
                    ),
                )
                .with_hint(
                    "ids are `{app}-{entry}` (each part lower-cased, letters and digits kept, \
                     everything else turned into `_`) unless set with the `id` property; set a distinct `id`",
                ));
        }
        entries.push(EntryInfo { raw, path, id });
    }
    Ok(entries)
}

fn component_image(
    entry: &EntryInfo<'_>,
    image: &str,
    src: &Source<'_>,
) -> Result<ImageRef, ManifestError> {
    let path = format!("{}.properties.image", entry.path);
    let name = &entry.raw.name;
    match image::classify(image, &src.base_dir) {
        Ok(ImageSpec::Remote) => Ok(ImageRef::Remote(image.to_owned())),
        Ok(ImageSpec::File(file)) => match std::fs::metadata(&file) {
            Ok(meta) if meta.is_file() => Ok(ImageRef::File(file)),
            Err(e) if !src.files_must_exist && e.kind() == std::io::ErrorKind::NotFound => {
                Ok(ImageRef::File(file))
            }
            found => {
                let problem = match found {
                    Ok(_) => "which is not a file".to_owned(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        "which does not exist".to_owned()
                    }
                    Err(e) => format!("which cannot be read: {e}"),
                };
                Err(src
                    .error(
                        ErrorKind::MissingFile,
                        path,
                        format!(
                            "component `{name}`: image `{image}` resolves to `{}`, {problem}",
                            file.display()
                        ),
                    )
                    .with_hint(format!(
                        "file:// paths are relative to the manifest's folder (`{}`); build the component \
                         first (for example `cargo build --release --target wasm32-wasip2`) or fix the path",
                        src.base_dir.display()
                    )))
            }
        },
        Err(bad) => Err(src
            .error(
                ErrorKind::Invalid,
                path,
                format!("component `{name}`: {}", bad.message),
            )
            .with_hint(bad.hint)),
    }
}

/// " (line N)" when the position of `path` is known.
fn at_line(src: &Source<'_>, path: &str) -> String {
    src.positions
        .line(path)
        .map(|l| format!(" (line {l})"))
        .unwrap_or_default()
}

/// Reads traits and config, accumulating what spans entries.
struct Builder<'a, 'm> {
    src: &'a Source<'a>,
    entries: &'a [EntryInfo<'m>],
    configs: BTreeMap<String, ConfigDef>,
    link_keys: Vec<LinkKey>,
    app_name: &'a str,
    /// `spec.policies` by name: the backend of secrets policies, `None` for other types.
    policies: BTreeMap<String, Option<String>>,
}

impl<'m> Builder<'_, 'm> {
    /// The scale and the links of entry `index`.
    fn traits(&mut self, index: usize) -> Result<(Scale, Vec<LinkSpec>), ManifestError> {
        let entry = &self.entries[index];
        let mut scale: Option<(Scale, String)> = None;
        let mut links = Vec::new();
        for (t, raw_trait) in entry.raw.traits.iter().flatten().enumerate() {
            let path = format!("{}.traits[{t}]", entry.path);
            let props_path = format!("{path}.properties");
            match raw_trait.kind.as_str() {
                kind @ (SPREADSCALER | DAEMONSCALER) => {
                    if let Some((_, first)) = &scale {
                        return Err(self
                            .src
                            .error(
                                ErrorKind::Invalid,
                                format!("{path}.type"),
                                format!(
                                    "`{}` already has a scaler at {first}{}; \
                                     an entry takes one spreadscaler or one daemonscaler",
                                    entry.raw.name,
                                    at_line(self.src, first)
                                ),
                            )
                            .with_hint("remove one of the scaler traits"));
                    }
                    let props: raw::SpreadScalerProperties =
                        crate::from_value(&raw_trait.properties, &props_path, self.src)?;
                    let kind = if kind == SPREADSCALER {
                        ScalerKind::Spread
                    } else {
                        ScalerKind::Daemon
                    };
                    scale = Some((self.scale(kind, props), path));
                }
                LINK => {
                    let props: raw::LinkProperties =
                        crate::from_value(&raw_trait.properties, &props_path, self.src)?;
                    links.push(self.link(index, props, &path)?);
                }
                other => {
                    let hint = match closest(other, SUPPORTED_TRAITS) {
                        Some(near) => format!("did you mean `{near}`?"),
                        None => "custom traits are not supported by Trellis".to_owned(),
                    };
                    return Err(self
                        .src
                        .error(
                            ErrorKind::Invalid,
                            format!("{path}.type"),
                            format!(
                                "unknown trait type `{other}`; supported types are {}",
                                list(SUPPORTED_TRAITS)
                            ),
                        )
                        .with_hint(hint));
                }
            }
        }
        Ok((scale.map(|(s, _)| s).unwrap_or_default(), links))
    }

    fn scale(&self, kind: ScalerKind, props: raw::SpreadScalerProperties) -> Scale {
        Scale {
            kind,
            instances: props.instances,
            spread: props
                .spread
                .into_iter()
                .map(|s| Spread {
                    name: s.name,
                    requirements: s.requirements,
                    weight: s.weight.unwrap_or(DEFAULT_SPREAD_WEIGHT),
                })
                .collect(),
        }
    }

    fn link(
        &mut self,
        source: usize,
        props: raw::LinkProperties,
        path: &str,
    ) -> Result<LinkSpec, ManifestError> {
        let src = self.src;
        let p = format!("{path}.properties");
        let entry = &self.entries[source];

        for (field, value) in [("namespace", &props.namespace), ("package", &props.package)] {
            if value.trim().is_empty() {
                return Err(src
                    .error(
                        ErrorKind::Invalid,
                        format!("{p}.{field}"),
                        format!("the link's WIT {field} is empty"),
                    )
                    .with_hint("for example `namespace: wasi`, `package: http`"));
            }
        }
        if props.interfaces.is_empty() {
            return Err(src
                .error(
                    ErrorKind::Invalid,
                    format!("{p}.interfaces"),
                    "the link carries no interfaces",
                )
                .with_hint(
                    "list the WIT interfaces the link carries, \
                     for example `interfaces: [incoming-handler]`",
                ));
        }
        check_known_interfaces(&props, &p, src);
        let name = match props.name {
            Some(name) if name.trim().is_empty() => {
                return Err(src
                    .error(
                        ErrorKind::Invalid,
                        format!("{p}.name"),
                        "the link name is empty",
                    )
                    .with_hint("leave `name` out for the link named `default`"));
            }
            Some(name) => LinkName::new(name),
            None => LinkName::default(),
        };

        let (target_name, target_path, target_config) = match props.target {
            raw::LinkTarget::Name(target) => {
                let config = match &props.target_config {
                    Some(list) => self.config_list(list, &format!("{p}.target_config"))?,
                    None => Vec::new(),
                };
                (target, format!("{p}.target"), config)
            }
            raw::LinkTarget::Config(target) => {
                if props.target_config.is_some() {
                    return Err(src
                        .error(
                            ErrorKind::Invalid,
                            format!("{p}.target_config"),
                            "`target_config` cannot be combined with a `target` mapping",
                        )
                        .with_hint("move these entries to `target.config`"));
                }
                let mut config = self.config_list(&target.config, &format!("{p}.target.config"))?;
                config.extend(self.secret_list(&target.secrets, &format!("{p}.target.secrets"))?);
                (target.name, format!("{p}.target.name"), config)
            }
        };
        let source_config = match (&props.source, &props.source_config) {
            (Some(_), Some(_)) => {
                return Err(src
                    .error(
                        ErrorKind::Invalid,
                        format!("{p}.source_config"),
                        "`source_config` cannot be combined with `source`",
                    )
                    .with_hint("move these entries to `source.config`"));
            }
            (Some(def), None) => {
                let mut config = self.config_list(&def.config, &format!("{p}.source.config"))?;
                config.extend(self.secret_list(&def.secrets, &format!("{p}.source.secrets"))?);
                config
            }
            (None, Some(list)) => self.config_list(list, &format!("{p}.source_config"))?,
            (None, None) => Vec::new(),
        };

        let Some(target) = self.entries.iter().find(|e| e.raw.name == target_name) else {
            let names: Vec<&str> = self.entries.iter().map(|e| e.raw.name.as_str()).collect();
            let hint = match closest(&target_name, names.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => {
                    "a link's target is the `name` of a component or capability in spec.components"
                        .to_owned()
                }
            };
            return Err(src
                .error(
                    ErrorKind::Invalid,
                    target_path,
                    format!(
                        "link target `{target_name}` is not an entry of this manifest; the entries are {}",
                        list(names)
                    ),
                )
                .with_hint(hint));
        };

        let link = Link {
            source_id: entry.id.clone().into(),
            target: target.id.clone().into(),
            name,
            wit_namespace: props.namespace,
            wit_package: props.package,
            interfaces: props.interfaces,
            source_config,
            target_config,
        };
        self.check_overlap(source, &link, path)?;
        Ok(LinkSpec {
            source: entry.raw.name.clone(),
            target: target_name,
            link,
            line: src.line(path),
        })
    }

    /// Rejects a second link from the same entry that binds an interface already bound under
    /// the same link name: the import would have two targets and which one wins is arbitrary.
    fn check_overlap(
        &mut self,
        source: usize,
        link: &Link,
        path: &str,
    ) -> Result<(), ManifestError> {
        let clash = self.link_keys.iter().find(|k| {
            k.source == source
                && k.namespace == link.wit_namespace
                && k.package == link.wit_package
                && k.name == link.name.as_str()
                && k.interfaces.iter().any(|i| link.interfaces.contains(i))
        });
        if let Some(first) = clash {
            let shared: Vec<&str> = first
                .interfaces
                .iter()
                .filter(|i| link.interfaces.contains(i))
                .map(String::as_str)
                .collect();
            return Err(self
                .src
                .error(
                    ErrorKind::Invalid,
                    format!("{path}.properties.interfaces"),
                    format!(
                        "`{}` already links {} of `{}:{}` under the link name `{}` at {}{}",
                        self.entries[source].raw.name,
                        list(shared),
                        link.wit_namespace,
                        link.wit_package,
                        link.name,
                        first.path,
                        at_line(self.src, &first.path)
                    ),
                )
                .with_hint("give one of the links a distinct `name`, or remove the duplicate"));
        }
        self.link_keys.push(LinkKey {
            source,
            namespace: link.wit_namespace.clone(),
            package: link.wit_package.clone(),
            name: link.name.as_str().to_owned(),
            interfaces: link.interfaces.clone(),
            path: path.to_owned(),
        });
        Ok(())
    }

    /// The config names of a `secrets:` list: each reference becomes named config
    /// `SECRET_{app}_{name}` holding the reference (never a value), as wadm writes it.
    fn secret_list(
        &mut self,
        items: &[raw::SecretProperty],
        path: &str,
    ) -> Result<Vec<String>, ManifestError> {
        let mut names = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let src = self.src;
            if item.name.trim().is_empty() {
                return Err(src
                    .error(
                        ErrorKind::Invalid,
                        format!("{item_path}.name"),
                        "the secret's name is empty",
                    )
                    .with_hint("name it as the component asks for it (wasmcloud:secrets/store.get) or as the provider's config key"));
            }
            let props = &item.properties;
            let backend = match self.policies.get(&props.policy) {
                Some(Some(backend)) => backend.clone(),
                Some(None) => {
                    return Err(src
                        .error(
                            ErrorKind::Invalid,
                            format!("{item_path}.properties.policy"),
                            format!(
                                "policy `{}` is not a secrets policy (its type is not `{SECRET_POLICY_TYPE}`)",
                                props.policy
                            ),
                        )
                        .with_hint("point `policy` at a policy of that type"));
                }
                None => {
                    let known: Vec<&str> = self.policies.keys().map(String::as_str).collect();
                    let hint = if known.is_empty() {
                        format!(
                            "define it under spec.policies:\n- name: {}\n  type: {SECRET_POLICY_TYPE}\n  properties:\n    backend: nats-kv",
                            props.policy
                        )
                    } else {
                        format!("the policies are {}", list(known))
                    };
                    return Err(src
                        .error(
                            ErrorKind::Invalid,
                            format!("{item_path}.properties.policy"),
                            format!(
                                "secret `{}` names policy `{}`, which spec.policies does not define",
                                item.name, props.policy
                            ),
                        )
                        .with_hint(hint));
                }
            };
            if let Err(e) = trellis_control::secret::check_key(&props.key) {
                return Err(src
                    .error(ErrorKind::Invalid, format!("{item_path}.properties.key"), e)
                    .with_hint("the key is the stored secret's name: `trellis secret put KEY`"));
            }
            let reference = SecretReference {
                name: item.name.clone(),
                key: props.key.clone(),
                field: props.field.clone(),
                version: props.version.clone(),
                policy: props.policy.clone(),
                backend,
            };
            let name = SecretReference::config_name(self.app_name, &item.name);
            let properties = reference.to_config();
            match self.configs.get(&name) {
                Some(first) if first.properties != properties => {
                    return Err(src
                        .error(
                            ErrorKind::Invalid,
                            format!("{item_path}.properties"),
                            format!(
                                "secret `{}` is referenced twice with different properties; the first is at {}{}",
                                item.name,
                                first.path,
                                at_line(src, &first.path)
                            ),
                        )
                        .with_hint("a secret's name means one stored secret in an app: give the other one another name"));
                }
                Some(_) => {}
                None => {
                    self.configs.insert(
                        name.clone(),
                        ConfigDef {
                            properties,
                            path: item_path,
                        },
                    );
                }
            }
            names.push(name);
        }
        Ok(names)
    }

    /// The names in a config list, recording inline definitions in [`Application::configs`].
    fn config_list(
        &mut self,
        list: &[raw::ConfigProperty],
        path: &str,
    ) -> Result<Vec<String>, ManifestError> {
        let mut names = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            if item.name.trim().is_empty() {
                return Err(self
                    .src
                    .error(
                        ErrorKind::Invalid,
                        format!("{item_path}.name"),
                        "the config name is empty",
                    )
                    .with_hint("name the config, for example `name: default-http`"));
            }
            if let Some(props) = &item.properties {
                let properties: BTreeMap<String, String> = props
                    .iter()
                    .map(|(k, v)| (k.clone(), v.0.clone()))
                    .collect();
                match self.configs.get(&item.name) {
                    Some(first) if first.properties != properties => {
                        return Err(self
                            .src
                            .error(
                                ErrorKind::Invalid,
                                format!("{item_path}.properties"),
                                format!(
                                    "config `{}` is defined twice with different properties; \
                                     the first definition is at {}{}",
                                    item.name,
                                    first.path,
                                    at_line(self.src, &first.path)
                                ),
                            )
                            .with_hint(
                                "named config is shared by the whole lattice: give one of them another name, \
                                 or make the properties identical",
                            ));
                    }
                    Some(_) => {}
                    None => {
                        self.configs.insert(
                            item.name.clone(),
                            ConfigDef {
                                properties,
                                path: item_path,
                            },
                        );
                    }
                }
            }
            names.push(item.name.clone());
        }
        Ok(names)
    }
}

fn check_known_interfaces(props: &raw::LinkProperties, path: &str, src: &Source<'_>) {
    // Interfaces of the packages the host knows, as wadm lists them: another interface of
    // one of these is most likely a typo, or one Trellis does not serve (yet). wadm only warns
    // about these, so Trellis does too; other packages are custom and anything goes.
    let known = match trellis_capabilities::find(&props.namespace, &props.package) {
        Some(c) if !c.link_interfaces.is_empty() => c.link_interfaces,
        _ => return,
    };
    for (i, interface) in props.interfaces.iter().enumerate() {
        if !known.contains(&interface.as_str()) {
            let mut warning = src.error(
                ErrorKind::Ignored,
                format!("{path}.interfaces[{i}]"),
                format!(
                    "unknown interface `{}:{}/{interface}`; `{}:{}` has {}: the link is kept, \
                     but nothing on the host serves this interface through it",
                    props.namespace,
                    props.package,
                    props.namespace,
                    props.package,
                    list(known.iter().copied())
                ),
            );
            if let Some(near) = closest(interface, known.iter().copied()) {
                warning = warning.with_hint(format!("did you mean `{near}`?"));
            }
            src.warn(warning);
        }
    }
}
