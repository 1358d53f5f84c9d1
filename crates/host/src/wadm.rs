//! The wadm status provider: wasmCloud's `wadm-provider` (the built-in `wadm`) as Trellis
//! serves it, fed by Trellis's own reconciler instead of a wadm process.
//!
//! A link from a `wadm` provider to a component, carrying `wasmcloud:wadm/handler` and
//! naming an app in its source config (`app_name`), delivers every status change of that
//! app to the component's `wasmcloud:wadm/handler@0.2.0.handle-status-update` export, as
//! wasmCloud's provider does. The status comes from [`trellis_lattice::Lattice::watch_app_status`]:
//! `wadm.status.{lattice}.{app}` on a lattice (wherever the reconciler runs), in process in
//! embedded mode. The call goes through the host's call path
//! ([`Host::call_encoded`]), so the component may run on this host or any other.
//!
//! Feeds follow the lattice's links: on every health tick (and when a provider starts) the
//! host compares the links from its running `wadm` providers with the feeds it runs, starts
//! the missing ones and ends the others. Like wadm's, a feed delivers changes from when it
//! starts, not the status before it.
//!
//! Config, the provider's own with the link's source config over it (wasmCloud's keys):
//! `app_name` (required), `lattice` (must be this host's lattice, when given). The
//! connection keys (`ctl_host`, `ctl_port`, `ctl_jwt`, `ctl_seed`, `ctl_credsfile`,
//! `ctl_tls_ca_file`, `ctl_tls_first`, `js_domain`) are not used: the host's own lattice
//! connection carries the status.

use crate::Host;
use crate::sync;
use futures::StreamExt as _;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use trellis_control::wadm::{AppStatusReport, EntryKind, StatusType};
use trellis_control::{ComponentId, error_text};

/// The built-in's name in the capability catalogue.
pub(crate) const BUILTIN: &str = "wadm";
/// The interface a status update is delivered to, and its function.
const HANDLER: &str = "wasmcloud:wadm/handler@0.2.0";
const FUNCTION: &str = "handle-status-update";
/// How long a feed whose subscription failed waits before subscribing again.
const RESUBSCRIBE: Duration = Duration::from_secs(1);
/// wasmCloud's connection keys, which the host's own connection replaces.
const CONNECTION_KEYS: &[&str] = &[
    "ctl_host",
    "ctl_port",
    "ctl_jwt",
    "ctl_seed",
    "ctl_credsfile",
    "ctl_tls_ca_file",
    "ctl_tls_first",
    "js_domain",
];

/// One feed: the status of `app`, from `provider`, to `component`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FeedKey {
    provider: String,
    component: String,
    app: String,
}

/// The feeds this host runs, and the link problems already reported (once each).
#[derive(Default)]
pub(crate) struct Feeds {
    running: Mutex<HashMap<FeedKey, AbortOnDrop>>,
    reported: Mutex<HashSet<String>>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The app a link's config asks for, or what is wrong with the config.
fn app_name(config: &BTreeMap<String, String>, lattice: &str) -> Result<String, String> {
    let get = |key: &str| {
        config
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.trim())
    };
    if let Some(asked) = get("lattice")
        && !asked.is_empty()
        && asked != lattice
    {
        return Err(format!(
            "`lattice` is `{asked}`, but this host is on lattice `{lattice}`: Trellis delivers \
             the status of the apps of its own lattice; remove `lattice` or set it to `{lattice}`"
        ));
    }
    match get("app_name") {
        Some(app) if !app.is_empty() => Ok(app.to_owned()),
        _ => Err(
            "no `app_name` in the link's source config: name the app whose status the \
             component receives (for example `app_name: my-app`)"
                .to_owned(),
        ),
    }
}

impl Host {
    /// Starts the feeds that the links from this host's `wadm` providers ask for and ends
    /// the others.
    pub(crate) async fn sync_wadm_feeds(self: &Arc<Self>) {
        let providers: Vec<_> = self
            .workloads
            .providers()
            .into_iter()
            .filter(|p| p.builtin.name() == BUILTIN)
            .collect();
        let mut wanted = HashSet::new();
        if !providers.is_empty() {
            let Some(state) = self.control.state.get() else {
                return;
            };
            let links = match state.links().await {
                Ok(links) => links,
                Err(e) => {
                    tracing::warn!(error = %error_text(&e), "cannot read lattice links for the wadm provider");
                    return;
                }
            };
            for link in links {
                if !link.carries("wasmcloud", "wadm", "handler") {
                    continue;
                }
                let Some(provider) = providers
                    .iter()
                    .find(|p| p.id.as_str() == link.source_id.as_str())
                else {
                    continue;
                };
                let mut config = provider.config().clone();
                for name in &link.source_config {
                    if let Ok(Some(values)) = state.get_config(name).await {
                        config.extend(values);
                    }
                }
                match app_name(&config, self.lattice.name()) {
                    Ok(app) => {
                        let ignored: Vec<_> = config
                            .keys()
                            .filter(|k| CONNECTION_KEYS.contains(&k.to_ascii_lowercase().as_str()))
                            .collect();
                        if !ignored.is_empty() {
                            tracing::debug!(provider = %provider.name, ?ignored, "the host's own lattice connection carries app status; these keys are not used");
                        }
                        wanted.insert(FeedKey {
                            provider: provider.id.to_string(),
                            component: link.target.to_string(),
                            app,
                        });
                    }
                    Err(reason) => {
                        let report = format!("{}->{}: {reason}", link.source_id, link.target);
                        if sync::lock(&self.wadm_feeds.reported).insert(report) {
                            tracing::error!(provider = %provider.name, component_id = %link.target, %reason, "the wadm provider cannot deliver app status to this component");
                        }
                    }
                }
            }
        }
        let mut running = sync::lock(&self.wadm_feeds.running);
        running.retain(|key, _| {
            let keep = wanted.contains(key);
            if !keep {
                tracing::info!(provider = %key.provider, component_id = %key.component, app = %key.app, "stopped delivering app status");
            }
            keep
        });
        for key in wanted {
            if running.contains_key(&key) {
                continue;
            }
            let task = tokio::spawn(feed(self.me.clone(), key.clone()));
            running.insert(key, AbortOnDrop(task));
        }
    }

    /// Delivers one status of `key.app` to `key.component`.
    async fn deliver_status(&self, key: &FeedKey, status: &AppStatusReport) {
        let params = encode_status_update(&key.app, status);
        let target = ComponentId::new(key.component.clone());
        match self
            .call_encoded(
                &key.provider,
                &target,
                HANDLER,
                FUNCTION,
                &params,
                result_complete,
            )
            .await
        {
            Ok(result) => match decode_result(&result) {
                Some(Ok(())) => {
                    tracing::debug!(component_id = %key.component, app = %key.app, status = %status.status.kind, "delivered app status")
                }
                Some(Err(message)) => {
                    tracing::warn!(component_id = %key.component, app = %key.app, %message, "the component's handle-status-update returned an error")
                }
                None => {
                    tracing::warn!(component_id = %key.component, app = %key.app, "the component's handle-status-update returned something that is not result<_, string>")
                }
            },
            Err(e) => {
                tracing::warn!(component_id = %key.component, app = %key.app, error = %error_text(&e), "cannot deliver app status to the component")
            }
        }
    }
}

/// Subscribes to `key.app`'s status and delivers each change, resubscribing if the
/// subscription ends; runs until aborted or the host is gone.
async fn feed(host: Weak<Host>, key: FeedKey) {
    loop {
        let Some(lattice) = host.upgrade().map(|h| h.lattice.clone()) else {
            return;
        };
        let mut updates = match lattice.watch_app_status(&key.app).await {
            Ok(updates) => updates,
            Err(e) => {
                tracing::warn!(app = %key.app, error = %error_text(&e), "cannot watch app status; trying again");
                tokio::time::sleep(RESUBSCRIBE).await;
                continue;
            }
        };
        tracing::info!(provider = %key.provider, component_id = %key.component, app = %key.app, "delivering app status updates");
        while let Some(status) = updates.next().await {
            let Some(host) = host.upgrade() else { return };
            host.deliver_status(&key, &status).await;
        }
        tokio::time::sleep(RESUBSCRIBE).await;
    }
}

// The wRPC value encoding of `wasmcloud:wadm/types.status-update` (0.2.0), written out:
// strings and lists as a LEB128 length and their contents, enums as their case's index,
// records as their fields in order.

fn put_uleb(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_string(s: &str, out: &mut Vec<u8>) {
    put_uleb(s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

/// The index of `kind` in the WIT's `status-type` enum.
fn status_type(kind: StatusType) -> u64 {
    match kind {
        StatusType::Undeployed => 0,
        StatusType::Reconciling => 1,
        StatusType::Deployed => 2,
        StatusType::Failed => 3,
        StatusType::Waiting => 4,
        StatusType::Unhealthy => 5,
    }
}

fn put_status_info(kind: StatusType, message: &str, out: &mut Vec<u8>) {
    put_uleb(status_type(kind), out);
    put_string(message, out);
}

/// `status-update { app, status: status { version, info, components } }`, with one
/// `component-status` per manifest entry (its name, `component` or `capability`, its status,
/// no traits: Trellis reports status per entry).
fn encode_status_update(app: &str, status: &AppStatusReport) -> Vec<u8> {
    let mut out = Vec::new();
    put_string(app, &mut out);
    put_string(&status.version, &mut out);
    put_status_info(status.status.kind, &status.status.message, &mut out);
    put_uleb(status.scalers.len() as u64, &mut out);
    for entry in &status.scalers {
        put_string(&entry.name, &mut out);
        put_string(
            match entry.kind {
                EntryKind::Component => "component",
                EntryKind::Capability => "capability",
            },
            &mut out,
        );
        put_status_info(entry.status.kind, &entry.status.message, &mut out);
        put_uleb(0, &mut out);
    }
    out
}

fn take_uleb(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut n = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        n |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((n, &bytes[i + 1..]));
        }
    }
    None
}

/// `result<_, string>`: `Ok`, `Err(message)`, or `None` if the bytes are not (all) one.
fn decode_result(bytes: &[u8]) -> Option<Result<(), String>> {
    match bytes.split_first()? {
        (0, []) => Some(Ok(())),
        (1, rest) => {
            let (len, rest) = take_uleb(rest)?;
            let len = usize::try_from(len).ok()?;
            (rest.len() == len).then(|| Err(String::from_utf8_lossy(rest).into_owned()))
        }
        _ => None,
    }
}

/// Whether `bytes` hold a whole `result<_, string>` (or more than one could).
fn result_complete(bytes: &[u8]) -> bool {
    match bytes.split_first() {
        None => false,
        Some((1, rest)) => match take_uleb(rest) {
            Some((len, rest)) => rest.len() as u64 >= len,
            None => rest.len() >= 10,
        },
        Some(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trellis_control::wadm::{ScalerStatus, StatusInfo};

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_link_names_the_app_on_this_lattice() {
        assert_eq!(
            app_name(
                &map(&[("app_name", "shop"), ("ctl_host", "127.0.0.1")]),
                "default"
            ),
            Ok("shop".to_owned())
        );
        assert_eq!(
            app_name(
                &map(&[("APP_NAME", "shop"), ("lattice", "default")]),
                "default"
            ),
            Ok("shop".to_owned())
        );
        let missing = app_name(&map(&[("lattice", "default")]), "default").expect_err("none");
        assert!(missing.contains("`app_name`"), "{missing}");
        let other = app_name(&map(&[("app_name", "a"), ("lattice", "prod")]), "default")
            .expect_err("another lattice");
        assert!(
            other.contains("`prod`") && other.contains("`default`"),
            "{other}"
        );
    }

    #[test]
    fn status_updates_are_encoded_as_the_wit_has_them() {
        let status = AppStatusReport {
            status: StatusInfo {
                kind: StatusType::Deployed,
                message: "ok".into(),
            },
            scalers: vec![ScalerStatus {
                id: "web".into(),
                kind: EntryKind::Component,
                name: "web".into(),
                status: StatusInfo {
                    kind: StatusType::Failed,
                    message: String::new(),
                },
            }],
            version: "v1".into(),
        };
        let bytes = encode_status_update("shop", &status);
        let want: Vec<u8> = [
            &[4][..],
            b"shop",
            &[2],
            b"v1",
            &[2, 2],
            b"ok",
            &[1, 3],
            b"web",
            &[9],
            b"component",
            &[3, 0, 0],
        ]
        .concat();
        assert_eq!(bytes, want);
    }

    #[test]
    fn results_decode_and_know_when_they_are_complete() {
        assert_eq!(decode_result(&[0]), Some(Ok(())));
        assert_eq!(decode_result(&[1, 2, b'n', b'o']), Some(Err("no".into())));
        assert_eq!(decode_result(&[1, 2, b'n']), None);
        assert_eq!(decode_result(&[]), None);
        assert!(!result_complete(&[]));
        assert!(result_complete(&[0]));
        assert!(!result_complete(&[1]));
        assert!(!result_complete(&[1, 2, b'n']));
        assert!(result_complete(&[1, 2, b'n', b'o']));
    }
}
