//! `trellis claims`: signing components and reading their signatures, in the format
//! wasmCloud v1 and `wash claims` use (the `trellis-claims` crate); and the hosts'
//! `--allowed-issuers`.

use crate::ctl::{Output, print_json};
use crate::units::parse_duration;
use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use trellis_claims::{HashCheck, KeyPair, Policy, SignOptions, timestamp};

#[derive(Subcommand)]
pub(crate) enum ClaimsCmd {
    /// Sign a component: embed claims issued by an account key, as `wash claims sign` does.
    Sign(Box<SignArgs>),
    /// Show a component's claims and whether they check out (signature, hash, dates).
    Inspect(InspectArgs),
    /// Make a key: an account key signs components (`--issuer-key`), a module key is a
    /// component's identity (`--subject-key`).
    Keygen(KeygenArgs),
}

#[derive(Args)]
pub(crate) struct SignArgs {
    /// The component (.wasm) to sign.
    component: PathBuf,

    /// The issuer's account seed (`SA…`), or a file holding it (`trellis claims keygen
    /// account --output FILE` writes one).
    #[arg(long, env = "TRELLIS_ISSUER_KEY", hide_env_values = true)]
    issuer_key: String,

    /// The component's module seed (`SM…`), or a file holding it [default: a new module key
    /// each time, so the signed component has a new identity; give one to keep it].
    #[arg(long, env = "TRELLIS_SUBJECT_KEY", hide_env_values = true)]
    subject_key: Option<String>,

    /// Where to write the signed component [default: FILE_s.wasm beside it, as wash does;
    /// the component's own path signs it in place].
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,

    /// The name in the claims [default: the file's name without `.wasm`].
    #[arg(long)]
    name: Option<String>,

    /// A version for people (e.g. 1.2.0).
    #[arg(long = "ver")]
    version: Option<String>,

    /// A revision number.
    #[arg(long = "rev")]
    revision: Option<i32>,

    /// A tag; repeat for more (or comma-separated).
    #[arg(long = "tag", value_delimiter = ',')]
    tags: Vec<String>,

    /// wasmCloud's call alias.
    #[arg(long)]
    call_alias: Option<String>,

    /// The claims expire this long from now (e.g. 30d, 12h) [default: never].
    #[arg(long, value_parser = parse_span, conflicts_with = "expires_at")]
    expires_in: Option<u64>,

    /// The claims expire at this time (RFC 3339, e.g. 2030-01-01T00:00:00Z).
    #[arg(long, value_parser = parse_time)]
    expires_at: Option<u64>,

    /// The claims are valid only from this long from now (e.g. 1h) [default: at once].
    #[arg(long, value_parser = parse_span, conflicts_with = "not_before")]
    valid_in: Option<u64>,

    /// The claims are valid only from this time on (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    not_before: Option<u64>,
}

#[derive(Args)]
pub(crate) struct InspectArgs {
    /// The component (.wasm).
    component: PathBuf,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum KeyKind {
    /// An issuer: signs components (seed `SA…`, public key `A…`).
    Account,
    /// A component's identity, the claims' subject (seed `SM…`, public key `M…`).
    Module,
}

#[derive(Args)]
pub(crate) struct KeygenArgs {
    /// Which kind of key.
    #[arg(value_enum)]
    kind: KeyKind,

    /// Write the seed to this file (readable by its owner only) and print only the public
    /// key [default: print both].
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,

    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
}

/// Which components a host runs: `--allowed-issuers`, shared by `trellis up` and
/// `trellis host`.
#[derive(Args)]
pub(crate) struct SignedComponentArgs {
    /// Run only components signed by one of these issuers (account public keys `A…`,
    /// comma-separated) whose signature is valid, unexpired and matches their code; refuse
    /// unsigned ones [default: run any component].
    #[arg(long, env = "TRELLIS_ALLOWED_ISSUERS", value_delimiter = ',')]
    allowed_issuers: Vec<String>,
}

impl SignedComponentArgs {
    /// The host's policy.
    pub(crate) fn policy(&self) -> anyhow::Result<Policy> {
        if self.allowed_issuers.iter().all(|k| k.trim().is_empty()) {
            return Ok(Policy::Any);
        }
        Policy::allowed_issuers(&self.allowed_issuers).context(
            "--allowed-issuers takes account public keys (`A…`, 56 characters), as `trellis claims keygen account` or `wash keys gen account` print them",
        )
    }
}

pub(crate) fn run(cmd: ClaimsCmd) -> anyhow::Result<()> {
    match cmd {
        ClaimsCmd::Sign(args) => sign(*args),
        ClaimsCmd::Inspect(args) => inspect(args),
        ClaimsCmd::Keygen(args) => keygen(args),
    }
}

fn sign(args: SignArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.component)
        .with_context(|| format!("cannot read {}", args.component.display()))?;
    let issuer = key(&args.issuer_key, "--issuer-key")?;
    let subject = match &args.subject_key {
        Some(text) => key(text, "--subject-key")?,
        None => KeyPair::new_module(),
    };
    let now = now();
    let options = SignOptions {
        name: args.name.clone().unwrap_or_else(|| stem(&args.component)),
        version: args.version.clone(),
        revision: args.revision,
        tags: args
            .tags
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect(),
        call_alias: args.call_alias.clone(),
        not_before: args.not_before.or(args.valid_in.map(|s| now + s)),
        expires: args.expires_at.or(args.expires_in.map(|s| now + s)),
    };
    if let Some(expires) = options.expires.filter(|e| *e < now) {
        eprintln!(
            "warning: these claims expired already ({}); hosts with --allowed-issuers will refuse the component",
            timestamp(expires)
        );
    }
    let signed = trellis_claims::sign(&bytes, &issuer, &subject, &options)
        .with_context(|| format!("cannot sign {}", args.component.display()))?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| signed_path(&args.component));
    write_atomically(&output, &signed)?;
    println!("signed {}", output.display());
    println!("issuer   {}", issuer.public_key());
    println!("subject  {}", subject.public_key());
    Ok(())
}

/// `build/app.wasm` → `build/app_s.wasm`, wash's name for a signed copy.
fn signed_path(component: &Path) -> PathBuf {
    component.with_file_name(format!("{}_s.wasm", stem(component)))
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "component".to_owned())
}

/// Writes beside the target and renames, so a component signed in place is never half
/// written.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// A key pair from a seed, or from a file holding one (its first non-empty line).
fn key(text: &str, flag: &str) -> anyhow::Result<KeyPair> {
    let text = text.trim();
    if text.starts_with('S') && !Path::new(text).exists() {
        return KeyPair::from_seed(text)
            .with_context(|| format!("{flag} is not a valid nkey seed"));
    }
    let contents = std::fs::read_to_string(text).with_context(|| {
        format!("{flag}: `{text}` is neither a seed (`S…`) nor a readable file holding one")
    })?;
    let seed = contents
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    KeyPair::from_seed(seed).with_context(|| format!("{flag}: {text} does not hold an nkey seed"))
}

fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let path = &args.component;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let inspected = trellis_claims::inspect(&bytes)
        .with_context(|| format!("cannot read the claims of {}", path.display()))?;
    let Some(inspected) = inspected else {
        match args.output {
            Output::Json => print_json(&serde_json::json!({"signed": false}))?,
            Output::Text => println!("{} is not signed", path.display()),
        }
        return Ok(());
    };
    let problem = inspected.refusal();
    if args.output == Output::Json {
        let mut value = serde_json::to_value(&inspected)?;
        if let Some(map) = value.as_object_mut() {
            map.insert("signed".into(), true.into());
            map.insert(
                "problem".into(),
                problem.as_ref().map(ToString::to_string).into(),
            );
        }
        return print_json(&value);
    }
    let c = &inspected.claims;
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    let mut rows = vec![
        ("component", path.display().to_string()),
        ("issuer", c.issuer.clone()),
        ("subject", c.subject.clone()),
        ("name", or_none(&c.name)),
        ("version", or_none(&c.version)),
        (
            "revision",
            c.revision.map_or_else(|| "-".to_owned(), |r| r.to_string()),
        ),
        (
            "tags",
            if c.tags.is_empty() {
                "-".to_owned()
            } else {
                c.tags.join(", ")
            },
        ),
        ("issued", timestamp(c.issued_at)),
        (
            "not before",
            match c.not_before {
                None => "immediately".to_owned(),
                Some(t) if inspected.not_yet_valid => format!("{} (not valid yet)", timestamp(t)),
                Some(t) => timestamp(t),
            },
        ),
        (
            "expires",
            match c.expires {
                None => "never".to_owned(),
                Some(t) if inspected.expired => format!("{} (expired)", timestamp(t)),
                Some(t) => timestamp(t),
            },
        ),
        (
            "hash",
            match inspected.hash {
                HashCheck::Matches => format!("matches ({})", c.hash),
                HashCheck::Mismatch => "MISMATCH: the component was modified after signing".into(),
                HashCheck::NotRecorded => "not recorded (signed by an old wascap)".into(),
            },
        ),
        (
            "signature",
            if inspected.signature_valid {
                "valid".to_owned()
            } else {
                "INVALID".to_owned()
            },
        ),
    ];
    if let Some(alias) = &c.call_alias {
        rows.insert(7, ("call alias", alias.clone()));
    }
    for (label, value) in rows {
        println!("{label:<11}{value}");
    }
    match problem {
        None => println!("verdict    ok"),
        Some(p) => println!("verdict    refused by hosts with --allowed-issuers: {p}"),
    }
    Ok(())
}

fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let key = match args.kind {
        KeyKind::Account => KeyPair::new_account(),
        KeyKind::Module => KeyPair::new_module(),
    };
    let seed = key.seed().context("cannot encode the new key's seed")?;
    match &args.output {
        None => {
            println!("public {}", key.public_key());
            println!("seed   {seed}");
        }
        Some(path) => {
            if path.exists() && !args.force {
                anyhow::bail!(
                    "{} exists; pass --force to replace it (whatever it signed stays signed by the old key)",
                    path.display()
                );
            }
            write_secret(path, &format!("{seed}\n"))?;
            println!("{}", key.public_key());
        }
    }
    Ok(())
}

/// Writes a seed readable by its owner only.
fn write_secret(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A span such as `30d` or `12h`, in seconds.
fn parse_span(s: &str) -> Result<u64, String> {
    parse_duration(s).map(|d| d.as_secs())
}

/// An RFC 3339 time, in seconds since the Unix epoch.
fn parse_time(s: &str) -> Result<u64, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| u64::try_from(t.unix_timestamp()).ok())
        .ok_or_else(|| format!("`{s}` is not an RFC 3339 time such as 2030-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_copies_are_named_as_wash_names_them() {
        assert_eq!(
            signed_path(Path::new("build/hello.wasm")),
            Path::new("build/hello_s.wasm")
        );
        assert_eq!(parse_time("1970-01-01T00:01:00Z"), Ok(60));
        assert!(parse_time("tomorrow").is_err());
        assert_eq!(parse_span("2d"), Ok(2 * 86400));
    }
}
