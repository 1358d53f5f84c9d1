//! The behaviour every [`Blobstore`] backend shares, as one check that each backend's tests
//! run against a real store: the directory backend on a temporary root, the NATS object
//! store against a real server.
//!
//! What differs between backends (which names each refuses, symlinks, what a write leaves
//! on disk) is tested beside each backend; everything here holds for all of them.
//!
//! Container names used here are `{prefix}a`, `{prefix}b` and `{prefix}missing`, made of
//! letters, digits and `_` only, so that every backend accepts them; pass a prefix unique to
//! the run when the store outlives it (a shared server). Object names contain `/` and `.`.
//! The check deletes the containers it made.

use crate::{Blobstore, Error};
use bytes::Bytes;

const MAX: u64 = u64::MAX;

/// Runs every shared check against `store`, panicking on the first difference.
pub async fn check(store: &dyn Blobstore, prefix: &str) {
    let a = format!("{prefix}a");
    let b = format!("{prefix}b");
    let missing = format!("{prefix}missing");
    // Left over from an interrupted run with the same prefix.
    for c in [&a, &b] {
        store.delete_container(c).await.expect("delete leftovers");
    }
    store.health().await.expect("healthy");

    containers(store, &a, &b).await;
    objects(store, &a).await;
    range_reads(store, &a).await;
    copy_and_move(store, &a, &b, &missing).await;
    deletes(store, &a, &b).await;
    missing_containers(store, &missing).await;

    for c in [&a, &b] {
        store.delete_container(c).await.expect("clean up");
    }
}

async fn containers(store: &dyn Blobstore, a: &str, b: &str) {
    assert!(!store.container_exists(a).await.expect("exists"));
    assert_eq!(
        store.container_info(a).await,
        Err(Error::NoSuchContainer(a.into()))
    );
    let info = store.create_container(a).await.expect("create");
    assert_eq!(info.name, a);
    assert!(info.created_at > 0, "created_at is set");
    assert_eq!(
        store.create_container(a).await,
        Err(Error::ContainerExists(a.into())),
        "creating a container twice"
    );
    assert!(store.container_exists(a).await.expect("exists"));
    let again = store.container_info(a).await.expect("info");
    assert_eq!(again.name, a);
    assert_eq!(again.created_at, info.created_at, "created_at is stable");
    store.create_container(b).await.expect("create b");
    assert_eq!(
        store.list_objects(a).await.expect("list"),
        Vec::<String>::new()
    );
}

async fn objects(store: &dyn Blobstore, a: &str) {
    store
        .write_data(a, "x", Bytes::from_static(b"hello"))
        .await
        .expect("write");
    store
        .write_data(a, "dir/y.txt", Bytes::from_static(b"nested"))
        .await
        .expect("write");
    store
        .write_data(a, "dir/sub/z", Bytes::new())
        .await
        .expect("write an empty object");
    store
        .write_data(a, "x", Bytes::from_static(b"hello, world"))
        .await
        .expect("overwrite");
    assert_eq!(
        store.list_objects(a).await.expect("list"),
        vec!["dir/sub/z", "dir/y.txt", "x"],
        "every object once, sorted"
    );
    assert!(store.has_object(a, "x").await.expect("has"));
    assert!(store.has_object(a, "dir/y.txt").await.expect("has"));
    assert!(!store.has_object(a, "missing").await.expect("has"));
    assert_eq!(
        store.get_data(a, "x", 0, MAX, MAX).await.expect("get"),
        Bytes::from_static(b"hello, world"),
        "the last write wins"
    );
    assert_eq!(
        store
            .get_data(a, "dir/sub/z", 0, 0, MAX)
            .await
            .expect("get"),
        Bytes::new()
    );
    let info = store.object_info(a, "x").await.expect("info");
    assert_eq!(
        (info.name.as_str(), info.container.as_str(), info.size),
        ("x", a, 12)
    );
    assert!(info.created_at > 0, "created_at is set");
    assert_eq!(
        store.object_info(a, "dir/sub/z").await.expect("info").size,
        0
    );
    assert_eq!(
        store.object_info(a, "missing").await,
        Err(Error::NoSuchObject {
            container: a.into(),
            object: "missing".into()
        })
    );
    assert_eq!(
        store.get_data(a, "missing", 0, 1, MAX).await,
        Err(Error::NoSuchObject {
            container: a.into(),
            object: "missing".into()
        })
    );
}

async fn range_reads(store: &dyn Blobstore, a: &str) {
    store
        .write_data(a, "digits", Bytes::from_static(b"0123456789"))
        .await
        .expect("write");
    let get = |start, end, max| store.get_data(a, "digits", start, end, max);
    assert_eq!(get(0, 0, MAX).await.expect("first byte"), "0");
    assert_eq!(get(2, 5, MAX).await.expect("middle, inclusive"), "2345");
    assert_eq!(get(9, 9, MAX).await.expect("last byte"), "9");
    assert_eq!(get(5, 100, MAX).await.expect("end clamped"), "56789");
    assert_eq!(get(0, MAX, MAX).await.expect("whole"), "0123456789");
    assert_eq!(get(10, 20, MAX).await.expect("start at the end"), "");
    assert!(
        matches!(get(11, 20, MAX).await, Err(Error::Backend(_))),
        "start past the end"
    );
    assert!(
        matches!(get(5, 3, MAX).await, Err(Error::Backend(_))),
        "end before start"
    );
    assert_eq!(
        get(0, 9, 10).await.expect("exactly the limit"),
        "0123456789"
    );
    assert!(matches!(get(0, 9, 9).await, Err(Error::TooLarge(_))));
    // The limit applies to the clamped range, not the one asked for.
    assert_eq!(get(0, MAX, 10).await.expect("clamped to 10"), "0123456789");
    assert!(matches!(get(0, MAX, 3).await, Err(Error::TooLarge(_))));
    assert_eq!(get(8, MAX, 2).await.expect("clamped to 2"), "89");
    store.delete_object(a, "digits").await.expect("delete");
}

async fn copy_and_move(store: &dyn Blobstore, a: &str, b: &str, missing: &str) {
    store
        .copy_object(a, "x", b, "copied/x")
        .await
        .expect("copy across containers");
    assert_eq!(
        store
            .get_data(b, "copied/x", 0, MAX, MAX)
            .await
            .expect("get"),
        "hello, world"
    );
    assert!(store.has_object(a, "x").await.expect("source kept"));
    store
        .copy_object(a, "x", a, "x2")
        .await
        .expect("copy within a container");
    assert_eq!(
        store.get_data(a, "x2", 0, MAX, MAX).await.expect("get"),
        "hello, world"
    );
    store
        .copy_object(a, "x", a, "x")
        .await
        .expect("copy onto itself");
    assert_eq!(
        store.get_data(a, "x", 0, MAX, MAX).await.expect("get"),
        "hello, world"
    );

    store
        .move_object(a, "dir/y.txt", b, "y")
        .await
        .expect("move");
    assert!(!store.has_object(a, "dir/y.txt").await.expect("moved away"));
    assert_eq!(
        store.get_data(b, "y", 0, MAX, MAX).await.expect("get"),
        "nested"
    );
    store
        .move_object(b, "y", b, "y")
        .await
        .expect("move onto itself");
    assert_eq!(
        store.get_data(b, "y", 0, MAX, MAX).await.expect("get"),
        "nested"
    );
    assert!(matches!(
        store.move_object(a, "nothing", b, "z").await,
        Err(Error::NoSuchObject { .. })
    ));
    assert!(matches!(
        store.copy_object(a, "nothing", b, "z").await,
        Err(Error::NoSuchObject { .. })
    ));
    assert_eq!(
        store.copy_object(a, "x", missing, "x").await,
        Err(Error::NoSuchContainer(missing.into()))
    );
    assert_eq!(
        store.move_object(a, "x", missing, "x").await,
        Err(Error::NoSuchContainer(missing.into()))
    );
    assert!(store.has_object(a, "x").await.expect("not moved"));
}

async fn deletes(store: &dyn Blobstore, a: &str, b: &str) {
    store.delete_object(a, "x").await.expect("delete");
    store
        .delete_object(a, "x")
        .await
        .expect("deleting a missing object succeeds");
    assert!(!store.has_object(a, "x").await.expect("has"));
    assert!(matches!(
        store.get_data(a, "x", 0, MAX, MAX).await,
        Err(Error::NoSuchObject { .. })
    ));
    assert_eq!(
        store.list_objects(a).await.expect("list"),
        vec!["dir/sub/z", "x2"]
    );

    store.clear(b).await.expect("clear");
    assert!(store.container_exists(b).await.expect("kept"));
    assert_eq!(
        store.list_objects(b).await.expect("list"),
        Vec::<String>::new()
    );
    store
        .write_data(b, "after-clear", Bytes::from_static(b"1"))
        .await
        .expect("a cleared container takes writes");
    assert_eq!(
        store.list_objects(b).await.expect("list"),
        vec!["after-clear"]
    );

    store.delete_container(a).await.expect("delete container");
    store
        .delete_container(a)
        .await
        .expect("deleting a missing container succeeds");
    assert!(!store.container_exists(a).await.expect("exists"));
    store
        .create_container(a)
        .await
        .expect("a deleted container can be made again");
    assert_eq!(
        store.list_objects(a).await.expect("list"),
        Vec::<String>::new(),
        "and starts empty"
    );
}

async fn missing_containers(store: &dyn Blobstore, missing: &str) {
    let gone = || Err(Error::NoSuchContainer(missing.into()));
    assert_eq!(store.list_objects(missing).await.map(drop), gone());
    assert_eq!(
        store.write_data(missing, "x", Bytes::new()).await,
        gone(),
        "a write does not create the container"
    );
    assert_eq!(
        store.get_data(missing, "x", 0, 1, MAX).await.map(drop),
        gone()
    );
    assert_eq!(store.has_object(missing, "x").await.map(drop), gone());
    assert_eq!(store.object_info(missing, "x").await.map(drop), gone());
    assert_eq!(store.clear(missing).await, gone());
    assert_eq!(store.delete_object(missing, "x").await, gone());
    assert!(!store.container_exists(missing).await.expect("exists"));
}
