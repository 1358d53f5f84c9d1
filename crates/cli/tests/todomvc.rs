//! The TodoMVC example (`examples/todomvc`) as shipped: its manifests run on the real
//! `trellis`, a real browser adds, completes, edits and deletes todos, and the todos outlive a
//! reload and a restart, in the durable local store and in Redis. Its API refuses bad input
//! with a reason.

mod common;

use common::*;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use trellis_test_support::browser;

/// What the browser script's `fresh` step leaves behind, as `(title, completed)`.
const LEFT: [(&str, bool); 3] = [
    ("Write the walkthrough", false),
    ("Water the plants and the garden", false),
    ("Book the train", true),
];

/// Copies `examples/todomvc/MANIFEST` into a fresh folder with the built component beside it,
/// after replacing each `(from, to)` in it (each must be there).
fn todomvc(manifest: &str, edits: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = trellis_test_support::repo_root()
        .join("examples/todomvc")
        .join(manifest);
    let mut text = std::fs::read_to_string(&source).expect("read the manifest");
    for (from, to) in edits {
        assert!(text.contains(from), "{manifest} has no {from:?}");
        text = text.replace(from, to);
    }
    let dest = dir.path().join(manifest);
    std::fs::write(&dest, text).expect("write the manifest");
    install_guest(dir.path(), "todomvc");
    (dir, dest)
}

/// Runs the browser script's `step` against the app at `addr`.
fn in_browser(addr: SocketAddr, step: &str, label: &str) -> String {
    let url = format!("http://{addr}/");
    let out = browser::run(
        "todomvc.mjs",
        &[("URL", &url), ("STEP", step), ("LABEL", label)],
    );
    assert!(out.starts_with("ok"), "{out}");
    out
}

/// The todos the API lists, as `(title, completed)`.
fn listed(addr: SocketAddr) -> Vec<(String, bool)> {
    let response = get(addr, "/api/todos");
    assert_eq!(response.status, 200, "{}", response.body);
    json(&response.body)
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {}", response.body))
        .iter()
        .map(|todo| {
            (
                todo["title"].as_str().expect("a title").to_owned(),
                todo["completed"].as_bool().expect("a completed flag"),
            )
        })
        .collect()
}

fn left() -> Vec<(String, bool)> {
    LEFT.iter().map(|(t, c)| (t.to_string(), *c)).collect()
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

/// Sends one request with the given extra header lines (`name: value`) and body.
fn send(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send head");
    // The server may answer (413) and close before taking a whole oversized body.
    let _ = stream.write_all(body);
    read_response(&mut stream).expect("response")
}

/// `send` with a JSON body.
fn send_json(addr: SocketAddr, method: &str, path: &str, body: &str) -> Response {
    send(
        addr,
        method,
        path,
        &["Content-Type: application/json"],
        body.as_bytes(),
    )
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Asserts `response` is a JSON error with `status` whose message contains `needle`.
#[track_caller]
fn refused(response: Response, status: u16, needle: &str) {
    assert_eq!(response.status, status, "{}", response.body);
    let message = json(&response.body)["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {}", response.body))
        .to_owned();
    assert!(
        message.contains(needle),
        "{status}: {message:?} does not say {needle:?}"
    );
}

/// The browser's whole flow, a restart in between: the todos come back.
fn browse_restart_and_find(path: &Path, label: &str) -> Trellis {
    let mut trellis = Trellis::up(path, &[]);
    in_browser(trellis.addr(), "fresh", label);
    assert_eq!(listed(trellis.addr()), left());
    assert_eq!(trellis.terminate(), Some(0), "{}", trellis.stderr());

    let trellis = Trellis::up(path, &[]);
    in_browser(trellis.addr(), "kept", label);
    trellis
}

#[test]
fn todomvc_keeps_its_todos_in_the_durable_local_store() {
    let (dir, path) = todomvc("app.yaml", &[]);
    let trellis = browse_restart_and_find(&path, "local");
    assert!(dir.path().join(".trellis/keyvalue/kv.redb").is_file());
    assert_eq!(listed(trellis.addr()), left());
}

#[test]
fn todomvc_keeps_its_todos_in_redis() {
    let redis = RedisServer::start(free_port());
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    let (dir, path) = todomvc("redis.yaml", &[("redis://127.0.0.1:6379/0", &url)]);
    let trellis = browse_restart_and_find(&path, "redis");
    assert_eq!(listed(trellis.addr()), left());

    // The todos are in that Redis, one key per field, and nowhere on disk.
    let keys = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "--raw", "KEYS", "todo:*"])
        .output()
        .expect("run redis-cli");
    let keys = String::from_utf8_lossy(&keys.stdout);
    let mut keys: Vec<&str> = keys.lines().collect();
    keys.sort_unstable();
    // The five added got ids 1 to 5; 1 and 4 are gone.
    assert_eq!(
        keys,
        [
            "todo:2:completed",
            "todo:2:title",
            "todo:3:completed",
            "todo:3:title",
            "todo:5:completed",
            "todo:5:title",
            "todo:next-id",
        ]
    );
    assert!(!dir.path().join(".trellis/keyvalue").exists());
}

#[test]
fn the_todomvc_api_answers_and_refuses_with_reasons() {
    let (_dir, path) = todomvc(
        "app.yaml",
        &[(
            "        image: file://./build/todomvc.wasm\n",
            "        image: file://./build/todomvc.wasm\n        config:\n          - name: limits\n            properties:\n              max_todos: \"3\"\n",
        )],
    );
    let trellis = Trellis::up(&path, &[]);
    let addr = trellis.addr();

    // The front end, with its content types and revalidation.
    let page = get(addr, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        header(&page, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        header(&page, "content-security-policy")
            .is_some_and(|csp| csp.contains("default-src 'self'"))
    );
    assert!(page.body.contains(r#"<section class="todoapp">"#));
    for (path, content_type) in [
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/app.css", "text/css; charset=utf-8"),
    ] {
        let asset = get(addr, path);
        assert_eq!(asset.status, 200, "{path}");
        assert_eq!(header(&asset, "content-type"), Some(content_type), "{path}");
        let etag = header(&asset, "etag").expect("an etag").to_owned();
        let again = send(addr, "GET", path, &[&format!("If-None-Match: {etag}")], b"");
        assert_eq!(again.status, 304, "{path}");
        assert_eq!(again.body, "");
    }
    assert_eq!(get(addr, "/nope").status, 404);
    refused(get(addr, "/api/other"), 404, "/api/todos");

    // The whole life of a todo.
    assert_eq!(json(&get(addr, "/api/todos").body), serde_json::json!([]));
    let created = send_json(addr, "POST", "/api/todos", r#"{"title": "  Buy milk  "}"#);
    assert_eq!(created.status, 201, "{}", created.body);
    let todo = json(&created.body);
    assert_eq!(todo["title"], "Buy milk");
    assert_eq!(todo["completed"], false);
    let id = todo["id"].as_u64().expect("a numeric id");
    let item = format!("/api/todos/{id}");
    assert_eq!(header(&created, "location"), Some(item.as_str()));
    let patched = send_json(addr, "PATCH", &item, r#"{"completed": true}"#);
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(json(&patched.body)["completed"], true);
    let patched = send_json(addr, "PATCH", &item, r#"{"title": "Buy oat milk"}"#);
    assert_eq!(json(&patched.body)["title"], "Buy oat milk");
    assert_eq!(
        json(&patched.body)["completed"],
        true,
        "an edit kept the flag"
    );
    assert_eq!(json(&get(addr, &item).body)["title"], "Buy oat milk");
    let second = json(&send_json(addr, "POST", "/api/todos", r#"{"title": "Call"}"#).body);
    let all = send_json(addr, "PATCH", "/api/todos", r#"{"completed": true}"#);
    assert_eq!(all.status, 200, "{}", all.body);
    assert!(
        json(&all.body)
            .as_array()
            .expect("a list")
            .iter()
            .all(|t| t["completed"] == true)
    );
    send_json(
        addr,
        "PATCH",
        &format!("/api/todos/{}", second["id"]),
        r#"{"completed": false}"#,
    );
    let cleared = request(addr, "DELETE", "/api/todos?completed=true", b"");
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert_eq!(listed(addr), [("Call".to_owned(), false)]);
    refused(get(addr, &item), 404, "no todo");
    let second_item = format!("/api/todos/{}", second["id"]);
    assert_eq!(request(addr, "DELETE", &second_item, b"").status, 204);
    refused(request(addr, "DELETE", &second_item, b""), 404, "no todo");

    // Bodies that are not what the API takes.
    refused(
        request(addr, "POST", "/api/todos", br#"{"title": "x"}"#),
        415,
        "application/json",
    );
    refused(
        send(
            addr,
            "POST",
            "/api/todos",
            &["Content-Type: text/plain"],
            br#"{"title": "x"}"#,
        ),
        415,
        "text/plain",
    );
    refused(
        send_json(addr, "POST", "/api/todos", "{title: x}"),
        400,
        "not valid JSON",
    );
    refused(
        send_json(addr, "POST", "/api/todos", "{}"),
        400,
        "missing field `title`",
    );
    refused(
        send_json(
            addr,
            "POST",
            "/api/todos",
            r#"{"title": "x", "done": true}"#,
        ),
        400,
        "unknown field `done`",
    );
    refused(
        send_json(addr, "POST", "/api/todos", r#"{"title": 7}"#),
        400,
        "invalid type",
    );
    refused(
        send_json(addr, "POST", "/api/todos", r#"{"title": " \t "}"#),
        400,
        "empty",
    );
    refused(
        send_json(addr, "POST", "/api/todos", r#"{"title": "two\nlines"}"#),
        400,
        "control character",
    );
    let long = format!(r#"{{"title": "{}"}}"#, "x".repeat(501));
    refused(
        send_json(addr, "POST", "/api/todos", &long),
        400,
        "501 characters",
    );
    let fits = format!(r#"{{"title": "{}"}}"#, "x".repeat(500));
    assert_eq!(send_json(addr, "POST", "/api/todos", &fits).status, 201);
    let huge = format!(r#"{{"title": "x", "pad": "{}"}}"#, " ".repeat(20_000));
    refused(
        send_json(addr, "POST", "/api/todos", &huge),
        413,
        "16384 bytes",
    );

    // Ids, methods and routes that do not exist.
    refused(
        send_json(addr, "PATCH", "/api/todos/999", r#"{"completed": true}"#),
        404,
        "999",
    );
    refused(
        send_json(addr, "PATCH", "/api/todos/abc", r#"{"completed": true}"#),
        404,
        "abc",
    );
    refused(
        send_json(addr, "PATCH", "/api/todos/+1", r#"{"completed": true}"#),
        404,
        "+1",
    );
    let listed_id = json(&get(addr, "/api/todos").body)[0]["id"].clone();
    refused(
        send_json(addr, "PATCH", &format!("/api/todos/{listed_id}"), "{}"),
        400,
        "nothing to change",
    );
    refused(
        send_json(addr, "PATCH", "/api/todos", r#"{"title": "all"}"#),
        400,
        "unknown field `title`",
    );
    refused(
        request(addr, "DELETE", "/api/todos", b""),
        400,
        "?completed=true",
    );
    let put = request(addr, "PUT", "/api/todos", b"");
    assert_eq!(header(&put, "allow"), Some("GET, POST, PATCH, DELETE"));
    refused(put, 405, "PUT");
    assert_eq!(request(addr, "POST", "/app.js", b"").status, 405);

    // The limit from the component's config: three todos.
    for title in ["two", "three"] {
        let body = format!(r#"{{"title": "{title}"}}"#);
        assert_eq!(send_json(addr, "POST", "/api/todos", &body).status, 201);
    }
    refused(
        send_json(addr, "POST", "/api/todos", r#"{"title": "four"}"#),
        409,
        "already 3 todos",
    );
    assert_eq!(listed(addr).len(), 3);
}

#[test]
fn todomvc_says_why_when_redis_is_away() {
    // Nothing listens on this port.
    let url = format!("redis://127.0.0.1:{}/0", free_port());
    let (_dir, path) = todomvc("redis.yaml", &[("redis://127.0.0.1:6379/0", &url)]);
    let trellis = Trellis::up(&path, &[]);
    refused(
        get(trellis.addr(), "/api/todos"),
        503,
        "key-value store failed",
    );
    // The page itself does not need the store, and shows the reason.
    assert_eq!(get(trellis.addr(), "/").status, 200);
    in_browser(trellis.addr(), "unreachable", "redis");
}
