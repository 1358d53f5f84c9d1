//! `trellis call COMPONENT FUNCTION ARGS…` against an embedded host (`trellis up`, over its
//! admin endpoint) and against a lattice of `trellis host`s on a real NATS server: arguments
//! as JSON and as WAVE, results as WAVE and `-o json`, and every error a caller can make.
//!
//! The `typed-exports` guest (test-components/) exports `trellis:typed/api`, a function
//! `version` at the level of its world, and a resource.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const APP: &str = r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: typed
spec:
  components:
    - name: typed
      type: component
      properties:
        image: file://./build/typed_exports.wasm
      traits:
        - type: spreadscaler
          properties:
            instances: 2
"#;

/// The component id wadm forms for the manifest above: `{app}-{component}`.
const ID: &str = "typed-typed";
const API: &str = "trellis:typed/api";

/// `trellis call ARGS… --embedded ADMIN` (or any other connection flags).
fn call(connection: &[&str], args: &[&str]) -> Exited {
    let mut all = vec!["call"];
    all.extend(args);
    all.extend(connection);
    run(&all)
}

/// A call that must succeed: its stdout, trimmed.
fn ok(connection: &[&str], args: &[&str]) -> String {
    let out = call(connection, args);
    assert_eq!(out.code, Some(0), "trellis call {args:?}: {}", out.stderr);
    out.stdout.trim_end().to_owned()
}

/// A call that must succeed with `-o json`: its value.
fn ok_json(connection: &[&str], args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let text = ok(connection, &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A call that must fail: its stderr.
fn fails(connection: &[&str], args: &[&str]) -> String {
    let out = call(connection, args);
    assert_eq!(out.code, Some(1), "trellis call {args:?}: {}", out.stdout);
    out.stderr
}

fn f(function: &str) -> String {
    format!("{API}.{function}")
}

/// What works, in JSON and in WAVE, printed both ways.
fn calls_succeed(c: &[&str], id: &str) {
    // --raw prints a string as its text.
    assert_eq!(
        ok(c, &[id, &f("say"), "\"two\\nlines\"", "--raw"]),
        "ferris says: two\nlines"
    );
    // string → string; the interface named with or without its version.
    assert_eq!(
        ok(c, &[id, &f("say"), "\"hello\""]),
        "\"ferris says: hello\""
    );
    assert_eq!(
        ok(c, &[id, "trellis:typed/api@0.1.0.say", "\"hi\""]),
        "\"ferris says: hi\""
    );
    assert_eq!(
        ok_json(c, &[id, &f("say"), "\"a \\\"quoted\\\" word\""]),
        json!("ferris says: a \"quoted\" word")
    );
    // A record, as JSON (option field left out) and as WAVE.
    assert_eq!(
        ok(
            c,
            &[
                id,
                &f("describe"),
                r#"{"name": "ada", "age": 36, "tags": ["math", "engines"]}"#
            ]
        ),
        "\"ada (36) [math, engines]\""
    );
    assert_eq!(
        ok(
            c,
            &[
                id,
                &f("describe"),
                r#"{name: "grace", age: 85, email: some("grace@example.org"), tags: []}"#
            ]
        ),
        "\"grace (85) <grace@example.org>\""
    );
    // A record result: WAVE for people, an object for scripts; an option: none / null.
    assert_eq!(
        ok(c, &[id, &f("find"), "\"grace\""]),
        // WAVE leaves out record fields that are `none`.
        "some({name: \"grace\", age: 85, tags: [\"pioneer\"]})"
    );
    assert_eq!(
        ok_json(c, &[id, &f("find"), "\"ada\""]),
        json!({"name": "ada", "age": 36, "email": "ada@example.org", "tags": ["pioneer"]})
    );
    assert_eq!(ok(c, &[id, &f("find"), "\"nobody\""]), "none");
    assert_eq!(ok_json(c, &[id, &f("find"), "\"nobody\""]), Value::Null);
    // Variants: WAVE cases, JSON objects and strings.
    assert_eq!(
        ok_json(c, &[id, &f("area"), "rect((2.0, 3.5))"]),
        json!(7.0)
    );
    assert_eq!(
        ok_json(c, &[id, &f("area"), r#"{"rect": [2, 3.5]}"#]),
        json!(7.0)
    );
    assert_eq!(ok_json(c, &[id, &f("area"), "dot"]), json!(0.0));
    assert_eq!(ok_json(c, &[id, &f("area"), "\"dot\""]), json!(0.0));
    let circle = ok_json(c, &[id, &f("area"), "circle(1.0)"]);
    assert_eq!(circle.as_f64(), Some(std::f64::consts::PI), "{circle}");
    // Enums.
    assert_eq!(ok(c, &[id, &f("next-color"), "red"]), "green");
    assert_eq!(
        ok_json(c, &[id, &f("next-color"), "\"blue\""]),
        json!("red")
    );
    // u64 values beyond what a float holds exactly, and results.
    assert_eq!(
        ok(c, &[id, &f("divide"), "18446744073709551615", "1"]),
        "ok(18446744073709551615)"
    );
    assert_eq!(
        ok_json(c, &[id, &f("divide"), "18446744073709551615", "1"]),
        json!({"ok": 18446744073709551615u64})
    );
    assert_eq!(
        ok(c, &[id, &f("divide"), "1", "0"]),
        "err(\"division by zero\")"
    );
    assert_eq!(ok_json(c, &[id, &f("sum"), "[1, 2, 3]"]), json!({"ok": 6}));
    assert_eq!(
        ok_json(c, &[id, &f("sum"), "[18446744073709551615, 1]"]),
        json!({"err": "overflow"})
    );
    // Floats of both widths.
    assert_eq!(ok_json(c, &[id, &f("scale"), "1.5", "-2"]), json!(-3.0));
    // list<u8> as a JSON string or array.
    assert_eq!(ok(c, &[id, &f("count-bytes"), "\"abcd\""]), "4");
    assert_eq!(ok(c, &[id, &f("count-bytes"), "[1, 2, 3]"]), "3");
    // Flags.
    assert_eq!(ok(c, &[id, &f("with-read"), "{write}"]), "{read, write}");
    assert_eq!(
        ok_json(c, &[id, &f("with-read"), "[\"exec\"]"]),
        json!(["read", "exec"])
    );
    // No result: nothing for people, null for scripts.
    assert_eq!(ok(c, &[id, &f("nothing")]), "");
    assert_eq!(ok_json(c, &[id, &f("nothing")]), Value::Null);
    // A function at the level of the world, by its bare name.
    assert_eq!(ok(c, &[id, "version"]), "\"typed-exports 0.1.0\"");
}

/// What fails, and what each error says. `not_running` is the start of the message for an
/// unknown component.
fn calls_fail_clearly(c: &[&str], id: &str, not_running: &str) {
    let e = fails(c, &["nope", &f("say"), "\"x\""]);
    assert!(e.contains(not_running), "{e}");

    let e = fails(c, &[id, &f("shout"), "\"x\""]);
    assert!(
        e.contains(&format!(
            "component `{id}` does not export `{API}.shout`; it exports:"
        )),
        "{e}"
    );
    assert!(
        e.contains("trellis:typed/api@0.1.0.say: func(words: string) -> string"),
        "the error lists the exports with their types: {e}"
    );
    let e = fails(c, &[id, "trellis:typed/other.say", "\"x\""]);
    assert!(
        e.contains("does not export `trellis:typed/other.say`"),
        "{e}"
    );
    let e = fails(c, &[id, "say", "\"x\""]);
    assert!(
        e.contains("did you mean `trellis:typed/api@0.1.0.say`?"),
        "{e}"
    );

    let e = fails(c, &[id, &f("divide"), "1"]);
    assert!(
        e.contains("`trellis:typed/api@0.1.0.divide` takes 2 arguments (a: u64, b: u64), got 1"),
        "{e}"
    );
    let e = fails(
        c,
        &[
            id,
            &f("describe"),
            r#"{"name": "ada", "age": 300, "tags": []}"#,
        ],
    );
    assert!(
        e.contains("argument 1 of `trellis:typed/api@0.1.0.describe` (`p: record {"),
        "{e}"
    );
    assert!(
        e.contains("field `age`: 300 is out of range for u8 (read as JSON)"),
        "{e}"
    );
    let e = fails(c, &[id, &f("describe"), r#"{"name": "ada", "tags": []}"#]);
    assert!(e.contains("missing field `age` (u8)"), "{e}");
    let e = fails(c, &[id, &f("next-color"), "purple"]);
    assert!(e.contains("argument 1 of"), "{e}");
    assert!(e.contains("`c: enum { red, green, blue }`"), "{e}");
    let e = fails(c, &[id, &f("say"), "hello"]);
    assert!(e.contains("a string is written in double quotes"), "{e}");
    let e = fails(c, &[id, &f("divide"), "1", "-1"]);
    assert!(e.contains("argument 2 of"), "{e}");
    assert!(e.contains("-1 is out of range for u64"), "{e}");

    let e = fails(c, &[id, &f("make-counter"), "1"]);
    assert!(
        e.contains("`trellis:typed/api@0.1.0.make-counter` cannot be called from the command line: its result holds a resource"),
        "{e}"
    );

    // A trap, then the component still answers.
    let e = fails(c, &[id, &f("fail"), "\"boom-from-cli\""]);
    assert!(e.contains(&format!("component `{id}` trapped")), "{e}");
    assert_eq!(
        ok(c, &[id, &f("say"), "\"again\""]),
        "\"ferris says: again\""
    );
}

#[test]
fn trellis_call_against_an_embedded_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "typed_exports");
    let manifest = write_manifest(dir.path(), APP);
    let trellis = Trellis::up(
        &manifest,
        &["--max-execution-time", "1s", "--max-call-size", "4KiB"],
    );
    let admin = trellis.admin_url();
    let c = ["--embedded", admin.as_str()];

    calls_succeed(&c, ID);
    calls_fail_clearly(&c, ID, "component `nope` is not running on host");
    let e = fails(&c, &["nope", &f("say"), "\"x\""]);
    assert!(e.contains(&format!("(it runs: {ID})")), "{e}");
    // The guest's panic message is in the host's log.
    trellis.wait_for_stderr("boom-from-cli", Duration::from_secs(5));

    // The component's execution deadline stops a call that runs too long.
    let e = fails(&c, &[ID, &f("spin"), "5000"]);
    assert!(
        e.contains(&format!(
            "component `{ID}` exceeded its execution time limit of 1s"
        )),
        "{e}"
    );

    // --max-call-size bounds the arguments (and results) as text.
    let big = format!("\"{}\"", "x".repeat(5000));
    let e = fails(&c, &[ID, &f("count-bytes"), &big]);
    assert!(
        e.contains("over the limit of 4096 bytes (--max-call-size)"),
        "{e}"
    );
    let fits = format!("\"{}\"", "x".repeat(3000));
    assert_eq!(ok(&c, &[ID, &f("count-bytes"), &fits]), "3000");
}

/// Two hosts on one NATS server; the component runs on `back` only: the CLI finds the host
/// that runs it, and errors travel back over the lattice.
#[test]
fn trellis_call_on_a_lattice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let url = nats.url();
    let lattice = "trelliscall";
    let _front = LatticeHost::start(&url, lattice, &["--friendly-name", "front"]);
    let back = LatticeHost::start(&url, lattice, &["--friendly-name", "back"]);
    let wasm = install_guest(dir.path(), "typed_exports");
    let c = ["--nats", url.as_str(), "--lattice", lattice];
    let image = format!("file://{}", wasm.display());
    let mut start = vec!["start", "component", &image, "typed", "--host", "back"];
    start.extend(c);
    let out = run(&start);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    let said = eventually(
        "the component to answer on back",
        Duration::from_secs(30),
        || {
            let out = call(&c, &["typed", &f("say"), "\"lattice\""]);
            (out.code == Some(0)).then_some(out.stdout)
        },
    );
    assert_eq!(said.trim_end(), "\"ferris says: lattice\"");

    calls_succeed(&c, "typed");
    calls_fail_clearly(&c, "typed", "component `nope` is not running on any host");
    back.trellis
        .wait_for_stderr("boom-from-cli", Duration::from_secs(5));

    // Asking a host that does not run it.
    let e = fails(&c, &["typed", &f("say"), "\"x\"", "--host", "front"]);
    assert!(
        e.contains("component `typed` is not running on host front"),
        "{e}"
    );
    assert_eq!(
        ok(&c, &["typed", &f("say"), "\"x\"", "--host", "back"]),
        "\"ferris says: x\""
    );
}
