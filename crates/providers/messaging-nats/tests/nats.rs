//! Against real NATS servers: the shared one at 127.0.0.1:4222, and private `nats-server`
//! processes (from PATH) that the outage tests stop and restart.

use bytes::Bytes;
use futures::StreamExt;
use std::collections::{BTreeMap, HashSet};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use trellis_messaging::{Error, Message, Messaging, Subscription};
use trellis_messaging_nats::{NatsMessaging, NatsMessagingConfig};

const SHARED_NATS: &str = "nats://127.0.0.1:4222";

async fn connect_to(uri: &str) -> NatsMessaging {
    let config = NatsMessagingConfig::from_config(&BTreeMap::from([(
        "cluster_uris".to_owned(),
        uri.to_owned(),
    )]))
    .expect("config");
    NatsMessaging::connect(&config).await
}

async fn shared() -> NatsMessaging {
    let nats = connect_to(SHARED_NATS).await;
    nats.health()
        .await
        .expect("these tests need NATS at 127.0.0.1:4222");
    nats
}

/// A subject no other test (or earlier run) uses.
fn unique(prefix: &str) -> String {
    format!("trellis-test.{prefix}.{}", uuid::Uuid::new_v4().simple())
}

fn msg(subject: &str, body: impl Into<Bytes>) -> Message {
    Message::new(subject, body)
}

async fn next(sub: &mut Subscription) -> Message {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("a message within 5s")
        .expect("subscription open")
}

async fn nothing_within(sub: &mut Subscription, wait: Duration) -> bool {
    tokio::time::timeout(wait, sub.next()).await.is_err()
}

#[tokio::test]
async fn publish_and_subscribe() {
    let nats = shared().await;
    let subject = unique("pubsub");
    let mut exact = nats.subscribe(&subject, None).await.expect("subscribe");
    let mut wildcard = nats
        .subscribe(&format!("{subject}.>"), None)
        .await
        .expect("subscribe wildcard");
    let mut reply_msg = msg(&subject, "hello");
    reply_msg.reply_to = Some(format!("{subject}.reply"));
    nats.publish(reply_msg.clone()).await.expect("publish");
    nats.publish(msg(&format!("{subject}.deep.er"), "deeper"))
        .await
        .expect("publish");
    assert_eq!(next(&mut exact).await, reply_msg);
    let deeper = next(&mut wildcard).await;
    assert_eq!(deeper.subject, format!("{subject}.deep.er"));
    assert_eq!(deeper.body, "deeper");
    assert!(nothing_within(&mut exact, Duration::from_millis(200)).await);
}

#[tokio::test]
async fn invalid_subjects_are_refused_locally() {
    let nats = shared().await;
    assert!(matches!(
        nats.publish(msg("a.*", "x")).await,
        Err(Error::InvalidSubject { .. })
    ));
    assert!(matches!(
        nats.subscribe("a..b", None).await,
        Err(Error::InvalidSubject { .. })
    ));
    assert!(matches!(
        nats.subscribe("a", Some("bad queue")).await,
        Err(Error::InvalidSubject { .. })
    ));
}

#[tokio::test]
async fn queue_group_delivers_each_message_once() {
    let nats = shared().await;
    let subject = unique("queue");
    let mut a = nats.subscribe(&subject, Some("workers")).await.expect("a");
    let mut b = nats.subscribe(&subject, Some("workers")).await.expect("b");
    for i in 0..20 {
        nats.publish(msg(&subject, format!("{i}")))
            .await
            .expect("publish");
    }
    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.len() < 20 && Instant::now() < deadline {
        let m = tokio::select! {
            Some(m) = a.next() => m,
            Some(m) = b.next() => m,
            _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
        };
        assert!(seen.insert(m.body.clone()), "delivered twice: {:?}", m.body);
    }
    assert_eq!(seen.len(), 20);
    assert!(nothing_within(&mut a, Duration::from_millis(200)).await);
    assert!(nothing_within(&mut b, Duration::from_millis(10)).await);
}

/// Answers every request on `subject` with "re: " and its body.
async fn responder(nats: &NatsMessaging, subject: &str) -> tokio::task::JoinHandle<()> {
    let mut requests = nats.subscribe(subject, None).await.expect("subscribe");
    let nats = nats.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let Some(reply_to) = request.reply_to else {
                continue;
            };
            let mut body = b"re: ".to_vec();
            body.extend_from_slice(&request.body);
            // Headers come back as they went, so tests can see them cross twice.
            let reply = Message {
                headers: request.headers,
                ..msg(&reply_to, body)
            };
            nats.publish(reply).await.expect("reply");
        }
    })
}

#[tokio::test]
async fn request_reply() {
    let nats = shared().await;
    let subject = unique("echo");
    let task = responder(&nats, &subject).await;
    for i in 0..3 {
        let reply = nats
            .request(
                &subject,
                Bytes::from(format!("{i}")),
                Duration::from_secs(5),
            )
            .await
            .expect("reply");
        assert_eq!(reply.body, format!("re: {i}"));
    }
    task.abort();
}

#[tokio::test]
async fn headers_travel_and_several_replies_are_collected() {
    let nats = shared().await;
    let subject = unique("fan");
    let tasks = [
        responder(&nats, &subject).await,
        responder(&nats, &subject).await,
        responder(&nats, &subject).await,
    ];
    let request = Message {
        headers: vec![
            ("trace".to_owned(), "t-1".to_owned()),
            ("Content-Type".to_owned(), "text/plain".to_owned()),
        ],
        ..msg(&subject, "q")
    };
    let mut expected = request.headers.clone();
    expected.sort();
    for (asked, timeout, got) in [(1, 5, 1), (2, 5, 2), (10, 1, 3)] {
        let replies = nats
            .request_many(
                request.clone(),
                Duration::from_secs(timeout),
                std::num::NonZeroUsize::new(asked).expect("non-zero"),
            )
            .await
            .expect("replies");
        assert_eq!(replies.len(), got, "asked for {asked}");
        for reply in replies {
            assert_eq!(reply.body, "re: q");
            let mut headers = reply.headers;
            headers.sort();
            assert_eq!(headers, expected);
        }
    }
    for task in tasks {
        task.abort();
    }

    let silent = unique("silent");
    let _silent = nats.subscribe(&silent, None).await.expect("subscribe");
    let two = std::num::NonZeroUsize::new(2).expect("2");
    let err = nats
        .request_many(msg(&silent, ""), Duration::from_millis(300), two)
        .await
        .expect_err("timeout");
    assert!(matches!(err, Error::TimedOut { .. }), "{err:?}");
    let err = nats
        .request_many(msg(&unique("nobody"), ""), Duration::from_secs(30), two)
        .await
        .expect_err("no responders");
    assert!(matches!(err, Error::NoResponders { .. }), "{err:?}");
    let bad = Message {
        headers: vec![("bad name".to_owned(), "v".to_owned())],
        ..msg(&subject, "")
    };
    assert!(matches!(
        nats.publish(bad).await,
        Err(Error::InvalidHeader { .. })
    ));
}

#[tokio::test]
async fn request_without_responders() {
    let nats = shared().await;
    let subject = unique("nobody");
    let started = Instant::now();
    let err = nats
        .request(&subject, Bytes::new(), Duration::from_secs(30))
        .await
        .expect_err("no responders");
    assert_eq!(err, Error::NoResponders { subject });
    // Not a performance assertion: told at once, not after the 30 s timeout.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn request_times_out() {
    let nats = shared().await;
    let subject = unique("silent");
    let _silent = nats.subscribe(&subject, None).await.expect("subscribe");
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = nats
        .request(&subject, Bytes::new(), timeout)
        .await
        .expect_err("timeout");
    assert_eq!(err, Error::TimedOut { subject, timeout });
    // Not a performance assertion: the 300 ms timeout, not async-nats's 10 s default.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn dropping_the_stream_unsubscribes() {
    let nats = shared().await;
    let subject = unique("drop");
    let sub = nats.subscribe(&subject, None).await.expect("subscribe");
    drop(sub);
    // The UNSUB is queued before the request's PUB on the same connection.
    let err = nats
        .request(&subject, Bytes::new(), Duration::from_secs(5))
        .await
        .expect_err("nobody listens any more");
    assert!(matches!(err, Error::NoResponders { .. }), "{err}");
}

/// A private `nats-server` on a fixed port, killed when dropped.
struct NatsServer {
    child: Child,
}

impl NatsServer {
    fn start(port: u16) -> Self {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (is it on PATH?)");
        let server = Self { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Runs `call` until it succeeds, for up to `within`.
async fn eventually<T>(within: Duration, mut call: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + within;
    loop {
        match call().await {
            Ok(value) => return value,
            Err(e) if Instant::now() >= deadline => panic!("still failing after {within:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Asserts that every kind of call fails fast while `nats` cannot reach its server.
async fn assert_fails_fast(nats: &NatsMessaging, subject: &str) {
    let started = Instant::now();
    let err = nats
        .publish(msg(subject, "lost"))
        .await
        .expect_err("publish while down");
    assert!(
        matches!(&err, Error::Backend(text) if text.contains("unreachable")),
        "{err}"
    );
    let err = nats
        .request(subject, Bytes::new(), Duration::from_secs(30))
        .await
        .expect_err("request while down");
    assert!(
        matches!(&err, Error::Backend(text) if text.contains("unreachable")),
        "{err}"
    );
    let health = nats.health().await.expect_err("health while down");
    assert!(health.to_string().contains("unreachable"), "{health}");
    // Not a performance assertion: nothing waited out the 30 s request timeout or the 5 s
    // command timeout, with room for a busy machine.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_server_restart() {
    let port = free_port();
    let uri = format!("nats://127.0.0.1:{port}");
    let server = NatsServer::start(port);
    let nats = connect_to(&uri).await;
    nats.health().await.expect("healthy at start");
    let subject = unique("restart");
    let mut sub = nats.subscribe(&subject, None).await.expect("subscribe");
    nats.publish(msg(&subject, "before"))
        .await
        .expect("publish");
    assert_eq!(next(&mut sub).await.body, "before");

    drop(server);
    // The client notices the closed socket at once; allow a little scheduling slack.
    let down = Instant::now();
    eventually(Duration::from_secs(5), async || {
        nats.health()
            .await
            .err()
            .map(|_| ())
            .ok_or("still healthy".to_owned())
    })
    .await;
    assert!(
        down.elapsed() < Duration::from_secs(3),
        "{:?}",
        down.elapsed()
    );
    assert_fails_fast(&nats, &subject).await;

    let _server = NatsServer::start(port);
    eventually(Duration::from_secs(15), async || {
        nats.health().await.map_err(|e| e.to_string())
    })
    .await;
    // The old subscription is renewed on the new connection; its SUB may still be in
    // flight when the first publish goes out, so publish until one arrives.
    let received = eventually(Duration::from_secs(10), async || {
        nats.publish(msg(&subject, "after"))
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(Duration::from_millis(300), sub.next())
            .await
            .map_err(|_| "nothing yet".to_owned())
    })
    .await
    .expect("subscription open");
    assert_eq!(received.body, "after");

    let responder = responder(&nats, &format!("{subject}.echo")).await;
    let reply = nats
        .request(
            &format!("{subject}.echo"),
            Bytes::from("x"),
            Duration::from_secs(5),
        )
        .await
        .expect("request after restart");
    assert_eq!(reply.body, "re: x");
    responder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_while_the_server_is_down() {
    let port = free_port();
    let uri = format!("nats://127.0.0.1:{port}");
    let started = Instant::now();
    let nats = connect_to(&uri).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let subject = unique("late");
    // Accepted while down, active once connected.
    let mut sub = nats
        .subscribe(&subject, None)
        .await
        .expect("subscribe while down");
    assert_fails_fast(&nats, &subject).await;

    let _server = NatsServer::start(port);
    eventually(Duration::from_secs(15), async || {
        nats.health().await.map_err(|e| e.to_string())
    })
    .await;
    let received = eventually(Duration::from_secs(10), async || {
        nats.publish(msg(&subject, "hello"))
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(Duration::from_millis(300), sub.next())
            .await
            .map_err(|_| "nothing yet".to_owned())
    })
    .await
    .expect("subscription open");
    assert_eq!(received.body, "hello");
}
