//! Component log lines for `trellis logs`: each line a component writes (through
//! `wasi:logging`, or to stdout and stderr) becomes a [`LogRecord`] that this host keeps in a
//! ring of the most recent lines (`trellis.logs.{host_id}` answers from it), hands to the
//! followers in this process (the embedded admin endpoint's `GET /v1/logs`), and on a
//! lattice publishes on `trellis.logs.{lattice}.{host_id}` (`trellis logs -f`).
//!
//! The guest never waits for any of this: a line is pushed into the ring and a bounded
//! queue from the guest's thread; one task publishes the queue to NATS. When the queue is
//! full (NATS is slower than the guests), lines are dropped from the stream, counted, and
//! still kept in the ring.

use crate::sync;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{broadcast, mpsc};
use trellis_control::logs::{LogLevel, LogRecord, LogsRequest};
use trellis_control::{ComponentId, HostId};

/// Lines waiting to be published on NATS before new ones are dropped from the stream.
const PUBLISH_QUEUE: usize = 4096;
/// Lines a follower in this process may fall behind by before it misses some.
const FOLLOW_BUFFER: usize = 1024;

/// One host's component log lines.
pub(crate) struct Logs {
    host_id: HostId,
    recent: Mutex<VecDeque<LogRecord>>,
    capacity: usize,
    followers: broadcast::Sender<LogRecord>,
    publish: Mutex<Option<mpsc::Sender<LogRecord>>>,
    dropped: AtomicU64,
}

impl Logs {
    /// Keeps the last `capacity` lines of host `host_id`'s components.
    pub(crate) fn new(host_id: HostId, capacity: usize) -> Self {
        Self {
            host_id,
            recent: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity,
            followers: broadcast::channel(FOLLOW_BUFFER).0,
            publish: Mutex::new(None),
            dropped: AtomicU64::new(0),
        }
    }

    /// Publishes every line from now on over `lattice` (on NATS; nothing in process).
    pub(crate) fn publish_on(&self, lattice: &trellis_lattice::Lattice) {
        if lattice.connections().is_none() {
            return;
        }
        let (tx, rx) = mpsc::channel::<LogRecord>(PUBLISH_QUEUE);
        *sync::lock(&self.publish) = Some(tx);
        lattice.publish_logs(&self.host_id, rx);
    }

    /// Records one line `component` wrote.
    pub(crate) fn record(
        &self,
        component: &str,
        level: LogLevel,
        source: &'static str,
        context: &str,
        message: &str,
    ) {
        let record = LogRecord {
            time: now_rfc3339(),
            host_id: self.host_id.clone(),
            component_id: ComponentId::new(component),
            level,
            source: source.to_owned(),
            context: context.to_owned(),
            message: message.to_owned(),
        };
        if let Some(publish) = sync::lock(&self.publish).as_ref()
            && publish.try_send(record.clone()).is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        // No followers is not an error.
        let _ = self.followers.send(record.clone());
        if self.capacity == 0 {
            return;
        }
        let mut recent = sync::lock(&self.recent);
        if recent.len() == self.capacity {
            recent.pop_front();
        }
        recent.push_back(record);
    }

    /// The most recent lines `request` asks for, oldest first.
    pub(crate) fn recent(&self, request: &LogsRequest) -> Vec<LogRecord> {
        let recent = sync::lock(&self.recent);
        let mut lines: Vec<LogRecord> = recent
            .iter()
            .rev()
            .filter(|r| request.filter.matches(r))
            .take(request.limit)
            .cloned()
            .collect();
        lines.reverse();
        lines
    }

    /// Every line from now on.
    pub(crate) fn follow(&self) -> broadcast::Receiver<LogRecord> {
        self.followers.subscribe()
    }

    /// Lines dropped from the NATS stream because it fell behind.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Now, RFC 3339 in UTC with exactly three decimals, so that times sort as text.
fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_lines_and_filters() {
        use trellis_control::logs::LogFilter;
        let logs = Logs::new(HostId::new("N"), 3);
        for i in 0..5 {
            let level = if i % 2 == 0 {
                LogLevel::Info
            } else {
                LogLevel::Error
            };
            logs.record("web", level, "logging", "", &format!("line {i}"));
        }
        let all = logs.recent(&LogsRequest::default());
        let messages: Vec<&str> = all.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(messages, ["line 2", "line 3", "line 4"]);
        let errors = logs.recent(&LogsRequest {
            filter: LogFilter {
                level: Some(LogLevel::Warn),
                ..LogFilter::default()
            },
            ..LogsRequest::default()
        });
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].message, "line 3");
        let last = logs.recent(&LogsRequest {
            limit: 1,
            ..LogsRequest::default()
        });
        assert_eq!(last[0].message, "line 4");
        assert!(last[0].time.ends_with('Z'), "{}", last[0].time);
    }
}
