//! The harness the conformance tests share: a private NATS server and lattice name per test
//! ([`Lattice`]), the published control-interface client built as `wash` builds it, lattice
//! events read by a plain NATS subscription and checked as CloudEvents ([`EventStream`]), and
//! failure messages that carry the hosts' logs.

#![allow(
    dead_code,
    reason = "shared by several test binaries, each using a part"
)]

use std::collections::VecDeque;
use std::time::Duration;

use cloudevents::event::SpecVersion;
use cloudevents::{AttributesReader, Data};
use futures::StreamExt;
use trellis_conformance::{HostProcess, NatsServer, unique_lattice};
use wasmcloud_control_interface::{Client, ClientBuilder, CtlResponse};

/// Timeout of single-answer requests (`host.get`, `config.*`, `link.*`, ...).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long scatter/gather requests (`host.ping`) collect answers; the client always waits it out.
pub const SCATTER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a test waits for an event that should follow promptly.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One private NATS server and one lattice name on it.
pub struct Lattice {
    pub nats: NatsServer,
    pub name: String,
}

impl Lattice {
    pub fn new(test: &str) -> Self {
        Self {
            nats: NatsServer::start(),
            name: unique_lattice(test),
        }
    }

    pub fn start_host(&self, args: &[&str]) -> HostProcess {
        HostProcess::start(&self.nats.url(), &self.name, args)
    }

    pub fn start_hosts(&self, args: &[&[&str]]) -> Vec<HostProcess> {
        HostProcess::start_many(&self.nats.url(), &self.name, args)
    }

    pub async fn nats_client(&self) -> async_nats_ctl::Client {
        async_nats_ctl::connect(self.nats.url())
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.nats.url()))
    }

    /// The published control-interface client, built the way `wash` builds it.
    pub async fn ctl(&self) -> Client {
        ClientBuilder::new(self.nats_client().await)
            .lattice(self.name.clone())
            .timeout(REQUEST_TIMEOUT)
            .auction_timeout(SCATTER_TIMEOUT)
            .build()
    }

    /// Subscribes to `wasmbus.evt.{lattice}.>` (flushed, so nothing published afterwards is
    /// missed).
    pub async fn events(&self) -> EventStream {
        let nc = self.nats_client().await;
        let sub = nc
            .subscribe(format!("wasmbus.evt.{}.>", self.name))
            .await
            .expect("subscribe to lattice events");
        nc.flush().await.expect("flush event subscription");
        EventStream {
            _nc: nc,
            sub,
            lattice: self.name.clone(),
            backlog: VecDeque::new(),
            seen: Vec::new(),
        }
    }
}

/// The hosts' stderr, for failure messages (the last few KiB of each).
pub fn logs(hosts: &[&HostProcess]) -> String {
    const KEEP: usize = 6000;
    let mut out = String::new();
    for host in hosts {
        let err = host.stderr();
        let mut start = err.len().saturating_sub(KEEP);
        while !err.is_char_boundary(start) {
            start += 1;
        }
        out.push_str(&format!(
            "\n--- stderr of host {} (last {KEEP} bytes) ---\n{}",
            host.id(),
            &err[start..]
        ));
    }
    out
}

/// Unwraps a client result, showing the hosts' logs on error.
pub fn ok<T>(
    what: &str,
    result: Result<T, Box<dyn std::error::Error + Send + Sync>>,
    hosts: &[&HostProcess],
) -> T {
    result.unwrap_or_else(|e| panic!("{what}: client error: {e}{}", logs(hosts)))
}

/// Asserts a reply reports success.
pub fn assert_success<T: std::fmt::Debug>(
    what: &str,
    reply: &CtlResponse<T>,
    hosts: &[&HostProcess],
) {
    assert!(
        reply.succeeded(),
        "{what}: expected success, got {reply:?}{}",
        logs(hosts)
    );
}

/// One event read from `wasmbus.evt.{lattice}.{name}`, already checked to be a CloudEvent 1.0.
#[derive(Debug)]
pub struct LatticeEvent {
    pub name: String,
    pub source: String,
    pub data: serde_json::Value,
}

pub struct EventStream {
    _nc: async_nats_ctl::Client,
    sub: async_nats_ctl::Subscriber,
    lattice: String,
    /// Events read but not yet matched by an `expect`, oldest first.
    backlog: VecDeque<LatticeEvent>,
    seen: Vec<String>,
}

impl EventStream {
    /// Returns the oldest event named `name` that satisfies `pred` and was not returned before,
    /// reading more as needed (events may arrive in any order; unmatched ones are kept for later
    /// calls). Every event read must be a well-formed CloudEvent. Panics after `timeout`, listing
    /// what was seen.
    pub async fn expect(
        &mut self,
        name: &str,
        timeout: Duration,
        pred: impl Fn(&LatticeEvent) -> bool,
    ) -> LatticeEvent {
        if let Some(i) = self.backlog.iter().position(|e| e.name == name && pred(e)) {
            return self.backlog.remove(i).expect("index in range");
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.sub.next()).await {
                Ok(Some(msg)) => msg,
                Ok(None) => panic!("event subscription closed while waiting for {name}"),
                Err(_) => panic!(
                    "no matching {name} event within {timeout:?}; events seen so far: {:#?}",
                    self.seen
                ),
            };
            let event = self.check(&msg);
            self.seen.push(format!(
                "{} from {}: {}",
                event.name, event.source, event.data
            ));
            if event.name == name && pred(&event) {
                return event;
            }
            self.backlog.push_back(event);
        }
    }

    fn check(&self, msg: &async_nats_ctl::Message) -> LatticeEvent {
        let subject = msg.subject.as_str();
        let prefix = format!("wasmbus.evt.{}.", self.lattice);
        let name = subject
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("event on unexpected subject {subject}"))
            .to_owned();
        let text = String::from_utf8_lossy(&msg.payload);
        let event: cloudevents::Event = serde_json::from_slice(&msg.payload)
            .unwrap_or_else(|e| panic!("{subject}: not a CloudEvent ({e}): {text}"));
        assert_eq!(event.specversion(), SpecVersion::V10, "{subject}: {text}");
        assert_eq!(
            event.ty(),
            format!("com.wasmcloud.lattice.{name}"),
            "{subject}: type; {text}"
        );
        assert_eq!(
            event.datacontenttype(),
            Some("application/json"),
            "{subject}: datacontenttype; {text}"
        );
        assert!(!event.id().is_empty(), "{subject}: empty id; {text}");
        assert!(event.time().is_some(), "{subject}: no time; {text}");
        let data = match event.data() {
            Some(Data::Json(v)) => v.clone(),
            other => panic!("{subject}: data is not JSON: {other:?}; {text}"),
        };
        LatticeEvent {
            name,
            source: event.source().to_string(),
            data,
        }
    }
}
