//! The periodic provider health check, message subscriptions and key-value watches: the
//! host's long-running work besides serving HTTP.

use crate::Host;
use crate::deploy::{SubscriptionLink, WatchLink};
use crate::limiter::ConcurrencyLimiter;
use crate::metrics::Failure;
use crate::providers::{Instance, ProviderState};
use futures::StreamExt as _;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument as _;
use trellis_control::ProviderStatus;
use trellis_control::error_text;
use trellis_manifest::{Application, Builtin};
use trellis_runtime::{MessageComponent, WatcherComponent};

/// How long a broken subscription or watch waits before subscribing or watching again.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(2);

impl Host {
    /// Registers the app's providers; their backends start when the first link needs them.
    pub(crate) fn start_providers(&self, app: &Application) -> Vec<Arc<ProviderState>> {
        let manifest_dir = app
            .manifest_path
            .parent()
            .map(|d| d.to_path_buf())
            .unwrap_or_default();
        let running = self.workloads.providers();
        app.providers
            .iter()
            .filter_map(|p| {
                // A provider already running on this host (started through the control
                // interface) is shared, not started twice.
                if let Some(existing) = running.iter().find(|r| r.id == p.id) {
                    return Some(existing.clone());
                }
                let builtin = p.builtin?;
                let mut ignored = Vec::new();
                let config = crate::deploy::merge_config(app, "provider", &p.config, &mut ignored);
                Some(Arc::new(ProviderState::new(
                    p.name.clone(),
                    p.id.clone(),
                    p.image_ref.clone(),
                    builtin,
                    config,
                    manifest_dir.clone(),
                    self.protected.clone(),
                )))
            })
            .collect()
    }

    /// Checks every provider once, retries HTTP listeners that could not bind, and
    /// publishes an event for every provider whose health changed.
    pub(crate) async fn check_providers(self: &Arc<Self>) {
        self.retry_routes().await;
        let providers = self.workloads.providers();
        for p in providers {
            let status = if p.builtin == Builtin::HTTP_SERVER {
                match self.listeners.pending_address(&p.name) {
                    Some(address) => ProviderStatus::Failed {
                        reason: format!("cannot listen on {address} (still retrying)"),
                    },
                    None => ProviderStatus::Running,
                }
            } else {
                match p.check_health().await {
                    Ok(()) => ProviderStatus::Running,
                    // What never started stays failed; what ran and stopped answering is
                    // unhealthy until it answers again.
                    Err(reason) => match p.status() {
                        ProviderStatus::Failed { .. } => ProviderStatus::Failed { reason },
                        _ => ProviderStatus::Unhealthy { reason },
                    },
                }
            };
            if p.set_status(status.clone()) {
                match &status {
                    ProviderStatus::Running => {
                        tracing::info!(provider = %p.name, "capability provider is healthy again");
                        self.publish(
                            "health_check_passed",
                            serde_json::json!({"provider_id": p.id}),
                        );
                    }
                    ProviderStatus::Failed { reason } | ProviderStatus::Unhealthy { reason } => {
                        tracing::warn!(provider = %p.name, %reason, "capability provider is unhealthy");
                        self.publish(
                            "health_check_failed",
                            serde_json::json!({"provider_id": p.id, "reason": reason}),
                        );
                    }
                }
            }
        }
    }

    async fn retry_routes(self: &Arc<Self>) {
        for route in self.listeners.take_pending() {
            match trellis_http_server::bind_with(route.address, self.config.http_reuse_port) {
                Ok(listener) => {
                    self.serve_route(route, listener).await;
                }
                Err(_) => self.listeners.retry_later(route),
            }
        }
    }

    /// Delivers the subscription's messages to `handler`, resubscribing when the stream
    /// breaks, until the host shuts down or the returned tasks are aborted.
    pub(crate) async fn subscribe(
        &self,
        sub: &SubscriptionLink,
        handler: MessageComponent,
        limiter: Arc<ConcurrencyLimiter>,
        providers: &[Arc<ProviderState>],
    ) -> Vec<tokio::task::AbortHandle> {
        let mut tasks = Vec::new();
        let Some(provider) = crate::providers::named(providers, &sub.provider) else {
            return tasks;
        };
        let backend = match provider.instance(&sub.config).await {
            Ok(Instance::Messaging(b)) => b,
            Ok(_) => return tasks,
            Err(reason) => {
                tracing::error!(provider = %provider.name, component_id = %handler.id(), %reason, "cannot subscribe: the messaging provider failed to start");
                return tasks;
            }
        };
        for spec in sub.specs.clone() {
            let backend = backend.clone();
            let handler = handler.clone();
            let limiter = limiter.clone();
            let provider = provider.name.clone();
            let metrics = self.metrics.clone();
            tasks.push(self.spawn_background(async move {
                loop {
                    let mut stream = match backend.subscribe(&spec.subject, spec.queue.as_deref()).await {
                        Ok(stream) => stream,
                        Err(e) => {
                            tracing::warn!(%provider, subject = %spec.subject, error = %error_text(&e), "subscribing failed; retrying");
                            tokio::time::sleep(RESUBSCRIBE_DELAY).await;
                            continue;
                        }
                    };
                    tracing::info!(%provider, subject = %spec.subject, queue = ?spec.queue, component_id = %handler.id(), "subscribed");
                    while let Some(message) = stream.next().await {
                        let permit = match limiter.acquire().await {
                            Ok(p) => p,
                            Err(full) => {
                                tracing::warn!(component_id = %handler.id(), subject = %message.subject, "{full}; dropping the message");
                                continue;
                            }
                        };
                        let handler = handler.clone();
                        let metrics = metrics.clone();
                        tokio::spawn(async move {
                            let _permit = permit;
                            let subject = message.subject.clone();
                            let span = tracing::info_span!(
                                "message",
                                otel.name = %format!("message {subject}"),
                                otel.kind = "consumer",
                                component_id = %handler.id(),
                                messaging.destination.name = %subject,
                            );
                            let result = handler.handle(message).instrument(span).await;
                            metrics.invocation(
                                handler.id().as_str(),
                                "message",
                                result.as_ref().err().map(|e| match e {
                                    trellis_runtime::HandleMessageError::Invoke(e) => Failure::of(e),
                                    _ => Failure::Other,
                                }),
                            );
                            if let Err(e) = result {
                                tracing::warn!(component_id = %handler.id(), %subject, error = %error_text(&e), "message handler failed");
                            }
                        });
                    }
                    tracing::warn!(%provider, subject = %spec.subject, "subscription ended; subscribing again");
                    tokio::time::sleep(RESUBSCRIBE_DELAY).await;
                }
            }));
        }
        tasks
    }

    /// Delivers changes to the watched keys to `watcher`'s `wasi:keyvalue/watcher` export,
    /// one at a time and in the order the backend reports them, each under the component's
    /// instance limit; watches again when the backend's watch ends (its connection broke),
    /// until the provider stops or the host shuts down. A change that finds the component's
    /// queue full is dropped with a warning, as messages are; so are changes beyond
    /// `--max-queued-kv-changes` waiting here. A guest that traps is logged, and the next
    /// change is delivered all the same.
    pub(crate) async fn watch_keys(
        &self,
        watch: &WatchLink,
        watcher: WatcherComponent,
        limiter: Arc<ConcurrencyLimiter>,
        providers: &[Arc<ProviderState>],
    ) {
        let Some(provider) = crate::providers::named(providers, &watch.provider) else {
            return;
        };
        let backend = match provider.instance(&watch.config).await {
            Ok(Instance::KeyValue(b)) => b,
            Ok(_) => return,
            Err(reason) => {
                tracing::error!(provider = %provider.name, component_id = %watcher.id(), %reason, "cannot watch keys: the key-value provider failed to start");
                return;
            }
        };
        let capacity = self.config.limits.capabilities.keyvalue.max_queued_changes;
        let spec = watch.spec.clone();
        let provider_name = provider.name.clone();
        let stopped = provider.stopped();
        let metrics = self.metrics.clone();
        let keys: Vec<String> = spec.keys().into_iter().collect();
        let source = format!("{} -> {}", provider.name, watcher.id());
        // The first attempt before the deploy returns, so that a write made once the app is
        // up is reported; the rest in the background.
        let first = backend.watch(spec.keys(), capacity, &source).await;
        let watching: futures::future::BoxFuture<'static, ()> = Box::pin(async move {
            let mut failing = false;
            let mut attempt = Some(first);
            loop {
                let watched = match attempt.take() {
                    Some(first) => first,
                    None => backend.watch(spec.keys(), capacity, &source).await,
                };
                let mut changes = match watched {
                    Ok(changes) => changes,
                    Err(e) => {
                        if !failing {
                            tracing::warn!(provider = %provider_name, component_id = %watcher.id(), error = %error_text(&e), "cannot watch keys; retrying");
                        }
                        failing = true;
                        tokio::time::sleep(RESUBSCRIBE_DELAY).await;
                        continue;
                    }
                };
                if failing {
                    tracing::info!(provider = %provider_name, component_id = %watcher.id(), ?keys, "watching keys again");
                } else {
                    tracing::info!(provider = %provider_name, component_id = %watcher.id(), ?keys, "watching keys");
                }
                failing = false;
                while let Some(change) = changes.next_change().await {
                    if !spec.wants(&change) {
                        continue;
                    }
                    let bucket = match backend.open(change.bucket()).await {
                        Ok(bucket) => bucket,
                        Err(e) => {
                            tracing::warn!(provider = %provider_name, component_id = %watcher.id(), key = change.key(), error = %error_text(&e), "cannot open the bucket that changed; dropping the change");
                            continue;
                        }
                    };
                    let permit = match limiter.acquire().await {
                        Ok(permit) => permit,
                        Err(full) => {
                            tracing::warn!(component_id = %watcher.id(), key = change.key(), "{full}; dropping the key-value change");
                            continue;
                        }
                    };
                    let key = change.key().to_owned();
                    let result = watcher.deliver(bucket, change).await;
                    metrics.invocation(
                        watcher.id().as_str(),
                        "watch",
                        result.as_ref().err().map(Failure::of),
                    );
                    if let Err(e) = result {
                        tracing::warn!(component_id = %watcher.id(), %key, error = %error_text(&e), "key-value watcher failed");
                    }
                    drop(permit);
                }
                tracing::warn!(provider = %provider_name, component_id = %watcher.id(), "the key-value watch ended; watching again");
                tokio::time::sleep(RESUBSCRIBE_DELAY).await;
            }
        });
        self.spawn_background(async move {
            tokio::select! {
                () = watching => {}
                () = stopped => {}
            }
        });
    }
}
