//! `wasi:blobstore` through the real binary: on a directory (every operation, names that
//! try to leave the root, the object size limit) and on NATS JetStream object stores (the
//! shared server on 127.0.0.1:4222, and a private one that goes away and comes back).

mod common;

use common::*;
use std::time::Duration;

const BLOB: (&str, &str, &str) = ("wasi", "blobstore", "blobstore, container, types");

fn blob_app(dir: &std::path::Path) -> std::path::PathBuf {
    install_guest(dir, "blob_ops");
    write_manifest(
        dir,
        &capability_app(
            "blob_ops",
            "ghcr.io/wasmcloud/blobstore-fs:0.10.1",
            BLOB,
            "                    ROOT: ./data\n",
            "",
        ),
    )
}

#[test]
fn containers_and_objects_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = blob_app(dir.path());
    let trellis = Trellis::up(&manifest, &["--metrics", "127.0.0.1:0"]);
    let addr = trellis.addr();

    assert_eq!(get(addr, "/container-exists?c=photos").body, "false");
    assert_eq!(request(addr, "PUT", "/container?c=photos", b"").status, 201);
    assert_eq!(get(addr, "/container-exists?c=photos").body, "true");
    assert!(
        get(addr, "/container?c=photos")
            .body
            .starts_with("name=photos")
    );

    assert_eq!(
        request(addr, "PUT", "/object?c=photos&o=cat.txt", b"meow meow").status,
        204
    );
    assert_eq!(get(addr, "/object?c=photos&o=cat.txt").body, "meow meow");
    assert_eq!(
        get(addr, "/object-async?c=photos&o=cat.txt").body,
        "meow meow"
    );
    assert_eq!(
        get(addr, "/object?c=photos&o=cat.txt&start=5&end=8").body,
        "meow"
    );
    assert!(
        get(addr, "/info?c=photos&o=cat.txt")
            .body
            .contains("size=9")
    );
    assert_eq!(get(addr, "/has?c=photos&o=cat.txt").body, "true");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("data/photos/cat.txt")).expect("on disk"),
        "meow meow",
        "objects are files under the root"
    );

    request(addr, "PUT", "/object?c=photos&o=dog.txt", b"woof");
    assert_eq!(get(addr, "/list?c=photos").body, "cat.txt\ndog.txt");
    request(addr, "PUT", "/container?c=archive", b"");
    assert_eq!(
        request(
            addr,
            "POST",
            "/copy?c=photos&o=cat.txt&c2=archive&o2=cat-copy.txt",
            b""
        )
        .status,
        204
    );
    assert_eq!(
        request(
            addr,
            "POST",
            "/move?c=photos&o=dog.txt&c2=archive&o2=dog.txt",
            b""
        )
        .status,
        204
    );
    assert_eq!(get(addr, "/list?c=archive").body, "cat-copy.txt\ndog.txt");
    assert_eq!(get(addr, "/list?c=photos").body, "cat.txt");

    assert_eq!(
        request(addr, "DELETE", "/object?c=photos&o=cat.txt", b"").status,
        204
    );
    assert_eq!(get(addr, "/has?c=photos&o=cat.txt").body, "false");
    assert_eq!(request(addr, "POST", "/clear?c=archive", b"").status, 204);
    assert_eq!(get(addr, "/list?c=archive").body, "");
    assert_eq!(
        request(addr, "DELETE", "/container?c=archive", b"").status,
        204
    );
    assert_eq!(get(addr, "/container-exists?c=archive").body, "false");

    let r = get(addr, "/object?c=photos&o=missing");
    assert_eq!(r.status, 500);
    assert!(r.body.starts_with("blob error:"), "{}", r.body);

    // Every operation was counted against the provider, by its WIT name.
    let scrape = metrics::scrape_metrics(metrics::metrics_addr(&trellis));
    for (operation, outcome, count) in [
        ("container-exists", "ok", 3.0),
        ("create-container", "ok", 2.0),
        ("copy-object", "ok", 1.0),
        ("move-object", "ok", 1.0),
        ("clear", "ok", 1.0),
        ("delete-container", "ok", 1.0),
        ("delete-object", "ok", 1.0),
        // A missing object: the component asks for its size first.
        ("object-info", "error", 1.0),
    ] {
        assert_eq!(
            scrape.operations("blobstore", operation, outcome),
            count,
            "{operation} {outcome}:\n{}",
            scrape.text
        );
    }
    assert!(scrape.operations("blobstore", "write-data", "ok") >= 2.0);
}

#[test]
fn names_can_never_leave_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("secret"), "do not read").expect("write");
    let manifest = blob_app(dir.path());
    let trellis = Trellis::up(&manifest, &[]);
    let addr = trellis.addr();
    request(addr, "PUT", "/container?c=box", b"");

    let secret = outside.path().join("secret");
    let secret = secret.to_str().expect("utf8");
    for (method, path) in [
        ("PUT", "/container?c=..".to_owned()),
        ("PUT", "/container?c=%2Ftmp%2Fescape".to_owned()),
        ("PUT", "/object?c=box&o=..%2F..%2Fescape".to_owned()),
        (
            "PUT",
            "/object?c=box&o=a%2F..%2F..%2F..%2Fescape".to_owned(),
        ),
        (
            "GET",
            format!("/object?c=box&o={}", secret.replace('/', "%2F")),
        ),
        ("GET", "/object?c=..&o=secret".to_owned()),
        ("PUT", "/object?c=box&o=nul%00byte".to_owned()),
    ] {
        let r = request(addr, method, &path, b"escaped");
        assert_eq!(r.status, 500, "{method} {path} was allowed: {}", r.body);
        assert!(
            r.body.starts_with("blob error:"),
            "{method} {path}: {}",
            r.body
        );
    }

    // A symlink planted inside the root, pointing outside, is never followed.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(outside.path(), dir.path().join("data/box/link"))
            .expect("symlink");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("data/linked"))
            .expect("symlink");
        for (method, path) in [
            ("GET", "/object?c=box&o=link%2Fsecret"),
            ("PUT", "/object?c=box&o=link%2Fnew"),
            ("GET", "/object?c=linked&o=secret"),
            ("GET", "/list?c=linked"),
            ("POST", "/clear?c=linked"),
            ("DELETE", "/container?c=linked"),
        ] {
            let r = request(addr, method, path, b"escaped");
            assert_ne!(
                r.body, "do not read",
                "{method} {path} read outside the root"
            );
            assert!(
                r.status == 500 || r.status == 204,
                "{method} {path}: {} {}",
                r.status,
                r.body
            );
        }
    }
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret")).expect("still there"),
        "do not read"
    );
    assert!(
        !outside.path().join("new").exists(),
        "nothing was written outside the root"
    );
    assert!(!std::path::Path::new("/tmp/escape").exists());
}

#[test]
fn objects_over_the_size_limit_are_refused_without_losing_the_instance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = blob_app(dir.path());
    let trellis = Trellis::up(&manifest, &["--max-blob-size", "1KiB"]);
    let addr = trellis.addr();
    request(addr, "PUT", "/container?c=box", b"");
    let r = request(addr, "PUT", "/object?c=box&o=big", &vec![b'x'; 4096]);
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("--max-blob-size"), "{}", r.body);
    assert_eq!(get(addr, "/has?c=box&o=big").body, "false");
    assert_eq!(
        request(addr, "PUT", "/object?c=box&o=small", b"ok").status,
        204
    );
}

/// The blob-ops app on `blobstore-nats` (named by `image`) against `cluster_uri`.
fn nats_blob_app(dir: &std::path::Path, image: &str, cluster_uri: &str) -> std::path::PathBuf {
    install_guest(dir, "blob_ops");
    write_manifest(
        dir,
        &capability_app(
            "blob_ops",
            image,
            BLOB,
            &format!("                    cluster_uri: {cluster_uri}\n"),
            "",
        ),
    )
}

/// A container name (an object-store bucket) that no other run uses.
fn unique_container(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("trellis_cli_{name}_{}_{nanos}", std::process::id())
}

/// The bytes of `object` in the object-store bucket `bucket`, read with a plain NATS client.
fn read_from_bucket(url: &str, bucket: &str, object: &str) -> Option<Vec<u8>> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = async_nats::connect(url).await.expect("nats");
        let js = async_nats::jetstream::new(client);
        let store = js.get_object_store(bucket).await.ok()?;
        let mut object = store.get(object).await.ok()?;
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut object, &mut out)
            .await
            .ok()?;
        Some(out)
    })
}

#[test]
fn nats_object_store_containers_and_objects_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = nats_blob_app(
        dir.path(),
        "ghcr.io/wasmcloud/blobstore-nats:0.3.0",
        "nats://127.0.0.1:4222",
    );
    let trellis = Trellis::up(&manifest, &[]);
    let addr = trellis.addr();
    let photos = unique_container("photos");
    let archive = unique_container("archive");
    let q = |rest: &str| rest.replace("PHOTOS", &photos).replace("ARCHIVE", &archive);

    assert_eq!(get(addr, &q("/container-exists?c=PHOTOS")).body, "false");
    assert_eq!(
        request(addr, "PUT", &q("/container?c=PHOTOS"), b"").status,
        201
    );
    assert_eq!(get(addr, &q("/container-exists?c=PHOTOS")).body, "true");
    let r = request(addr, "PUT", &q("/container?c=PHOTOS"), b"");
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("already exists"), "{}", r.body);

    assert_eq!(
        request(
            addr,
            "PUT",
            &q("/object?c=PHOTOS&o=cats/cat.txt"),
            b"meow meow"
        )
        .status,
        204
    );
    assert_eq!(
        get(addr, &q("/object?c=PHOTOS&o=cats/cat.txt")).body,
        "meow meow"
    );
    assert_eq!(
        get(addr, &q("/object-async?c=PHOTOS&o=cats/cat.txt")).body,
        "meow meow"
    );
    assert_eq!(
        get(addr, &q("/object?c=PHOTOS&o=cats/cat.txt&start=5&end=8")).body,
        "meow"
    );
    assert!(
        get(addr, &q("/info?c=PHOTOS&o=cats/cat.txt"))
            .body
            .contains("size=9")
    );
    assert_eq!(
        read_from_bucket("nats://127.0.0.1:4222", &photos, "cats/cat.txt").as_deref(),
        Some(&b"meow meow"[..]),
        "a container is the object-store bucket of the same name"
    );

    request(addr, "PUT", &q("/object?c=PHOTOS&o=dog.txt"), b"woof");
    assert_eq!(
        get(addr, &q("/list?c=PHOTOS")).body,
        "cats/cat.txt\ndog.txt"
    );
    request(addr, "PUT", &q("/container?c=ARCHIVE"), b"");
    assert_eq!(
        request(
            addr,
            "POST",
            &q("/copy?c=PHOTOS&o=cats/cat.txt&c2=ARCHIVE&o2=cat-copy.txt"),
            b""
        )
        .status,
        204
    );
    assert_eq!(
        request(
            addr,
            "POST",
            &q("/move?c=PHOTOS&o=dog.txt&c2=ARCHIVE&o2=dog.txt"),
            b""
        )
        .status,
        204
    );
    assert_eq!(
        get(addr, &q("/list?c=ARCHIVE")).body,
        "cat-copy.txt\ndog.txt"
    );
    assert_eq!(get(addr, &q("/list?c=PHOTOS")).body, "cats/cat.txt");
    assert_eq!(
        request(addr, "DELETE", &q("/object?c=PHOTOS&o=cats/cat.txt"), b"").status,
        204
    );
    assert_eq!(get(addr, &q("/has?c=PHOTOS&o=cats/cat.txt")).body, "false");
    assert_eq!(
        request(addr, "POST", &q("/clear?c=ARCHIVE"), b"").status,
        204
    );
    assert_eq!(get(addr, &q("/list?c=ARCHIVE")).body, "");

    let r = get(addr, &q("/object?c=PHOTOS&o=missing"));
    assert_eq!(r.status, 500);
    assert!(r.body.starts_with("blob error:"), "{}", r.body);
    // A name NATS cannot use for a bucket is refused, saying which names work.
    let r = request(addr, "PUT", "/container?c=my.photos", b"");
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("letters, digits"), "{}", r.body);

    for c in [&photos, &archive] {
        assert_eq!(
            request(addr, "DELETE", &format!("/container?c={c}"), b"").status,
            204
        );
        assert_eq!(get(addr, &format!("/container-exists?c={c}")).body, "false");
    }
}

#[test]
fn nats_objects_over_the_size_limit_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    // wasmCloud's provider archive, as its example manifests name it, selects the built-in.
    let manifest = nats_blob_app(
        dir.path(),
        "file://./build/blobstore-nats-provider.par.gz",
        "nats://127.0.0.1:4222",
    );
    let trellis = Trellis::up(&manifest, &["--max-blob-size", "1KiB"]);
    let addr = trellis.addr();
    let c = unique_container("limit");
    // The embedded reconciler takes over within a second: it must find the provider as the
    // manifest names it and leave it running (it once restarted it, and the component's
    // calls failed with "it was stopped").
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < until {
        let r = get(addr, &format!("/container-exists?c={c}"));
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "false"),
            "{}",
            trellis.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !trellis.stderr().contains("provider stopped"),
        "{}",
        trellis.stderr()
    );
    request(addr, "PUT", &format!("/container?c={c}"), b"");
    let r = request(
        addr,
        "PUT",
        &format!("/object?c={c}&o=big"),
        &vec![b'x'; 4096],
    );
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("--max-blob-size"), "{}", r.body);
    assert_eq!(get(addr, &format!("/has?c={c}&o=big")).body, "false");
    assert_eq!(
        request(addr, "PUT", &format!("/object?c={c}&o=small"), b"ok").status,
        204
    );
    request(addr, "DELETE", &format!("/container?c={c}"), b"");
}

#[test]
fn nats_going_away_fails_calls_cleanly_and_they_recover_when_it_returns() {
    let port = free_port();
    let store = tempfile::tempdir().expect("store dir");
    let nats = NatsServer::start(port, store.path());
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = nats_blob_app(
        dir.path(),
        "ghcr.io/wasmcloud/blobstore-nats:0.3.0",
        &nats.url(),
    );
    let trellis = Trellis::up(&manifest, &["--provider-health-interval", "300ms"]);
    let addr = trellis.addr();
    assert_eq!(request(addr, "PUT", "/container?c=box", b"").status, 201);
    assert_eq!(
        request(addr, "PUT", "/object?c=box&o=kept", b"before").status,
        204
    );

    drop(nats);
    let r = eventually("calls to fail", Duration::from_secs(20), || {
        let r = get(addr, "/object?c=box&o=kept");
        (r.status != 200).then_some(r)
    });
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.starts_with("blob error:"), "{}", r.body);
    assert!(r.body.contains("unreachable"), "{}", r.body);
    trellis.wait_for_stderr("capability provider is unhealthy", Duration::from_secs(20));

    let _nats = NatsServer::start(port, store.path());
    let body = eventually("reads to work again", Duration::from_secs(30), || {
        let r = get(addr, "/object?c=box&o=kept");
        (r.status == 200).then_some(r.body)
    });
    assert_eq!(body, "before", "the object outlived the restart");
    assert_eq!(
        request(addr, "PUT", "/object?c=box&o=after", b"2").status,
        204
    );
    assert_eq!(get(addr, "/list?c=box").body, "after\nkept");
    trellis.wait_for_stderr(
        "capability provider is healthy again",
        Duration::from_secs(20),
    );
}
