//! One embedded host, as `trellis up` and `trellis dev` run it: an in-process lattice, the
//! project's local state beside the manifest (`.trellis/`: named config, secrets), the
//! control endpoint on loopback with its token published where the CLI finds it (and the
//! web dashboard on the same listener), and a graceful stop on Ctrl-C, SIGTERM or
//! `trellis stop host`.

use crate::{RunArgs, endpoint};
use anyhow::Context as _;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use trellis_host::{Host, HostConfig};
use trellis_lattice::Lattice;

/// The project's local state: `.trellis/` beside the manifest.
pub(crate) fn state_dir(manifest: &Path) -> Option<PathBuf> {
    let manifest = manifest.canonicalize().ok()?;
    Some(manifest.parent()?.join(".trellis"))
}

/// A started embedded host whose control endpoint is bound but not yet answering.
pub(crate) struct Embedded {
    pub(crate) host: Arc<Host>,
    manifest: PathBuf,
    admin: Option<tokio::net::TcpListener>,
    token: String,
    metrics: Option<crate::observe::MetricsListener>,
}

/// An embedded host answering on its control endpoint.
pub(crate) struct Serving {
    pub(crate) host: Arc<Host>,
    /// The control endpoint's address, unless `--admin off` (or it could not bind).
    pub(crate) admin: Option<SocketAddr>,
    /// The control endpoint's token.
    pub(crate) token: String,
    /// Where Prometheus scrapes it (`--metrics`), when asked for.
    pub(crate) metrics: Option<String>,
    /// Where the CLI finds the address and the token; removed when this is dropped.
    _published: Option<endpoint::Published>,
}

impl Embedded {
    /// Starts the host for `manifest` with `config` (the limits and caches from
    /// [`crate::host_config`]) completed with the project's local state and `run`'s flags.
    pub(crate) fn start(
        manifest: &Path,
        run: &RunArgs,
        config: HostConfig,
    ) -> anyhow::Result<Self> {
        // Secrets of `trellis up` live beside the manifest (`trellis secret put --local`),
        // and so does its named config (`trellis config put --local`).
        let secrets_dir = state_dir(manifest);
        let config_file = secrets_dir.as_ref().map(|dir| dir.join("config.json"));
        let admin: Option<SocketAddr> = match run.admin.as_str() {
            "off" => None,
            addr => Some(
                addr.parse()
                    .with_context(|| format!("--admin `{addr}` is not host:port (or `off`)"))?,
            ),
        };
        // Bound before the host starts, so that its components are kept away from it.
        let admin = match admin.map(trellis_http_server::bind) {
            None => None,
            Some(Ok(listener)) => Some(listener),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "the control interface is not available: cannot listen on {}; is another `trellis up` running? (pass --admin 127.0.0.1:0 or --admin off)", run.admin);
                None
            }
        };
        let metrics = run.observe.bind()?;
        let config = HostConfig {
            http_address_override: run.http,
            config_file,
            secrets_dir,
            protected_addresses: admin
                .iter()
                .filter_map(|l| l.local_addr().ok())
                .chain(metrics.iter().filter_map(|m| m.local_addr()))
                .collect(),
            ..config
        };
        let host =
            Host::new(config, Lattice::in_process("default")).context("cannot start the host")?;
        Ok(Self {
            host,
            manifest: manifest.to_owned(),
            admin,
            token: run.admin_token.clone().unwrap_or_else(endpoint::new_token),
            metrics,
        })
    }

    /// Answers on the control endpoint and publishes it for the CLI.
    pub(crate) async fn serve(self) -> anyhow::Result<Serving> {
        let admin = match self.admin {
            None => None,
            Some(listener) => {
                let addr = listener.local_addr().ok();
                let pages = addr.map(|addr| dashboard(addr, &self.token));
                self.host
                    .serve_admin(listener, self.token.clone(), pages)
                    .await;
                addr
            }
        };
        let metrics = match self.metrics {
            Some(listener) => listener.serve(&self.host).await,
            None => None,
        };
        let published = match admin {
            Some(addr) => Some(endpoint::publish(
                &self.manifest,
                format!("http://{addr}"),
                self.token.clone(),
            )?),
            None => None,
        };
        Ok(Serving {
            host: self.host,
            admin,
            token: self.token,
            metrics,
            _published: published,
        })
    }
}

/// The web dashboard on the control endpoint at `admin`. It reads the host through that
/// same endpoint over loopback, as `trellis dashboard` would from another process: one
/// code path for both modes, and its event streams end when the endpoint's do, at shutdown.
fn dashboard(admin: SocketAddr, token: &str) -> Arc<dyn trellis_http_server::IncomingHandler> {
    let client =
        trellis_lattice::client::CtlClient::embedded(format!("http://{}", reachable(admin)))
            .with_token(Some(token.to_owned()));
    trellis_dashboard::Dashboard::new(client, "embedded", token.to_owned())
}

/// `addr` as a client connects to it: a listener on every address (`--admin 0.0.0.0:…`)
/// is reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

impl Serving {
    /// The web dashboard's address, with the token in its fragment (which browsers never
    /// send to a server): `http://ADDR/#token=TOKEN`.
    pub(crate) fn dashboard_url(&self) -> Option<String> {
        self.admin
            .map(|addr| format!("http://{}/#token={}", reachable(addr), self.token))
    }

    /// The lines after the app's own on stdout: the control endpoint, the dashboard, failed
    /// providers.
    pub(crate) fn announce(&self, out: &mut impl Write) -> std::io::Result<()> {
        if let Some(addr) = self.admin {
            writeln!(out, "control interface on http://{addr}")?;
        }
        if let Some(url) = &self.metrics {
            writeln!(out, "metrics on {url}")?;
        }
        if let Some(url) = self.dashboard_url() {
            writeln!(out, "dashboard on {url}")?;
        }
        for p in self.host.inventory().providers {
            if let trellis_control::ProviderStatus::Failed { reason } = &p.status {
                writeln!(
                    out,
                    "capability `{}` failed: {reason}",
                    p.name.as_deref().unwrap_or(p.id.as_str())
                )?;
            }
        }
        Ok(())
    }

    /// Runs until `signals` (Ctrl-C, SIGTERM) or a stop over the control interface, then
    /// lets in-flight requests finish.
    pub(crate) async fn run_until_stopped(self, signals: impl Future<Output = ()>) {
        tokio::select! {
            _ = signals => {}
            _ = self.host.stop_requested() => tracing::info!("stop requested over the control interface"),
        }
        self.stop().await;
    }

    /// Stops the host: in-flight requests finish first.
    pub(crate) async fn stop(self) {
        tracing::info!("shutting down: finishing in-flight requests");
        self.host.shutdown().await;
        tracing::info!("stopped");
    }
}
