//! `wasi:blobstore` on a directory through the real binary: every operation, names that try
//! to leave the root, and the object size limit.

mod common;

use common::*;

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
    let trellis = Trellis::up(&manifest, &[]);
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
