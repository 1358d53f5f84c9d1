//! An in-process broker for embedded mode: components in one host talk to each other with
//! NATS semantics and no broker process.
//!
//! Headers travel with a message unchanged, as NATS would carry them. Delivery is at most
//! once, like core NATS: a subscriber that has fallen
//! [`SUBSCRIPTION_CAPACITY`] messages behind loses new messages (with a warning) rather than
//! slowing the publisher down, so one stuck component cannot stall the others.

use crate::{Error, Message, Messaging, Subscription, subject};
use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc::{self, error::TrySendError};

/// How many undelivered messages one subscription may hold before new ones are dropped
/// for it.
pub const SUBSCRIPTION_CAPACITY: usize = 1024;

/// The in-process broker. Cheap to clone; clones share subscriptions.
#[derive(Debug, Clone, Default)]
pub struct InProcess {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    subs: Vec<Sub>,
    next_id: u64,
    /// Round-robin position of each queue group, by queue name.
    cursors: HashMap<String, usize>,
}

#[derive(Debug)]
struct Sub {
    id: u64,
    pattern: String,
    queue: Option<String>,
    tx: mpsc::Sender<Message>,
}

impl State {
    fn remove(&mut self, id: u64) {
        let Some(pos) = self.subs.iter().position(|s| s.id == id) else {
            return;
        };
        let sub = self.subs.swap_remove(pos);
        self.forget_empty_group(sub.queue.as_deref());
    }

    fn forget_empty_group(&mut self, queue: Option<&str>) {
        if let Some(queue) = queue
            && !self.subs.iter().any(|s| s.queue.as_deref() == Some(queue))
        {
            self.cursors.remove(queue);
        }
    }

    /// Removes subscriptions whose stream was dropped without the guard running (it always
    /// runs today, but a leaked stream must not keep a sender alive forever).
    fn prune_closed(&mut self) {
        let closed: Vec<u64> = self
            .subs
            .iter()
            .filter(|s| s.tx.is_closed())
            .map(|s| s.id)
            .collect();
        for id in closed {
            self.remove(id);
        }
    }
}

impl InProcess {
    /// A broker with no subscriptions.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn subscribe_unchecked(&self, pattern: &str, queue: Option<&str>) -> SubStream {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_CAPACITY);
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.subs.push(Sub {
            id,
            pattern: pattern.to_owned(),
            queue: queue.map(str::to_owned),
            tx,
        });
        SubStream {
            rx,
            _guard: Unsubscribe {
                state: Arc::downgrade(&self.state),
                id,
            },
        }
    }

    /// Delivers `message` to every matching plain subscription and one member of each
    /// matching queue group; returns how many subscriptions matched (whether or not they
    /// had room), which is what decides "no responders".
    fn deliver(&self, message: Message) -> usize {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.prune_closed();

        let mut matched = 0;
        let mut groups: BTreeMap<&str, Vec<&Sub>> = BTreeMap::new();
        for sub in &state.subs {
            if !subject::matches(&sub.pattern, &message.subject) {
                continue;
            }
            matched += 1;
            match &sub.queue {
                Some(queue) => groups.entry(queue).or_default().push(sub),
                None => {
                    if let Err(TrySendError::Full(_)) = sub.tx.try_send(message.clone()) {
                        tracing::warn!(
                            subject = %message.subject,
                            pattern = %sub.pattern,
                            "subscriber is {SUBSCRIPTION_CAPACITY} messages behind; dropping a message for it"
                        );
                    }
                }
            }
        }

        for (queue, members) in groups {
            let cursor = state.cursors.entry(queue.to_owned()).or_default();
            let start = *cursor % members.len();
            *cursor = cursor.wrapping_add(1);
            // The chosen member may be full; the next one in turn gets the message instead,
            // so the group only loses it when every member is behind.
            let delivered = (0..members.len())
                .map(|i| members[(start + i) % members.len()])
                .any(|member| member.tx.try_send(message.clone()).is_ok());
            if !delivered {
                tracing::warn!(
                    subject = %message.subject,
                    queue,
                    "every member of the queue group is {SUBSCRIPTION_CAPACITY} messages behind; dropping a message"
                );
            }
        }
        matched
    }
}

#[async_trait]
impl Messaging for InProcess {
    async fn publish(&self, message: Message) -> Result<(), Error> {
        message.validate()?;
        self.deliver(message);
        Ok(())
    }

    async fn request(
        &self,
        subject: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Message, Error> {
        subject::validate(subject, false)?;
        let inbox = format!("_INBOX.{}", uuid::Uuid::new_v4().simple());
        // Subscribe before publishing so that a responder answering at once is not missed.
        let mut replies = self.subscribe_unchecked(&inbox, None);
        let matched = self.deliver(Message {
            reply_to: Some(inbox),
            ..Message::new(subject, body)
        });
        if matched == 0 {
            return Err(Error::NoResponders {
                subject: subject.to_owned(),
            });
        }
        match tokio::time::timeout(timeout, replies.next()).await {
            Ok(Some(reply)) => Ok(reply),
            // The inbox sender lives in the broker state until this stream is dropped.
            Ok(None) => Err(Error::Backend("reply subscription closed".to_owned())),
            Err(_) => Err(Error::TimedOut {
                subject: subject.to_owned(),
                timeout,
            }),
        }
    }

    async fn request_many(
        &self,
        message: Message,
        timeout: Duration,
        max_replies: NonZeroUsize,
    ) -> Result<Vec<Message>, Error> {
        let message = Message {
            reply_to: None,
            ..message
        };
        message.validate()?;
        let subject = message.subject.clone();
        let inbox = format!("_INBOX.{}", uuid::Uuid::new_v4().simple());
        let mut replies = self.subscribe_unchecked(&inbox, None);
        let matched = self.deliver(Message {
            reply_to: Some(inbox),
            ..message
        });
        if matched == 0 {
            return Err(Error::NoResponders { subject });
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < max_replies.get() {
            match tokio::time::timeout_at(deadline, replies.next()).await {
                Ok(Some(reply)) => got.push(reply),
                Ok(None) => return Err(Error::Backend("reply subscription closed".to_owned())),
                Err(_) => break,
            }
        }
        if got.is_empty() {
            return Err(Error::TimedOut { subject, timeout });
        }
        Ok(got)
    }

    async fn subscribe(&self, subject: &str, queue: Option<&str>) -> Result<Subscription, Error> {
        subject::validate(subject, true)?;
        if let Some(queue) = queue
            && (queue.is_empty() || queue.chars().any(char::is_whitespace))
        {
            return Err(Error::InvalidSubject {
                subject: subject.to_owned(),
                reason: format!("invalid queue group `{queue}`"),
            });
        }
        Ok(self.subscribe_unchecked(subject, queue).boxed())
    }

    async fn health(&self) -> Result<(), crate::HealthError> {
        Ok(())
    }
}

/// One subscription's messages; dropping it unsubscribes.
struct SubStream {
    rx: mpsc::Receiver<Message>,
    _guard: Unsubscribe,
}

impl Stream for SubStream {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.get_mut().rx.poll_recv(cx)
    }
}

struct Unsubscribe {
    // Weak so that a forgotten subscription does not keep a dropped broker alive.
    state: Weak<Mutex<State>>,
    id: u64,
}

// Every critical section leaves the broker's state consistent, so a panic elsewhere while
// holding the lock does not make it unusable.
use trellis_provider::lock;

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        if let Some(state) = self.state.upgrade() {
            lock(&state).remove(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use std::collections::HashSet;

    fn msg(subject: &str, body: &'static str) -> Message {
        Message::new(subject, Bytes::from_static(body.as_bytes()))
    }

    async fn next(sub: &mut Subscription) -> Message {
        tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("a message within 5s")
            .expect("subscription open")
    }

    /// The next message already waiting in `sub`, if any. Delivery is synchronous, so
    /// there is nothing to wait for; `unconstrained` keeps tokio's cooperative budget from
    /// faking an empty channel after 128 polls.
    fn try_next(sub: &mut Subscription) -> Option<Message> {
        tokio::task::unconstrained(sub.next())
            .now_or_never()
            .flatten()
    }

    fn drain(sub: &mut Subscription) -> usize {
        std::iter::from_fn(|| try_next(sub)).count()
    }

    fn assert_empty(sub: &mut Subscription) {
        assert_eq!(try_next(sub), None, "unexpected message");
    }

    fn sub_count(broker: &InProcess) -> usize {
        broker.lock().subs.len()
    }

    #[tokio::test]
    async fn fan_out_to_every_plain_subscriber() {
        let broker = InProcess::new();
        let mut a = broker
            .subscribe("orders.created", None)
            .await
            .expect("sub a");
        let mut b = broker
            .subscribe("orders.created", None)
            .await
            .expect("sub b");
        let mut other = broker
            .subscribe("orders.deleted", None)
            .await
            .expect("sub other");
        broker
            .publish(msg("orders.created", "1"))
            .await
            .expect("publish");
        assert_eq!(next(&mut a).await, msg("orders.created", "1"));
        assert_eq!(next(&mut b).await, msg("orders.created", "1"));
        assert_empty(&mut other);
    }

    #[tokio::test]
    async fn publish_without_subscribers_succeeds() {
        let broker = InProcess::new();
        broker
            .publish(msg("nobody.listens", "x"))
            .await
            .expect("publish");
    }

    #[tokio::test]
    async fn queue_group_delivers_each_message_once() {
        let broker = InProcess::new();
        let mut members = Vec::new();
        for _ in 0..3 {
            members.push(
                broker
                    .subscribe("jobs", Some("workers"))
                    .await
                    .expect("sub"),
            );
        }
        let mut plain = broker.subscribe("jobs", None).await.expect("plain sub");
        for i in 0..30 {
            let body = format!("{i}");
            broker
                .publish(Message::new("jobs", body))
                .await
                .expect("publish");
        }
        let mut seen = HashSet::new();
        for member in &mut members {
            let mut count = 0;
            while let Some(m) = try_next(member) {
                assert!(seen.insert(m.body.clone()), "delivered twice: {:?}", m.body);
                count += 1;
            }
            // Round-robin spreads the load evenly.
            assert_eq!(count, 10);
        }
        assert_eq!(seen.len(), 30);
        for _ in 0..30 {
            next(&mut plain).await;
        }
    }

    #[tokio::test]
    async fn separate_queue_groups_each_get_a_copy() {
        let broker = InProcess::new();
        let mut a = broker.subscribe("jobs", Some("a")).await.expect("sub");
        let mut b = broker.subscribe("jobs", Some("b")).await.expect("sub");
        broker.publish(msg("jobs", "x")).await.expect("publish");
        next(&mut a).await;
        next(&mut b).await;
    }

    #[tokio::test]
    async fn full_subscriber_loses_messages_without_blocking() {
        let broker = InProcess::new();
        let mut slow = broker.subscribe("fast", None).await.expect("sub");
        for _ in 0..SUBSCRIPTION_CAPACITY + 10 {
            broker.publish(msg("fast", "x")).await.expect("publish");
        }
        assert_eq!(drain(&mut slow), SUBSCRIPTION_CAPACITY);
    }

    #[tokio::test]
    async fn full_queue_member_is_skipped() {
        let broker = InProcess::new();
        let mut a = broker.subscribe("q", Some("g")).await.expect("sub");
        let mut b = broker.subscribe("q", Some("g")).await.expect("sub");
        for _ in 0..SUBSCRIPTION_CAPACITY * 2 {
            broker.publish(msg("q", "x")).await.expect("publish");
        }
        // Both are now full; the next message is dropped, not blocked on.
        broker.publish(msg("q", "x")).await.expect("publish");
        assert_eq!(drain(&mut a) + drain(&mut b), SUBSCRIPTION_CAPACITY * 2);
    }

    #[tokio::test]
    async fn wildcard_subscriptions() {
        let broker = InProcess::new();
        let mut star = broker.subscribe("orders.*", None).await.expect("sub");
        let mut rest = broker.subscribe("orders.>", None).await.expect("sub");
        broker
            .publish(msg("orders.created", "1"))
            .await
            .expect("publish");
        broker
            .publish(msg("orders.eu.created", "2"))
            .await
            .expect("publish");
        broker.publish(msg("orders", "3")).await.expect("publish");
        assert_eq!(next(&mut star).await.body, "1");
        assert_empty(&mut star);
        assert_eq!(next(&mut rest).await.body, "1");
        assert_eq!(next(&mut rest).await.body, "2");
        assert_empty(&mut rest);
    }

    #[tokio::test]
    async fn subject_validation() {
        let broker = InProcess::new();
        assert!(matches!(
            broker.publish(msg("orders.*", "x")).await,
            Err(Error::InvalidSubject { .. })
        ));
        assert!(matches!(
            broker.publish(msg("a..b", "x")).await,
            Err(Error::InvalidSubject { .. })
        ));
        let mut bad_reply = msg("a", "x");
        bad_reply.reply_to = Some("reply.>".into());
        assert!(broker.publish(bad_reply).await.is_err());
        assert!(broker.subscribe("a b", None).await.is_err());
        assert!(broker.subscribe("a.>.b", None).await.is_err());
        assert!(broker.subscribe("a", Some("")).await.is_err());
        assert!(broker.subscribe("a", Some("q q")).await.is_err());
        assert!(matches!(
            broker
                .request("a.*", Bytes::new(), Duration::from_secs(1))
                .await,
            Err(Error::InvalidSubject { .. })
        ));
    }

    #[tokio::test]
    async fn request_reply() {
        let broker = InProcess::new();
        let mut requests = broker.subscribe("echo", Some("svc")).await.expect("sub");
        let responder = {
            let broker = broker.clone();
            tokio::spawn(async move {
                while let Some(req) = requests.next().await {
                    let reply_to = req.reply_to.clone().expect("request has reply_to");
                    assert!(reply_to.starts_with("_INBOX."));
                    let mut body = b"re: ".to_vec();
                    body.extend_from_slice(&req.body);
                    broker
                        .publish(Message::new(reply_to, body))
                        .await
                        .expect("reply");
                }
            })
        };
        for i in 0..3 {
            let reply = broker
                .request("echo", Bytes::from(format!("{i}")), Duration::from_secs(5))
                .await
                .expect("reply");
            assert_eq!(reply.body, format!("re: {i}"));
        }
        responder.abort();
    }

    #[tokio::test]
    async fn request_without_subscribers_fails_at_once() {
        let broker = InProcess::new();
        let err = broker
            .request("nobody", Bytes::new(), Duration::from_secs(3600))
            .await
            .expect_err("no responders");
        assert_eq!(
            err,
            Error::NoResponders {
                subject: "nobody".into()
            }
        );
        // The inbox subscription is gone too.
        assert_eq!(sub_count(&broker), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn request_times_out() {
        let broker = InProcess::new();
        let _silent = broker.subscribe("silent", None).await.expect("sub");
        let err = broker
            .request("silent", Bytes::new(), Duration::from_secs(2))
            .await
            .expect_err("timeout");
        assert_eq!(
            err,
            Error::TimedOut {
                subject: "silent".into(),
                timeout: Duration::from_secs(2)
            }
        );
        assert_eq!(sub_count(&broker), 1);
    }

    #[tokio::test]
    async fn dropping_the_stream_unsubscribes() {
        let broker = InProcess::new();
        let sub = broker.subscribe("x", Some("q")).await.expect("sub");
        let plain = broker.subscribe("x", None).await.expect("sub");
        assert_eq!(sub_count(&broker), 2);
        drop(sub);
        drop(plain);
        assert_eq!(sub_count(&broker), 0);
        assert!(broker.lock().cursors.is_empty());
        assert!(matches!(
            broker
                .request("x", Bytes::new(), Duration::from_secs(1))
                .await,
            Err(Error::NoResponders { .. })
        ));
    }

    /// Answers every request on `subject` with `answer`, keeping its headers.
    fn responder(broker: &InProcess, mut requests: Subscription, answer: &'static str) {
        let broker = broker.clone();
        tokio::spawn(async move {
            while let Some(req) = requests.next().await {
                let reply = Message {
                    headers: req.headers.clone(),
                    ..Message::new(req.reply_to.expect("reply_to"), answer)
                };
                broker.publish(reply).await.expect("reply");
            }
        });
    }

    #[tokio::test(start_paused = true)]
    async fn request_many_collects_up_to_the_expected_replies_with_headers() {
        let broker = InProcess::new();
        for answer in ["a", "b", "c"] {
            let sub = broker.subscribe("fan", None).await.expect("sub");
            responder(&broker, sub, answer);
        }
        let request = Message {
            headers: vec![("k".into(), "v".into())],
            ..Message::new("fan", "q")
        };
        let two = NonZeroUsize::new(2).expect("2");
        let replies = broker
            .request_many(request.clone(), Duration::from_secs(5), two)
            .await
            .expect("replies");
        assert_eq!(replies.len(), 2);
        assert!(replies.iter().all(|r| r.headers == request.headers));

        // Asking for more than there are returns what came before the timeout.
        let ten = NonZeroUsize::new(10).expect("10");
        let started = tokio::time::Instant::now();
        let mut bodies: Vec<_> = broker
            .request_many(request, Duration::from_secs(2), ten)
            .await
            .expect("replies")
            .into_iter()
            .map(|r| r.body)
            .collect();
        bodies.sort();
        assert_eq!(bodies, ["a", "b", "c"]);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn request_many_with_no_reply_times_out_and_without_subscribers_fails_at_once() {
        let broker = InProcess::new();
        let one = NonZeroUsize::MIN;
        let err = broker
            .request_many(Message::new("nobody", ""), Duration::from_secs(60), one)
            .await
            .expect_err("no responders");
        assert!(matches!(err, Error::NoResponders { .. }), "{err:?}");
        let _silent = broker.subscribe("silent", None).await.expect("sub");
        let err = broker
            .request_many(Message::new("silent", ""), Duration::from_secs(1), one)
            .await
            .expect_err("timeout");
        assert!(matches!(err, Error::TimedOut { .. }), "{err:?}");
        assert_eq!(sub_count(&broker), 1, "the inbox is unsubscribed");
    }

    #[tokio::test]
    async fn health_is_ok() {
        InProcess::new()
            .health()
            .await
            .expect("an in-process broker is always healthy");
    }
}
