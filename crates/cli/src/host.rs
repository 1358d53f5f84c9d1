//! `trellis host`: a host that joins a lattice over NATS and serves the control interface.

use crate::units::Span;
use crate::{CacheArgs, LimitArgs, defaults, host_config, shutdown_signal};
use anyhow::Context as _;
use clap::Args;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use trellis_host::{Host, HostConfig};
use trellis_lattice::{Connections, Lattice, NatsOptions};

#[derive(Args)]
pub(crate) struct HostArgs {
    /// NATS server URL(s) for both connections, comma-separated.
    #[arg(long, env = "TRELLIS_NATS", default_value = "nats://127.0.0.1:4222")]
    nats: String,

    /// Credentials file (JWT and nkey seed) for both connections.
    #[arg(long, env = "TRELLIS_NATS_CREDS")]
    nats_creds: Option<PathBuf>,

    /// NATS URL for the control connection (control interface and events) [default: --nats].
    #[arg(long, env = "TRELLIS_CTL_NATS")]
    ctl_nats: Option<String>,

    /// Credentials file for the control connection (`host.creds` from `trellis creds init`)
    /// [default: --nats-creds, else --rpc-creds].
    #[arg(long, env = "TRELLIS_CTL_CREDS")]
    ctl_creds: Option<PathBuf>,

    /// NATS URL for the RPC connection (calls between hosts) [default: --nats].
    #[arg(long, env = "TRELLIS_RPC_NATS")]
    rpc_nats: Option<String>,

    /// Credentials file for the RPC connection (`rpc.creds` from `trellis creds init`)
    /// [default: --nats-creds, else --ctl-creds].
    #[arg(long, env = "TRELLIS_RPC_CREDS")]
    rpc_creds: Option<PathBuf>,

    /// PEM file of CA certificates to trust for TLS to NATS (both connections).
    #[arg(long, env = "TRELLIS_NATS_TLS_CA")]
    nats_tls_ca: Option<PathBuf>,

    /// Require TLS on both connections.
    #[arg(long, env = "TRELLIS_NATS_TLS")]
    nats_tls: bool,

    /// The lattice's secrets key seed (`trellis secret keygen`), which opens the secrets
    /// components and providers reference; every host of a lattice needs the same one.
    #[arg(long, env = "TRELLIS_SECRETS_KEY", hide_env_values = true)]
    secrets_key: Option<String>,

    /// The lattice to join; hosts and clients on the same name see each other.
    #[arg(long, env = "TRELLIS_LATTICE", default_value = "default")]
    lattice: String,

    /// Strict mode: answer a control or app request only when one of
    /// --trusted-control-keys signed it (recently, once); refuse every other one.
    #[arg(long, env = "TRELLIS_REQUIRE_SIGNED_CONTROL")]
    require_signed_control: bool,

    /// Public keys (`U…`, from `trellis control-key`) whose signatures strict mode accepts,
    /// comma-separated: the admins', and the hosts' own --control-key.
    #[arg(long, env = "TRELLIS_TRUSTED_CONTROL_KEYS", value_delimiter = ',')]
    trusted_control_keys: Vec<String>,

    /// How far a signed request's time may be from this host's clock.
    #[arg(long, default_value_t = Span(trellis_lattice::signing::DEFAULT_MAX_SKEW), env = "TRELLIS_MAX_CLOCK_SKEW")]
    max_clock_skew: Span,

    /// The key (a seed, or a file holding one) this host signs its own control requests
    /// with (its reconciler's), for lattices in strict mode.
    #[arg(long, env = "TRELLIS_CONTROL_KEY", hide_env_values = true)]
    control_key: Option<String>,

    /// A host label, KEY=VALUE; repeat for more (env: comma-separated).
    #[arg(long = "label", env = "TRELLIS_LABELS", value_delimiter = ',', value_parser = parse_label)]
    labels: Vec<(String, String)>,

    /// A name for people [default: generated from the host id].
    #[arg(long, env = "TRELLIS_FRIENDLY_NAME")]
    friendly_name: Option<String>,

    /// How often the host publishes `host_heartbeat` (e.g. 30s).
    #[arg(long, default_value_t = Span(defaults().heartbeat_interval), env = "TRELLIS_HEARTBEAT_INTERVAL")]
    heartbeat_interval: Span,

    /// How often the lattice's active reconciler (on one host at a time) compares deployed
    /// apps with what runs; its lease lapses after three intervals, and another host takes over.
    #[arg(long, default_value_t = Span(defaults().reconcile_interval), env = "TRELLIS_RECONCILE_INTERVAL")]
    reconcile_interval: Span,

    #[command(flatten)]
    limits: LimitArgs,

    #[command(flatten)]
    cache: CacheArgs,

    #[command(flatten)]
    signed: crate::claims::SignedComponentArgs,

    #[command(flatten)]
    pub(crate) observe: crate::observe::ObserveArgs,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("`{s}` has an empty key"));
    }
    if k.starts_with("hostcore.") {
        return Err(format!(
            "`{k}`: hostcore.* labels are set by the host itself"
        ));
    }
    Ok((k.to_owned(), v.trim().to_owned()))
}

/// The socket addresses of the NATS servers named by `urls` (each a comma-separated list
/// of `nats://host:port`, `tls://…` or `host:port`; port 4222 when none is given). Names
/// that do not resolve now are skipped.
pub(crate) async fn nats_addresses(urls: &[&str]) -> Vec<std::net::SocketAddr> {
    let mut out = Vec::new();
    for server in urls.iter().flat_map(|u| u.split(',')) {
        let server = server.trim();
        let rest = server.split_once("://").map_or(server, |(_, rest)| rest);
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let rest = rest.trim_end_matches('/');
        let with_port = if rest.rsplit_once(':').is_some_and(|(h, p)| {
            !h.ends_with(':') && p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty()
        }) {
            rest.to_owned()
        } else {
            format!("{rest}:4222")
        };
        if let Ok(found) = tokio::net::lookup_host(with_port.as_str()).await {
            out.extend(found);
        }
    }
    out
}

/// The credentials of the control and RPC connections: each its own, else the one for
/// both (`--nats-creds`), else the other's, so that one setting serves both when only one
/// is given.
pub(crate) fn pick_creds<'a>(
    ctl: Option<&'a PathBuf>,
    rpc: Option<&'a PathBuf>,
    both: Option<&'a PathBuf>,
) -> (Option<&'a PathBuf>, Option<&'a PathBuf>) {
    (ctl.or(both).or(rpc), rpc.or(both).or(ctl))
}

/// A control key given as a seed (`SU…`) or as a file holding one.
pub(crate) fn control_signer(value: &str) -> anyhow::Result<trellis_lattice::signing::Signer> {
    let value = value.trim();
    let seed = if value.starts_with('S') && !std::path::Path::new(value).exists() {
        value.to_owned()
    } else {
        std::fs::read_to_string(value)
            .with_context(|| format!("--control-key: cannot read the key file {value}"))?
    };
    trellis_lattice::signing::Signer::from_seed(&seed)
        .context("--control-key (TRELLIS_CONTROL_KEY)")
}

/// A lattice name ends up in NATS subjects.
pub(crate) fn check_lattice_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c == '.' || c == '>' || c == '*' || c.is_whitespace())
    {
        anyhow::bail!(
            "invalid lattice name `{name}`: it must be non-empty, without `.`, `>`, `*` or whitespace"
        );
    }
    Ok(())
}

pub(crate) async fn run(args: HostArgs) -> anyhow::Result<()> {
    check_lattice_name(&args.lattice)?;
    let options = |url: Option<&String>, creds: Option<&PathBuf>| NatsOptions {
        url: url.unwrap_or(&args.nats).clone(),
        creds: creds.cloned(),
        tls_ca: args.nats_tls_ca.clone(),
        tls_required: args.nats_tls,
    };
    let (ctl_creds, rpc_creds) = pick_creds(
        args.ctl_creds.as_ref(),
        args.rpc_creds.as_ref(),
        args.nats_creds.as_ref(),
    );
    let ctl = options(args.ctl_nats.as_ref(), ctl_creds);
    let rpc = options(args.rpc_nats.as_ref(), rpc_creds);
    let connections = Connections::connect(&ctl, Some(&rpc), "trellis host").await?;
    // No component may talk to the lattice's NATS servers through the HTTP client.
    let protected_addresses = nats_addresses(&[ctl.url.as_str(), rpc.url.as_str()]).await;

    let config = HostConfig {
        friendly_name: args.friendly_name.clone(),
        labels: args.labels.iter().cloned().collect::<BTreeMap<_, _>>(),
        heartbeat_interval: args.heartbeat_interval.0,
        reconcile_interval: args.reconcile_interval.0,
        http_reuse_port: true,
        control_verifier: if args.require_signed_control {
            Some(std::sync::Arc::new(
                trellis_lattice::signing::Verifier::new(
                    &args.trusted_control_keys,
                    args.max_clock_skew.0,
                )
                .context("--require-signed-control")?,
            ))
        } else {
            None
        },
        control_key: args
            .control_key
            .as_deref()
            .map(control_signer)
            .transpose()?
            .map(std::sync::Arc::new),
        protected_addresses,
        secrets_key: args
            .secrets_key
            .as_deref()
            .map(trellis_lattice::secrets::SecretsKey::from_seed)
            .transpose()
            .context("--secrets-key (TRELLIS_SECRETS_KEY)")?,
        ..host_config(&args.limits, &args.cache, &args.signed)?
    };
    if std::fs::read_to_string("/proc/sys/net/ipv4/tcp_migrate_req").is_ok_and(|v| v.trim() == "0")
    {
        tracing::warn!(
            "net.ipv4.tcp_migrate_req is 0: when a workload moves off this host, connections queued on its HTTP listener at that instant are reset; `sysctl -w net.ipv4.tcp_migrate_req=1` makes moves between hosts on one machine lossless"
        );
    }
    let metrics = args.observe.bind()?;
    let lattice = Lattice::nats(args.lattice.clone(), connections);
    let host = Host::new(config, lattice).context("cannot start the host")?;
    if let Some(metrics) = metrics
        && let Some(url) = metrics.serve(&host).await
    {
        tracing::info!(%url, "serving metrics on {url}");
    }
    host.serve_control()
        .await
        .context("cannot serve the control interface")?;

    let signals = shutdown_signal();
    // stdout carries only this line, so scripts and tests can read the host id.
    let mut out = std::io::stdout().lock();
    writeln!(out, "host {} joined lattice {}", host.id(), args.lattice)?;
    out.flush()?;
    drop(out);

    tokio::select! {
        _ = signals => tracing::info!("shutting down: signal"),
        _ = host.stop_requested() => tracing::info!("shutting down: stop requested over the control interface"),
    }
    host.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn nats_urls_become_the_addresses_components_may_not_reach() {
        let found = nats_addresses(&[
            "nats://127.0.0.1:4223, tls://user:pw@127.0.0.1",
            "[::1]:5000",
        ])
        .await;
        let expected: Vec<std::net::SocketAddr> =
            ["127.0.0.1:4223", "127.0.0.1:4222", "[::1]:5000"]
                .iter()
                .map(|s| s.parse().expect("address"))
                .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn labels_and_lattice_names_are_checked() {
        assert_eq!(parse_label("zone=eu-1"), Ok(("zone".into(), "eu-1".into())));
        assert!(parse_label("novalue").is_err());
        assert!(parse_label("hostcore.os=x").is_err());
        assert!(check_lattice_name("prod").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>"] {
            assert!(check_lattice_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn one_credential_serves_both_connections_when_only_one_is_given() {
        let (c, r, b) = (
            PathBuf::from("host.creds"),
            PathBuf::from("rpc.creds"),
            PathBuf::from("both.creds"),
        );
        assert_eq!(pick_creds(Some(&c), None, None), (Some(&c), Some(&c)));
        assert_eq!(pick_creds(None, Some(&r), None), (Some(&r), Some(&r)));
        assert_eq!(pick_creds(Some(&c), Some(&r), None), (Some(&c), Some(&r)));
        assert_eq!(pick_creds(None, Some(&r), Some(&b)), (Some(&b), Some(&r)));
        assert_eq!(pick_creds(None, None, None), (None, None));
    }
}
