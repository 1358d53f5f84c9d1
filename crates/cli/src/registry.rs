//! `trellis push|pull|inspect`: components in OCI registries, through `trellis-registry`.
//!
//! [`RegistryArgs`] are the flags every command that talks to a registry takes (these three,
//! and the commands that run hosts); [`RegistryArgs::config`] turns them into the library's
//! [`RegistryConfig`].

use crate::units::{ByteSize, Span};
use anyhow::Context as _;
use clap::{Args, ValueEnum};
use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use trellis_registry::{Credentials, Inspected, Registry, RegistryConfig, Source};

/// How to reach registries: plain-HTTP exceptions, credentials, time and size bounds.
#[derive(Args, Clone, Debug)]
pub struct RegistryArgs {
    /// A registry that may be reached over plain HTTP (`host` for every port, or
    /// `host:port`); repeat for more. `localhost` and `127.0.0.1` always may.
    #[arg(
        long = "allow-insecure-registry",
        value_name = "REGISTRY",
        env = "TRELLIS_ALLOW_INSECURE_REGISTRY",
        value_delimiter = ','
    )]
    pub allow_insecure_registry: Vec<String>,

    /// User name for registries that want one [default: the Docker config's credentials,
    /// from `docker login`].
    #[arg(
        long,
        env = "TRELLIS_REGISTRY_USER",
        requires = "registry_password",
        value_name = "USER"
    )]
    pub registry_user: Option<String>,

    /// Password or token for --registry-user.
    #[arg(
        long,
        env = "TRELLIS_REGISTRY_PASSWORD",
        hide_env_values = true,
        requires = "registry_user",
        value_name = "PASSWORD"
    )]
    pub registry_password: Option<String>,

    /// Time a registry has to accept a connection, to answer, or to send the next bytes of
    /// a download (e.g. 30s).
    #[arg(long, default_value_t = Span(RegistryConfig::DEFAULT_TIMEOUT), env = "TRELLIS_REGISTRY_TIMEOUT")]
    pub registry_timeout: Span,

    /// Largest component pulled from a registry (e.g. 256MiB); larger ones are refused
    /// before they are downloaded.
    #[arg(long, default_value_t = ByteSize(RegistryConfig::DEFAULT_MAX_SIZE), env = "TRELLIS_MAX_IMAGE_SIZE")]
    pub max_image_size: ByteSize,
}

impl RegistryArgs {
    /// The library's settings, caching pulled components in `cache_dir` (none: no cache).
    pub fn config(&self, cache_dir: Option<PathBuf>) -> RegistryConfig {
        let credentials = match (&self.registry_user, &self.registry_password) {
            (Some(user), Some(password)) => Credentials::basic(user, password),
            // clap makes each flag require the other; the Docker config is the fallback.
            _ => Credentials::DockerConfig { dir: None },
        };
        RegistryConfig {
            insecure: self.allow_insecure_registry.clone(),
            credentials,
            timeout: self.registry_timeout.0,
            max_size: self.max_image_size.0,
            cache_dir,
        }
    }
}

/// Where pulled components are cached.
#[derive(Args, Clone, Debug)]
pub struct ImageCacheArgs {
    /// Directory of the component image cache [default: $XDG_CACHE_HOME/trellis/oci].
    #[arg(long, env = "TRELLIS_IMAGE_CACHE_DIR", value_name = "DIR")]
    pub image_cache_dir: Option<PathBuf>,
}

impl ImageCacheArgs {
    /// The directory given, else the default one (none if there is no home to put it in).
    pub fn dir(&self) -> Option<PathBuf> {
        self.image_cache_dir
            .clone()
            .or_else(default_image_cache_dir)
    }
}

/// `$XDG_CACHE_HOME/trellis/oci`, else `~/.cache/trellis/oci`.
pub fn default_image_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("trellis").join("oci"))
}

/// `trellis push REF FILE`.
#[derive(Args)]
pub(crate) struct PushArgs {
    /// Where to push: `registry/repository:tag`, e.g. `localhost:5000/demo/hello:0.1.0`.
    reference: String,
    /// The component (`.wasm`).
    file: PathBuf,
    /// An annotation on the manifest, `KEY=VALUE`; repeat for more.
    /// `org.opencontainers.image.version` defaults to the tag and `…created` to now.
    #[arg(long = "annotation", short = 'a', value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    /// Where the source lives (sets `org.opencontainers.image.source`).
    #[arg(long, value_name = "URL")]
    source: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    cache: ImageCacheArgs,
}

/// `trellis pull REF`.
#[derive(Args)]
pub(crate) struct PullArgs {
    /// What to pull: `registry/repository:tag` or `registry/repository@sha256:…`.
    reference: String,
    /// Write the component here [default: NAME.wasm, NAME being the repository's last part].
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    cache: ImageCacheArgs,
}

/// `trellis inspect REF`.
#[derive(Args)]
pub(crate) struct InspectArgs {
    /// What to inspect: `registry/repository:tag` or `registry/repository@sha256:…`.
    reference: String,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: Format,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    cache: ImageCacheArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

pub(crate) async fn push(args: PushArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let mut annotations = BTreeMap::new();
    for pair in &args.annotations {
        let (key, value) = pair
            .split_once('=')
            .filter(|(key, _)| !key.trim().is_empty())
            .with_context(|| format!("--annotation `{pair}` is not KEY=VALUE"))?;
        annotations.insert(key.trim().to_string(), value.to_string());
    }
    if let Some(source) = args.source {
        annotations.insert(
            trellis_registry::layout::ANNOTATION_SOURCE.to_string(),
            source,
        );
    }
    let registry = Registry::new(args.registry.config(args.cache.dir()));
    let bar = progress_bar(&args.reference);
    let result = registry
        .push(&args.reference, &bytes, annotations, |done, total| {
            if let Some(bar) = &bar {
                if bar.is_hidden() {
                    // Drawn from the first report on, so it never shows an empty total.
                    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                }
                bar.set_length(total);
                bar.set_position(done);
            }
        })
        .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let digest = result?;
    // stdout carries the digest only, for scripts: `DIGEST=$(trellis push …)`.
    println!("{digest}");
    Ok(())
}

/// A progress bar on stderr, only when stderr is a terminal (never in logs or pipes).
fn progress_bar(reference: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::hidden());
    let style = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(format!("pushing {reference}"));
    Some(bar)
}

pub(crate) async fn pull(args: PullArgs) -> anyhow::Result<()> {
    let registry = Registry::new(args.registry.config(args.cache.dir()));
    let pulled = registry.pull(&args.reference).await?;
    let output = match args.output {
        Some(path) => path,
        None => PathBuf::from(format!("{}.wasm", default_name(&args.reference))),
    };
    write_atomically(&output, &pulled.bytes)
        .with_context(|| format!("cannot write {}", output.display()))?;
    // An offline pull (from the cache, the registry unreachable) was logged as a warning.
    println!("{}", pulled.digest);
    Ok(())
}

/// The repository's last part, as a file name: `ghcr.io/org/hello:1` → `hello`.
fn default_name(reference: &str) -> String {
    let path = reference.split('@').next().unwrap_or(reference);
    let last = path.rsplit('/').next().unwrap_or(path);
    let name = last.split(':').next().unwrap_or(last);
    if name.is_empty() {
        "component".to_string()
    } else {
        name.to_string()
    }
}

/// Writes to a temporary file beside `path` and renames it: a failed pull never leaves a
/// half-written component behind.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub(crate) async fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let registry = Registry::new(args.registry.config(args.cache.dir()));
    let inspected = registry.inspect(&args.reference).await?;
    let (imports, exports) = world(&inspected)?;
    match args.output {
        Format::Json => {
            let json = serde_json::json!({
                "reference": inspected.pulled.reference,
                "digest": inspected.pulled.digest,
                "size": inspected.size,
                "mediaTypes": {
                    "manifest": inspected.manifest_media_type,
                    "config": inspected.config_media_type,
                    "layer": inspected.pulled.media_type,
                },
                "layerDigest": inspected.pulled.layer_digest,
                "annotations": inspected.annotations,
                "imports": imports,
                "exports": exports,
                "source": source_name(inspected.pulled.source),
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Format::Text => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "reference:  {}", inspected.pulled.reference)?;
            writeln!(out, "digest:     {}", inspected.pulled.digest)?;
            writeln!(out, "size:       {} bytes", inspected.size)?;
            writeln!(out, "manifest:   {}", inspected.manifest_media_type)?;
            if let Some(config) = &inspected.config_media_type {
                writeln!(out, "config:     {config}")?;
            }
            writeln!(
                out,
                "layer:      {} ({})",
                inspected.pulled.media_type, inspected.pulled.layer_digest
            )?;
            if inspected.pulled.source == Source::Offline {
                writeln!(out, "source:     cache (the registry is unreachable)")?;
            }
            writeln!(out, "annotations:")?;
            for (key, value) in &inspected.annotations {
                writeln!(out, "  {key}: {value}")?;
            }
            writeln!(out, "imports:")?;
            for name in &imports {
                writeln!(out, "  {name}")?;
            }
            writeln!(out, "exports:")?;
            for name in &exports {
                writeln!(out, "  {name}")?;
            }
        }
    }
    Ok(())
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::Registry => "registry",
        Source::Cache => "cache",
        Source::Offline => "offline",
    }
}

/// The component's imports and exports, as the runtime sees them (compiling it, or loading
/// it from the compile cache).
fn world(inspected: &Inspected) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let limits = trellis_runtime::Limits {
        max_total_instances: 1,
        ..trellis_runtime::Limits::default()
    };
    let runtime = trellis_runtime::Runtime::new(limits, crate::default_cache_dir().as_deref())
        .context("cannot start the WebAssembly runtime")?;
    let id = trellis_control::ComponentId::new(default_name(&inspected.pulled.reference));
    let component = runtime
        .load_bytes(
            &id,
            Path::new(&inspected.pulled.reference),
            &inspected.pulled.bytes,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((component.imports().to_vec(), component.exports().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_come_from_the_repository() {
        assert_eq!(default_name("ghcr.io/org/hello:1"), "hello");
        assert_eq!(default_name("localhost:5000/demo/app@sha256:abc"), "app");
        assert_eq!(default_name("localhost:5000/x"), "x");
    }
}
