//! Instances that serve more than one request: every WASI 0.3 HTTP component's (several
//! requests at once), and a WASI 0.2 component's when its manifest opts into warm instances
//! (one request at a time, one after the other).
//!
//! The pool is wasmtime-wasi-http's [`ProxyHandler`], the code `wasmtime serve` reuses
//! instances with: a worker task per instance runs wasmtime's concurrent event loop, takes
//! requests from a shared queue while [`WorkerState::should_accept_request`] says so, and
//! ends when [`WorkerExpiration`] says the instance has expired. This module decides those
//! two things and makes the instances:
//!
//! - an instance takes at most [`Reuse::max_concurrent`] requests at once (one for 0.2
//!   components: a warm instance never serves two requests at the same time), and
//!   [`Reuse::max_requests`] in its life;
//! - it is retired after [`Reuse::idle_timeout`] with nothing to do, as soon as it traps
//!   (the worker ends with the error), when a request runs past the execution deadline (the
//!   instance is dropped wherever the guest is: its store yields on every epoch tick, so a
//!   spinning guest cannot hold the worker), and after its limiter refused it memory;
//! - at most `max_instances` instances exist at once: a request that would need one more
//!   waits for a worker to free up, and an idle instance is retired at once when a request
//!   is waiting for a slot.

use crate::limits::Reuse;
use crate::state::{InstanceBounds, InstanceContext, InstanceState};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use wasmtime::StoreContextMut;
use wasmtime::component::GuestTaskId;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyHandler, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState,
    WorkerStatus,
};

/// Why the pool did not make an instance for a request; the request is tried again when a
/// worker or a slot frees up ([`crate::HttpComponent::handle`]).
#[derive(Debug, thiserror::Error)]
#[error("all {0} instances are in use")]
pub(crate) struct NoSlot(pub(crate) usize);

/// The instances of one component, and what each is allowed.
pub(crate) struct Pool {
    pre: ProxyPre<InstanceState>,
    context: InstanceContext,
    bounds: InstanceBounds,
    reuse: Reuse,
    /// One permit per instance that may exist.
    slots: Arc<Semaphore>,
    max_instances: usize,
    /// Requests waiting for a slot: while there are any, idle instances retire at once.
    waiting: Arc<Waiting>,
}

/// Requests waiting for an instance slot, and a wake-up for idle instances and for them.
#[derive(Default)]
pub(crate) struct Waiting {
    count: AtomicUsize,
    changed: Notify,
}

impl Waiting {
    /// Counts one waiting request for as long as the guard lives.
    pub(crate) fn enter(self: &Arc<Self>) -> WaitingGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
        WaitingGuard(self.clone())
    }

    /// Resolves when an instance may have been retired (or a waiting request appeared).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }
}

pub(crate) struct WaitingGuard(Arc<Waiting>);

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A component's pool of reused instances; cheap to clone.
pub(crate) type Handler = ProxyHandler<Pool>;

/// Handed to the pool with each request.
pub(crate) type Ticket = Arc<RequestTicket>;

/// What goes with a request into the pool: the request's span, which the instance's
/// capability and call spans nest under, and a place for the retire flag of the instance
/// that takes the request, so that whoever sees the request fail (a trap, a deadline) can
/// retire that instance before it takes another request.
pub(crate) struct RequestTicket {
    retire: std::sync::OnceLock<Arc<AtomicBool>>,
    span: tracing::Span,
}

impl RequestTicket {
    /// A ticket for a request handled in `span`.
    pub(crate) fn new(span: tracing::Span) -> Ticket {
        Arc::new(Self {
            retire: std::sync::OnceLock::new(),
            span,
        })
    }
}

/// Retires the instance that served the request `ticket` went with, if one took it.
pub(crate) fn retire(ticket: &Ticket) {
    if let Some(retire) = ticket.retire.get() {
        retire.store(true, Ordering::SeqCst);
    }
}

impl Pool {
    /// A pool of at most `max_instances` instances of `pre`, each serving up to
    /// `reuse.max_concurrent` requests at once (`concurrent`: false for 0.2 components).
    pub(crate) fn handler(
        pre: ProxyPre<InstanceState>,
        context: InstanceContext,
        bounds: InstanceBounds,
        mut reuse: Reuse,
        concurrent: bool,
        max_instances: u32,
    ) -> Handler {
        if !concurrent {
            reuse.max_concurrent = 1;
        }
        reuse.max_concurrent = reuse.max_concurrent.max(1);
        reuse.max_requests = reuse.max_requests.max(1);
        let max_instances = (max_instances as usize).max(1);
        ProxyHandler::new(Pool {
            pre,
            context,
            bounds,
            reuse,
            slots: Arc::new(Semaphore::new(max_instances)),
            max_instances,
            waiting: Arc::default(),
        })
    }

    pub(crate) fn reuse(&self) -> Reuse {
        self.reuse
    }

    pub(crate) fn waiting(&self) -> &Arc<Waiting> {
        &self.waiting
    }
}

impl HandlerState for Pool {
    type StoreData = InstanceState;
    type WorkerExpiration = Expiry;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<InstanceState, Expiry, Worker>> {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            return Err(wasmtime::Error::new(NoSlot(self.max_instances)));
        };
        let limit = self.bounds.max_execution_time;
        let mut store = self
            .bounds
            .reused_store(self.pre_engine(), self.context.clone());
        // The limiter sets it when it refuses memory, a failed request through its ticket.
        let retire = store.data().limits.refused.clone();
        let proxy = match tokio::time::timeout(limit, self.pre.instantiate_async(&mut store)).await
        {
            Ok(proxy) => proxy?,
            Err(_) => wasmtime::bail!("instantiation took longer than {limit:?}"),
        };
        Ok(Instance {
            store,
            proxy,
            view: <InstanceState as WasiHttpView>::http,
            expiration: Expiry {
                limit,
                idle: self.reuse.idle_timeout,
                timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
                waiting: self.waiting.clone(),
                woken: Box::pin(WaitingWakeup::new(self.waiting.clone())),
            },
            state: Worker {
                reuse: self.reuse,
                limit,
                retire,
                waiting: self.waiting.clone(),
                in_flight: Arc::default(),
                _slot: slot,
            },
        })
    }
}

impl Pool {
    fn pre_engine(&self) -> &wasmtime::Engine {
        match &self.pre {
            ProxyPre::P2(pre) => pre.engine(),
            ProxyPre::P3(pre) => pre.engine(),
        }
    }
}

/// What one instance accepts, and its slot.
pub(crate) struct Worker {
    reuse: Reuse,
    limit: Duration,
    /// Set when the instance must take no more requests.
    retire: Arc<AtomicBool>,
    waiting: Arc<Waiting>,
    /// The requests it is serving now.
    in_flight: Arc<AtomicUsize>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // The slot is free once this returns: tell the requests waiting for one.
        self.waiting.changed.notify_waiters();
    }
}

impl WorkerState for Worker {
    type StoreData = InstanceState;
    type RequestData = Ticket;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.reuse.max_requests || self.retire.load(Ordering::SeqCst) {
            ShouldAccept::Never
        } else if concurrent >= self.reuse.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, InstanceState>,
        ticket: Ticket,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync + 'static>> {
        let _ = ticket.retire.set(self.retire.clone());
        // The instance's spans nest under the request while it serves that one alone; with
        // several at once, a host call cannot tell whose it is, so they nest under none.
        let alone = self.in_flight.fetch_add(1, Ordering::SeqCst) == 0;
        store
            .data_mut()
            .set_request_span(alone.then(|| ticket.span.clone()));
        // The pool drops this future when the request ends, either way.
        Box::pin(InFlight {
            deadline: Box::pin(tokio::time::sleep(self.limit)),
            in_flight: self.in_flight.clone(),
        })
    }

    fn drop(&self, _store: wasmtime::Store<InstanceState>, result: wasmtime::Result<()>) {
        if let Err(e) = result {
            tracing::debug!(error = %format!("{e:#}"), "reused instance retired after a failure");
        }
    }
}

/// A request's deadline, which counts the request in flight until it is dropped.
struct InFlight {
    deadline: Pin<Box<tokio::time::Sleep>>,
    in_flight: Arc<AtomicUsize>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Future for InFlight {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.deadline.as_mut().poll(cx)
    }
}

/// When an instance expires: a request past its deadline (measured from the most recent
/// request it took, as the pool reports it), or idle for too long, or idle while a request
/// waits for a slot.
pub(crate) struct Expiry {
    limit: Duration,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    waiting: Arc<Waiting>,
    woken: Pin<Box<WaitingWakeup>>,
}

impl WorkerExpiration for Expiry {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let this = self.get_mut();
        let until = match status {
            WorkerStatus::Idle => {
                // Register for the next change first, then look: a request that starts
                // waiting after the look wakes this up.
                while this.woken.as_mut().poll(cx).is_ready() {
                    this.woken.set(WaitingWakeup::new(this.waiting.clone()));
                }
                if this.waiting.count.load(Ordering::SeqCst) > 0 {
                    return Poll::Ready(());
                }
                start + this.idle
            }
            WorkerStatus::Requests | WorkerStatus::PostReturn => start + this.limit,
        };
        let until = tokio::time::Instant::from_std(until);
        if this.timer.deadline() != until {
            this.timer.as_mut().reset(until);
        }
        this.timer.as_mut().poll(cx)
    }
}

/// A future that resolves when [`Waiting`] changes; owns its `Arc` so it can be stored.
struct WaitingWakeup {
    future: Pin<Box<dyn Future<Output = ()> + Send + Sync>>,
}

impl WaitingWakeup {
    fn new(waiting: Arc<Waiting>) -> Self {
        Self {
            future: Box::pin(async move { waiting.changed().await }),
        }
    }
}

impl Future for WaitingWakeup {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.future.as_mut().poll(cx)
    }
}
