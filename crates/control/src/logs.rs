//! Component log lines as the lattice carries them (Trellis's own; wasmCloud v1 has no such
//! stream): what a component wrote through `wasi:logging` or to its stdout and stderr, with
//! the host and component it came from.
//!
//! Hosts publish every line on [`log_subject`] as it is written (`trellis logs -f`), and keep
//! the most recent ones, which `trellis.logs.{host_id}` answers ([`LogsRequest`]).

use crate::{ComponentId, HostId};
use serde::{Deserialize, Serialize};

/// The subject host `host_id` publishes its components' log lines on, one [`LogRecord`] as
/// JSON per message; `host_id` `*` (or `>`) for every host's.
pub fn log_subject(lattice: &str, host_id: &str) -> String {
    format!("trellis.logs.{lattice}.{host_id}")
}

/// How severe a line is, from `wasi:logging`'s levels. Output lines are `info` (stdout)
/// and `warn` (stderr).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// `trace`.
    Trace,
    /// `debug`.
    Debug,
    /// `info`.
    #[default]
    Info,
    /// `warn`.
    Warn,
    /// `error`.
    Error,
    /// `critical`.
    Critical,
}

impl LogLevel {
    /// Every level, least severe first.
    pub const ALL: [LogLevel; 6] = [
        Self::Trace,
        Self::Debug,
        Self::Info,
        Self::Warn,
        Self::Error,
        Self::Critical,
    ];

    /// Its name: `trace` … `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }
}

impl std::str::FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "`{s}` is not a level; use one of trace, debug, info, warn, error, critical"
                )
            })
    }
}

/// One line a component logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// When, RFC 3339 with milliseconds, UTC.
    pub time: String,
    /// The host the component ran on.
    pub host_id: HostId,
    /// The component that wrote it.
    pub component_id: ComponentId,
    /// How severe.
    pub level: LogLevel,
    /// `logging` (`wasi:logging`), `stdout` or `stderr`.
    pub source: String,
    /// `wasi:logging`'s context argument; empty for output lines.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
    /// The line.
    pub message: String,
}

/// Which lines a query or a follower wants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFilter {
    /// Only this component's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_id: Option<ComponentId>,
    /// Only lines at least this severe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<LogLevel>,
}

impl LogFilter {
    /// Whether `record` passes.
    pub fn matches(&self, record: &LogRecord) -> bool {
        self.component_id
            .as_ref()
            .is_none_or(|c| *c == record.component_id)
            && self.level.is_none_or(|l| record.level >= l)
    }
}

/// `trellis.logs.{host_id}`'s body: the most recent lines that pass `filter`, at most
/// `limit` of them, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsRequest {
    /// The host asked; the subject names it.
    #[serde(default)]
    pub host_id: HostId,
    /// Which lines.
    #[serde(default, flatten)]
    pub filter: LogFilter,
    /// How many at most (the host also keeps only so many).
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn default_limit() -> usize {
    100
}

impl Default for LogsRequest {
    fn default() -> Self {
        Self {
            host_id: HostId::default(),
            filter: LogFilter::default(),
            limit: default_limit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_and_parse() {
        assert!(LogLevel::Warn > LogLevel::Info);
        assert_eq!("WARN".parse::<LogLevel>(), Ok(LogLevel::Warn));
        assert!(
            "loud"
                .parse::<LogLevel>()
                .expect_err("refused")
                .contains("warn")
        );
        assert_eq!(
            serde_json::to_string(&LogLevel::Critical).expect("json"),
            "\"critical\""
        );
    }

    #[test]
    fn a_filter_keeps_a_component_at_a_level() {
        let record = |c: &str, level| LogRecord {
            time: String::new(),
            host_id: HostId::new("N"),
            component_id: ComponentId::new(c),
            level,
            source: "logging".into(),
            context: String::new(),
            message: "m".into(),
        };
        let filter = LogFilter {
            component_id: Some(ComponentId::new("a")),
            level: Some(LogLevel::Warn),
        };
        assert!(filter.matches(&record("a", LogLevel::Error)));
        assert!(!filter.matches(&record("a", LogLevel::Info)));
        assert!(!filter.matches(&record("b", LogLevel::Error)));
        assert!(LogFilter::default().matches(&record("b", LogLevel::Trace)));
    }
}
