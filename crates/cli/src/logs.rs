//! `trellis logs [-f] [COMPONENT]`: what components logged (`wasi:logging`, stdout and
//! stderr), from every host of a lattice or from the `trellis up` in this folder.
//!
//! Without `-f` it asks each host for the lines it kept (`trellis.logs`) and prints them
//! merged by time. With `-f` it prints those, then follows the lines published from then on
//! (on a lattice the `trellis.logs.{lattice}.*` subjects, embedded the `/v1/logs` stream)
//! until Ctrl-C.

use crate::ctl::{LatticeArgs, Output, connect};
use clap::Args;
use futures::StreamExt as _;
use std::io::Write as _;
use trellis_control::ComponentId;
use trellis_control::logs::{LogFilter, LogLevel, LogRecord, LogsRequest};

/// `trellis logs`'s arguments.
#[derive(Args)]
pub(crate) struct LogsArgs {
    /// Only this component's lines (its id, as `trellis get inventory` shows it).
    component: Option<String>,

    /// Keep printing lines as they are logged, until Ctrl-C.
    #[arg(short, long)]
    follow: bool,

    /// Only lines at least this severe (stdout lines are `info`, stderr lines `warn`).
    #[arg(long, value_parser = parse_level)]
    level: Option<LogLevel>,

    /// How many of each host's most recent lines to print first (0: none).
    #[arg(short = 'n', long, default_value_t = 100)]
    tail: usize,
}

fn parse_level(s: &str) -> Result<LogLevel, String> {
    s.parse()
}

pub(crate) async fn run(args: &LogsArgs, lattice: &LatticeArgs) -> anyhow::Result<()> {
    let client = connect(lattice).await?;
    let filter = LogFilter {
        component_id: args.component.as_deref().map(ComponentId::new),
        level: args.level,
    };
    // Subscribed before the recent lines are read, so nothing logged in between is lost
    // (a line may then show twice, which beats missing it).
    let follow = if args.follow {
        Some(Box::pin(client.follow_logs().await?))
    } else {
        None
    };
    if args.tail > 0 {
        let mut lines = Vec::new();
        for host in client.hosts().await? {
            match client
                .logs(LogsRequest {
                    host_id: host.id.clone(),
                    filter: filter.clone(),
                    limit: args.tail,
                })
                .await
            {
                Ok(found) => lines.extend(found),
                Err(e) => eprintln!("host {}: cannot read its logs: {e}", host.id),
            }
        }
        // RFC 3339 in UTC with a fixed precision sorts as text.
        lines.sort_by(|a, b| a.time.cmp(&b.time));
        let mut out = std::io::stdout().lock();
        for line in &lines {
            writeln!(out, "{}", format_line(line, lattice.output))?;
        }
        out.flush()?;
    }
    let Some(mut follow) = follow else {
        return Ok(());
    };
    while let Some(line) = follow.next().await {
        if !filter.matches(&line) {
            continue;
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", format_line(&line, lattice.output))?;
        out.flush()?;
    }
    eprintln!("the log stream ended");
    Ok(())
}

/// One line as `trellis logs` prints it: `TIME LEVEL COMPONENT@HOST [CONTEXT] MESSAGE`
/// (the host shortened to its first eight characters), or the record as JSON.
fn format_line(line: &LogRecord, output: Output) -> String {
    match output {
        Output::Json => serde_json::to_string(line).unwrap_or_default(),
        Output::Text => {
            let host: String = line.host_id.as_str().chars().take(8).collect();
            let context = if line.context.is_empty() {
                String::new()
            } else {
                format!("[{}] ", line.context)
            };
            format!(
                "{} {:<5} {}@{} {context}{}",
                line.time,
                line.level.as_str().to_uppercase(),
                line.component_id,
                host,
                line.message
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trellis_control::HostId;

    #[test]
    fn a_line_names_its_component_host_and_level() {
        let line = LogRecord {
            time: "2026-12-03T10:00:00.123Z".into(),
            host_id: HostId::new("NABCDEFGHIJK"),
            component_id: ComponentId::new("shop-web"),
            level: LogLevel::Warn,
            source: "logging".into(),
            context: "cart".into(),
            message: "out of stock".into(),
        };
        assert_eq!(
            format_line(&line, Output::Text),
            "2026-12-03T10:00:00.123Z WARN  shop-web@NABCDEFG [cart] out of stock"
        );
        let json: serde_json::Value =
            serde_json::from_str(&format_line(&line, Output::Json)).expect("json");
        assert_eq!(json["level"], "warn");
        assert_eq!(json["component_id"], "shop-web");
    }
}
