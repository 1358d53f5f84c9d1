//! The lattice transport: how hosts publish what happens to them and how clients watch it.
//!
//! Embedded mode (`trellis up`) uses [`Lattice::in_process`]: events travel over a tokio
//! broadcast channel inside the one process, as CloudEvents with exactly the JSON shapes they
//! would have on NATS (`wasmbus.evt.{lattice}.{event}`), so the code that emits them is the
//! same in both modes. [`Lattice::nats`] also publishes every event on the control
//! connection; [`connect`] opens the connections a host needs, and [`state`] keeps the
//! lattice-wide links and config in JetStream KV, through [`kv`] (as [`apps`] keeps the
//! deployment manager's apps), and [`secrets`] keeps secret values sealed to the lattice's
//! secrets key.
//!
//! The rest of the lattice's traffic: [`serve`] answers the control interface and the app
//! API for a host's [`serve::ControlHandler`], [`client`] is the one client for both (over
//! NATS, an embedded host's admin endpoint, or in process), [`apps`] keeps apps and the
//! reconciler lease, and [`wrpc`] carries calls between components on different hosts.
//! [`access`] lists the subjects each kind of NATS credential (host, admin, rpc) may use.

pub mod access;
pub mod apps;
pub mod client;
pub mod components;
pub mod connect;
pub mod kv;
pub mod secrets;
pub mod serve;
pub mod signing;
pub mod state;
pub mod wrpc;

pub use connect::{Connections, NatsOptions};

use tokio::sync::broadcast;
use trellis_control::wadm::AppStatusReport;
use trellis_control::{CloudEvent, HostId};

/// Locks `mutex`, taking it over from a holder that panicked: every mutex here guards plain
/// maps that each change leaves whole, so the data is still good.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A spawned task that ends when its owner drops this.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How many events a slow subscriber may fall behind before it starts missing some.
const EVENT_BUFFER: usize = 1024;

/// The subject of `event_name` events on `lattice` (`>` for all of them).
pub fn event_subject(lattice: &str, event_name: &str) -> String {
    format!("wasmbus.evt.{lattice}.{event_name}")
}

/// A handle to the lattice; cheap to clone.
#[derive(Clone)]
pub struct Lattice {
    name: String,
    events: broadcast::Sender<CloudEvent>,
    /// App status changes, `(app, status)`, for watchers in this process when there is no
    /// NATS to carry them.
    app_status: broadcast::Sender<(String, AppStatusReport)>,
    nats: Option<Connections>,
}

impl Lattice {
    /// A lattice that lives inside this process.
    pub fn in_process(name: impl Into<String>) -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (app_status, _) = broadcast::channel(EVENT_BUFFER);
        Self {
            name: name.into(),
            events,
            app_status,
            nats: None,
        }
    }

    /// A lattice over NATS: events also go out on the control connection.
    pub fn nats(name: impl Into<String>, connections: Connections) -> Self {
        let mut lattice = Self::in_process(name);
        lattice.nats = Some(connections);
        lattice
    }

    /// The NATS connections, when this lattice runs over NATS.
    pub fn connections(&self) -> Option<&Connections> {
        self.nats.as_ref()
    }

    /// How many times the NATS connections reconnected after their first connection; `None`
    /// when this lattice is in process.
    pub fn reconnects(&self) -> Option<u64> {
        let nats = self.nats.as_ref()?;
        let reconnects = |client: &async_nats::Client| {
            client
                .statistics()
                .connects
                .load(std::sync::atomic::Ordering::Relaxed)
                .saturating_sub(1)
        };
        Some(reconnects(&nats.ctl) + reconnects(&nats.rpc))
    }

    /// The lattice name, for example `default`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The subject an event is published on, for example `wasmbus.evt.default.host_started`.
    pub fn event_subject(&self, event_name: &str) -> String {
        event_subject(&self.name, event_name)
    }

    /// On a lattice, publishes every log line `lines` yields on host `host_id`'s log subject
    /// ([`trellis_control::logs::log_subject`]), from a task of its own, until `lines` ends;
    /// in process, nothing (the host keeps and streams its lines itself).
    pub fn publish_logs(
        &self,
        host_id: &HostId,
        mut lines: tokio::sync::mpsc::Receiver<trellis_control::logs::LogRecord>,
    ) {
        let Some(nats) = &self.nats else {
            return;
        };
        let client = nats.ctl.clone();
        let subject = trellis_control::logs::log_subject(&self.name, host_id.as_str());
        tokio::spawn(async move {
            while let Some(record) = lines.recv().await {
                let Ok(body) = serde_json::to_vec(&record) else {
                    continue;
                };
                if let Err(e) = client.publish(subject.clone(), body.into()).await {
                    tracing::debug!(%subject, error = %e, "cannot publish a log line");
                }
            }
        });
    }

    /// Publishes `event_name` with `data` as a CloudEvent from `source`.
    pub fn publish_event(
        &self,
        source: &HostId,
        event_name: &str,
        data: serde_json::Value,
    ) -> CloudEvent {
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let event = CloudEvent {
            specversion: "1.0".into(),
            id: uuid::Uuid::new_v4().to_string(),
            source: source.to_string(),
            ty: format!("{}{event_name}", CloudEvent::TYPE_PREFIX),
            datacontenttype: "application/json".into(),
            time,
            data,
        };
        // No subscriber is not an error: nobody is watching.
        let _ = self.events.send(event.clone());
        if let Some(nats) = &self.nats {
            match serde_json::to_vec(&event) {
                Ok(body) => {
                    let client = nats.ctl.clone();
                    let subject = self.event_subject(event_name);
                    // Publishing only queues the message in the client; the spawned task
                    // keeps this function synchronous for callers that are not async.
                    tokio::spawn(async move {
                        if let Err(e) = client.publish(subject.clone(), body.into()).await {
                            tracing::warn!(%subject, error = %e, "cannot publish event");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "cannot encode event"),
            }
        }
        event
    }

    /// Publishes like [`Lattice::publish_event`] but waits until NATS has the event (for the
    /// last event before a process exits).
    pub async fn publish_event_now(
        &self,
        source: &HostId,
        event_name: &str,
        data: serde_json::Value,
    ) {
        let nats = self.nats.clone();
        let event = Lattice {
            name: self.name.clone(),
            events: self.events.clone(),
            app_status: self.app_status.clone(),
            nats: None,
        }
        .publish_event(source, event_name, data);
        if let Some(nats) = nats {
            let subject = self.event_subject(event_name);
            let sent = async {
                let body = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
                nats.ctl
                    .publish(subject, body.into())
                    .await
                    .map_err(|e| e.to_string())?;
                nats.ctl.flush().await.map_err(|e| e.to_string())
            };
            match tokio::time::timeout(std::time::Duration::from_secs(5), sent).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(event = event_name, error = %e, "cannot publish event")
                }
                Err(_) => {
                    tracing::warn!(event = event_name, "NATS did not take the event within 5s")
                }
            }
        }
    }

    /// Every `event_name` event published on the lattice from now on, by any host: from
    /// NATS on a lattice, from this process in embedded mode.
    pub async fn watch_events(
        &self,
        event_name: &str,
    ) -> Result<futures::stream::BoxStream<'static, CloudEvent>, serve::ServeError> {
        use futures::StreamExt as _;
        if let Some(nats) = &self.nats {
            let subject = self.event_subject(event_name);
            let subscription = nats
                .ctl
                .subscribe(subject.clone())
                .await
                .map_err(|source| serve::ServeError { subject, source })?;
            return Ok(subscription
                .filter_map(|m| async move { serde_json::from_slice(&m.payload).ok() })
                .boxed());
        }
        let wanted = format!("{}{event_name}", CloudEvent::TYPE_PREFIX);
        let events = self.subscribe_events();
        Ok(futures::stream::unfold(events, move |mut events| {
            let wanted = wanted.clone();
            async move {
                loop {
                    match events.recv().await {
                        Ok(event) if event.ty == wanted => return Some((event, events)),
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        })
        .boxed())
    }

    /// Publishes an app's status on `wadm.status.{lattice}.{app}` on a lattice, or to the
    /// watchers in this process in embedded mode ([`Lattice::watch_app_status`]).
    pub async fn publish_app_status(&self, app: &str, status: &AppStatusReport) {
        let Some(nats) = &self.nats else {
            // No watcher is not an error.
            let _ = self.app_status.send((app.to_owned(), status.clone()));
            return;
        };
        let subject = trellis_control::wadm::status_subject(&self.name, app);
        let body = serde_json::to_vec(status).unwrap_or_default();
        if let Err(e) = nats.ctl.publish(subject.clone(), body.into()).await {
            tracing::warn!(%subject, error = %e, "cannot publish an app's status");
        }
    }

    /// Every status change of `app` published from now on, by whichever host runs the
    /// reconciler: from `wadm.status.{lattice}.{app}` on a lattice (wadm's subject, so wadm's
    /// own clients see the same), from this process in embedded mode. A status that does
    /// not parse is skipped.
    pub async fn watch_app_status(
        &self,
        app: &str,
    ) -> Result<futures::stream::BoxStream<'static, AppStatusReport>, serve::ServeError> {
        use futures::StreamExt as _;
        if let Some(nats) = &self.nats {
            let subject = trellis_control::wadm::status_subject(&self.name, app);
            let subscription = nats
                .ctl
                .subscribe(subject.clone())
                .await
                .map_err(|source| serve::ServeError { subject, source })?;
            return Ok(subscription
                .filter_map(|m| async move { serde_json::from_slice(&m.payload).ok() })
                .boxed());
        }
        let wanted = app.to_owned();
        let updates = self.app_status.subscribe();
        Ok(futures::stream::unfold(updates, move |mut updates| {
            let wanted = wanted.clone();
            async move {
                loop {
                    match updates.recv().await {
                        Ok((app, status)) if app == wanted => return Some((status, updates)),
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        })
        .boxed())
    }

    /// Receives every event published after this call.
    pub fn subscribe_events(&self) -> broadcast::Receiver<CloudEvent> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_receive_cloudevents() {
        let lattice = Lattice::in_process("default");
        let mut rx = lattice.subscribe_events();
        lattice.publish_event(
            &HostId::new("Nhost"),
            "component_scaled",
            serde_json::json!({"max_instances": 2}),
        );
        let ev = rx.recv().await.expect("event");
        assert_eq!(ev.ty, "com.wasmcloud.lattice.component_scaled");
        assert_eq!(ev.source, "Nhost");
        assert_eq!(ev.specversion, "1.0");
        assert_eq!(ev.data["max_instances"], 2);
        assert!(
            time::OffsetDateTime::parse(&ev.time, &time::format_description::well_known::Rfc3339)
                .is_ok()
        );
        assert_eq!(
            lattice.event_subject("host_started"),
            "wasmbus.evt.default.host_started"
        );
    }

    #[tokio::test]
    async fn app_status_watchers_in_process_see_only_their_app() {
        use futures::StreamExt as _;
        use trellis_control::wadm::StatusType;
        let lattice = Lattice::in_process("default");
        let mut shop = lattice.watch_app_status("shop").await.expect("watch");
        lattice
            .publish_app_status("other", &AppStatusReport::new(StatusType::Failed, "no"))
            .await;
        let deployed = AppStatusReport::new(StatusType::Deployed, "");
        lattice.publish_app_status("shop", &deployed).await;
        assert_eq!(shop.next().await, Some(deployed));
    }
}
