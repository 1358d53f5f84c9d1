//! `trellis app …`: applications through the wadm API (`wadm.api.{lattice}.model.…`, which
//! every host of a lattice answers, or an embedded host's `POST /v1/wadm/…`).

use crate::ctl::{LatticeArgs, Output};
use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub(crate) enum AppCmd {
    /// Stores FILE as a new version (when it changed) and deploys it; or deploys the app NAME.
    Deploy {
        /// A manifest file, or the name of an app already stored.
        app: String,
        /// The version to deploy [default: the latest].
        #[arg(long)]
        version: Option<String>,
    },
    /// Stores FILE as a new version without deploying it.
    Put { file: PathBuf },
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

struct Api {
    client: trellis_lattice::client::CtlClient,
}

impl Api {
    async fn connect(args: &LatticeArgs) -> anyhow::Result<Self> {
        Ok(Self {
            client: crate::ctl::connect(args).await?,
        })
    }

    async fn request(&self, operation: &str, body: Vec<u8>) -> anyhow::Result<Value> {
        Ok(self.client.app_request(operation, body).await?)
    }
}

/// The manifest at `path`, with relative `file://` images made absolute (hosts anywhere
/// must find them; they resolve against the manifest's folder, as `trellis up` does).
pub(crate) fn read_manifest(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    // Checked here first, so mistakes are reported with file and line.
    trellis_manifest::parse(&text, path).map_err(|e| anyhow::anyhow!("{e}"))?;
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
    Ok(serde_yaml::to_string(&value)?)
}

fn print(args: &LatticeArgs, value: &Value, text: impl FnOnce() -> String) {
    match args.output {
        Output::Json => println!("{value}"),
        Output::Text => println!("{}", text()),
    }
}

fn failed(value: &Value, ok: &[&str]) -> Option<String> {
    let result = value["result"].as_str().unwrap_or_default();
    (!ok.contains(&result)).then(|| value["message"].as_str().unwrap_or(result).to_owned())
}

pub(crate) async fn run(args: &LatticeArgs, cmd: AppCmd) -> anyhow::Result<()> {
    let api = Api::connect(args).await?;
    match cmd {
        AppCmd::Put { file } => {
            let put = api
                .request("put", read_manifest(&file)?.into_bytes())
                .await?;
            if let Some(message) = failed(&put, &["created", "newversion"]) {
                bail!("{message}");
            }
            print(args, &put, || {
                put["message"].as_str().unwrap_or_default().to_owned()
            });
        }
        AppCmd::Deploy { app, version } => {
            let path = Path::new(&app);
            let (name, version) = if path.is_file() {
                let put = api
                    .request("put", read_manifest(path)?.into_bytes())
                    .await?;
                if let Some(message) = failed(&put, &["created", "newversion"]) {
                    bail!("{message}");
                }
                eprintln!("{}", put["message"].as_str().unwrap_or_default());
                let name = put["name"].as_str().unwrap_or_default().to_owned();
                let current = put["current_version"].as_str().map(str::to_owned);
                (name, version.or(current))
            } else {
                (app, version)
            };
            let body = serde_json::to_vec(&json!({"version": version}))?;
            let deployed = api.request(&format!("deploy.{name}"), body).await?;
            if let Some(message) = failed(&deployed, &["acknowledged"]) {
                bail!("{message}");
            }
            print(args, &deployed, || {
                format!(
                    "{}; `trellis app status {name}` shows how it goes",
                    deployed["message"].as_str().unwrap_or_default()
                )
            });
        }
        AppCmd::List => {
            let list = api.request("list", Vec::new()).await?;
            print(args, &list, || {
                let mut out = format!(
                    "{:<24} {:<10} {:<10} {:<12} {}",
                    "NAME", "LATEST", "DEPLOYED", "STATUS", "MESSAGE"
                );
                for app in list.as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "\n{:<24} {:<10} {:<10} {:<12} {}",
                        app["name"].as_str().unwrap_or_default(),
                        app["version"].as_str().unwrap_or_default(),
                        app["deployed_version"].as_str().unwrap_or("-"),
                        app["status"].as_str().unwrap_or_default(),
                        app["status_message"].as_str().unwrap_or_default(),
                    ));
                }
                out
            });
        }
        AppCmd::Status { name } => {
            let status = api.request(&format!("status.{name}"), Vec::new()).await?;
            if let Some(message) = failed(&status, &["ok"]) {
                bail!("{message}");
            }
            print(args, &status, || {
                let s = &status["status"];
                let mut out = format!(
                    "app {name}: {}{}",
                    s["status"]["type"].as_str().unwrap_or_default(),
                    s["status"]["message"]
                        .as_str()
                        .filter(|m| !m.is_empty())
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                );
                for scaler in s["scalers"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "\n  {:<24} {:<12} {}",
                        scaler["name"].as_str().unwrap_or_default(),
                        scaler["status"]["type"].as_str().unwrap_or_default(),
                        scaler["status"]["message"].as_str().unwrap_or_default()
                    ));
                }
                out
            });
        }
        AppCmd::Versions { name } => {
            let versions = api.request(&format!("versions.{name}"), Vec::new()).await?;
            if let Some(message) = failed(&versions, &["success"]) {
                bail!("{message}");
            }
            print(args, &versions, || {
                versions["versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| {
                        format!(
                            "{}{}",
                            v["version"].as_str().unwrap_or_default(),
                            if v["deployed"] == true {
                                " (deployed)"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        AppCmd::Undeploy { name } => {
            let reply = api.request(&format!("undeploy.{name}"), Vec::new()).await?;
            if let Some(message) = failed(&reply, &["acknowledged"]) {
                bail!("{message}");
            }
            print(args, &reply, || {
                reply["message"].as_str().unwrap_or_default().to_owned()
            });
        }
        AppCmd::Delete { name, version } => {
            let body = serde_json::to_vec(&json!({"version": version}))?;
            let reply = api.request(&format!("del.{name}"), body).await?;
            if let Some(message) = failed(&reply, &["deleted", "noop"]) {
                bail!("{message}");
            }
            print(args, &reply, || {
                reply["message"].as_str().unwrap_or_default().to_owned()
            });
        }
    }
    Ok(())
}
