//! The example manifests in `examples/` run as shipped (with their components built).

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

/// Copies `examples/NAME/MANIFEST` into a fresh directory with the built guest beside it.
fn example(name: &str, manifest: &str, guest: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = trellis_test_support::repo_root()
        .join("examples")
        .join(name)
        .join(manifest);
    let dest = dir.path().join(manifest);
    std::fs::copy(&source, &dest).expect("copy manifest");
    install_guest(dir.path(), guest);
    (dir, dest)
}

fn counter(body: &str) -> u64 {
    body.trim()
        .strip_prefix("Counter: ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a counter: {body:?}"))
}

#[test]
fn kv_counter_counts_in_the_local_store_and_in_redis() {
    for manifest in ["app.yaml", "redis.yaml"] {
        let (dir, path) = example("kv-counter", manifest, "kv_counter");
        let trellis = Trellis::up(&path, &[]);
        let first = counter(&get(trellis.addr(), "/").body);
        let second = counter(&get(trellis.addr(), "/").body);
        assert_eq!(second, first + 1, "{manifest}");
        if manifest == "app.yaml" {
            assert_eq!(first, 1);
            assert!(Path::new(&dir.path().join(".trellis/keyvalue/kv.redb")).is_file());
        }
    }
}

#[test]
fn the_messaging_example_answers_on_trellis_echo() {
    let (_dir, path) = example("messaging", "app.yaml", "messaging_echo");
    let trellis = Trellis::up(&path, &[]);
    trellis.wait_for_stderr("subscribed", Duration::from_secs(20));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let reply = rt.block_on(async {
        let client = async_nats::connect("127.0.0.1:4222")
            .await
            .expect("connect to NATS");
        tokio::time::timeout(
            Duration::from_secs(10),
            client.request("trellis.echo", "hello".into()),
        )
        .await
        .expect("reply in time")
        .expect("reply")
    });
    assert_eq!(&reply.payload[..], b"echo: hello");
}

#[test]
fn the_greeter_example_calls_back_from_front() {
    let (dir, path) = example("greeter", "app.yaml", "greeter_front");
    install_guest(dir.path(), "greeter_back");
    let trellis = Trellis::up(&path, &[]);
    assert_eq!(
        get(trellis.addr(), "/?name=Ada").body,
        "Hello, Ada! (from back)\n"
    );
    assert_eq!(get(trellis.addr(), "/").body, "Hello, world! (from back)\n");
}
