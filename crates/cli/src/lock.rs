//! `trellis.lock` at work: `trellis up`, `trellis app deploy|put` and `trellis lock` resolve
//! each registry image of a manifest to a digest, record it (and each `file://` component's
//! content hash) in the lockfile beside the manifest, and hand hosts the manifest with every
//! registry image pinned (`ref:tag@sha256:…`), so that every host runs the same bytes and a
//! tag that moves changes nothing until the lock is updated.
//!
//! The file format is [`trellis_manifest::lock`]'s; this module adds what needs a registry
//! and the file system.

use crate::registry::{ImageCacheArgs, RegistryArgs};
use anyhow::{Context as _, bail};
use clap::Args;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use trellis_manifest::lock::{Lockfile, has_digest, image_key, pinned};
use trellis_manifest::{Application, ImageRef};
use trellis_registry::Registry;

/// How a command treats `trellis.lock`.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct LockArgs {
    /// Refuse to run anything that differs from trellis.lock (a missing entry, a file whose
    /// content changed) instead of updating it: for CI and production.
    #[arg(long)]
    pub locked: bool,
}

/// `trellis lock [MANIFEST]`.
#[derive(Args)]
pub(crate) struct LockCmd {
    /// The manifest [default: app.yaml, else wadm.yaml, in the current folder].
    manifest: Option<PathBuf>,
    /// Resolve every tag again (the registry's current digest), not only new ones.
    #[arg(long)]
    update: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    images: ImageCacheArgs,
}

/// What to do with the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Honour what is recorded; record what is new.
    Use,
    /// Honour what is recorded; fail on anything new or different.
    Locked,
    /// Resolve every tag again and record it.
    Update,
    /// Honour what is recorded, resolve what is new, write nothing: `trellis dev`, where
    /// every edit changes a component's hash.
    Dev,
}

impl Mode {
    pub(crate) fn of(args: &LockArgs) -> Self {
        if args.locked { Self::Locked } else { Self::Use }
    }
}

/// `trellis lock`: writes or refreshes the lockfile and says what changed.
pub(crate) async fn run(cmd: LockCmd) -> anyhow::Result<()> {
    let manifest = match cmd.manifest {
        Some(m) => m,
        None => ["app.yaml", "wadm.yaml"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .context("no manifest given and no app.yaml or wadm.yaml here")?,
    };
    let registry = Registry::new(cmd.registry.config(cmd.images.dir()));
    let mode = if cmd.update { Mode::Update } else { Mode::Use };
    let (_, app) = pinned_manifest(&manifest, &registry, mode).await?;
    eprintln!(
        "{} is up to date for app `{}`",
        Lockfile::path_beside(&manifest.canonicalize().unwrap_or(manifest.clone())).display(),
        app.name
    );
    Ok(())
}

/// The manifest at `path` as hosts must get it: `file://` images absolute, registry images
/// pinned to the digests in `trellis.lock` (resolved and recorded first when new, or all
/// again with [`Mode::Update`]), and the lockfile written when anything changed (never with
/// [`Mode::Locked`], which fails instead).
pub(crate) async fn pinned_manifest(
    path: &Path,
    registry: &Registry,
    mode: Mode,
) -> anyhow::Result<(String, Application)> {
    let (text, app) = crate::app::absolute_manifest(path)?;
    let manifest = path
        .canonicalize()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let lock_path = Lockfile::path_beside(&manifest);
    let before = Lockfile::load(&lock_path)?;
    if mode == Mode::Locked && before.is_none() {
        bail!(
            "--locked, but there is no {} : run `trellis lock {}` and check the file in",
            lock_path.display(),
            path.display()
        );
    }
    let mut lock = before.clone().unwrap_or_else(Lockfile::new);
    lock.retain_images_of(&app);
    let mut pins = BTreeMap::new();
    for c in &app.components {
        let key = image_key(&app, &c.image);
        match &c.image {
            ImageRef::File(file) => {
                let bytes = std::fs::read(file)
                    .with_context(|| format!("cannot read component `{}`", file.display()))?;
                lock.record(key, trellis_registry::layout::digest_of(&bytes));
            }
            ImageRef::Remote(reference) if has_digest(reference) => {
                let digest = reference
                    .rsplit_once('@')
                    .map(|(_, d)| d)
                    .unwrap_or_default();
                lock.record(key, digest.to_owned());
            }
            ImageRef::Remote(reference) => {
                let digest = match (mode, lock.digest(&key)) {
                    (Mode::Use | Mode::Locked | Mode::Dev, Some(digest)) => digest.to_owned(),
                    (Mode::Locked, None) => bail!(
                        "--locked, but {} has no entry for `{reference}` (component `{}`): run `trellis lock {}`",
                        lock_path.display(),
                        c.name,
                        path.display()
                    ),
                    (Mode::Use | Mode::Update | Mode::Dev, _) => {
                        registry.resolve(reference).await.with_context(|| {
                            format!("cannot resolve component `{}`'s image", c.name)
                        })?
                    }
                };
                pins.insert(c.name.clone(), pinned(reference, &digest));
                lock.record(key, digest);
            }
        }
    }
    if before.as_ref() != Some(&lock) && mode != Mode::Dev {
        if mode == Mode::Locked {
            bail!(
                "--locked, but the manifest no longer matches {}:\n{}\nrun `trellis lock {}` (or drop --locked) to record it",
                lock_path.display(),
                describe_changes(before.as_ref(), &lock),
                path.display()
            );
        }
        lock.save(&lock_path)?;
        eprintln!(
            "updated {}:\n{}",
            lock_path.display(),
            describe_changes(before.as_ref(), &lock)
        );
    }
    if pins.is_empty() {
        return Ok((text, app));
    }
    let text = set_images(&text, &pins)?;
    let app = trellis_manifest::parse(&text, &manifest).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((text, app))
}

/// `text` with the `image` of each component named in `images` replaced.
pub(crate) fn set_images(text: &str, images: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let mut value: serde_yaml::Value = serde_yaml::from_str(text)?;
    if let Some(components) = value
        .get_mut("spec")
        .and_then(|s| s.get_mut("components"))
        .and_then(|c| c.as_sequence_mut())
    {
        for c in components {
            if c.get("type").and_then(|t| t.as_str()) != Some("component") {
                continue;
            }
            let Some(new) = c
                .get("name")
                .and_then(|n| n.as_str())
                .and_then(|n| images.get(n))
            else {
                continue;
            };
            if let Some(image) = c.get_mut("properties").and_then(|p| p.get_mut("image")) {
                *image = serde_yaml::Value::String(new.clone());
            }
        }
    }
    Ok(serde_yaml::to_string(&value)?)
}

/// One line per image added, changed or dropped between `before` and `after`.
fn describe_changes(before: Option<&Lockfile>, after: &Lockfile) -> String {
    let empty = Lockfile::new();
    let before = before.unwrap_or(&empty);
    let mut lines = Vec::new();
    for (key, image) in &after.images {
        match before.digest(key) {
            None => lines.push(format!("  + {key} = {}", image.digest)),
            Some(old) if old != image.digest => {
                lines.push(format!("  ~ {key}: {old} -> {}", image.digest));
            }
            Some(_) => {}
        }
    }
    for key in before.images.keys() {
        if !after.images.contains_key(key) {
            lines.push(format!("  - {key}"));
        }
    }
    lines.join("\n")
}
