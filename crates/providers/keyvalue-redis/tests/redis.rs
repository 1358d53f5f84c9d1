//! The Redis backend against real servers: the shared one on 127.0.0.1:6379 (database 9, so as
//! not to touch other users' data), and private `redis-server` processes that these tests start,
//! stop and restart on free ports.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use trellis_keyvalue::{Error, KeyValue, conformance};
use trellis_keyvalue_redis::{RedisConfig, RedisStore, RedisTimeouts};

/// The shared server, in a database other tests do not use.
const SHARED_URL: &str = "redis://127.0.0.1:6379/9";

fn config(url: &str) -> RedisConfig {
    RedisConfig {
        url: url.to_owned(),
        ignored: Vec::new(),
    }
}

/// A key no other run uses.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("trellis-test:{}:{nanos}:{name}", std::process::id())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A private `redis-server`, killed when dropped.
struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start(port: u16) -> Self {
        Self::start_with(port, &[])
    }

    fn start_with(port: u16, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(extra)
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
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
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("still failing after {within:?}: {e}"),
        }
    }
}

#[tokio::test]
async fn passes_conformance_on_the_shared_server() {
    let store = RedisStore::connect(&config(SHARED_URL), RedisTimeouts::default()).await;
    conformance::check(&store, "ignored").await;
}

/// On a server of its own, so that its keys and its `CONFIG SET` touch nobody else's: a
/// fresh Redis reports no key changes, and the watch switches them on.
#[tokio::test]
async fn watches_pass_conformance_and_switch_keyspace_events_on() {
    let server = RedisServer::start(free_port());
    let store = RedisStore::connect(&config(&server.url()), RedisTimeouts::default()).await;
    conformance::check_watch(&store, "ignored").await;
    let client = redis::Client::open(server.url()).expect("client");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let flags: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query_async(&mut c)
        .await
        .expect("config get");
    for flag in ['K', '$', 'g', 'x'] {
        assert!(flags[1].contains(flag), "{flags:?}");
    }
}

/// When Redis goes away the watch ends; watching again once it is back (with its default
/// settings again) works.
#[tokio::test]
async fn a_watch_ends_when_redis_goes_away_and_a_new_one_works_when_it_is_back() {
    let port = free_port();
    let server = RedisServer::start(port);
    let store = RedisStore::connect(&config(&server.url()), RedisTimeouts::default()).await;
    let keys = std::collections::BTreeSet::from(["k".to_owned()]);
    let mut changes = store.watch(keys.clone(), 8, "test").await.expect("watch");
    server.stop();
    let ended = tokio::time::timeout(Duration::from_secs(30), changes.next_change())
        .await
        .expect("the watch notices within 30 s");
    assert_eq!(ended, None, "the watch ends");
    assert!(
        store.watch(keys.clone(), 8, "test").await.is_err(),
        "watching while Redis is down fails"
    );

    let _server = RedisServer::start(port);
    let mut changes = eventually(Duration::from_secs(30), || {
        store.watch(keys.clone(), 8, "test")
    })
    .await;
    let b = store.open("").await.expect("open");
    eventually(Duration::from_secs(30), || b.set("k", b"back".to_vec())).await;
    let change = tokio::time::timeout(Duration::from_secs(30), changes.next_change())
        .await
        .expect("a change within 30 s");
    assert_eq!(
        change,
        Some(trellis_keyvalue::watch::Change::Set {
            bucket: String::new(),
            key: "k".into(),
            value: b"back".to_vec()
        })
    );
}

#[tokio::test]
async fn the_identifier_is_ignored() {
    let store = RedisStore::connect(&config(SHARED_URL), RedisTimeouts::default()).await;
    let key = unique("identifier");
    let a = store.open("a").await.expect("open");
    let b = store.open("b").await.expect("open");
    a.set(&key, b"v".to_vec()).await.expect("set");
    assert_eq!(b.get(&key).await.expect("get"), Some(b"v".to_vec()));
    b.delete(&key).await.expect("delete");
}

#[tokio::test]
async fn increment_refuses_what_redis_or_u64_cannot_count() {
    let store = RedisStore::connect(&config(SHARED_URL), RedisTimeouts::default()).await;
    let b = store.open("").await.expect("open");
    let key = unique("counter");

    // Beyond 2^53 a Lua double would lose precision; the counter must not.
    let big = (1u64 << 53) + 1;
    b.set(&key, big.to_string().into_bytes())
        .await
        .expect("set");
    assert_eq!(b.increment(&key, 2).await.expect("inc"), big + 2);
    assert_eq!(
        b.get(&key).await.expect("get"),
        Some((big + 2).to_string().into_bytes())
    );

    for (stored, why) in [
        ("-5", "negative"),
        ("abc", "text"),
        ("1.5", "fraction"),
        ("007", "leading zeros"),
    ] {
        b.set(&key, stored.as_bytes().to_vec()).await.expect("set");
        let err = b.increment(&key, 1).await.expect_err(why);
        assert!(matches!(err, Error::Other(_)), "{why}: {err:?}");
        assert_eq!(
            b.get(&key).await.expect("get"),
            Some(stored.as_bytes().to_vec()),
            "{why} is unchanged"
        );
    }

    b.set(&key, i64::MAX.to_string().into_bytes())
        .await
        .expect("set");
    let err = b.increment(&key, 1).await.expect_err("overflow");
    assert!(err.to_string().contains("overflows"), "{err}");
    assert_eq!(
        b.get(&key).await.expect("get"),
        Some(i64::MAX.to_string().into_bytes())
    );

    b.delete(&key).await.expect("delete");
    let err = b
        .increment(&key, u64::MAX)
        .await
        .expect_err("too large a step");
    assert!(err.to_string().contains("at most"), "{err}");
    assert!(
        !b.exists(&key).await.expect("exists"),
        "a refused increment writes nothing"
    );
    assert_eq!(
        b.increment(&key, i64::MAX as u64)
            .await
            .expect("largest step"),
        i64::MAX as u64
    );
    b.delete(&key).await.expect("delete");
}

#[tokio::test]
async fn list_keys_respects_the_limit_and_returns_every_key() {
    let server = RedisServer::start(free_port());
    let store = RedisStore::connect(&config(&server.url()), RedisTimeouts::default()).await;
    let b = store.open("").await.expect("open");
    let written: Vec<String> = (0..300).map(|i| format!("key:{i}")).collect();
    b.set_many(written.iter().map(|k| (k.clone(), vec![])).collect())
        .await
        .expect("set many");
    for limit in [1, 2, 3, 7, 1000] {
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        let mut split_steps = 0;
        loop {
            let page = b.list_keys(cursor, limit).await.expect("list");
            // A page goes past the limit only to keep keys of equal rank together (a
            // 15-bit hash: among these 300 keys, one pair shares one).
            assert!(
                page.keys.len() <= limit + 1,
                "limit {limit}: page of {}",
                page.keys.len()
            );
            if page.cursor.is_some_and(|c| c >> 48 != 0) {
                split_steps += 1;
            }
            seen.extend(page.keys);
            pages += 1;
            assert!(pages < 10_000, "listing does not end");
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
        seen.sort();
        seen.dedup();
        let mut expected = written.clone();
        expected.sort();
        assert_eq!(seen, expected, "limit {limit}");
        if limit == 1 {
            // 300 keys hash into some shared buckets, and SCAN returns a bucket whole.
            assert!(
                split_steps > 0,
                "a SCAN step longer than the limit was split"
            );
        }
    }
    let empty = store.open("").await.expect("open");
    empty.delete_many(written).await.expect("delete many");
    assert_eq!(
        empty.list_keys(None, 10).await.expect("list"),
        Default::default()
    );
}

/// Timeouts far longer than any bound a test asserts, so failing at once is told apart from
/// timing out with room to spare on a busy machine.
const LONG_TIMEOUTS: RedisTimeouts = RedisTimeouts {
    connect: Duration::from_secs(30),
    response: Duration::from_secs(30),
};

#[tokio::test]
async fn survives_redis_going_down_and_coming_back() {
    let port = free_port();
    let server = RedisServer::start(port);
    let store = RedisStore::connect(&config(&server.url()), LONG_TIMEOUTS).await;
    let b = store.open("").await.expect("open");
    b.set("before", b"1".to_vec()).await.expect("set while up");
    store.health().await.expect("healthy while up");

    server.stop();
    // Not performance assertions: failing at once is told from waiting out the 30 s
    // timeouts, with room for a busy machine.
    let started = Instant::now();
    let err = b.get("before").await.expect_err("a call while down fails");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failed in {:?}",
        started.elapsed()
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "redis at redis://127.0.0.1:{port}/ is unreachable"
        )),
        "{message}"
    );
    assert!(
        message.contains("calls will succeed again when it is back"),
        "{message}"
    );
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

    let _server = RedisServer::start(port);
    eventually(Duration::from_secs(10), || b.set("after", b"2".to_vec())).await;
    assert_eq!(
        b.get("after").await.expect("get after restart"),
        Some(b"2".to_vec())
    );
    // The server started empty (no persistence): the old key is gone, as it would be.
    assert_eq!(b.get("before").await.expect("get"), None);
    store.health().await.expect("healthy again");
}

#[tokio::test]
async fn starts_while_redis_is_down_and_connects_when_it_appears() {
    let port = free_port();
    // Not a performance assertion: starting at once is told from waiting out the 30 s
    // connect timeout, with room for a busy machine.
    let started = Instant::now();
    let store = RedisStore::connect(
        &config(&format!("redis://127.0.0.1:{port}/")),
        LONG_TIMEOUTS,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "connect took {:?}",
        started.elapsed()
    );
    let b = store.open("").await.expect("open works while down");
    assert!(store.health().await.is_err());
    assert!(b.get("k").await.is_err());

    let _server = RedisServer::start(port);
    eventually(Duration::from_secs(10), || b.set("k", b"v".to_vec())).await;
    assert_eq!(b.get("k").await.expect("get"), Some(b"v".to_vec()));
    store.health().await.expect("healthy");
}

#[tokio::test]
async fn a_server_that_never_answers_fails_within_the_timeouts() {
    // Accepts connections (the kernel does, from the backlog) but never says a word.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let timeouts = RedisTimeouts {
        connect: Duration::from_millis(300),
        response: Duration::from_millis(300),
    };
    let store = RedisStore::connect(&config(&format!("redis://127.0.0.1:{port}/")), timeouts).await;
    let b = store.open("").await.expect("open");
    for _ in 0..3 {
        let started = Instant::now();
        let err = b.get("k").await.expect_err("no answer");
        // Not a performance assertion: 0.6 s of timeouts, not hanging on the silent server.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
        assert!(err.to_string().contains("unreachable"), "{err}");
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let started = Instant::now();
    assert!(store.health().await.is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(silent);
}

#[tokio::test]
async fn a_hand_built_bad_url_fails_every_call_clearly() {
    let store = RedisStore::connect(&config("nonsense"), RedisTimeouts::default()).await;
    let b = store.open("").await.expect("open");
    let err = b.get("k").await.expect_err("bad url");
    assert!(err.to_string().contains("`url`"), "{err}");
    assert!(store.health().await.is_err());
}

#[tokio::test]
async fn a_wrong_password_is_reported_as_such_without_the_password() {
    let server = RedisServer::start_with(free_port(), &["--requirepass", "right-one"]);
    let url = format!("redis://:wrong-one@127.0.0.1:{}/", server.port);
    let store = RedisStore::connect(&config(&url), RedisTimeouts::default()).await;
    assert_eq!(
        store.url(),
        format!("redis://***@127.0.0.1:{}/", server.port)
    );
    let b = store.open("").await.expect("open");
    let err = b.get("k").await.expect_err("wrong password");
    let message = err.to_string();
    assert!(message.contains("refused our credentials"), "{message}");
    assert!(!message.contains("wrong-one"), "{message}");

    let url = format!("redis://:right-one@127.0.0.1:{}/", server.port);
    let store = RedisStore::connect(&config(&url), RedisTimeouts::default()).await;
    let b = store.open("").await.expect("open");
    b.set("k", b"v".to_vec()).await.expect("right password");
}
