//! Reads wadm application manifests: OAM `core.oam.dev/v1beta1` `Application` documents, in
//! YAML or JSON, as wasmCloud's deployment manager accepts them.
//!
//! [`load`] and [`parse`] turn a manifest into an [`Application`]: the components, the
//! capability providers, the links between them and the named config they define, with every
//! name resolved to the lattice id it deploys under. The reconciler and the CLI work only with
//! this checked form; nothing downstream has to re-validate a manifest.
//!
//! ```
//! use std::path::Path;
//!
//! let yaml = r#"
//! apiVersion: core.oam.dev/v1beta1
//! kind: Application
//! metadata:
//!   name: hello
//!   annotations:
//!     version: v0.1.0
//! spec:
//!   components:
//!     - name: greeter
//!       type: component
//!       properties:
//!         image: ghcr.io/example/greeter:0.1.0
//!     - name: httpserver
//!       type: capability
//!       properties:
//!         image: ghcr.io/wasmcloud/http-server:0.27.0
//!       traits:
//!         - type: link
//!           properties:
//!             target: { name: greeter }
//!             namespace: wasi
//!             package: http
//!             interfaces: [incoming-handler]
//!             source:
//!               config:
//!                 - name: listen
//!                   properties: { address: "0.0.0.0:8000" }
//! "#;
//! let app = trellis_manifest::parse(yaml, Path::new("hello/wadm.yaml"))?;
//!
//! let greeter = &app.components[0];
//! assert_eq!(greeter.id.as_str(), "hello-greeter");
//! assert_eq!(greeter.scale.instances, 1); // no scaler trait: one instance
//! assert_eq!(app.providers[0].builtin, Some(trellis_manifest::Builtin::HTTP_SERVER));
//!
//! let link = &app.links[0].link;
//! assert_eq!((link.source_id.as_str(), link.target.as_str()), ("hello-httpserver", "hello-greeter"));
//! assert_eq!(link.source_config, ["listen"]);
//! assert_eq!(app.configs["listen"]["address"], "0.0.0.0:8000");
//! # Ok::<(), trellis_manifest::ManifestError>(())
//! ```
//!
//! # What is checked
//!
//! Everything `oam.schema.json` describes is accepted. What wadm accepts with a warning is
//! accepted the same way, and reported in [`Application::warnings`] at its line: a key the
//! schema does not define (ignored), an interface of a well-known package that the host does
//! not know (kept). Beyond the shape, a manifest must have unique entry names and ids, links
//! whose target is an entry of the same manifest, scalers whose instance count is a number,
//! component images that are a `file://` path or an OCI reference, `file://` images that exist
//! (relative paths are relative to the manifest's folder), and named config that is not
//! defined twice with different properties, and secrets that name a secrets policy of
//! `spec.policies` (each becomes a `SECRET_{app}_{name}` named config holding the reference,
//! as wadm writes it). The part of the schema that Trellis does not implement yet (references
//! to shared applications) is rejected with an error that says so, rather than ignored.
//!
//! Errors read like compiler diagnostics, pointing at the field that is wrong:
//!
//! ```
//! # use std::path::Path;
//! let yaml = r#"
//! apiVersion: core.oam.dev/v1beta1
//! kind: Application
//! metadata:
//!   name: hello
//! spec:
//!   components:
//!     - name: greeter
//!       type: component
//!       properties:
//!         image: ghcr.io/example/greeter:0.1.0
//!       traits:
//!         - type: spreadscaler
//!           properties:
//!             instance: 2
//! "#;
//! let err = trellis_manifest::parse(yaml, Path::new("wadm.yaml")).expect_err("misspelt field");
//! assert_eq!(
//!     err.to_string(),
//!     "wadm.yaml:14:11: spec.components[0].traits[0].properties.instances: missing field `instances`\n  \
//!      hint: `instance` (line 15) is not a field here and was ignored: did you mean `instances`?"
//! );
//! ```
//!
//! # Defaults
//!
//! - An entry without an `id` property gets `{app}-{entry}`, each part lower-cased with every
//!   character other than an ASCII letter or digit turned into `_` ([`derive_id`]), as in wadm.
//! - An entry without a `spreadscaler` or `daemonscaler` trait runs one instance on any host
//!   (`Scale { kind: Spread, instances: 1, spread: [] }`). wadm's examples rely on this for
//!   providers, and treating components the same way keeps a minimal manifest useful.
//! - A spread without `weight` weighs 100; a link without `name` is named `default`.
//! - Config values that are numbers or booleans (`port: 8080`) are taken as their text.
//!
//! # Modules
//!
//! - `raw`: serde types mirroring the schema, denying unknown fields.
//! - `normalize`: the cross-field rules, and the mapping to [`Application`].
//! - `image`: `file://` resolution and the OCI reference check.
//! - [`lock`]: `trellis.lock`, the digest each image resolved to.
//! - `positions`: field path → line and column, for errors found after deserialisation.
//! - `model` and `error`: the public types.

// `ManifestError` is large for a `Result` (a path and three strings), but it is built once, on
// the way out of a failed parse, and its fields are the public API.
#![allow(clippy::result_large_err)]

mod error;
mod image;
pub mod lock;
mod model;
mod normalize;
mod positions;
mod raw;
pub mod warm;

pub use error::{ErrorKind, ManifestError};
pub use image::{LATTICE_SCHEME, lattice_image, lattice_image_reference};
pub use model::{
    Application, Builtin, Component, DEFAULT_SPREAD_WEIGHT, ImageRef, LinkSpec, Provider, Scale,
    ScalerKind, Spread, derive_id,
};
pub use normalize::{APPLICATION_KIND, OAM_API_VERSION, SUPPORTED_TRAITS};

use error::closest;
use normalize::Source;
use positions::Positions;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Checks that `reference` is an OCI reference a host can pull (`registry/repository:tag`
/// or `…@sha256:…`), as the manifest's `image` is checked; the message says what is wrong.
pub fn check_image_reference(reference: &str) -> Result<(), String> {
    match image::classify(reference, Path::new("/")) {
        Ok(image::ImageSpec::Remote) => Ok(()),
        Ok(image::ImageSpec::File(_)) => Err(format!(
            "`{reference}` is a file:// reference; give an absolute file:// path or a registry reference"
        )),
        Err(bad) => Err(format!("{}; {}", bad.message, bad.hint)),
    }
}

/// Reads and parses the manifest at `path`; `file://` images resolve against its folder.
pub fn load(path: &Path) -> Result<Application, ManifestError> {
    let source = std::fs::read_to_string(path).map_err(|e| ManifestError::io(path, &e))?;
    parse(&source, path)
}

/// Parses a manifest read from `origin`.
///
/// `origin` names the manifest in error messages and in [`Application::manifest_path`], and
/// its folder is where relative `file://` images are looked up (the current directory when
/// `origin` has no folder part). `source` may be YAML or JSON.
pub fn parse(source: &str, origin: &Path) -> Result<Application, ManifestError> {
    parse_with(source, origin, true)
}

/// [`parse`] for a tool that builds the components before it runs them (`trellis dev`): a
/// `file://` component that does not exist yet is no error.
pub fn parse_before_build(source: &str, origin: &Path) -> Result<Application, ManifestError> {
    parse_with(source, origin, false)
}

fn parse_with(
    source: &str,
    origin: &Path,
    files_must_exist: bool,
) -> Result<Application, ManifestError> {
    let positions = Positions::index(source);
    let src = Source {
        file: origin,
        base_dir: base_dir(origin),
        positions,
        warnings: Default::default(),
        files_must_exist,
    };

    // Syntax first, on its own: a YAML error then never masquerades as a schema error at
    // some partial field path.
    let value = match serde_yaml::from_str::<serde_yaml::Value>(source) {
        Err(err) => {
            let location = err.location();
            let message = strip_location(&err.to_string(), location.as_ref());
            return Err(ManifestError::new(ErrorKind::Syntax, origin, "", message)
                .at(
                    location.as_ref().map(|l| l.line()),
                    location.as_ref().map(|l| l.column()),
                )
                .with_hint(
                    "YAML is indentation-sensitive: check the indentation and quoting at this line",
                ));
        }
        // An empty file (or one with only comments) would otherwise be reported as a
        // missing `apiVersion`.
        Ok(serde_yaml::Value::Null) => {
            return Err(ManifestError::new(ErrorKind::Schema, origin, "", "the manifest is empty")
                .with_hint(format!(
                    "a wadm manifest starts with `apiVersion: {OAM_API_VERSION}` and `kind: {APPLICATION_KIND}`"
                )));
        }
        Ok(value) => value,
    };
    let manifest: raw::Manifest = lenient(value, "", &src)?;
    normalize::normalize(manifest, &src)
}

/// Deserialises a trait's `properties`, whose type depends on the trait's `type`; `prefix`
/// is the field path of the value.
pub(crate) fn from_value<T: DeserializeOwned>(
    value: &serde_yaml::Value,
    prefix: &str,
    src: &Source<'_>,
) -> Result<T, ManifestError> {
    lenient(value.clone(), prefix, src)
}

/// Deserialises `value` as wadm does: a key the schema does not define is ignored, with a
/// warning (kept in `src`) at the key's line; every other mismatch is an error. The raw types
/// deny unknown fields, so each unknown key fails the attempt, is removed, and the attempt
/// is repeated: the warning then carries serde's list of the expected names for its hint.
fn lenient<T: DeserializeOwned>(
    mut value: serde_yaml::Value,
    prefix: &str,
    src: &Source<'_>,
) -> Result<T, ManifestError> {
    // Each round removes one key, so this ends; the bound is only a guard.
    for _ in 0..10_000 {
        let err = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(parsed) => return Ok(parsed),
            Err(err) => err,
        };
        let mut segments: Vec<Segment> = err.path().iter().map(Segment::of).collect();
        let unknown = err
            .inner()
            .to_string()
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned);
        // The path ends at the unknown key itself; the key goes from the mapping before it.
        if let (Some(Segment::Key(last)), Some(field)) = (segments.last(), &unknown)
            && last == field
        {
            segments.pop();
        }
        let removed = unknown
            .as_deref()
            .is_some_and(|field| remove_key(&mut value, &segments, field));
        let diagnostic = schema_error(err, prefix, src);
        if !removed {
            return Err(with_ignored_hint(diagnostic, src));
        }
        src.warn(ManifestError {
            kind: ErrorKind::Ignored,
            message: format!("{}; ignored, as wadm does", diagnostic.message),
            ..diagnostic
        });
    }
    Err(ManifestError::new(
        ErrorKind::Schema,
        src.file,
        prefix,
        "too many unknown fields",
    ))
}

/// One step of a field path, as the deserialiser reports it.
enum Segment {
    Index(usize),
    Key(String),
    /// An enum variant or a step serde could not name: the path cannot be followed.
    Opaque,
}

impl Segment {
    fn of(segment: &serde_path_to_error::Segment) -> Self {
        match segment {
            serde_path_to_error::Segment::Seq { index } => Segment::Index(*index),
            serde_path_to_error::Segment::Map { key } => Segment::Key(key.clone()),
            _ => Segment::Opaque,
        }
    }
}

/// Removes `field` from the mapping at `path` in `value`; false when there is no such key.
fn remove_key(value: &mut serde_yaml::Value, path: &[Segment], field: &str) -> bool {
    let mut at = value;
    for segment in path {
        let next = match (segment, at) {
            (Segment::Index(i), serde_yaml::Value::Sequence(items)) => items.get_mut(*i),
            (Segment::Key(k), serde_yaml::Value::Mapping(map)) => map.get_mut(k.as_str()),
            _ => None,
        };
        match next {
            Some(next) => at = next,
            None => return false,
        }
    }
    match at {
        serde_yaml::Value::Mapping(map) => map.remove(field).is_some(),
        _ => false,
    }
}

/// A missing field next to an ignored one that is spelt like it: the hint says so.
fn with_ignored_hint(err: ManifestError, src: &Source<'_>) -> ManifestError {
    let Some(missing) = err
        .message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned)
    else {
        return err;
    };
    let missing = missing.as_str();
    let parent = err
        .path
        .strip_suffix(missing)
        .map(|p| p.trim_end_matches('.'))
        .unwrap_or(&err.path);
    let near = src.warnings.borrow().iter().find_map(|w| {
        let (dir, key) = w.path.rsplit_once('.').unwrap_or(("", &w.path));
        (dir == parent && closest(key, [missing]).is_some()).then(|| (key.to_owned(), w.line))
    });
    match near {
        Some((key, line)) => {
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            err.with_hint(format!(
                "`{key}`{at} is not a field here and was ignored: did you mean `{missing}`?"
            ))
        }
        None => err,
    }
}

/// The manifest's folder as an absolute path.
fn base_dir(origin: &Path) -> PathBuf {
    let dir = match origin.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // `absolute` only fails without a current directory; the relative path is the best left.
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// Turns a deserialisation error into a diagnostic at the offending field.
fn schema_error(
    err: serde_path_to_error::Error<serde_yaml::Error>,
    prefix: &str,
    src: &Source<'_>,
) -> ManifestError {
    let mut path = err.path().to_string();
    if path == "." {
        path.clear();
    }
    if !prefix.is_empty() {
        path = match path.as_str() {
            "" => prefix.to_owned(),
            p if p.starts_with('[') => format!("{prefix}{p}"),
            p => format!("{prefix}.{p}"),
        };
    }
    let inner = err.into_inner();
    let location = inner.location();
    let message = strip_yaml_path(&strip_location(&inner.to_string(), location.as_ref()));

    // Point at the field itself rather than the mapping that lacks or has it.
    let field = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|marker| message.strip_prefix(marker))
        .and_then(|rest| rest.split('`').next());
    if let Some(field) = field {
        let already_there = path == field || path.ends_with(&format!(".{field}"));
        if !already_there {
            path = if path.is_empty() {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
        }
    }

    // Prefer the key of the offending field, as for every other error; serde_yaml's own mark
    // is often the enclosing mapping. It is still best for a field that is missing.
    // A missing field has no line of its own: point at the mapping that lacks it.
    let lacking = message
        .starts_with("missing field `")
        .then(|| path.rsplit_once('.').map_or("", |(parent, _)| parent))
        .and_then(|parent| src.positions.exact(parent));
    let (line, column) = match (src.positions.exact(&path), &location, lacking) {
        (Some(pos), _, _) => (Some(pos.0), Some(pos.1)),
        (None, Some(l), _) => (Some(l.line()), Some(l.column())),
        (None, None, Some(pos)) => (Some(pos.0), Some(pos.1)),
        (None, None, None) => src.positions.find(&path).unzip(),
    };
    let hint = schema_hint(&message, &path);
    let err = ManifestError::new(ErrorKind::Schema, src.file, path, message).at(line, column);
    match hint {
        Some(hint) => err.with_hint(hint),
        None => err,
    }
}

/// serde_yaml appends " at line L column C"; the diagnostic prefix says that already.
fn strip_location(message: &str, location: Option<&serde_yaml::Location>) -> String {
    match location {
        Some(l) => message.replacen(
            &format!(" at line {} column {}", l.line(), l.column()),
            "",
            1,
        ),
        None => message.to_owned(),
    }
}

/// serde_yaml prefixes its own `path: `; the diagnostic has the path already.
fn strip_yaml_path(message: &str) -> String {
    match message.split_once(": ") {
        Some((head, rest))
            if !head.is_empty() && !head.contains(char::is_whitespace) && !head.contains('`') =>
        {
            rest.to_owned()
        }
        _ => message.to_owned(),
    }
}

fn schema_hint(message: &str, path: &str) -> Option<String> {
    for marker in ["unknown field `", "unknown variant `"] {
        if let Some(rest) = message.strip_prefix(marker) {
            let (wanted, expected) = rest.split_once('`')?;
            // serde lists the expected names in backticks after "expected".
            let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            if let Some(near) = closest(wanted, names) {
                return Some(format!("did you mean `{near}`?"));
            }
            if path.ends_with(".type") && marker == "unknown variant `" {
                return Some(
                    "an entry is `type: component` (a WebAssembly component) or `type: capability` \
                     (a capability provider)"
                        .to_owned(),
                );
            }
            return None;
        }
    }
    let field = path.rsplit('.').next().unwrap_or_default();
    if message.starts_with("missing field") && (field == "apiVersion" || field == "kind") {
        return Some(format!(
            "a wadm manifest starts with `apiVersion: {OAM_API_VERSION}` and `kind: {APPLICATION_KIND}`"
        ));
    }
    if message.starts_with("invalid") && (field == "instances" || field == "replicas") {
        return Some(format!(
            "`{field}` is a whole number of instances, such as `instances: 1`"
        ));
    }
    if message.starts_with("invalid") && field == "weight" {
        return Some("`weight` is a whole number; spreads without one weigh 100".to_owned());
    }
    None
}

#[cfg(test)]
mod tests;
