//! `trellis dashboard`: the web dashboard for a lattice on NATS (or a `trellis up` elsewhere),
//! served on loopback until Ctrl-C. `trellis up` serves the same page on its own control
//! endpoint (embedded.rs); both are `trellis_dashboard::Dashboard` over a `CtlClient`.

use crate::ctl::{LatticeArgs, Target};
use anyhow::Context as _;
use clap::Args;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use trellis_http_server::{IncomingHandler, ServerLimits};

/// `trellis dashboard`'s flags.
#[derive(Args)]
pub(crate) struct DashboardArgs {
    /// Serve the dashboard here (port 0: a free port). Loopback unless you say otherwise:
    /// the page's API needs the token printed with the address, but says everything about
    /// the lattice to whoever has it.
    #[arg(long, env = "TRELLIS_DASHBOARD_ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    #[command(flatten)]
    lattice: LatticeArgs,
}

/// Serves the dashboard until Ctrl-C or SIGTERM; prints `dashboard on http://ADDR/#token=…`.
pub(crate) async fn run(args: DashboardArgs) -> anyhow::Result<()> {
    let name = match args.lattice.target()? {
        Target::Embedded { .. } => "embedded".to_owned(),
        Target::Nats => args.lattice.lattice.clone(),
    };
    let client = crate::ctl::connect(&args.lattice).await?;
    let listener = trellis_http_server::bind(args.listen).with_context(|| {
        format!(
            "cannot listen on {}; pass another --listen (port 0 picks a free one)",
            args.listen
        )
    })?;
    let addr = listener.local_addr()?;
    let token = crate::endpoint::new_token();
    let dashboard = trellis_dashboard::Dashboard::new(client, name, token.clone());
    let handler: Arc<dyn IncomingHandler> = dashboard.clone();
    // Installed before the address is printed, so a signal right after it stops gracefully.
    let signals = crate::shutdown_signal();
    let mut out = std::io::stdout().lock();
    writeln!(out, "dashboard on http://{addr}/#token={token}")?;
    out.flush()?;
    drop(out);
    trellis_http_server::serve(
        listener,
        "dashboard".into(),
        handler,
        ServerLimits {
            // Requests are GETs without bodies.
            max_request_body_bytes: 1 << 10,
            ..ServerLimits::default()
        },
        async move {
            signals.await;
            // Open pages follow the event stream forever: end it, or the drain waits.
            dashboard.close_streams();
        },
    )
    .await;
    Ok(())
}
