//! The commands that drive a lattice through the control interface: `trellis get`,
//! `config`, `label`, `link`, `start`, `scale`, `update`, `stop`, `events`. Tables for people
//! by default, `-o json` for scripts; exit code 0 on success, 1 when the lattice refused or
//! did not answer.

use crate::units::Span;
use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use futures::StreamExt as _;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use trellis_control::ctl::DeleteLink;
use trellis_control::{ComponentId, HostId, Link, LinkName, ProviderId};
use trellis_lattice::client::CtlClient;
use trellis_lattice::{Connections, NatsOptions};

/// Where the lattice is.
#[derive(Args, Clone)]
pub(crate) struct LatticeArgs {
    /// NATS server URL of the lattice's control connection [default: nats://127.0.0.1:4222,
    /// unless a `trellis up` runs in the current folder, which is then used].
    #[arg(long, global = true, env = "TRELLIS_NATS")]
    pub(crate) nats: Option<String>,

    /// Credentials file for the control connection (`admin.creds` from `trellis creds
    /// init`) [default: --nats-creds, else --rpc-creds].
    #[arg(long, global = true, env = "TRELLIS_CTL_CREDS")]
    pub(crate) ctl_creds: Option<PathBuf>,

    /// Credentials file for the RPC connection; the CLI sends control requests only, so it
    /// uses this for them when it is the only credential given.
    #[arg(long, global = true, env = "TRELLIS_RPC_CREDS")]
    pub(crate) rpc_creds: Option<PathBuf>,

    /// Credentials file for both connections.
    #[arg(long, global = true, env = "TRELLIS_NATS_CREDS")]
    pub(crate) nats_creds: Option<PathBuf>,

    /// The lattice name.
    #[arg(
        long,
        global = true,
        env = "TRELLIS_LATTICE",
        default_value = "default"
    )]
    pub(crate) lattice: String,

    /// How long to wait for answers (e.g. 5s).
    #[arg(long, global = true, default_value_t = Span(trellis_lattice::client::DEFAULT_TIMEOUT))]
    pub(crate) timeout: Span,

    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value = "text")]
    pub(crate) output: Output,

    /// Talk to an embedded host (`trellis up`) instead of a lattice: at this control address,
    /// or, given no address, the one running in the current folder (which is also the
    /// default when neither this nor --nats is given).
    #[arg(long, global = true, env = "TRELLIS_ADMIN", num_args = 0..=1, default_missing_value = "")]
    pub(crate) embedded: Option<String>,

    /// Sign control requests with this key (a seed from `trellis control-key`, or a file
    /// holding one), for hosts started with --require-signed-control.
    #[arg(
        long,
        global = true,
        env = "TRELLIS_CONTROL_KEY",
        hide_env_values = true
    )]
    pub(crate) control_key: Option<String>,

    /// The embedded host's control token [default: read from the `trellis up` running at
    /// that address, in .trellis/up/ beside its manifest].
    #[arg(
        long,
        global = true,
        env = "TRELLIS_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub(crate) admin_token: Option<String>,
}

/// The lattice's NATS server when none is named.
pub(crate) const DEFAULT_NATS: &str = "nats://127.0.0.1:4222";

/// Where control commands go.
pub(crate) enum Target {
    /// A `trellis up`'s control endpoint, with its token.
    Embedded { url: String, token: Option<String> },
    /// A lattice over NATS.
    Nats,
}

impl LatticeArgs {
    /// The NATS server of the control connection.
    pub(crate) fn nats_url(&self) -> &str {
        self.nats.as_deref().unwrap_or(DEFAULT_NATS)
    }

    /// Where control commands go: `--embedded`, then `--nats`, then the `trellis up` of the
    /// current folder, then the default NATS server.
    pub(crate) fn target(&self) -> anyhow::Result<Target> {
        let embedded = |url: &str, token: Option<String>| {
            let url = if url.contains("://") {
                url.to_owned()
            } else {
                format!("http://{url}")
            };
            let url = url.trim_end_matches('/').to_owned();
            let token = self
                .admin_token
                .clone()
                .or(token)
                .or_else(|| crate::endpoint::token_for(&url));
            Target::Embedded { url, token }
        };
        let cwd = std::env::current_dir().unwrap_or_default();
        match self.embedded.as_deref() {
            Some("") => {
                let here = crate::endpoint::in_folder(&cwd);
                match here.as_slice() {
                    [one] => Ok(embedded(&one.url, Some(one.token.clone()))),
                    [] => {
                        let running = crate::endpoint::all_running();
                        if running.is_empty() {
                            anyhow::bail!(
                                "--embedded: no `trellis up` runs in {} and none runs for this user; start one, or pass its address (--embedded 127.0.0.1:PORT, printed as \"control interface on …\")",
                                cwd.display()
                            )
                        }
                        anyhow::bail!(
                            "--embedded: no `trellis up` runs in {}; these do (run the command in its folder, or pass --embedded ADDRESS):{}",
                            cwd.display(),
                            crate::endpoint::describe(&running)
                        )
                    }
                    several => anyhow::bail!(
                        "several `trellis up` run in {}; pass --embedded ADDRESS to pick one:{}",
                        cwd.display(),
                        crate::endpoint::describe(several)
                    ),
                }
            }
            Some(url) => Ok(embedded(url, None)),
            None if self.nats.is_some() => Ok(Target::Nats),
            None => match crate::endpoint::in_folder(&cwd).as_slice() {
                [one] => Ok(embedded(&one.url, Some(one.token.clone()))),
                [] => Ok(Target::Nats),
                several => anyhow::bail!(
                    "several `trellis up` run in {}; pass --embedded ADDRESS to pick one (or --nats URL for a lattice):{}",
                    cwd.display(),
                    crate::endpoint::describe(several)
                ),
            },
        }
    }

    /// Whether control commands go to a `trellis up` rather than a lattice.
    pub(crate) fn is_embedded(&self) -> anyhow::Result<bool> {
        Ok(matches!(self.target()?, Target::Embedded { .. }))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum Get {
    /// Every host on the lattice.
    Hosts,
    /// What a host runs (HOST is an id, an id prefix or a friendly name; optional with one host).
    Inventory { host: Option<String> },
    /// Every link in the lattice.
    Links,
    /// The claims of the signed components started on the lattice.
    Claims,
    /// Named config.
    Config { name: String },
}

#[derive(Subcommand)]
pub(crate) enum ConfigCmd {
    /// Creates or replaces named config: `trellis config put db url=redis://… pool=4`.
    Put {
        name: String,
        #[arg(value_parser = parse_pair, required = true)]
        values: Vec<(String, String)>,
    },
    /// Prints named config.
    Get { name: String },
    /// Deletes named config.
    Del { name: String },
}

#[derive(Subcommand)]
pub(crate) enum LabelCmd {
    /// Sets a label: `trellis label put HOST zone=eu-1`.
    Put {
        host: String,
        #[arg(value_parser = parse_pair)]
        label: (String, String),
    },
    /// Removes a label.
    Del { host: String, key: String },
}

#[derive(Subcommand)]
pub(crate) enum LinkCmd {
    /// Links SOURCE's imports of INTERFACES (`namespace:package/iface1,iface2`) to TARGET.
    Put {
        source: String,
        target: String,
        interfaces: String,
        /// The link name, to tell several links of one source apart.
        #[arg(long, default_value = "default")]
        name: String,
        /// Named config the source reads for this link.
        #[arg(long = "source-config")]
        source_config: Vec<String>,
        /// Named config the target reads for this link.
        #[arg(long = "target-config")]
        target_config: Vec<String>,
    },
    /// Deletes SOURCE's link for `namespace:package`.
    Del {
        source: String,
        package: String,
        #[arg(long, default_value = "default")]
        name: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum StartCmd {
    /// Runs a component (REF: an absolute path or file:// URL of a .wasm) as ID on a host.
    Component {
        reference: String,
        id: String,
        /// The host (id, id prefix or friendly name); optional when the lattice has one.
        #[arg(long)]
        host: Option<String>,
        /// Maximum concurrent instances.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Named config the component reads.
        #[arg(long)]
        config: Vec<String>,
    },
    /// Starts a built-in provider (REF: a wasmCloud provider image or trellis+builtin://NAME) as ID.
    Provider {
        reference: String,
        id: String,
        #[arg(long)]
        host: Option<String>,
        /// Named config the provider reads.
        #[arg(long)]
        config: Vec<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum ScaleCmd {
    /// Sets a running component's maximum concurrent instances (0 stops it).
    Component {
        id: String,
        #[arg(long)]
        count: u32,
        /// The component's image [default: what the host runs it from now].
        #[arg(long = "ref")]
        reference: Option<String>,
        #[arg(long)]
        host: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum StopCmd {
    /// Stops a host gracefully (it announces `host_stopped`).
    Host { host: String },
    /// Stops a component (scales it to 0) on every host running it, or on --host.
    Component {
        id: String,
        /// The host (id, id prefix or friendly name) [default: every host running it].
        #[arg(long)]
        host: Option<String>,
    },
    /// Stops a provider on every host running it, or on --host.
    Provider {
        id: String,
        /// The host (id, id prefix or friendly name) [default: every host running it].
        #[arg(long)]
        host: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum UpdateCmd {
    /// Runs a running component from a new image (REF: an absolute path or file:// URL of a
    /// .wasm), keeping its count and config, on every host running it, or on --host.
    Component {
        id: String,
        reference: String,
        /// The host (id, id prefix or friendly name) [default: every host running it].
        #[arg(long)]
        host: Option<String>,
    },
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    if k.is_empty() {
        return Err(format!("`{s}` has an empty key"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// `namespace:package/i1,i2` → (namespace, package, [i1, i2]).
fn parse_interfaces(s: &str) -> anyhow::Result<(String, String, Vec<String>)> {
    let (ns_pkg, list) = s
        .split_once('/')
        .with_context(|| format!("`{s}` should be namespace:package/interface[,interface…], for example wasi:keyvalue/store,atomics"))?;
    let (ns, pkg) = parse_package(ns_pkg)?;
    let interfaces: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(!interfaces.is_empty(), "`{s}` names no interface");
    Ok((ns, pkg, interfaces))
}

fn parse_package(s: &str) -> anyhow::Result<(String, String)> {
    let (ns, pkg) = s
        .split_once(':')
        .with_context(|| format!("`{s}` should be namespace:package, for example wasi:keyvalue"))?;
    anyhow::ensure!(
        !ns.is_empty() && !pkg.is_empty(),
        "`{s}` should be namespace:package"
    );
    Ok((ns.to_owned(), pkg.to_owned()))
}

pub(crate) async fn connect(args: &LatticeArgs) -> anyhow::Result<CtlClient> {
    if let Target::Embedded { url, token } = args.target()? {
        return Ok(CtlClient::embedded(url)
            .with_token(token)
            .with_timeout(args.timeout.0));
    }
    let signer = args
        .control_key
        .as_deref()
        .map(crate::host::control_signer)
        .transpose()?
        .map(std::sync::Arc::new);
    Ok(
        CtlClient::new(nats_client(args).await?, args.lattice.clone())
            .with_signer(signer)
            .with_timeout(args.timeout.0),
    )
}

/// The CLI's connection to the lattice's NATS server (`--nats`, `--ctl-creds`). When no
/// server was named and the default cannot be reached, the error lists the `trellis up`s
/// this user runs.
pub(crate) async fn nats_client(args: &LatticeArgs) -> anyhow::Result<async_nats::Client> {
    let (creds, _) = crate::host::pick_creds(
        args.ctl_creds.as_ref(),
        args.rpc_creds.as_ref(),
        args.nats_creds.as_ref(),
    );
    let options = NatsOptions {
        url: args.nats_url().to_owned(),
        creds: creds.cloned(),
        tls_ca: None,
        tls_required: false,
    };
    match Connections::connect(&options, None, "trellis cli").await {
        Ok(connections) => Ok(connections.ctl),
        Err(e) if args.nats.is_none() => {
            let running = crate::endpoint::all_running();
            if running.is_empty() {
                return Err(e.into());
            }
            Err(anyhow::anyhow!(e).context(format!(
                "no lattice at {DEFAULT_NATS} and no `trellis up` in this folder; these `trellis up` run (run the command in its folder, or pass --embedded ADDRESS):{}",
                crate::endpoint::describe(&running)
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Resolves a host given as an id, an id prefix or a friendly name.
async fn resolve_host(client: &CtlClient, host: Option<&str>) -> anyhow::Result<HostId> {
    if let Some(h) = host
        && h.len() == 56
        && h.starts_with('N')
    {
        return Ok(HostId::new(h));
    }
    let hosts = client.hosts().await?;
    let matching: Vec<_> = hosts
        .iter()
        .filter(|s| match host {
            None => true,
            Some(h) => s.id.as_str().starts_with(h) || s.friendly_name == h,
        })
        .collect();
    match matching.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => anyhow::bail!(
            "no host {} on lattice (hosts: {})",
            host.map(|h| format!("matches `{h}`"))
                .unwrap_or_else(|| "answered".into()),
            hosts
                .iter()
                .map(|h| h.friendly_name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        many => anyhow::bail!(
            "{} hosts match; name one: {}",
            many.len(),
            many.iter()
                .map(|h| format!("{} ({})", h.friendly_name, h.id))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Component,
    Provider,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Component => "component",
            Kind::Provider => "provider",
        })
    }
}

/// The hosts that run component or provider `id`, each with the image it runs it from:
/// `host` if given (it must run it), else every host whose inventory lists it.
async fn hosts_running(
    client: &CtlClient,
    kind: Kind,
    id: &str,
    host: Option<&str>,
) -> anyhow::Result<Vec<(HostId, String)>> {
    let candidates = match host {
        Some(h) => vec![resolve_host(client, Some(h)).await?],
        None => client.hosts().await?.into_iter().map(|h| h.id).collect(),
    };
    anyhow::ensure!(
        !candidates.is_empty(),
        "no host answered; is a `trellis host` running on this lattice?"
    );
    let inventories =
        futures::future::join_all(candidates.iter().map(|h| client.inventory(h))).await;
    let mut running = Vec::new();
    for (host_id, inventory) in candidates.iter().zip(inventories) {
        let inventory = match inventory {
            Ok(i) => i,
            // The one host asked for must answer; among many, one silent host is skipped.
            Err(e) if host.is_some() => return Err(e.into()),
            Err(e) => {
                eprintln!("warning: host {host_id} did not send its inventory: {e}");
                continue;
            }
        };
        let image = match kind {
            Kind::Component => inventory
                .components
                .into_iter()
                .find(|c| c.id.as_str() == id)
                .map(|c| c.image_ref),
            Kind::Provider => inventory
                .providers
                .into_iter()
                .find(|p| p.id.as_str() == id)
                .map(|p| p.image_ref.unwrap_or_default()),
        };
        if let Some(image) = image {
            running.push((host_id.clone(), image));
        }
    }
    if running.is_empty() {
        match host {
            Some(h) => anyhow::bail!("{kind} `{id}` is not running on host {h}"),
            None => anyhow::bail!("{kind} `{id}` is not running on any host"),
        }
    }
    Ok(running)
}

/// Runs `op` against each host; every host is asked even if one refuses, and the command
/// fails if any did.
async fn on_each<F, Fut>(running: &[(HostId, String)], what: &str, mut op: F) -> anyhow::Result<()>
where
    F: FnMut(HostId, String) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut refused = Vec::new();
    for (host, image) in running {
        if let Err(e) = op(host.clone(), image.clone()).await {
            refused.push((host, e));
        }
    }
    match refused.as_slice() {
        [] => Ok(()),
        [(_, e)] if running.len() == 1 => Err(anyhow::anyhow!("{e:#}")),
        _ => {
            for (host, e) in &refused {
                eprintln!("error: host {host}: {e:#}");
            }
            anyhow::bail!(
                "{what}: {} of {} hosts did not accept",
                refused.len(),
                running.len()
            )
        }
    }
}

pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Prints rows as columns padded to their widest cell.
pub(crate) fn print_table(header: &[&str], rows: Vec<Vec<String>>) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(
        out,
        "{}",
        line(header.iter().map(|h| h.to_string()).collect())
    )?;
    for row in rows {
        writeln!(out, "{}", line(row))?;
    }
    Ok(())
}

fn labels(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .filter(|(k, _)| !k.starts_with("hostcore."))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) async fn get(args: &LatticeArgs, what: Get) -> anyhow::Result<()> {
    let client = connect(args).await?;
    let json = args.output == Output::Json;
    match what {
        Get::Hosts => {
            let hosts = client.hosts().await?;
            if json {
                return print_json(&hosts);
            }
            print_table(
                &["ID", "NAME", "UPTIME", "VERSION", "LABELS"],
                hosts
                    .iter()
                    .map(|h| {
                        vec![
                            h.id.to_string(),
                            h.friendly_name.clone(),
                            h.uptime_human.clone().unwrap_or_default(),
                            h.version.clone().unwrap_or_default(),
                            labels(&h.labels),
                        ]
                    })
                    .collect(),
            )
        }
        Get::Inventory { host } => {
            let id = resolve_host(&client, host.as_deref()).await?;
            let inventory = client.inventory(&id).await?;
            if json {
                return print_json(&inventory);
            }
            println!(
                "host {} ({}), up {}",
                inventory.host_id, inventory.friendly_name, inventory.uptime_human
            );
            println!("labels: {}", labels(&inventory.labels));
            let mut rows: Vec<Vec<String>> = inventory
                .components
                .iter()
                .map(|c| {
                    vec![
                        "component".into(),
                        c.id.to_string(),
                        c.image_ref.clone(),
                        format!("max {}", c.max_instances),
                    ]
                })
                .collect();
            rows.extend(inventory.providers.iter().map(|p| {
                let status = match &p.status {
                    trellis_control::ProviderStatus::Running => "running".to_owned(),
                    trellis_control::ProviderStatus::Failed { reason } => {
                        format!("failed: {reason}")
                    }
                    trellis_control::ProviderStatus::Unhealthy { reason } => {
                        format!("unhealthy: {reason}")
                    }
                };
                vec![
                    "provider".into(),
                    p.id.to_string(),
                    p.image_ref.clone().unwrap_or_default(),
                    status,
                ]
            }));
            rows.extend(inventory.pending_components.iter().map(|c| {
                let status = match &c.state {
                    trellis_control::PendingState::Starting { since } => {
                        format!("starting since {since} (fetching and compiling)")
                    }
                    trellis_control::PendingState::Failed { reason } => {
                        format!("failed to start: {reason}")
                    }
                };
                vec![
                    "component".into(),
                    c.id.to_string(),
                    c.image_ref.clone(),
                    status,
                ]
            }));
            print_table(&["KIND", "ID", "IMAGE", "STATUS"], rows)
        }
        Get::Links => {
            let links = client.links().await?;
            if json {
                return print_json(&links);
            }
            print_table(
                &["SOURCE", "TARGET", "INTERFACES", "NAME"],
                links
                    .iter()
                    .map(|l| {
                        vec![
                            l.source_id.to_string(),
                            l.target.to_string(),
                            format!(
                                "{}:{}/{}",
                                l.wit_namespace,
                                l.wit_package,
                                l.interfaces.join(",")
                            ),
                            l.name.to_string(),
                        ]
                    })
                    .collect(),
            )
        }
        Get::Claims => {
            let claims = client.claims().await?;
            if json {
                return print_json(&claims);
            }
            let field =
                |c: &BTreeMap<String, String>, key: &str| c.get(key).cloned().unwrap_or_default();
            print_table(
                &["SUBJECT", "NAME", "VERSION", "ISSUER"],
                claims
                    .iter()
                    .map(|c| {
                        vec![
                            field(c, "subject"),
                            field(c, "name"),
                            field(c, "version"),
                            field(c, "issuer"),
                        ]
                    })
                    .collect(),
            )
        }
        Get::Config { name } => config(args, None, ConfigCmd::Get { name }).await,
    }
}

/// Where `trellis config` reads and writes: the lattice (or a running `trellis up`), or with
/// `--local DIR` the named config file of the `trellis up` project in `DIR`, which its host
/// reads when it starts (a running one does not see later changes: use `--embedded`).
enum ConfigStore {
    Lattice(Box<CtlClient>),
    Local {
        state: trellis_lattice::state::LatticeState,
        file: PathBuf,
    },
}

impl ConfigStore {
    async fn put(&self, name: &str, values: &BTreeMap<String, String>) -> anyhow::Result<()> {
        match self {
            Self::Lattice(client) => client.put_config(name, values).await?,
            Self::Local { state, .. } => state.put_config(name, values).await?,
        }
        Ok(())
    }

    async fn get(&self, name: &str) -> anyhow::Result<Option<BTreeMap<String, String>>> {
        Ok(match self {
            Self::Lattice(client) => client.get_config(name).await?,
            Self::Local { state, .. } => state.get_config(name).await?,
        })
    }

    async fn delete(&self, name: &str) -> anyhow::Result<()> {
        match self {
            Self::Lattice(client) => client.delete_config(name).await?,
            Self::Local { state, .. } => state.delete_config(name).await?,
        }
        Ok(())
    }
}

pub(crate) async fn config(
    args: &LatticeArgs,
    local: Option<&Path>,
    cmd: ConfigCmd,
) -> anyhow::Result<()> {
    let store = match local {
        Some(dir) => {
            let file = dir.join(".trellis/config.json");
            let state = trellis_lattice::state::LatticeState::local(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            ConfigStore::Local { state, file }
        }
        None => ConfigStore::Lattice(Box::new(connect(args).await?)),
    };
    match cmd {
        ConfigCmd::Put { name, values } => {
            store.put(&name, &values.into_iter().collect()).await?;
            match &store {
                ConfigStore::Lattice(_) => eprintln!("config `{name}` set"),
                ConfigStore::Local { file, .. } => eprintln!(
                    "config `{name}` set in {} (a running `trellis up` reads it when it starts)",
                    file.display()
                ),
            }
        }
        ConfigCmd::Get { name } => match store.get(&name).await? {
            None => match &store {
                ConfigStore::Lattice(_) => {
                    anyhow::bail!("no config named `{name}` on lattice `{}`", args.lattice)
                }
                ConfigStore::Local { file, .. } => {
                    anyhow::bail!("no config named `{name}` in {}", file.display())
                }
            },
            Some(values) if args.output == Output::Json => print_json(&values)?,
            Some(values) => {
                for (k, v) in values {
                    println!("{k}={v}");
                }
            }
        },
        ConfigCmd::Del { name } => {
            store.delete(&name).await?;
            match &store {
                ConfigStore::Lattice(_) => eprintln!("config `{name}` deleted"),
                ConfigStore::Local { file, .. } => {
                    eprintln!("config `{name}` deleted from {}", file.display())
                }
            }
        }
    }
    Ok(())
}

pub(crate) async fn label(args: &LatticeArgs, cmd: LabelCmd) -> anyhow::Result<()> {
    let client = connect(args).await?;
    match cmd {
        LabelCmd::Put {
            host,
            label: (k, v),
        } => {
            let id = resolve_host(&client, Some(&host)).await?;
            client.put_label(&id, &k, &v).await?;
        }
        LabelCmd::Del { host, key } => {
            let id = resolve_host(&client, Some(&host)).await?;
            client.delete_label(&id, &key).await?;
        }
    }
    Ok(())
}

pub(crate) async fn link(args: &LatticeArgs, cmd: LinkCmd) -> anyhow::Result<()> {
    let client = connect(args).await?;
    match cmd {
        LinkCmd::Put {
            source,
            target,
            interfaces,
            name,
            source_config,
            target_config,
        } => {
            let (wit_namespace, wit_package, interfaces) = parse_interfaces(&interfaces)?;
            client
                .put_link(&Link {
                    source_id: source.into(),
                    target: target.into(),
                    name: LinkName::new(name),
                    wit_namespace,
                    wit_package,
                    interfaces,
                    source_config,
                    target_config,
                })
                .await?;
        }
        LinkCmd::Del {
            source,
            package,
            name,
        } => {
            let (ns, pkg) = parse_package(&package)?;
            client
                .delete_link(DeleteLink {
                    source_id: source.into(),
                    name: LinkName::new(name),
                    wit_namespace: ns,
                    wit_package: pkg,
                })
                .await?;
        }
    }
    Ok(())
}

pub(crate) async fn start(args: &LatticeArgs, cmd: StartCmd) -> anyhow::Result<()> {
    let client = connect(args).await?;
    match cmd {
        StartCmd::Component {
            reference,
            id,
            host,
            count,
            config,
        } => {
            let host = resolve_host(&client, host.as_deref()).await?;
            client
                .scale_component(
                    &host,
                    &ComponentId::new(id.clone()),
                    &reference,
                    count,
                    &config,
                )
                .await?;
            eprintln!(
                "component `{id}` accepted by host {host}; `trellis events` shows component_scaled or why it failed"
            );
        }
        StartCmd::Provider {
            reference,
            id,
            host,
            config,
        } => {
            let host = resolve_host(&client, host.as_deref()).await?;
            client
                .start_provider(&host, &ProviderId::new(id.clone()), &reference, &config)
                .await?;
            eprintln!("provider `{id}` accepted by host {host}");
        }
    }
    Ok(())
}

pub(crate) async fn scale(args: &LatticeArgs, cmd: ScaleCmd) -> anyhow::Result<()> {
    let client = connect(args).await?;
    let ScaleCmd::Component {
        id,
        reference,
        count,
        host,
    } = cmd;
    let host = resolve_host(&client, host.as_deref()).await?;
    let reference = match reference {
        Some(r) => r,
        None => client
            .inventory(&host)
            .await?
            .components
            .into_iter()
            .find(|c| c.id.as_str() == id)
            .map(|c| c.image_ref)
            .with_context(|| {
                format!("component `{id}` does not run on host {host}; pass --ref to start it")
            })?,
    };
    client
        .scale_component(&host, &ComponentId::new(id.clone()), &reference, count, &[])
        .await?;
    eprintln!("component `{id}` scale to {count} accepted by host {host}");
    Ok(())
}

pub(crate) async fn stop(args: &LatticeArgs, cmd: StopCmd) -> anyhow::Result<()> {
    let client = connect(args).await?;
    match cmd {
        StopCmd::Host { host } => {
            let id = resolve_host(&client, Some(&host)).await?;
            client.stop_host(&id).await?;
            eprintln!("host {id} is stopping");
        }
        StopCmd::Component { id, host } => {
            let running = hosts_running(&client, Kind::Component, &id, host.as_deref()).await?;
            on_each(&running, &format!("stop component `{id}`"), |host, image| {
                let (client, id) = (&client, &id);
                async move {
                    client
                        .scale_component(&host, &ComponentId::new(id.clone()), &image, 0, &[])
                        .await?;
                    eprintln!(
                        "component `{id}` stop accepted by host {host}; `trellis events` shows component_scaled with max_instances 0"
                    );
                    Ok(())
                }
            })
            .await?;
        }
        StopCmd::Provider { id, host } => {
            let running = hosts_running(&client, Kind::Provider, &id, host.as_deref()).await?;
            on_each(&running, &format!("stop provider `{id}`"), |host, _| {
                let (client, id) = (&client, &id);
                async move {
                    client
                        .stop_provider(&host, &ProviderId::new(id.clone()))
                        .await?;
                    eprintln!(
                        "provider `{id}` stop accepted by host {host}; `trellis events` shows provider_stopped"
                    );
                    Ok(())
                }
            })
            .await?;
        }
    }
    Ok(())
}

pub(crate) async fn update(args: &LatticeArgs, cmd: UpdateCmd) -> anyhow::Result<()> {
    let client = connect(args).await?;
    let UpdateCmd::Component {
        id,
        reference,
        host,
    } = cmd;
    // Like `start component`, REF goes to the host as given; the host checks it.
    let running = hosts_running(&client, Kind::Component, &id, host.as_deref()).await?;
    on_each(&running, &format!("update component `{id}`"), |host, _| {
        let (client, id, reference) = (&client, &id, &reference);
        async move {
            client
                .update_component(&host, &ComponentId::new(id.clone()), reference)
                .await?;
            eprintln!(
                "component `{id}` update to {reference} accepted by host {host}; `trellis events` shows component_scaled with the new image_ref or why it failed"
            );
            Ok(())
        }
    })
    .await
}

/// Streams events, one line each, until interrupted.
pub(crate) async fn events(args: &LatticeArgs) -> anyhow::Result<()> {
    let client = connect(args).await?;
    let mut events = Box::pin(client.events().await?);
    while let Some(event) = events.next().await {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", event_line(&event, args.output))?;
        out.flush()?;
    }
    eprintln!("the event stream ended");
    Ok(())
}

/// One event as `trellis events` prints it (and `trellis repl` above its prompt):
/// `TIME NAME SOURCE DATA`, or the CloudEvent as one line of JSON.
pub(crate) fn event_line(event: &trellis_control::CloudEvent, output: Output) -> String {
    match output {
        Output::Json => serde_json::to_string(event).unwrap_or_default(),
        Output::Text => format!(
            "{} {} {} {}",
            event.time,
            event.name(),
            event.source,
            event.data
        ),
    }
}

/// Labels the host as draining, waits until the reconciler has moved every workload it
/// manages off it (placing them elsewhere first), then stops the host.
pub(crate) async fn drain(args: &LatticeArgs, host: &str) -> anyhow::Result<()> {
    let client = connect(args).await?;
    let id = resolve_host(&client, Some(host)).await?;
    client
        .put_label(&id, trellis_host::DRAINING_LABEL, "true")
        .await?;
    eprintln!("host {id} is draining: the reconciler moves its workloads to other hosts");
    let managed = |annotations: &BTreeMap<String, String>| {
        annotations
            .get("wasmcloud.dev/managed-by")
            .map(String::as_str)
            == Some("wadm")
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let inventory = client.inventory(&id).await?;
        let left: Vec<String> = inventory
            .components
            .iter()
            .filter(|c| managed(&c.annotations))
            .map(|c| c.id.to_string())
            .chain(
                inventory
                    .providers
                    .iter()
                    .filter(|p| managed(&p.annotations))
                    .map(|p| p.id.to_string()),
            )
            .collect();
        if left.is_empty() {
            let unmanaged: Vec<String> = inventory
                .components
                .iter()
                .map(|c| c.id.to_string())
                .collect();
            if !unmanaged.is_empty() {
                eprintln!(
                    "not moved (not deployed as an app), stopping with the host: {}",
                    unmanaged.join(", ")
                );
            }
            break;
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!(
                "host {id} still runs {} after 120s: is a reconciler running (`trellis app list`), and can another host take them (see `trellis app status`)? The host keeps running, labelled {}=true",
                left.join(", "),
                trellis_host::DRAINING_LABEL
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    client.stop_host(&id).await?;
    eprintln!("host {id} drained and stopping");
    Ok(())
}

/// `trellis call`'s arguments.
#[derive(Args)]
pub(crate) struct CallArgs {
    /// The component's id (`trellis get inventory` lists them).
    component: String,
    /// The function: `namespace:package/interface[@version].function`, for example
    /// `wasmcloud:examples/invoke.call`, or the name of a function the component exports at
    /// the level of its world.
    function: String,
    /// One value per parameter, each as JSON (`'"text"'`, `'{"x": 1}'`, `null`) or as WAVE
    /// (`'{x: 1}'`, `red`, `some(3)`, `ok("done")`); the host reads them against the
    /// function's types. Put `--` before a value that starts with `-` and is not a number.
    #[arg(allow_negative_numbers = true)]
    args: Vec<String>,
    /// The host to run it on (id, id prefix or friendly name) [default: a host that runs it].
    #[arg(long)]
    host: Option<String>,
    /// Print a string result as its text (lines and all) rather than as a quoted WAVE string.
    #[arg(long)]
    raw: bool,
}

/// Calls a function a running component exports and prints what it returned: WAVE for
/// people, one value per line (nothing for a function without results); `-o json` prints
/// the value as JSON (`null` for none).
pub(crate) async fn call(args: &LatticeArgs, call: CallArgs) -> anyhow::Result<()> {
    let client = connect(args).await?;
    let host_id = if args.is_embedded()? {
        // The one host answers, and says what it runs when the component is not among them.
        resolve_host(&client, None).await?
    } else {
        let running = hosts_running(
            &client,
            Kind::Component,
            &call.component,
            call.host.as_deref(),
        )
        .await?;
        running
            .into_iter()
            .next()
            .map(|(host, _)| host)
            .context("no host runs the component")?
    };
    let request = trellis_control::ctl::CallComponent {
        host_id,
        component_id: ComponentId::new(call.component),
        function: call.function,
        args: call.args,
    };
    let reply = match client.call(request).await {
        Ok(reply) => reply,
        // The host's explanation is the whole story.
        Err(trellis_lattice::client::CtlError::Refused(message)) => anyhow::bail!("{message}"),
        Err(e) => return Err(e.into()),
    };
    if args.output == Output::Json {
        let mut values: Vec<serde_json::Value> =
            reply.results.into_iter().map(|r| r.json).collect();
        return match values.len() {
            0 => print_json(&serde_json::Value::Null),
            1 => print_json(&values.remove(0)),
            _ => print_json(&values),
        };
    }
    let mut out = std::io::stdout().lock();
    for result in &reply.results {
        match (&result.json, call.raw) {
            (serde_json::Value::String(text), true) => writeln!(out, "{text}")?,
            _ => writeln!(out, "{}", result.wave)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_lists_parse_and_bad_ones_say_the_form() {
        let (ns, pkg, list) = parse_interfaces("wasi:keyvalue/store,atomics").expect("parse");
        assert_eq!(
            (ns.as_str(), pkg.as_str(), list),
            (
                "wasi",
                "keyvalue",
                vec!["store".to_owned(), "atomics".to_owned()]
            )
        );
        assert!(
            parse_interfaces("wasi:keyvalue")
                .expect_err("no interfaces")
                .to_string()
                .contains("namespace:package/")
        );
        assert!(parse_interfaces("keyvalue/store").is_err());
        assert_eq!(parse_pair("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_pair("novalue").is_err());
    }
}
