//! At most N concurrent instances of a component, with a bounded queue in front.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Admits up to `max_instances` invocations at once; up to `max_queued` more wait their turn,
/// and any beyond that are refused at once (the HTTP layer answers 503).
#[derive(Debug)]
pub struct ConcurrencyLimiter {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_instances: u32,
    max_queued: usize,
}

/// The queue in front of a component is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("all {max_instances} instances are busy and {max_queued} requests are already queued")]
pub struct QueueFull {
    /// The instance limit.
    pub max_instances: u32,
    /// The queue limit.
    pub max_queued: usize,
}

impl ConcurrencyLimiter {
    /// A limiter for `max_instances` concurrent invocations and `max_queued` waiters.
    pub fn new(max_instances: u32, max_queued: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_instances as usize)),
            waiting: AtomicUsize::new(0),
            max_instances,
            max_queued,
        }
    }

    /// Waits for a free instance slot, or fails at once when the queue is full.
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, QueueFull> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_queued {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(QueueFull {
                max_instances: self.max_instances,
                max_queued: self.max_queued,
            });
        }
        // Leave the queue even if the caller gives up (client disconnected) while waiting.
        let _waiting = WaitingGuard(&self.waiting);
        // The semaphore is never closed, so acquiring cannot fail.
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| QueueFull {
                max_instances: self.max_instances,
                max_queued: self.max_queued,
            })
    }

    /// How many invocations hold a slot now.
    pub fn in_use(&self) -> usize {
        (self.max_instances as usize).saturating_sub(self.permits.available_permits())
    }

    /// How many callers are waiting now.
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

struct WaitingGuard<'a>(&'a AtomicUsize);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queues_up_to_the_bound_then_refuses() {
        let limiter = Arc::new(ConcurrencyLimiter::new(1, 1));
        let first = limiter.acquire().await.expect("first runs");

        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire().await.map(drop) })
        };
        while limiter.queued() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            limiter.acquire().await.err(),
            Some(QueueFull {
                max_instances: 1,
                max_queued: 1
            })
        );

        drop(first);
        waiter
            .await
            .expect("join")
            .expect("the queued caller gets the freed instance");
        assert_eq!(limiter.queued(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_leaves_the_queue() {
        let limiter = Arc::new(ConcurrencyLimiter::new(1, 1));
        let _busy = limiter.acquire().await.expect("runs");
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire().await.map(drop) })
        };
        while limiter.queued() == 0 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(
            limiter.queued(),
            0,
            "an abandoned wait must free its queue slot"
        );
    }
}
