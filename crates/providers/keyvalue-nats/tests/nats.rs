//! The NATS backend against real servers: the shared one on 127.0.0.1:4222 (JetStream on), in
//! buckets named for this run and deleted afterwards, and private `nats-server` processes that
//! these tests start, stop and restart on free ports.

use futures::FutureExt;
use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use trellis_keyvalue::{Error, KeyValue, conformance};
use trellis_keyvalue_nats::{NatsKvConfig, NatsKvStore, encode_key};

const SHARED: &str = "nats://127.0.0.1:4222";

/// A bucket name no other run uses.
fn unique_bucket(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("trellis_test_{name}_{}_{nanos}", std::process::id())
}

fn config(uri: &str, bucket: &str, auto_create: bool) -> NatsKvConfig {
    let mut map = BTreeMap::new();
    map.insert("cluster_uri".to_owned(), uri.to_owned());
    map.insert("bucket".to_owned(), bucket.to_owned());
    map.insert(
        "enable_bucket_auto_create".to_owned(),
        auto_create.to_string(),
    );
    NatsKvConfig::from_config(&map).expect("valid config")
}

/// `config` with a 30 s request timeout, so a test can tell failing at once from timing out
/// with a bound generous enough for a busy machine.
fn long_timeout(mut config: NatsKvConfig) -> NatsKvConfig {
    config.connection.request_timeout = Duration::from_secs(30);
    config
}

/// Runs `test` against a fresh auto-created bucket on the shared server, then deletes the
/// bucket whether or not the test passed.
async fn with_shared_bucket<F, Fut>(name: &str, test: F)
where
    F: FnOnce(NatsKvStore, async_nats::jetstream::Context) -> Fut,
    Fut: Future<Output = ()>,
{
    let bucket = unique_bucket(name);
    let client = async_nats::connect(SHARED)
        .await
        .expect("the shared nats-server runs on 4222");
    let js = async_nats::jetstream::new(client);
    let store = NatsKvStore::connect(&config(SHARED, &bucket, true)).await;
    let outcome = AssertUnwindSafe(test(store, js.clone()))
        .catch_unwind()
        .await;
    let _ = js.delete_key_value(&bucket).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Retries `f` until it succeeds, for up to `within`.
async fn eventually<T, F, Fut>(within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let deadline = Instant::now() + within;
    loop {
        match f().await {
            Ok(value) => return value,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("still failing after {within:?}: {e}"),
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A private `nats-server -js`, killed when dropped. Its store directory outlives it so that a
/// restart finds the same buckets.
struct NatsServer {
    child: Child,
}

impl NatsServer {
    fn start(port: u16, store_dir: &std::path::Path) -> Self {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server must be installed");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child }
    }

    fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn passes_conformance_on_the_shared_server() {
    with_shared_bucket("conformance", |store, _| async move {
        conformance::check(&store, "ignored").await;
    })
    .await;
}

#[tokio::test]
async fn watches_pass_conformance_on_the_shared_server() {
    with_shared_bucket("watch", |store, _| async move {
        conformance::check_watch(&store, "ignored").await;
    })
    .await;
}

#[tokio::test]
async fn keys_nats_does_not_allow_round_trip() {
    with_shared_bucket("keys", |store, js| async move {
        let b = store.open("x").await.expect("open");
        let awkward = [
            "with space",
            "a:b",
            "user 1: name",
            "",
            ".dot",
            "=eq",
            "ü",
            "*>",
        ];
        for (i, key) in awkward.iter().enumerate() {
            b.set(key, vec![i as u8]).await.expect("set");
        }
        b.set("plain/key.1", b"p".to_vec()).await.expect("set");
        for (i, key) in awkward.iter().enumerate() {
            assert_eq!(
                b.get(key).await.expect("get"),
                Some(vec![i as u8]),
                "{key:?}"
            );
            assert!(b.exists(key).await.expect("exists"));
        }
        let mut expected: Vec<String> = awkward.iter().map(|k| (*k).to_owned()).collect();
        expected.push("plain/key.1".to_owned());
        expected.sort();
        let page = b.list_keys(None, 2).await.expect("list");
        assert_eq!(page.keys, expected, "every key in one page, decoded");
        assert_eq!(page.cursor, None);

        // What other NATS clients see: plain keys as they are, the rest encoded.
        let raw = js.get_key_value(store.bucket()).await.expect("bucket");
        assert_eq!(
            raw.get("plain/key.1").await.expect("raw get").as_deref(),
            Some(&b"p"[..])
        );
        let stored = encode_key("with space");
        assert!(stored.starts_with('='));
        assert_eq!(
            raw.get(stored.as_ref()).await.expect("raw get").as_deref(),
            Some(&[0u8][..])
        );

        b.delete("with space").await.expect("delete");
        assert_eq!(b.get("with space").await.expect("get"), None);
        assert!(
            !b.list_keys(None, 100)
                .await
                .expect("list")
                .keys
                .contains(&"with space".to_owned())
        );
    })
    .await;
}

#[tokio::test]
async fn the_identifier_is_ignored() {
    with_shared_bucket("identifier", |store, _| async move {
        let a = store.open("a").await.expect("open");
        let b = store.open("b").await.expect("open");
        a.set("k", b"v".to_vec()).await.expect("set");
        assert_eq!(b.get("k").await.expect("get"), Some(b"v".to_vec()));
    })
    .await;
}

#[tokio::test]
async fn concurrent_increments_are_atomic() {
    with_shared_bucket("increments", |store, _| async move {
        let b = store.open("").await.expect("open");
        // A deleted counter starts again from zero.
        b.set("n", b"5".to_vec()).await.expect("set");
        b.delete("n").await.expect("delete");
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                tokio::spawn(async move {
                    for _ in 0..10 {
                        b.increment("n", 1).await.expect("inc");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(b.get("n").await.expect("get"), Some(b"40".to_vec()));
        b.set("max", u64::MAX.to_string().into_bytes())
            .await
            .expect("set");
        assert!(matches!(b.increment("max", 1).await, Err(Error::Other(_))));
        assert_eq!(
            b.get("max").await.expect("get"),
            Some(u64::MAX.to_string().into_bytes())
        );
    })
    .await;
}

#[tokio::test]
async fn a_missing_bucket_without_auto_create_is_a_clear_error() {
    let bucket = unique_bucket("missing");
    let store = NatsKvStore::connect(&config(SHARED, &bucket, false)).await;
    let b = store.open("").await.expect("open");
    let err = eventually(Duration::from_secs(5), || async {
        match b.get("k").await {
            Err(e) if e.to_string().contains("does not exist") => Ok(e),
            Err(e) => Err(e),
            Ok(v) => panic!("a missing bucket answered {v:?}"),
        }
    })
    .await;
    assert!(
        err.to_string().contains("enable_bucket_auto_create"),
        "{err}"
    );
    let health = store.health().await.expect_err("unhealthy");
    assert!(health.to_string().contains(&bucket), "{health}");
}

#[tokio::test]
async fn survives_nats_going_down_and_coming_back() {
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = NatsServer::start(port, dir.path());
    let uri = format!("nats://127.0.0.1:{port}");
    let store = NatsKvStore::connect(&long_timeout(config(&uri, "downup", true))).await;
    let b = store.open("").await.expect("open");
    eventually(Duration::from_secs(10), || b.set("before", b"1".to_vec())).await;
    store.health().await.expect("healthy while up");

    server.stop();
    // The client notices the closed socket almost at once.
    let err = eventually(Duration::from_secs(5), || async {
        match b.get("before").await {
            Err(e) => Ok(e),
            Ok(_) => Err(Error::other("still answering")),
        }
    })
    .await;
    let message = err.to_string();
    assert!(
        message.contains(&format!("nats at {uri} is unreachable")),
        "{message}"
    );
    assert!(
        message.contains("calls will succeed again when it is back"),
        "{message}"
    );
    // Not performance assertions: failing at once is told from waiting out the 30 s
    // request timeout, with room for a busy machine.
    for _ in 0..5 {
        let started = Instant::now();
        assert!(b.set("during", b"x".to_vec()).await.is_err());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "failed in {:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    let health = store.health().await.expect_err("unhealthy while down");
    assert!(health.to_string().contains("unreachable"), "{health}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let _server = NatsServer::start(port, dir.path());
    eventually(Duration::from_secs(15), || b.set("after", b"2".to_vec())).await;
    assert_eq!(b.get("after").await.expect("get"), Some(b"2".to_vec()));
    assert_eq!(
        b.get("before").await.expect("get"),
        Some(b"1".to_vec()),
        "the bucket outlived the restart"
    );
    assert_eq!(b.increment("n", 3).await.expect("inc"), 3);
    store.health().await.expect("healthy again");
}

#[tokio::test]
async fn starts_while_nats_is_down_and_connects_when_it_appears() {
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("nats://127.0.0.1:{port}");
    // Not performance assertions: starting and failing at once are told from waiting
    // out the 30 s timeout, with room for a busy machine.
    let started = Instant::now();
    let store = NatsKvStore::connect(&long_timeout(config(&uri, "late", true))).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "connect took {:?}",
        started.elapsed()
    );
    let b = store.open("").await.expect("open works while down");
    let started = Instant::now();
    let err = b.get("k").await.expect_err("down");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failed in {:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("unreachable"), "{err}");
    assert!(store.health().await.is_err());

    let _server = NatsServer::start(port, dir.path());
    eventually(Duration::from_secs(15), || b.set("k", b"v".to_vec())).await;
    assert_eq!(b.get("k").await.expect("get"), Some(b"v".to_vec()));
    store.health().await.expect("healthy");
}
