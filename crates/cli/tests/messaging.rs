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

// wasmcloud:messaging@0.3.0.

/// wasmCloud's echo-messaging-0-3-0 `wadm.yaml`, unchanged but for the component's image and
/// the subscription: `[consumer]` from the component, `[handler]` to it.
fn echo_v3_app(wasm: &str, subscriptions: &str) -> String {
    format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: rust-echo-messaging
  annotations:
    version: v0.0.1
    description: 'Echo demo in Rust, using the WebAssembly Component Model and WebAssembly Interfaces Types (WIT)'
spec:
  components:
    - name: echo
      type: component
      properties:
        image: file://./build/{wasm}.wasm
        id: echo
      traits:
        - type: spreadscaler
          properties:
            instances: 1
        - type: link
          properties:
            target:
              name: nats
            namespace: wasmcloud
            package: messaging
            interfaces: [consumer]

    - name: nats
      type: capability
      properties:
        image: ghcr.io/wasmcloud/messaging-nats:0.27.0
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
                - name: simple-subscription
                  properties:
                    subscriptions: {subscriptions}
"#
    )
}

/// A request from a plain NATS client, outside Trellis, with `headers`.
async fn nats_request(
    client: &async_nats::Client,
    subject: String,
    headers: &[(&str, &str)],
    body: &'static str,
) -> async_nats::Message {
    let mut map = async_nats::HeaderMap::new();
    for (k, v) in headers {
        map.insert(*k, *v);
    }
    tokio::time::timeout(
        Duration::from_secs(15),
        client.request_with_headers(subject, map, body.into()),
    )
    .await
    .expect("reply in time")
    .expect("reply")
}

fn header<'a>(message: &'a async_nats::Message, name: &str) -> Option<&'a str> {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str())
}

fn text(message: &async_nats::Message) -> String {
    String::from_utf8_lossy(&message.payload).into_owned()
}

#[test]
fn a_0_3_0_component_answers_and_forwards_over_nats_with_wasmclouds_manifest() {
    let subject = unique_subject();
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "msg_v3");
    let manifest = write_manifest(dir.path(), &echo_v3_app("msg_v3", &format!("{subject}.*")));
    let trellis = Trellis::up(&manifest, &[]);
    trellis.wait_for_stderr("subscribed", Duration::from_secs(20));

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = async_nats::connect("127.0.0.1:4222")
            .await
            .expect("connect to NATS");

        // Data, content type and metadata reach the guest and come back in its reply.
        let reply = nats_request(
            &client,
            format!("{subject}.upper"),
            &[("Content-Type", "text/plain"), ("trace", "t-1")],
            "hello",
        )
        .await;
        assert_eq!(text(&reply), "HELLO");
        assert_eq!(header(&reply, "Content-Type"), Some("text/plain"));
        assert_eq!(header(&reply, "trace"), Some("t-1"));
        let upper = format!("{subject}.upper");
        assert_eq!(header(&reply, "x-topic"), Some(upper.as_str()));

        // producer.send publishes with the metadata.
        let mut forwarded = client
            .subscribe(format!("{subject}.out.forwarded"))
            .await
            .expect("subscribe");
        client.flush().await.expect("flush");
        let reply =
            nats_request(&client, format!("{subject}.forward"), &[("k", "v")], "data").await;
        assert_eq!(text(&reply), "forwarded");
        let out = tokio::time::timeout(
            Duration::from_secs(10),
            futures::StreamExt::next(&mut forwarded),
        )
        .await
        .expect("forwarded in time")
        .expect("subscription open");
        assert_eq!(text(&out), "data");
        assert_eq!(header(&out, "k"), Some("v"));

        // Replying to a message the guest made, or requesting with one, is refused clearly.
        let reply = nats_request(&client, format!("{subject}.self"), &[], "").await;
        assert!(
            text(&reply).contains("cannot reply to a message the component made itself"),
            "{}",
            text(&reply)
        );
        let reply = nats_request(&client, format!("{subject}.again"), &[], "").await;
        assert!(text(&reply).contains("has no topic"), "{}", text(&reply));
        let reply = nats_request(&client, format!("{subject}.disconnect"), &[], "").await;
        assert!(
            text(&reply).starts_with("error: connection:") && text(&reply).contains("disconnected"),
            "{}",
            text(&reply)
        );

        // The guest's error is logged like a 0.2.0 handler's rejection.
        client
            .publish(format!("{subject}.fail"), "x".into())
            .await
            .expect("publish");
        client.flush().await.expect("flush");
    });
    let log = trellis.wait_for_stderr("refused on purpose", Duration::from_secs(10));
    assert!(log.contains("message handler failed"), "{log}");
}

/// Answers every request on `subject` with `answer`.
async fn nats_responder(client: &async_nats::Client, subject: &str, answer: &'static str) {
    let mut requests = client
        .subscribe(subject.to_owned())
        .await
        .expect("subscribe");
    let client = client.clone();
    tokio::spawn(async move {
        while let Some(request) = futures::StreamExt::next(&mut requests).await {
            if let Some(reply_to) = request.reply {
                let _ = client.publish(reply_to, answer.into()).await;
            }
        }
    });
}

#[test]
fn a_0_3_0_request_collects_the_expected_replies_within_its_timeout_over_nats() {
    let subject = unique_subject();
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "msg_v3_request");
    let manifest = write_manifest(
        dir.path(),
        &echo_v3_app("msg_v3_request", &format!("{subject}.gather")),
    );
    let trellis = Trellis::up(
        &manifest,
        &["--max-request-timeout", "2s", "--max-request-replies", "8"],
    );
    trellis.wait_for_stderr("subscribed", Duration::from_secs(20));

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = async_nats::connect("127.0.0.1:4222")
            .await
            .expect("connect to NATS");
        let fan = format!("{subject}.fan");
        for answer in ["r1", "r2", "r3"] {
            nats_responder(&client, &fan, answer).await;
        }
        let _silent = client
            .subscribe(format!("{subject}.silent"))
            .await
            .expect("subscribe");
        client.flush().await.expect("flush");
        let gather = |command: String| {
            let client = client.clone();
            let subject = format!("{subject}.gather");
            async move {
                let reply = tokio::time::timeout(
                    Duration::from_secs(15),
                    client.request(subject, command.into()),
                )
                .await
                .expect("reply in time")
                .expect("reply");
                text(&reply)
            }
        };

        // As many as expected, before the timeout.
        let two = gather(format!("2 10000 {fan}")).await;
        assert!(two.starts_with("2: r"), "{two}");
        // Fewer than expected: those that came before the timeout.
        assert_eq!(gather(format!("5 500 {fan}")).await, "3: r1,r2,r3");
        // No options: one reply.
        assert!(gather(format!("- - {fan}")).await.starts_with("1: r"));
        // None in time is a timeout; with no timeout set, the host's bound applies.
        assert_eq!(
            gather(format!("2 300 {subject}.silent")).await,
            "error: timeout"
        );
        let started = std::time::Instant::now();
        assert_eq!(
            gather(format!("- - {subject}.silent")).await,
            "error: timeout"
        );
        assert!(
            started.elapsed() >= Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // Nobody listening, and more replies than the host allows.
        let nobody = gather(format!("1 - {subject}.nobody")).await;
        assert!(nobody.contains("no responders"), "{nobody}");
        let nobody = gather(format!("3 - {subject}.nobody")).await;
        assert!(nobody.contains("no responders"), "{nobody}");
        let many = gather(format!("9 100 {fan}")).await;
        assert!(many.contains("--max-request-replies"), "{many}");
    });
}

#[test]
fn a_0_3_0_component_works_in_process_with_messaging_local() {
    let subject = unique_subject();
    let dir = tempfile::tempdir().expect("tempdir");
    for guest in ["msg_v3", "msg_v3_request", "msg_client"] {
        install_guest(dir.path(), guest);
    }
    let consumer = |component: &str, wasm: &str| {
        format!(
            r#"    - name: {component}
      type: component
      properties:
        image: file://./build/{wasm}.wasm
      traits:
        - type: link
          properties:
            namespace: wasmcloud
            package: messaging
            interfaces: [consumer]
            target:
              name: broker
"#
        )
    };
    // A provider has one link per package and link name, so each gets a name of its own.
    let handler = |component: &str, interfaces: &str, subscriptions: String| {
        format!(
            r#"        - type: link
          properties:
            name: to-{component}
            target:
              name: {component}
            namespace: wasmcloud
            package: messaging
            interfaces: [{interfaces}]
            source:
              config:
                - name: subs-{component}
                  properties:
                    subscriptions: {subscriptions}
"#
        )
    };
    let manifest = format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: local-v3
spec:
  components:
{one}{two}{gatherer}{web}      traits:
        - type: link
          properties:
            namespace: wasmcloud
            package: messaging
            interfaces: [consumer]
            target:
              name: broker
    - name: broker
      type: capability
      properties:
        image: trellis+builtin://messaging-local
      traits:
{h_one}{h_two}{h_gatherer}    - name: httpserver
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
"#,
        one = consumer("one", "msg_v3"),
        two = consumer("two", "msg_v3"),
        gatherer = consumer("gatherer", "msg_v3_request"),
        web = "    - name: web\n      type: component\n      properties:\n        image: file://./build/msg_client.wasm\n",
        h_one = handler(
            "one",
            "handler",
            format!("{subject}.a.upper,{subject}.a.self,{subject}.fan.upper")
        ),
        h_two = handler("two", "incoming-handler", format!("{subject}.fan.upper")),
        h_gatherer = handler("gatherer", "handler", format!("{subject}.gather")),
    );
    let manifest = write_manifest(dir.path(), &manifest);
    let trellis = Trellis::up(&manifest, &["--metrics", "127.0.0.1:0"]);
    trellis.wait_for_stderr("subscribed", Duration::from_secs(20));
    let addr = trellis.addr();
    let ask = |to: String, body: &str| {
        let r = request(
            addr,
            "POST",
            &format!("/request?subject={to}&timeout_ms=10000"),
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    };

    assert_eq!(ask(format!("{subject}.a.upper"), "hi"), "HI");
    let refused = ask(format!("{subject}.a.self"), "");
    assert!(
        refused.contains("cannot reply to a message the component made itself"),
        "{refused}"
    );
    // Two components answer on the fan subject: both replies are collected.
    let gather = format!("{subject}.gather");
    assert_eq!(
        ask(gather.clone(), &format!("2 5000 {subject}.fan.upper")),
        "2: ASK,ASK"
    );
    assert_eq!(
        ask(gather.clone(), &format!("5 300 {subject}.fan.upper")),
        "2: ASK,ASK"
    );
    let nobody = ask(gather, &format!("1 - {subject}.nobody"));
    assert!(nobody.contains("no responders"), "{nobody}");

    // 0.3.0's operations are counted: the replies (HI, and four to the fan-out), and the
    // request nobody answered as an error.
    let scrape = metrics::scrape_metrics(metrics::metrics_addr(&trellis));
    assert!(
        scrape.operations("messaging", "reply", "ok") >= 5.0,
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.operations("messaging", "request", "error"),
        1.0,
        "{}",
        scrape.text
    );
}

/// The 0.3.0 guests on a lattice: two `trellis host`s on a NATS server of the test's own,
/// the app deployed with `trellis app deploy` (the reconciler places it), the NATS messaging
/// provider on every host (a daemonscaler: a built-in provider delivers to components on its
/// own host). A plain NATS client publishes and requests; the handler answers, forwards with
/// `producer.send`, and gathers replies with `request-reply`.
#[test]
fn a_0_3_0_handler_runs_on_lattice_hosts_with_the_nats_provider() {
    let subject = unique_subject();
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let url = nats.url();
    let lattice = "msgv3";
    let hosts: Vec<LatticeHost> = ["one", "two"]
        .into_iter()
        .map(|name| {
            LatticeHost::start(
                &url,
                lattice,
                &[
                    "--friendly-name",
                    name,
                    "--reconcile-interval",
                    "1s",
                    "--heartbeat-interval",
                    "1s",
                ],
            )
        })
        .collect();
    install_guest(dir.path(), "msg_v3");
    install_guest(dir.path(), "msg_v3_request");
    let consumer = |name: &str, wasm: &str| {
        format!(
            r#"    - name: {name}
      type: component
      properties:
        image: file://./build/{wasm}.wasm
        id: {name}
      traits:
        - type: spreadscaler
          properties:
            instances: 1
        - type: link
          properties:
            target:
              name: nats
            namespace: wasmcloud
            package: messaging
            interfaces: [consumer]
"#
        )
    };
    let handler = |name: &str, subscriptions: &str| {
        format!(
            r#"        - type: link
          properties:
            name: to-{name}
            target:
              name: {name}
            namespace: wasmcloud
            package: messaging
            interfaces: [handler]
            source:
              config:
                - name: subs-{name}
                  properties:
                    subscriptions: {subscriptions}
"#
        )
    };
    let manifest = format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: lattice-v3
spec:
  components:
{echo}{gatherer}    - name: nats
      type: capability
      properties:
        image: ghcr.io/wasmcloud/messaging-nats:0.27.0
        config:
          - name: nats-url
            properties:
              cluster_uris: {url}
      traits:
        - type: daemonscaler
          properties:
            instances: 1
{h_echo}{h_gatherer}"#,
        echo = consumer("echo", "msg_v3"),
        gatherer = consumer("gatherer", "msg_v3_request"),
        h_echo = handler("echo", &format!("{subject}.upper,{subject}.forward")),
        h_gatherer = handler("gatherer", &format!("{subject}.gather")),
    );
    let path = write_manifest(dir.path(), &manifest);
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--nats", url.as_str(), "--lattice", lattice]);
        let out = run(&all);
        assert_eq!(out.code, Some(0), "trellis {args:?}: {}", out.stderr);
        out
    };
    cli(&["app", "deploy", path.to_str().expect("utf-8")]);
    eventually("app deployed", Duration::from_secs(30), || {
        let status: serde_json::Value =
            serde_json::from_str(&cli(&["app", "status", "lattice-v3", "-o", "json"]).stdout)
                .expect("json");
        (status["status"]["status"]["type"] == "deployed").then_some(())
    });
    for component in ["echo", "gatherer"] {
        eventually(
            &format!("a host to subscribe for {component}"),
            Duration::from_secs(30),
            || {
                hosts
                    .iter()
                    .any(|h| {
                        h.trellis.stderr().lines().any(|l| {
                            l.contains("subscribed")
                                && l.contains(&format!("component_id={component}"))
                        })
                    })
                    .then_some(())
            },
        );
    }

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let exchange = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let client = async_nats::connect(url.clone()).await.expect("connect");
            // Delivery: data and headers reach the handler and come back in its reply.
            let reply = nats_request(
                &client,
                format!("{subject}.upper"),
                &[("Content-Type", "text/plain"), ("trace", "t-2")],
                "lattice",
            )
            .await;
            assert_eq!(text(&reply), "LATTICE");
            assert_eq!(header(&reply, "trace"), Some("t-2"));
            // producer.send publishes through the provider of the handler's host.
            let mut forwarded = client
                .subscribe(format!("{subject}.out.forwarded"))
                .await
                .expect("subscribe");
            client.flush().await.expect("flush");
            let reply =
                nats_request(&client, format!("{subject}.forward"), &[("k", "v")], "data").await;
            assert_eq!(text(&reply), "forwarded");
            let out = tokio::time::timeout(
                Duration::from_secs(10),
                futures::StreamExt::next(&mut forwarded),
            )
            .await
            .expect("forwarded in time")
            .expect("subscription open");
            assert_eq!(text(&out), "data");
            assert_eq!(header(&out, "k"), Some("v"));

            // request-reply: the gatherer asks three responders and collects what it expects.
            let fan = format!("{subject}.fan");
            for answer in ["r1", "r2", "r3"] {
                nats_responder(&client, &fan, answer).await;
            }
            client.flush().await.expect("flush");
            let gather = |command: String| {
                let client = client.clone();
                let subject = format!("{subject}.gather");
                async move {
                    let reply = tokio::time::timeout(
                        Duration::from_secs(15),
                        client.request(subject, command.into()),
                    )
                    .await
                    .expect("reply in time")
                    .expect("reply");
                    text(&reply)
                }
            };
            let two = gather(format!("2 10000 {fan}")).await;
            assert!(two.starts_with("2: r"), "{two}");
            assert_eq!(gather(format!("5 500 {fan}")).await, "3: r1,r2,r3");
            let nobody = gather(format!("1 - {subject}.nobody")).await;
            assert!(nobody.contains("no responders"), "{nobody}");
        })
    }));
    if let Err(panic) = exchange {
        for h in &hosts {
            eprintln!("--- host {} ---\n{}", h.id, h.trellis.stderr());
        }
        std::panic::resume_unwind(panic);
    }
}
