//! `trellis creds init DIR --lattice NAME`: a NATS server configuration for one lattice and
//! a credential file for each role ([`trellis_lattice::access`]): `host.creds`,
//! `admin.creds`, `rpc.creds`.
//!
//! The server runs in operator mode: an operator (its JWT in `operator.jwt`), a system
//! account, and one account for the lattice with JetStream, preloaded into a memory
//! resolver; each credential is a user of the lattice's account whose JWT carries its
//! role's permissions. The operator's and accounts' seeds are used once and never written:
//! running the command again (with `--force`) makes a new set.

mod jwt;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use nkeys::KeyPair;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use trellis_lattice::access::{self, Role};

#[derive(Subcommand)]
pub(crate) enum CredsCmd {
    /// Writes DIR/nats-server.conf and DIR/{host,admin,rpc}.creds for one lattice.
    Init(InitArgs),
}

#[derive(Args)]
pub(crate) struct InitArgs {
    /// The folder to write into (created if missing).
    dir: PathBuf,

    /// The lattice the credentials are for.
    #[arg(long, env = "TRELLIS_LATTICE", default_value = "default")]
    lattice: String,

    /// The port the server listens on for clients.
    #[arg(long, default_value_t = 4222)]
    port: u16,

    /// The port the server listens on for leaf nodes (0: no leaf nodes).
    #[arg(long, default_value_t = 7422)]
    leaf_port: u16,

    /// The server's JetStream domain, which hosts behind a leaf node reach it by
    /// (`default_js_domain` in the leaf's configuration).
    #[arg(long, default_value = "hub")]
    js_domain: String,

    /// Replace files that are there already (every credential written before stops working
    /// once the server runs the new configuration).
    #[arg(long)]
    force: bool,
}

/// What each role's credential is for, as the command reports it.
fn purpose(role: Role) -> &'static str {
    match role {
        Role::Host => {
            "`trellis host --ctl-creds` (control, events, lattice state in JetStream, calls)"
        }
        Role::Admin => "the CLI and wadm-era clients (control requests, the wadm API, events)",
        Role::Rpc => "`--rpc-creds`: calls between components only",
    }
}

/// A string as a quoted value of the NATS configuration format.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Writes `contents` to `path`, readable by its owner only when it holds a secret.
fn write_file(path: &Path, contents: &str, secret: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The server configuration: ports, JetStream, the operator and the preloaded accounts.
fn server_config(
    args: &InitArgs,
    dir: &Path,
    system: (&str, &str),
    lattice: (&str, &str),
) -> String {
    let leaf = if args.leaf_port == 0 {
        String::new()
    } else {
        format!(
            "\n# Leaf nodes authenticate with a credential too (docs/security.md#leaf-nodes).\n\
             leafnodes {{\n  port: {}\n}}\n",
            args.leaf_port
        )
    };
    format!(
        "# NATS server for Trellis lattice `{name}`, written by `trellis creds init`.\n\
         # Start it with: nats-server -c {config}\n\
         # Who may do what: docs/security.md. Clients without a credential are refused.\n\
         \n\
         port: {port}\n\
         # A client's CONNECT carries its JWT, and host.creds's permissions make it longer\n\
         # than the default limit of 4KB.\n\
         max_control_line: 32768\n\
         \n\
         jetstream {{\n  store_dir: {store}\n  domain: {domain}\n}}\n\
         {leaf}\
         \n\
         operator: {operator}\n\
         system_account: {system_key}\n\
         resolver: MEMORY\n\
         resolver_preload: {{\n  \
         # SYS\n  {system_key}: {system_jwt}\n  \
         # lattice {name}\n  {lattice_key}: {lattice_jwt}\n\
         }}\n",
        name = args.lattice,
        config = dir.join("nats-server.conf").display(),
        port = args.port,
        store = quoted(&dir.join("jetstream").display().to_string()),
        domain = quoted(&args.js_domain),
        operator = quoted(&dir.join("operator.jwt").display().to_string()),
        system_key = system.0,
        system_jwt = quoted(system.1),
        lattice_key = lattice.0,
        lattice_jwt = quoted(lattice.1),
    )
}

pub(crate) fn run(cmd: CredsCmd) -> anyhow::Result<()> {
    let CredsCmd::Init(args) = cmd;
    crate::host::check_lattice_name(&args.lattice)?;
    anyhow::ensure!(
        !args.js_domain.is_empty()
            && args
                .js_domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        "--js-domain `{}`: use letters, digits, `_` and `-` only",
        args.js_domain
    );
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    // The configuration names files by absolute path: the server may start anywhere.
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("cannot find {}", args.dir.display()))?;
    let files: Vec<PathBuf> = ["nats-server.conf", "operator.jwt"]
        .into_iter()
        .map(str::to_owned)
        .chain(Role::ALL.iter().map(|r| format!("{}.creds", r.name())))
        .map(|f| dir.join(f))
        .collect();
    if !args.force
        && let Some(existing) = files.iter().find(|f| f.exists())
    {
        anyhow::bail!(
            "{} exists already; pass --force to replace it (credentials written before stop working)",
            existing.display()
        );
    }

    let operator = KeyPair::new_operator();
    let system = KeyPair::new_account();
    let lattice = KeyPair::new_account();
    let operator_jwt = jwt::operator(&operator, "trellis", &system.public_key())?;
    let system_jwt = jwt::account(&operator, &system, "SYS", false)?;
    let lattice_jwt = jwt::account(&operator, &lattice, &args.lattice, true)?;

    write_file(&dir.join("operator.jwt"), &operator_jwt, false)?;
    let mut out = std::io::stdout().lock();
    for role in Role::ALL {
        let permissions = access::permissions(role, &args.lattice);
        let user = KeyPair::new_user();
        let user_jwt = jwt::user(
            &lattice,
            &user,
            &format!("{}-{}", args.lattice, role.name()),
            &permissions.publish,
            &permissions.subscribe,
            permissions.allow_responses,
        )?;
        let seed = user
            .seed()
            .map_err(|e| anyhow::anyhow!("cannot write a user's seed: {e}"))?;
        let path = dir.join(format!("{}.creds", role.name()));
        write_file(&path, &jwt::creds_file(&user_jwt, &seed), true)?;
        writeln!(out, "wrote {} for {}", path.display(), purpose(role))?;
    }
    let config = dir.join("nats-server.conf");
    write_file(
        &config,
        &server_config(
            &args,
            &dir,
            (&system.public_key(), &system_jwt),
            (&lattice.public_key(), &lattice_jwt),
        ),
        false,
    )?;
    writeln!(
        out,
        "wrote {} (lattice {}, clients on port {}{})",
        config.display(),
        args.lattice,
        args.port,
        if args.leaf_port == 0 {
            String::new()
        } else {
            format!(", leaf nodes on port {}", args.leaf_port)
        }
    )?;
    writeln!(
        out,
        "start the server with: nats-server -c {}",
        config.display()
    )?;
    Ok(())
}
