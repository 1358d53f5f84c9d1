//! The redb backend against real files in a temporary directory.

use trellis_keyvalue::{Error, KeyValue, conformance};
use trellis_keyvalue_redb::{OpenError, RedbStore};

#[tokio::test]
async fn passes_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(&dir.path().join("kv.redb")).expect("open");
    conformance::check(&store, "conformance").await;
    // A second run over the same bucket finds it clean and passes again.
    conformance::check(&store, "conformance").await;
}

#[tokio::test]
async fn watches_pass_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(&dir.path().join("kv.redb")).expect("open");
    conformance::check_watch(&store, "conformance").await;
}

#[tokio::test]
async fn creates_missing_parent_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a/b/c/kv.redb");
    let store = RedbStore::open(&path).expect("open");
    assert!(path.is_file());
    assert_eq!(store.path(), path);
}

#[tokio::test]
async fn data_survives_drop_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kv.redb");
    {
        let store = RedbStore::open(&path).expect("open");
        let b = store.open("app").await.expect("bucket");
        b.set("greeting", b"hello".to_vec()).await.expect("set");
        assert_eq!(b.increment("count", 41).await.expect("inc"), 41);
        b.set_many(vec![("x".into(), vec![1]), ("y".into(), vec![2])])
            .await
            .expect("set many");
        b.delete("y").await.expect("delete");
    }
    let store = RedbStore::open(&path).expect("reopen");
    let b = store.open("app").await.expect("bucket");
    assert_eq!(
        b.get("greeting").await.expect("get"),
        Some(b"hello".to_vec())
    );
    assert_eq!(b.increment("count", 1).await.expect("inc"), 42);
    assert_eq!(b.get("x").await.expect("get"), Some(vec![1]));
    assert!(!b.exists("y").await.expect("exists"));
    store.health().await.expect("healthy");
}

#[tokio::test]
async fn identifiers_are_separate_keyspaces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(&dir.path().join("kv.redb")).expect("open");
    // Identifiers that would be awkward as file or table names are fine.
    let names = [
        "a",
        "b",
        "",
        "with/slash",
        "spaces and: colons",
        "ünïcödé",
        "trellis-kv/a",
    ];
    for (i, name) in names.iter().enumerate() {
        let b = store.open(name).await.expect("bucket");
        b.set("k", i.to_string().into_bytes()).await.expect("set");
    }
    for (i, name) in names.iter().enumerate() {
        let b = store.open(name).await.expect("bucket");
        assert_eq!(
            b.get("k").await.expect("get"),
            Some(i.to_string().into_bytes()),
            "bucket {name:?} kept its own value"
        );
        let page = b.list_keys(None, 10).await.expect("list");
        assert_eq!(page.keys, ["k"]);
        assert_eq!(page.cursor, None);
    }
    let fresh = store.open("never-written").await.expect("bucket");
    assert_eq!(fresh.get("k").await.expect("get"), None);
    assert_eq!(fresh.list_keys(None, 10).await.expect("list").keys.len(), 0);
    fresh
        .delete("k")
        .await
        .expect("deleting in an empty bucket succeeds");
}

#[tokio::test]
async fn list_keys_pages_in_sorted_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(&dir.path().join("kv.redb")).expect("open");
    let b = store.open("").await.expect("bucket");
    for i in 0..5 {
        b.set(&format!("k{i}"), vec![]).await.expect("set");
    }
    let first = b.list_keys(None, 2).await.expect("list");
    assert_eq!(
        (first.keys.as_slice(), first.cursor),
        (&["k0".to_owned(), "k1".to_owned()][..], Some(2))
    );
    let second = b.list_keys(first.cursor, 2).await.expect("list");
    assert_eq!(second.keys, ["k2", "k3"]);
    let last = b.list_keys(second.cursor, 2).await.expect("list");
    assert_eq!((last.keys, last.cursor), (vec!["k4".to_owned()], None));
    let exact = b.list_keys(None, 5).await.expect("list");
    assert_eq!((exact.keys.len(), exact.cursor), (5, None));
    let past = b.list_keys(Some(99), 5).await.expect("list");
    assert_eq!(past, Default::default());
}

#[tokio::test]
async fn concurrent_increments_are_atomic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(&dir.path().join("kv.redb")).expect("open");
    let b = store.open("n").await.expect("bucket");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    b.increment("counter", 1).await.expect("inc");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(b.get("counter").await.expect("get"), Some(b"200".to_vec()));
    b.set("text", b"x".to_vec()).await.expect("set");
    assert!(matches!(b.increment("text", 1).await, Err(Error::Other(_))));
    store
        .health()
        .await
        .expect("a refused increment is not a database failure");
}

#[test]
fn a_garbage_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("garbage.redb");
    std::fs::write(&path, vec![b'x'; 64 * 1024]).expect("write");
    let err = RedbStore::open(&path).err().expect("garbage must not open");
    assert!(matches!(err, OpenError::NotADatabase { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("not a usable redb"), "{message}");

    let short = dir.path().join("short.redb");
    std::fs::write(&short, b"hello").expect("write");
    let err = RedbStore::open(&short)
        .err()
        .expect("a short file must not open");
    assert!(matches!(err, OpenError::NotADatabase { .. }), "{err:?}");
}

#[test]
fn a_file_in_use_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kv.redb");
    let _first = RedbStore::open(&path).expect("open");
    let err = RedbStore::open(&path)
        .err()
        .expect("a second open must fail");
    assert!(matches!(err, OpenError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn a_path_that_cannot_be_created_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"").expect("write");
    let path = blocker.join("kv.redb");
    let err = RedbStore::open(&path)
        .err()
        .expect("a file as parent must fail");
    assert!(matches!(err, OpenError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
}
