//! The periodic provider health check, and message subscriptions: the host's long-running
//! work besides serving HTTP.

use crate::Host;
use crate::deploy::SubscriptionLink;
use crate::limiter::ConcurrencyLimiter;
use crate::providers::{Instance, ProviderState};
use futures::StreamExt as _;
use std::sync::Arc;
use std::time::Duration;
use trellis_control::ProviderStatus;
use trellis_control::error_text;
use trellis_manifest::{Application, Builtin};
use trellis_runtime::MessageComponent;

/// How long a broken subscription waits before subscribing again.
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
        let Some(provider) = providers.iter().find(|p| p.name == sub.provider) else {
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
                        tokio::spawn(async move {
                            let _permit = permit;
                            let subject = message.subject.clone();
                            if let Err(e) = handler.handle(message).await {
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
}
