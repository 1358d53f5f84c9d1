//! [`FsBlobstore`] through the [`Blobstore`] trait: every method, names that try to leave
//! the root, symlinks planted inside it, atomic writes and range reads.

use bytes::Bytes;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use trellis_blobstore::fs::FsBlobstore;
use trellis_blobstore::{Blobstore, Error};

const MAX: u64 = u64::MAX;

/// A blobstore in `<tmp>/root`, so that anything escaping the root lands visibly in
/// `<tmp>`.
fn store() -> (TempDir, FsBlobstore) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = FsBlobstore::new(tmp.path().join("root")).expect("store");
    (tmp, store)
}

/// A directory outside the root holding a file `secret`, and a snapshot of it.
struct Outside {
    dir: TempDir,
}

impl Outside {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("secret"), b"top secret").expect("write secret");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");
        fs::write(dir.path().join("sub").join("deep"), b"deep secret").expect("write deep");
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for entry in fs::read_dir(dir).expect("read_dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    walk(&path, out);
                    out.insert(path, Vec::new());
                } else {
                    out.insert(path.clone(), fs::read(&path).expect("read"));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.path(), &mut out);
        out
    }

    fn assert_untouched(&self) {
        let expected: BTreeMap<PathBuf, Vec<u8>> = [
            (self.path().join("secret"), b"top secret".to_vec()),
            (self.path().join("sub"), Vec::new()),
            (
                self.path().join("sub").join("deep"),
                b"deep secret".to_vec(),
            ),
        ]
        .into();
        assert_eq!(self.snapshot(), expected, "the outside directory changed");
    }
}

fn is_invalid<T: std::fmt::Debug>(result: Result<T, Error>) -> bool {
    matches!(result, Err(Error::InvalidName { .. }))
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) {
    assert!(
        matches!(result, Err(Error::InvalidName { .. })),
        "{what}: expected InvalidName, got {result:?}"
    );
}

/// Every trait call that reads or writes `container`/`object` must refuse with
/// InvalidName and return no data.
async fn assert_object_refused(
    store: &FsBlobstore,
    container: &str,
    object: &str,
    good_container: &str,
) {
    let what = format!("{container:?}/{object:?}");
    assert_invalid(
        store.get_data(container, object, 0, MAX, MAX).await,
        &format!("get {what}"),
    );
    assert_invalid(
        store
            .write_data(container, object, Bytes::from_static(b"pwned"))
            .await,
        &format!("write {what}"),
    );
    assert_invalid(
        store.has_object(container, object).await,
        &format!("has {what}"),
    );
    assert_invalid(
        store.object_info(container, object).await,
        &format!("info {what}"),
    );
    assert_invalid(
        store.delete_object(container, object).await,
        &format!("delete {what}"),
    );
    assert_invalid(
        store
            .copy_object(container, object, good_container, "copy")
            .await,
        &format!("copy from {what}"),
    );
    assert_invalid(
        store
            .copy_object(good_container, "good", container, object)
            .await,
        &format!("copy to {what}"),
    );
    assert_invalid(
        store
            .move_object(container, object, good_container, "moved")
            .await,
        &format!("move from {what}"),
    );
    assert_invalid(
        store
            .move_object(good_container, "good", container, object)
            .await,
        &format!("move to {what}"),
    );
}

#[tokio::test]
async fn passes_conformance() {
    let (_tmp, store) = store();
    trellis_blobstore::conformance::check(&store, "conf_").await;
}

#[tokio::test]
async fn round_trip_of_every_method() {
    let (tmp, store) = store();
    assert!(tmp.path().join("root").is_dir(), "root created");
    assert_eq!(
        store.root(),
        tmp.path().join("root").canonicalize().expect("canonical")
    );
    store.health().await.expect("healthy");

    assert!(!store.container_exists("a").await.expect("exists"));
    assert_eq!(
        store.container_info("a").await,
        Err(Error::NoSuchContainer("a".into()))
    );
    let info = store.create_container("a").await.expect("create");
    assert_eq!(info.name, "a");
    assert!(info.created_at > 0);
    assert_eq!(
        store.create_container("a").await,
        Err(Error::ContainerExists("a".into()))
    );
    assert!(store.container_exists("a").await.expect("exists"));
    assert_eq!(store.container_info("a").await.expect("info").name, "a");
    store.create_container("b").await.expect("create b");

    assert_eq!(
        store.list_objects("a").await.expect("list"),
        Vec::<String>::new()
    );
    store
        .write_data("a", "x", Bytes::from_static(b"hello"))
        .await
        .expect("write");
    store
        .write_data("a", "dir/y", Bytes::from_static(b"nested"))
        .await
        .expect("write");
    store
        .write_data("a", "dir/sub/z", Bytes::new())
        .await
        .expect("write");
    store
        .write_data("a", "x", Bytes::from_static(b"hello, world"))
        .await
        .expect("overwrite");
    assert_eq!(
        store.list_objects("a").await.expect("list"),
        vec!["dir/sub/z", "dir/y", "x"]
    );
    assert!(store.has_object("a", "x").await.expect("has"));
    assert!(store.has_object("a", "dir/y").await.expect("has"));
    assert!(
        !store
            .has_object("a", "dir")
            .await
            .expect("a directory is not an object")
    );
    assert!(!store.has_object("a", "missing").await.expect("has"));
    assert!(!store.has_object("a", "x/below-a-file").await.expect("has"));
    assert_eq!(
        store.get_data("a", "x", 0, MAX, MAX).await.expect("get"),
        Bytes::from_static(b"hello, world")
    );
    assert_eq!(
        store
            .get_data("a", "dir/sub/z", 0, 0, MAX)
            .await
            .expect("get"),
        Bytes::new()
    );
    let info = store.object_info("a", "x").await.expect("info");
    assert_eq!(
        (info.name.as_str(), info.container.as_str(), info.size),
        ("x", "a", 12)
    );
    assert!(info.created_at > 0);
    assert_eq!(
        store.object_info("a", "missing").await,
        Err(Error::NoSuchObject {
            container: "a".into(),
            object: "missing".into()
        })
    );
    assert!(matches!(
        store.get_data("a", "missing", 0, 1, MAX).await,
        Err(Error::NoSuchObject { .. })
    ));

    store
        .copy_object("a", "x", "b", "copied/x")
        .await
        .expect("copy");
    assert_eq!(
        store
            .get_data("b", "copied/x", 0, MAX, MAX)
            .await
            .expect("get copy"),
        Bytes::from_static(b"hello, world")
    );
    assert!(store.has_object("a", "x").await.expect("source kept"));
    store
        .copy_object("a", "x", "a", "x")
        .await
        .expect("copy onto itself");
    assert_eq!(
        store.get_data("a", "x", 0, MAX, MAX).await.expect("get"),
        "hello, world"
    );

    store
        .move_object("a", "dir/y", "b", "y")
        .await
        .expect("move");
    assert!(!store.has_object("a", "dir/y").await.expect("moved away"));
    assert_eq!(
        store.get_data("b", "y", 0, MAX, MAX).await.expect("get"),
        "nested"
    );
    store
        .move_object("b", "y", "b", "y")
        .await
        .expect("move onto itself");
    assert_eq!(
        store.get_data("b", "y", 0, MAX, MAX).await.expect("get"),
        "nested"
    );
    assert!(matches!(
        store.move_object("a", "missing", "b", "z").await,
        Err(Error::NoSuchObject { .. })
    ));
    assert_eq!(
        store.copy_object("a", "x", "nope", "x").await,
        Err(Error::NoSuchContainer("nope".into()))
    );
    assert_eq!(
        store.move_object("a", "x", "nope", "x").await,
        Err(Error::NoSuchContainer("nope".into()))
    );
    assert!(store.has_object("a", "x").await.expect("not moved"));

    store.delete_object("a", "x").await.expect("delete");
    store
        .delete_object("a", "x")
        .await
        .expect("deleting a missing object succeeds");
    assert!(!store.has_object("a", "x").await.expect("has"));
    assert_eq!(
        store.list_objects("a").await.expect("list"),
        vec!["dir/sub/z"]
    );

    store.clear("b").await.expect("clear");
    assert!(store.container_exists("b").await.expect("kept"));
    assert_eq!(
        store.list_objects("b").await.expect("list"),
        Vec::<String>::new()
    );
    assert_eq!(
        fs::read_dir(store.root().join("b"))
            .expect("read_dir")
            .count(),
        0
    );

    store.delete_container("a").await.expect("delete container");
    store
        .delete_container("a")
        .await
        .expect("deleting a missing container succeeds");
    assert!(!store.container_exists("a").await.expect("exists"));
    for result in [
        store.list_objects("a").await.map(drop),
        store.write_data("a", "x", Bytes::new()).await,
        store.get_data("a", "x", 0, 1, MAX).await.map(drop),
        store.has_object("a", "x").await.map(drop),
        store.clear("a").await,
        store.delete_object("a", "x").await,
    ] {
        assert_eq!(result, Err(Error::NoSuchContainer("a".into())));
    }
}

#[tokio::test]
async fn nested_names_and_prefix_conflicts() {
    let (_tmp, store) = store();
    store.create_container("c").await.expect("create");
    store
        .write_data("c", "a/b/c", Bytes::from_static(b"1"))
        .await
        .expect("write");
    assert_invalid(
        store.write_data("c", "a", Bytes::new()).await,
        "a is a directory",
    );
    assert_invalid(
        store.write_data("c", "a/b", Bytes::new()).await,
        "a/b is a directory",
    );
    assert_invalid(
        store.write_data("c", "a/b/c/d", Bytes::new()).await,
        "a/b/c is an object",
    );
    // Deleting the last object below `a` removes the directories it implied.
    store.delete_object("c", "a/b/c").await.expect("delete");
    assert_eq!(
        fs::read_dir(store.root().join("c"))
            .expect("read_dir")
            .count(),
        0
    );
    store
        .write_data("c", "a", Bytes::from_static(b"2"))
        .await
        .expect("now a can be an object");
    // Moving prunes the source's directories too.
    store
        .write_data("c", "m/n", Bytes::from_static(b"3"))
        .await
        .expect("write");
    store
        .move_object("c", "m/n", "c", "m2")
        .await
        .expect("move");
    assert_eq!(
        store.list_objects("c").await.expect("list"),
        vec!["a", "m2"]
    );
    assert!(!store.root().join("c").join("m").exists());
}

#[tokio::test]
async fn names_that_leave_the_root_are_refused() {
    let (tmp, store) = store();
    store.create_container("good").await.expect("create");
    store
        .write_data("good", "good", Bytes::from_static(b"ok"))
        .await
        .expect("write");
    let outside = Outside::new();

    let absolute_secret = outside.path().join("secret");
    let absolute_secret = absolute_secret.to_str().expect("utf-8 path");
    for object in [
        "",
        ".",
        "..",
        "../x",
        "../good/good",
        "a/../../x",
        "a/./b",
        "./a",
        "/etc/passwd",
        absolute_secret,
        "a//b",
        "a/",
        "a\\..\\..\\x",
        "..\\x",
        "a\0b",
        ".trellis-tmp-x",
        "a/.trellis-tmp-x",
    ] {
        assert_object_refused(&store, "good", object, "good").await;
    }
    let outside_dir = outside.path().to_str().expect("utf-8 path").to_owned();
    for container in [
        "",
        ".",
        "..",
        "../x",
        "a/../../x",
        "/etc",
        "/tmp",
        outside_dir.as_str(),
        "a/b",
        "a\\b",
        "..\\x",
        "a\0b",
    ] {
        assert_invalid(store.create_container(container).await, container);
        assert_invalid(store.container_info(container).await, container);
        assert_invalid(store.container_exists(container).await, container);
        assert_invalid(store.delete_container(container).await, container);
        assert_invalid(store.list_objects(container).await, container);
        assert_invalid(store.clear(container).await, container);
        assert_object_refused(&store, container, "x", "good").await;
        assert_object_refused(&store, container, "secret", "good").await;
    }
    outside.assert_untouched();
    // Nothing was created next to the root, and the root holds only what was put there.
    let beside: Vec<_> = fs::read_dir(tmp.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(beside, vec!["root"]);
    assert_eq!(
        store.list_objects("good").await.expect("list"),
        vec!["good"]
    );
    assert_eq!(fs::read_dir(store.root()).expect("read_dir").count(), 1);
}

#[tokio::test]
async fn a_symlinked_container_is_never_followed() {
    let (_tmp, store) = store();
    store.create_container("good").await.expect("create");
    store
        .write_data("good", "good", Bytes::from_static(b"ok"))
        .await
        .expect("write");
    let outside = Outside::new();
    symlink(outside.path(), store.root().join("evil")).expect("symlink");

    assert_invalid(store.container_exists("evil").await, "exists");
    assert_invalid(store.container_info("evil").await, "info");
    assert_invalid(store.create_container("evil").await, "create");
    assert_invalid(store.list_objects("evil").await, "list");
    assert_invalid(store.clear("evil").await, "clear");
    assert_invalid(store.delete_container("evil").await, "delete container");
    for object in ["secret", "sub/deep", "new", "sub/new"] {
        assert_object_refused(&store, "evil", object, "good").await;
    }
    outside.assert_untouched();
    assert!(
        store.root().join("evil").is_symlink(),
        "the link itself is left alone"
    );
}

#[tokio::test]
async fn a_symlinked_object_is_never_followed() {
    let (_tmp, store) = store();
    store.create_container("good").await.expect("create");
    store
        .write_data("good", "good", Bytes::from_static(b"ok"))
        .await
        .expect("write");
    store.create_container("c").await.expect("create");
    store
        .write_data("c", "plain", Bytes::from_static(b"plain"))
        .await
        .expect("write");
    let outside = Outside::new();
    let link = store.root().join("c").join("link");
    symlink(outside.path().join("secret"), &link).expect("symlink");

    assert_object_refused(&store, "c", "link", "good").await;
    assert!(
        !is_invalid(store.has_object("c", "plain").await),
        "other objects still work"
    );
    assert_eq!(store.list_objects("c").await.expect("list"), vec!["plain"]);
    outside.assert_untouched();

    // Clearing unlinks the symlink and leaves its target alone.
    store.clear("c").await.expect("clear");
    assert!(!link.is_symlink());
    assert_eq!(
        store.list_objects("c").await.expect("list"),
        Vec::<String>::new()
    );
    outside.assert_untouched();

    // So does deleting the container.
    symlink(outside.path().join("secret"), &link).expect("symlink again");
    store.delete_container("c").await.expect("delete container");
    assert!(!store.root().join("c").exists());
    outside.assert_untouched();
}

#[tokio::test]
async fn a_symlinked_intermediate_directory_is_never_followed() {
    let (_tmp, store) = store();
    store.create_container("good").await.expect("create");
    store
        .write_data("good", "good", Bytes::from_static(b"ok"))
        .await
        .expect("write");
    store.create_container("c").await.expect("create");
    store
        .write_data("c", "real/file", Bytes::from_static(b"real"))
        .await
        .expect("write");
    let outside = Outside::new();
    let link = store.root().join("c").join("dir");
    symlink(outside.path(), &link).expect("symlink");
    // A symlink deeper down, inside a real directory.
    symlink(
        outside.path(),
        store.root().join("c").join("real").join("inner"),
    )
    .expect("symlink");

    for object in [
        "dir/secret",
        "dir/sub/deep",
        "dir/new",
        "dir/sub/new",
        "dir/newdir/new",
        "real/inner/secret",
        "real/inner/new",
    ] {
        assert_object_refused(&store, "c", object, "good").await;
    }
    assert_invalid(store.has_object("c", "dir").await, "has the link itself");
    assert_eq!(
        store.list_objects("c").await.expect("list"),
        vec!["real/file"]
    );
    outside.assert_untouched();

    store.clear("c").await.expect("clear");
    assert_eq!(
        fs::read_dir(store.root().join("c"))
            .expect("read_dir")
            .count(),
        0
    );
    outside.assert_untouched();

    symlink(outside.path(), &link).expect("symlink again");
    fs::create_dir(store.root().join("c").join("real")).expect("mkdir");
    symlink(
        outside.path(),
        store.root().join("c").join("real").join("inner"),
    )
    .expect("symlink");
    store.delete_container("c").await.expect("delete container");
    assert!(!store.root().join("c").exists());
    outside.assert_untouched();
}

#[tokio::test]
async fn temporary_files_are_never_listed() {
    let (_tmp, store) = store();
    store.create_container("c").await.expect("create");
    for i in 0..20 {
        store
            .write_data("c", &format!("d/o{}", i % 3), Bytes::from(vec![b'x'; 1000]))
            .await
            .expect("write");
    }
    // What a crash mid-write leaves behind.
    fs::write(store.root().join("c").join(".trellis-tmp-stale"), b"half").expect("write");
    fs::write(
        store.root().join("c").join("d").join(".trellis-tmp-stale"),
        b"half",
    )
    .expect("write");
    assert_eq!(
        store.list_objects("c").await.expect("list"),
        vec!["d/o0", "d/o1", "d/o2"]
    );
    assert!(
        !store
            .has_object("c", ".trellis-tmp-stale")
            .await
            .is_ok_and(|has| has)
    );
    let leftovers: Vec<_> = fs::read_dir(store.root().join("c").join("d"))
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .filter(|name| name.starts_with(".trellis-tmp-") && name != ".trellis-tmp-stale")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    store
        .delete_container("c")
        .await
        .expect("delete container removes them too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_see_a_partial_write() {
    let (_tmp, store) = store();
    store.create_container("c").await.expect("create");
    const LEN: usize = 512 * 1024;
    store
        .write_data("c", "o", Bytes::from(vec![b'A'; LEN]))
        .await
        .expect("write");
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                let byte = if i % 2 == 0 { b'B' } else { b'A' };
                store
                    .write_data("c", "o", Bytes::from(vec![byte; LEN]))
                    .await
                    .expect("write");
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads < 10 {
        let data = store.get_data("c", "o", 0, MAX, MAX).await.expect("read");
        assert_eq!(data.len(), LEN, "a read saw a partial object");
        assert!(
            data.iter().all(|b| *b == data[0]),
            "a read saw a mix of two writes"
        );
        reads += 1;
    }
    writer.await.expect("writer");
}

#[tokio::test]
async fn range_reads() {
    let (_tmp, store) = store();
    store.create_container("c").await.expect("create");
    store
        .write_data("c", "digits", Bytes::from_static(b"0123456789"))
        .await
        .expect("write");
    store
        .write_data("c", "empty", Bytes::new())
        .await
        .expect("write");
    let get = |start, end, max| store.get_data("c", "digits", start, end, max);

    assert_eq!(get(0, 0, MAX).await.expect("first byte"), "0");
    assert_eq!(get(2, 5, MAX).await.expect("middle, inclusive"), "2345");
    assert_eq!(get(9, 9, MAX).await.expect("last byte"), "9");
    assert_eq!(get(5, 100, MAX).await.expect("end clamped"), "56789");
    assert_eq!(get(0, MAX, MAX).await.expect("end clamped"), "0123456789");
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

    assert_eq!(
        store
            .get_data("c", "empty", 0, 0, 0)
            .await
            .expect("empty object"),
        Bytes::new()
    );
    assert!(store.get_data("c", "empty", 1, 1, MAX).await.is_err());
}

#[tokio::test]
async fn health_follows_the_root() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("a").join("b");
    let store = FsBlobstore::new(root.clone()).expect("store creates missing parents");
    store.health().await.expect("healthy");
    fs::remove_dir(&root).expect("remove root");
    assert!(store.health().await.is_err());
    fs::write(&root, b"not a dir").expect("write");
    assert!(store.health().await.is_err());
    assert!(
        FsBlobstore::new(root).is_err(),
        "a file is not a usable root"
    );
}
