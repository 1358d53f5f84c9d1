//! `trellis app …`: applications through the wadm API (`wadm.api.{lattice}.model.…`, which
//! every host of a lattice answers, or an embedded host's `POST /v1/wadm/…`).

use crate::ctl::{LatticeArgs, Output};
use anyhow::{Context as _, bail};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use trellis_control::wadm::ApiResult;

#[derive(Subcommand)]
pub(crate) enum AppCmd {
    /// Stores FILE as a new version (when it changed) and deploys it; or deploys the app NAME.
    Deploy {
        /// A manifest file, or the name of an app already stored.
        app: String,
        /// The version to deploy [default: the latest].
        #[arg(long)]
        version: Option<String>,
        #[command(flatten)]
        images: Box<ManifestImages>,
    },
    /// Stores FILE as a new version without deploying it.
    Put {
        file: PathBuf,
        #[command(flatten)]
        images: Box<ManifestImages>,
    },
    /// Lists the apps with their deployed version and status.
    List,
    /// Shows an app's status, with the reason for anything not deployed.
    Status { name: String },
    /// Lists an app's versions.
    Versions { name: String },
    /// Stops an app: the reconciler removes everything it started for it.
    Undeploy { name: String },
    /// Deletes an app (undeploying it) or one of its versions.
    Delete {
        name: String,
        #[arg(long)]
        version: Option<String>,
    },
}

/// How a manifest file's registry images are resolved and pinned before it is stored.
#[derive(clap::Args)]
pub(crate) struct ManifestImages {
    #[command(flatten)]
    lock: crate::lock::LockArgs,
    #[command(flatten)]
    registry: crate::registry::RegistryArgs,
    #[command(flatten)]
    cache: crate::registry::ImageCacheArgs,
}

/// Prints what the manifest has that wadm accepts with a warning, once, on stderr.
pub(crate) fn print_warnings(app: &trellis_manifest::Application) {
    for warning in &app.warnings {
        eprintln!("warning: {warning}");
    }
}

/// The manifest file as hosts must get it ([`crate::lock::pinned_manifest`]: `file://`
/// images absolute, registry images pinned by trellis.lock), after printing its warnings.
///
/// On a NATS lattice, `file://` components go into the lattice's component store and the
/// hosts get `lattice://NAME@sha256:…` instead of the path, so hosts on other machines run
/// them too; an embedded host shares this machine's files and gets the path.
async fn read_manifest(
    path: &Path,
    images: &ManifestImages,
    args: &LatticeArgs,
) -> anyhow::Result<String> {
    let registry = trellis_registry::Registry::new(images.registry.config(images.cache.dir()));
    let mode = crate::lock::Mode::of(&images.lock);
    let (text, app) = crate::lock::pinned_manifest(path, &registry, mode).await?;
    print_warnings(&app);
    if args.is_embedded()?
        || !app
            .components
            .iter()
            .any(|c| matches!(c.image, trellis_manifest::ImageRef::File(_)))
    {
        return Ok(text);
    }
    let store = trellis_lattice::components::ComponentStore::open(
        crate::ctl::nats_client(args).await?,
        &args.lattice,
    )
    .await?;
    let mut carried = std::collections::BTreeMap::new();
    for c in &app.components {
        let trellis_manifest::ImageRef::File(file) = &c.image else {
            continue;
        };
        let bytes = std::fs::read(file)
            .with_context(|| format!("cannot read component `{}`", file.display()))?;
        let digest = store.put(&bytes).await?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| c.name.clone());
        eprintln!(
            "component `{}`: {} stored in the lattice as {digest}",
            c.name,
            file.display()
        );
        carried.insert(
            c.name.clone(),
            trellis_manifest::lattice_image_reference(&name, &digest),
        );
    }
    crate::lock::set_images(&text, &carried)
}

/// The manifest at `path`, with relative `file://` images made absolute (hosts anywhere
/// must find them; they resolve against the manifest's folder, as `trellis up` does).
pub(crate) fn absolute_manifest(
    path: &Path,
) -> anyhow::Result<(String, trellis_manifest::Application)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    // Checked here first, so mistakes are reported with file and line.
    let app = trellis_manifest::parse(&text, path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut value: serde_yaml::Value = serde_yaml::from_str(&text)?;
    let dir = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    if let Some(components) = value
        .get_mut("spec")
        .and_then(|s| s.get_mut("components"))
        .and_then(|c| c.as_sequence_mut())
    {
        for c in components {
            // Only components are files hosts read; a provider's `file://…par.gz` only names
            // a built-in and stays as written, so that every copy of the app agrees on it.
            let kind = c.get("type").and_then(|t| t.as_str()).unwrap_or_default();
            if kind != "component" && kind != "actor" {
                continue;
            }
            let Some(image) = c.get_mut("properties").and_then(|p| p.get_mut("image")) else {
                continue;
            };
            if let Some(rel) = image.as_str().and_then(|s| s.strip_prefix("file://"))
                && !Path::new(rel).is_absolute()
            {
                *image = serde_yaml::Value::String(format!("file://{}", dir.join(rel).display()));
            }
        }
    }
    Ok((serde_yaml::to_string(&value)?, app))
}

/// Prints the reply as JSON with `-o json`, else the text.
fn print(args: &LatticeArgs, value: &impl serde::Serialize, text: impl FnOnce() -> String) {
    match args.output {
        Output::Json => println!("{}", serde_json::to_string(value).unwrap_or_default()),
        Output::Text => println!("{}", text()),
    }
}

/// Fails with the reply's message unless its result is one of `ok`.
fn expect(result: ApiResult, message: &str, ok: &[ApiResult]) -> anyhow::Result<()> {
    if ok.contains(&result) {
        return Ok(());
    }
    let result = serde_json::to_value(result).unwrap_or_default();
    match message {
        "" => bail!("{}", result.as_str().unwrap_or_default()),
        message => bail!("{message}"),
    }
}

pub(crate) async fn run(args: &LatticeArgs, cmd: AppCmd) -> anyhow::Result<()> {
    let client = crate::ctl::connect(args).await?;
    match cmd {
        AppCmd::Put { file, images } => {
            let put = client
                .put_app(read_manifest(&file, &images, args).await?.into_bytes())
                .await?;
            expect(
                put.result,
                &put.message,
                &[ApiResult::Created, ApiResult::NewVersion],
            )?;
            print(args, &put, || put.message.clone());
        }
        AppCmd::Deploy {
            app,
            version,
            images,
        } => {
            let path = Path::new(&app);
            let (name, version) = if path.is_file() {
                let put = client
                    .put_app(read_manifest(path, &images, args).await?.into_bytes())
                    .await?;
                expect(
                    put.result,
                    &put.message,
                    &[ApiResult::Created, ApiResult::NewVersion],
                )?;
                eprintln!("{}", put.message);
                (put.name, version.or(Some(put.current_version)))
            } else {
                (app, version)
            };
            let deployed = client.deploy_app(&name, version).await?;
            expect(
                deployed.result,
                &deployed.message,
                &[ApiResult::Acknowledged],
            )?;
            print(args, &deployed, || {
                format!(
                    "{}; `trellis app status {name}` shows how it goes",
                    deployed.message
                )
            });
        }
        AppCmd::List => {
            let list = client.list_apps().await?;
            print(args, &list, || {
                let mut out = format!(
                    "{:<24} {:<10} {:<10} {:<12} {}",
                    "NAME", "LATEST", "DEPLOYED", "STATUS", "MESSAGE"
                );
                for app in &list {
                    out.push_str(&format!(
                        "\n{:<24} {:<10} {:<10} {:<12} {}",
                        app.name,
                        app.version,
                        app.deployed_version.as_deref().unwrap_or("-"),
                        app.status,
                        app.status_message,
                    ));
                }
                out
            });
        }
        AppCmd::Status { name } => {
            let reply = client.app_status(&name).await?;
            expect(reply.result, &reply.message, &[ApiResult::Ok])?;
            print(args, &reply, || {
                let Some(s) = &reply.status else {
                    return format!("app {name}: no status");
                };
                let mut out = format!(
                    "app {name}: {}{}",
                    s.status.kind,
                    Some(s.status.message.as_str())
                        .filter(|m| !m.is_empty())
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                );
                for scaler in &s.scalers {
                    out.push_str(&format!(
                        "\n  {:<24} {:<12} {}",
                        scaler.name, scaler.status.kind, scaler.status.message
                    ));
                }
                out
            });
        }
        AppCmd::Versions { name } => {
            let reply = client.app_versions(&name).await?;
            expect(reply.result, &reply.message, &[ApiResult::Success])?;
            print(args, &reply, || {
                reply
                    .versions
                    .iter()
                    .map(|v| {
                        format!(
                            "{}{}",
                            v.version,
                            if v.deployed { " (deployed)" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        AppCmd::Undeploy { name } => {
            let reply = client.undeploy_app(&name).await?;
            expect(reply.result, &reply.message, &[ApiResult::Acknowledged])?;
            print(args, &reply, || reply.message.clone());
        }
        AppCmd::Delete { name, version } => {
            let reply = client.delete_app(&name, version).await?;
            expect(
                reply.result,
                &reply.message,
                &[ApiResult::Deleted, ApiResult::Noop],
            )?;
            print(args, &reply, || reply.message.clone());
        }
    }
    Ok(())
}
