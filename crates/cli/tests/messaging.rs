//! `wasmcloud:messaging` through the real binary: a component answering requests on a
//! subject over real NATS, the in-process broker of embedded mode, and the message size
//! limit.

mod common;

use common::*;
use std::time::Duration;

/// The echo component subscribed through `provider_image`, plus the `msg_client` HTTP
/// component publishing through the same provider.
fn echo_app(provider_image: &str, subject: &str) -> String {
    format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: messaging
spec:
  components:
    - name: echo
      type: component
      properties:
        image: file://./build/messaging_echo.wasm
      traits:
        - type: spreadscaler
          properties:
            instances: 2
        - type: link
          properties:
            namespace: wasmcloud
            package: messaging
            interfaces: [consumer]
            target:
              name: nats
    - name: web
      type: component
      properties:
        image: file://./build/msg_client.wasm
      traits:
        - type: link
          properties:
            namespace: wasmcloud
            package: messaging
            interfaces: [consumer]
            target:
              name: nats
    - name: nats
      type: capability
      properties:
        image: {provider_image}
      traits:
        - type: link
          properties:
            target:
              name: echo
            namespace: wasmcloud
            package: messaging
            interfaces: [handler]
            source:
              config:
                - name: subscriptions
                  properties:
                    subscriptions: {subject}
    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
      traits:
        - type: link
          properties:
            target:
              name: web
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: default-http
                  properties:
                    address: 127.0.0.1:8000
"#
    )
}

fn unique_subject() -> String {
    format!("trellis.test.{}.{}", std::process::id(), uuid_like())
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
}

#[test]
fn a_component_answers_requests_published_on_nats() {
    let subject = unique_subject();
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "messaging_echo");
    install_guest(dir.path(), "msg_client");
    let manifest = write_manifest(
        dir.path(),
        &echo_app("ghcr.io/wasmcloud/messaging-nats:0.23.1", &subject),
    );
    let trellis = Trellis::up(&manifest, &[]);
    trellis.wait_for_stderr("subscribed", Duration::from_secs(20));

    // A plain NATS client, outside Trellis, asks and gets the component's answer.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let reply = rt.block_on(async {
        let client = async_nats::connect("127.0.0.1:4222")
            .await
            .expect("connect to NATS");
        tokio::time::timeout(
            Duration::from_secs(10),
            client.request(subject.clone(), "hello".into()),
        )
        .await
        .expect("reply in time")
        .expect("reply")
    });
    assert_eq!(&reply.payload[..], b"echo: hello");

    // And a component publishing through the provider reaches it too.
    let r = request(
        trellis.addr(),
        "POST",
        &format!("/request?subject={subject}&timeout_ms=5000"),
        b"from a component",
    );
    assert_eq!((r.status, r.body.as_str()), (200, "echo: from a component"));
}

#[test]
fn embedded_mode_messages_stay_in_process() {
    let subject = unique_subject();
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "messaging_echo");
    install_guest(dir.path(), "msg_client");
    let manifest = write_manifest(
        dir.path(),
        &echo_app("trellis+builtin://messaging-local", &subject),
    );
    let trellis = Trellis::up(&manifest, &["--max-message-size", "1KiB"]);
    trellis.wait_for_stderr("subscribed", Duration::from_secs(20));
    let addr = trellis.addr();
    let r = request(
        addr,
        "POST",
        &format!("/request?subject={subject}"),
        b"ping",
    );
    assert_eq!((r.status, r.body.as_str()), (200, "echo: ping"));

    let r = request(addr, "POST", "/request?subject=nobody.listens", b"ping");
    assert_eq!(r.status, 500);
    assert!(r.body.contains("no responders"), "{}", r.body);

    let r = request(addr, "POST", "/publish?subject=a.*", b"x");
    assert!(
        r.status == 500 && r.body.contains("invalid subject"),
        "{}",
        r.body
    );

    let r = request(
        addr,
        "POST",
        &format!("/publish?subject={subject}"),
        &vec![b'x'; 4096],
    );
    assert!(
        r.status == 500 && r.body.contains("--max-message-size"),
        "{}",
        r.body
    );
}

#[test]
fn a_request_timeout_is_capped_at_the_max_request_timeout() {
    let subject = unique_subject();
    let silent = format!("{subject}.silent");
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "messaging_echo");
    install_guest(dir.path(), "msg_client");
    let manifest = write_manifest(
        dir.path(),
        &echo_app("ghcr.io/wasmcloud/messaging-nats:0.23.1", &subject),
    );
    let trellis = Trellis::up(&manifest, &["--max-request-timeout", "1s"]);

    // Someone listens on `silent` (so there are responders) but never answers.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (_client, _subscription) = rt.block_on(async {
        let client = async_nats::connect("127.0.0.1:4222")
            .await
            .expect("connect to NATS");
        let subscription = client.subscribe(silent.clone()).await.expect("subscribe");
        client.flush().await.expect("flush");
        (client, subscription)
    });

    // The component asks to wait a minute; the host caps it at 1 s.
    let started = std::time::Instant::now();
    let r = request(
        trellis.addr(),
        "POST",
        &format!("/request?subject={silent}&timeout_ms=60000"),
        b"anyone?",
    );
    let took = started.elapsed();
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("timed out after 1s"), "{}", r.body);
    // Not a performance assertion: the 30 s default would not have answered yet.
    assert!(took < Duration::from_secs(15), "answered after {took:?}");
}
