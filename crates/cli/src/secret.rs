//! `trellis secret put|del|list|keygen`: the lattice's secrets (or, with `--local`, the
//! secret store of a `trellis up` project folder). A value is read from stdin or a file,
//! sealed on this machine to the lattice's public secrets key, and only then sent: no host,
//! log or bucket ever sees it in clear, and no command prints it.

use crate::ctl::{LatticeArgs, Output, connect, print_json, print_table};
use anyhow::Context as _;
use clap::Subcommand;
use std::io::Read as _;
use std::path::PathBuf;
use trellis_control::CtlRequest;
use trellis_control::secret::{SecretInfo, SecretValue};
use trellis_lattice::secrets::{SecretStore, SecretsKey, check_name, seal};

#[derive(Subcommand)]
pub(crate) enum SecretCmd {
    /// Stores a secret: the value is read from stdin (one trailing newline dropped) or
    /// --file, sealed here to the lattice's secrets key, and never printed.
    Put {
        name: String,
        /// Read the value from this file (as is) instead of stdin.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Store the value as bytes, not text (components get `secret-value::bytes`).
        #[arg(long)]
        binary: bool,
    },
    /// Deletes a secret.
    Del { name: String },
    /// Lists the stored secrets: names, versions and when they were put, never values.
    List,
    /// Prints a new secrets key seed: give it to every host of a lattice as
    /// TRELLIS_SECRETS_KEY (or --secrets-key), and keep it safe.
    Keygen,
}

/// Where the secrets are: a lattice (or a running `trellis up`, with `--embedded`), or a
/// project folder's store, written directly.
enum Target {
    Lattice(Box<trellis_lattice::client::CtlClient>),
    Local(SecretStore),
}

pub(crate) async fn secret(
    args: &LatticeArgs,
    local: Option<PathBuf>,
    cmd: SecretCmd,
) -> anyhow::Result<()> {
    if let SecretCmd::Keygen = cmd {
        let key = SecretsKey::generate();
        println!("{}", key.seed());
        eprintln!(
            "public key {} (start every host of the lattice with TRELLIS_SECRETS_KEY set to the seed above)",
            key.public_key()
        );
        return Ok(());
    }
    let target = match local {
        Some(dir) => Target::Local(SecretStore::local(&dir.join(".trellis"))),
        None => Target::Lattice(Box::new(connect(args).await?)),
    };
    match cmd {
        SecretCmd::Keygen => unreachable!("handled above"),
        SecretCmd::Put { name, file, binary } => {
            check_name(&name)?;
            let value = read_value(file, binary)?;
            let version = match &target {
                Target::Local(store) => {
                    let public = store.public_key().await?;
                    store.put(&name, seal(&public, &value)?).await?
                }
                Target::Lattice(client) => {
                    let key: serde_json::Value = client
                        .request(&CtlRequest::GetSecretsKey)
                        .await?
                        .context("the host did not say which key to seal to")?;
                    let public = key["public_key"]
                        .as_str()
                        .context("the host's answer has no `public_key`")?;
                    let sealed = seal(public, &value)?;
                    let reply: serde_json::Value = client
                        .request(&CtlRequest::PutSecret {
                            name: name.clone(),
                            sealed,
                        })
                        .await?
                        .unwrap_or_default();
                    reply["version"].as_u64().unwrap_or_default()
                }
            };
            eprintln!("secret `{name}` stored (version {version})");
        }
        SecretCmd::Del { name } => {
            match &target {
                Target::Local(store) => {
                    if !store.delete(&name).await? {
                        anyhow::bail!("no secret `{name}` is stored");
                    }
                }
                Target::Lattice(client) => {
                    client
                        .command(&CtlRequest::DeleteSecret(name.clone()))
                        .await?
                }
            }
            eprintln!("secret `{name}` deleted");
        }
        SecretCmd::List => {
            let list: Vec<SecretInfo> = match &target {
                Target::Local(store) => store.list().await?,
                Target::Lattice(client) => client
                    .request(&CtlRequest::ListSecrets)
                    .await?
                    .unwrap_or_default(),
            };
            if args.output == Output::Json {
                print_json(&list)?;
            } else {
                print_table(
                    &["NAME", "VERSION", "UPDATED"],
                    list.into_iter()
                        .map(|s| vec![s.name, s.version.to_string(), s.updated])
                        .collect(),
                )?;
            }
        }
    }
    Ok(())
}

/// The value to store, from a file or stdin.
fn read_value(file: Option<PathBuf>, binary: bool) -> anyhow::Result<SecretValue> {
    let bytes = match &file {
        Some(path) => std::fs::read(path)
            .with_context(|| format!("cannot read the secret from {}", path.display()))?,
        None => {
            use std::io::IsTerminal as _;
            if std::io::stdin().is_terminal() {
                eprintln!("value (end with Enter):");
            }
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read the secret from stdin")?;
            // `echo value | trellis secret put NAME` should not store the newline.
            if bytes.ends_with(b"\n") {
                bytes.pop();
                if bytes.ends_with(b"\r") {
                    bytes.pop();
                }
            }
            bytes
        }
    };
    if bytes.is_empty() {
        anyhow::bail!(
            "the secret is empty: pipe the value in (`printf %s VALUE | trellis secret put NAME`) or pass --file"
        );
    }
    if binary {
        return Ok(SecretValue::Bytes(bytes));
    }
    String::from_utf8(bytes)
        .map(SecretValue::String)
        .map_err(|_| {
            anyhow::anyhow!("the secret is not UTF-8 text; pass --binary to store it as bytes")
        })
}
