//! The NATS object-store backend against real servers: the shared one on 127.0.0.1:4222
//! (JetStream on), in containers named for this run and deleted afterwards, and private
//! `nats-server` processes that these tests start, stop and restart on free ports.

use bytes::Bytes;
use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use trellis_blobstore::{Blobstore, Error, conformance};
use trellis_blobstore_nats::{NatsBlobConfig, NatsBlobstore};

const SHARED: &str = "nats://127.0.0.1:4222";
const MAX: u64 = u64::MAX;

/// A container-name prefix no other run uses.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("trellis_test_{name}_{}_{nanos}_", std::process::id())
}

fn config(uri: &str, extra: &[(&str, &str)]) -> NatsBlobConfig {
    let mut map = BTreeMap::new();
    map.insert("cluster_uri".to_owned(), uri.to_owned());
    for (k, v) in extra {
        map.insert((*k).to_owned(), (*v).to_owned());
    }
    let mut config = NatsBlobConfig::from_config(&map).expect("valid config");
    // Generous, so that a test can tell failing at once from timing out on a busy machine.
    config.connection.request_timeout = Duration::from_secs(30);
    config
}

async fn shared() -> NatsBlobstore {
    NatsBlobstore::connect(&config(SHARED, &[])).await
}

/// A stream's config, read straight from JetStream.
async fn stream_config(container: &str) -> async_nats::jetstream::stream::Config {
    let client = async_nats::connect(SHARED).await.expect("shared nats");
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream(format!("OBJ_{container}"))
        .await
        .expect("stream");
    stream.info().await.expect("info").config.clone()
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

/// A private `nats-server` (with JetStream unless told otherwise), killed when dropped. Its
/// store directory outlives it so that a restart finds the same buckets.
struct NatsServer {
    child: Child,
}

impl NatsServer {
    fn start(port: u16, store_dir: &std::path::Path) -> Self {
        Self::spawn(port, Some(store_dir))
    }

    fn spawn(port: u16, jetstream_dir: Option<&std::path::Path>) -> Self {
        let mut cmd = Command::new("nats-server");
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
        if let Some(dir) = jetstream_dir {
            cmd.args(["-js", "-sd"]).arg(dir);
        }
        let child = cmd
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
    let store = shared().await;
    conformance::check(&store, &unique("conf")).await;
}

#[tokio::test]
async fn a_container_is_the_object_store_bucket_of_the_same_name() {
    let store = shared().await;
    let name = unique("bucket") + "photos";
    store.create_container(&name).await.expect("create");
    store
        .write_data(&name, "cat.txt", Bytes::from_static(b"meow"))
        .await
        .expect("write");

    // What a component wrote is there for `nats object get` and any other client.
    let client = async_nats::connect(SHARED).await.expect("shared nats");
    let js = async_nats::jetstream::new(client);
    let bucket = js.get_object_store(&name).await.expect("the bucket exists");
    let mut object = bucket.get("cat.txt").await.expect("object");
    let mut read = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut object, &mut read)
        .await
        .expect("read");
    assert_eq!(read, b"meow");
    // And what another client put there is an object of the container.
    bucket
        .put("from-outside", &mut &b"hello"[..])
        .await
        .expect("put");
    assert_eq!(
        store
            .get_data(&name, "from-outside", 0, MAX, MAX)
            .await
            .expect("get"),
        "hello"
    );
    assert_eq!(
        store.list_objects(&name).await.expect("list"),
        vec!["cat.txt", "from-outside"]
    );
    let config = stream_config(&name).await;
    assert_eq!(
        config.storage,
        async_nats::jetstream::stream::StorageType::File
    );
    assert_eq!(config.num_replicas, 1);
    assert_eq!(config.max_age, Duration::ZERO);
    store.delete_container(&name).await.expect("delete");
    assert!(
        js.get_object_store(&name).await.is_err(),
        "deleting the container deletes the bucket"
    );
}

#[tokio::test]
async fn storage_keys_shape_new_buckets() {
    let store = NatsBlobstore::connect(&config(
        SHARED,
        &[("storage_type", "memory"), ("max_age", "3600")],
    ))
    .await;
    let name = unique("storage") + "c";
    store.create_container(&name).await.expect("create");
    let config = stream_config(&name).await;
    store.delete_container(&name).await.expect("delete");
    assert_eq!(
        config.storage,
        async_nats::jetstream::stream::StorageType::Memory
    );
    assert_eq!(config.max_age, Duration::from_secs(3600));
}

#[tokio::test]
async fn names_nats_does_not_allow_for_buckets_are_refused_and_object_names_are_free() {
    let store = shared().await;
    for bad in ["my.photos", "a/b", "..", "with space", ""] {
        let err = store.create_container(bad).await.expect_err(bad);
        assert!(matches!(err, Error::InvalidName { .. }), "{bad}: {err}");
        assert!(
            matches!(
                store.write_data(bad, "x", Bytes::new()).await,
                Err(Error::InvalidName { .. })
            ),
            "{bad}"
        );
    }
    let name = unique("names") + "c";
    store.create_container(&name).await.expect("create");
    // Object names never touch a file system here: these are ordinary names.
    let names = ["../up", "/abs", "a b", "ü/ß", "x\\y", ".hidden", "dots."];
    for object in names {
        store
            .write_data(&name, object, Bytes::from(object.as_bytes().to_vec()))
            .await
            .unwrap_or_else(|e| panic!("{object}: {e}"));
    }
    for object in names {
        assert_eq!(
            store
                .get_data(&name, object, 0, MAX, MAX)
                .await
                .expect("get"),
            object.as_bytes(),
        );
    }
    let mut sorted = names.map(str::to_owned).to_vec();
    sorted.sort();
    assert_eq!(store.list_objects(&name).await.expect("list"), sorted);
    assert!(matches!(
        store.write_data(&name, "", Bytes::new()).await,
        Err(Error::InvalidName { .. })
    ));
    store.delete_container(&name).await.expect("delete");
}

#[tokio::test]
async fn objects_of_many_chunks_round_trip_and_read_in_ranges() {
    let store = shared().await;
    let name = unique("big") + "c";
    store.create_container(&name).await.expect("create");
    // Several of the object store's 128 KiB chunks, and not a multiple of one.
    let data: Vec<u8> = (0..700_001u32).map(|i| (i % 251) as u8).collect();
    store
        .write_data(&name, "big", Bytes::from(data.clone()))
        .await
        .expect("write");
    assert_eq!(
        store.object_info(&name, "big").await.expect("info").size,
        data.len() as u64
    );
    let all = store
        .get_data(&name, "big", 0, MAX, MAX)
        .await
        .expect("all");
    assert!(all == data, "the whole object comes back");
    for (start, end) in [
        (0, 10),
        (131_000, 132_000),
        (262_143, 262_144),
        (699_990, 800_000),
    ] {
        let got = store
            .get_data(&name, "big", start, end, MAX)
            .await
            .expect("range");
        let stop = (end as usize + 1).min(data.len());
        assert!(got == data[start as usize..stop], "{start}..={end}");
    }
    store
        .copy_object(&name, "big", &name, "big2")
        .await
        .expect("copy");
    let copied = store
        .get_data(&name, "big2", 0, MAX, MAX)
        .await
        .expect("copy");
    assert!(copied == data, "the copy is whole");
    store.delete_container(&name).await.expect("delete");
}

#[tokio::test]
async fn concurrent_creates_have_one_winner() {
    let store = std::sync::Arc::new(shared().await);
    let name = unique("race") + "c";
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let name = name.clone();
            tokio::spawn(async move { store.create_container(&name).await })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => won += 1,
            Err(Error::ContainerExists(_)) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    store.delete_container(&name).await.expect("delete");
    assert_eq!(won, 1, "exactly one create succeeds");
}

#[tokio::test]
async fn a_server_without_jetstream_is_reported_as_such() {
    let port = free_port();
    let _server = NatsServer::spawn(port, None);
    let store = NatsBlobstore::connect(&config(&format!("nats://127.0.0.1:{port}"), &[])).await;
    let health = store.health().await.expect_err("no jetstream");
    assert!(health.to_string().contains("JetStream"), "{health}");
    let err = store.create_container("c").await.expect_err("no jetstream");
    assert!(matches!(err, Error::Backend(_)), "{err}");
}

#[tokio::test]
async fn survives_nats_going_down_and_coming_back() {
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = NatsServer::start(port, dir.path());
    let uri = format!("nats://127.0.0.1:{port}");
    let store = NatsBlobstore::connect(&config(&uri, &[])).await;
    eventually(Duration::from_secs(10), || store.create_container("c")).await;
    store
        .write_data("c", "before", Bytes::from_static(b"1"))
        .await
        .expect("write");
    store.health().await.expect("healthy while up");

    server.stop();
    // The client notices the closed socket almost at once.
    let err = eventually(Duration::from_secs(5), || async {
        match store.get_data("c", "before", 0, MAX, MAX).await {
            Err(e) => Ok(e),
            Ok(_) => Err(Error::Backend("still answering".into())),
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
    for _ in 0..3 {
        let started = Instant::now();
        assert!(
            store
                .write_data("c", "during", Bytes::from_static(b"x"))
                .await
                .is_err()
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    let health = store.health().await.expect_err("unhealthy while down");
    assert!(health.to_string().contains("unreachable"), "{health}");

    let _server = NatsServer::start(port, dir.path());
    eventually(Duration::from_secs(15), || {
        store.write_data("c", "after", Bytes::from_static(b"2"))
    })
    .await;
    assert_eq!(
        store
            .get_data("c", "before", 0, MAX, MAX)
            .await
            .expect("get"),
        "1",
        "the container outlived the restart"
    );
    assert_eq!(
        store.list_objects("c").await.expect("list"),
        vec!["after", "before"]
    );
    store.health().await.expect("healthy again");
}

#[tokio::test]
async fn starts_while_nats_is_down_and_connects_when_it_appears() {
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("nats://127.0.0.1:{port}");
    let started = Instant::now();
    let store = NatsBlobstore::connect(&config(&uri, &[])).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    let err = store.container_exists("c").await.expect_err("down");
    assert!(err.to_string().contains("unreachable"), "{err}");
    assert!(store.health().await.is_err());

    let _server = NatsServer::start(port, dir.path());
    eventually(Duration::from_secs(15), || store.create_container("c")).await;
    assert!(store.container_exists("c").await.expect("exists"));
    store.health().await.expect("healthy");
}
