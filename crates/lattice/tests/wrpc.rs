//! The wRPC transport against the machine's NATS server (`scripts/services` starts it on
//! 127.0.0.1:4222; `TRELLIS_TEST_NATS` points elsewhere).

use futures::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use trellis_lattice::wrpc::{
    CallLimits, HandlerError, Incoming, Invocation, RpcError, WrpcClient, WrpcHandler,
    invocation_subject, serve,
};

fn nats_url() -> String {
    std::env::var("TRELLIS_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

async fn connect() -> async_nats::Client {
    async_nats::connect(nats_url())
        .await
        .expect("NATS on 127.0.0.1:4222 (run scripts/services)")
}

/// A lattice name no other test uses.
fn lattice() -> String {
    format!("wrpc{}", uuid::Uuid::new_v4().simple())
}

/// Arguments are a 4-byte little-endian length and that many bytes; the results are the
/// same bytes reversed, framed the same way. `fail` fails, `slow` takes 2 s.
struct Reverse {
    calls: AtomicUsize,
}

fn framed_complete(bytes: &[u8]) -> bool {
    bytes.len() >= 4
        && bytes.len() >= 4 + u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) as usize
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

impl WrpcHandler for Reverse {
    fn params_complete(
        &self,
        instance: &str,
        function: &str,
        bytes: &[u8],
    ) -> Result<bool, HandlerError> {
        if instance != "test:pkg/iface@0.1.0" {
            return Err(HandlerError::Refused(
                format!("no interface {instance}").into(),
            ));
        }
        match function {
            "reverse" | "fail" | "slow" => Ok(framed_complete(bytes)),
            other => Err(HandlerError::Refused(format!("no function {other}").into())),
        }
    }

    fn call(&self, call: Incoming) -> BoxFuture<'static, Result<Vec<u8>, HandlerError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            assert_eq!(call.source.as_deref(), Some("caller"));
            match call.function.as_str() {
                "fail" => Err(HandlerError::Failed(
                    "component `callee` trapped: boom".into(),
                )),
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    Ok(frame(b""))
                }
                _ => {
                    let mut body = call.params[4..].to_vec();
                    body.reverse();
                    Ok(frame(&body))
                }
            }
        })
    }
}

fn invocation<'a>(target: &'a str, function: &'a str) -> Invocation<'a> {
    Invocation {
        target,
        instance: "test:pkg/iface@0.1.0",
        function,
        source: "caller",
        link_name: "default",
        traceparent: None,
    }
}

#[tokio::test]
async fn calls_cross_nats_including_payloads_larger_than_one_message() {
    let nats = connect().await;
    let lattice = lattice();
    let handler = Arc::new(Reverse {
        calls: AtomicUsize::new(0),
    });
    let _serving = serve(
        nats.clone(),
        &lattice,
        "callee",
        handler.clone(),
        CallLimits::default(),
    )
    .await
    .expect("serve");
    let client = WrpcClient::new(connect().await, &lattice)
        .await
        .expect("client");

    let out = client
        .invoke(
            &invocation("callee", "reverse"),
            &frame(b"abc"),
            framed_complete,
            CallLimits::default(),
        )
        .await
        .expect("call");
    assert_eq!(out, frame(b"cba"));

    // Three times the server's maximum message size, both ways.
    let max = nats.server_info().max_payload;
    let big: Vec<u8> = (0..3 * max).map(|i| (i % 251) as u8).collect();
    let out = client
        .invoke(
            &invocation("callee", "reverse"),
            &frame(&big),
            framed_complete,
            CallLimits::default(),
        )
        .await
        .expect("big call");
    let mut expected = big.clone();
    expected.reverse();
    assert_eq!(out.len(), expected.len() + 4);
    assert!(
        out == frame(&expected),
        "the reversed bytes came back intact"
    );
    assert_eq!(handler.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn errors_cross_the_wire_as_errors() {
    let lattice = lattice();
    let handler = Arc::new(Reverse {
        calls: AtomicUsize::new(0),
    });
    let _serving = serve(
        connect().await,
        &lattice,
        "callee",
        handler,
        CallLimits::default(),
    )
    .await
    .expect("serve");
    let client = WrpcClient::new(connect().await, &lattice)
        .await
        .expect("client");
    let limits = CallLimits {
        max_size: 1024,
        timeout: Duration::from_millis(500),
    };

    let err = client
        .invoke(
            &invocation("nobody", "reverse"),
            &frame(b"x"),
            framed_complete,
            limits,
        )
        .await
        .expect_err("no host runs `nobody`");
    assert!(matches!(err, RpcError::NotRunning), "{err:?}");

    let err = client
        .invoke(
            &invocation("callee", "fail"),
            &frame(b"x"),
            framed_complete,
            limits,
        )
        .await
        .expect_err("the callee fails");
    assert!(
        matches!(&err, RpcError::Remote(m) if m == "component `callee` trapped: boom"),
        "{err:?}"
    );

    let err = client
        .invoke(
            &invocation("callee", "nosuch"),
            &frame(b"x"),
            framed_complete,
            limits,
        )
        .await
        .expect_err("unknown function");
    assert!(
        matches!(&err, RpcError::Remote(m) if m.contains("no function nosuch")),
        "{err:?}"
    );

    let err = client
        .invoke(
            &invocation("callee", "slow"),
            &frame(b"x"),
            framed_complete,
            limits,
        )
        .await
        .expect_err("too slow");
    assert!(
        matches!(err, RpcError::Timeout(t) if t == limits.timeout),
        "{err:?}"
    );

    let err = client
        .invoke(
            &invocation("callee", "reverse"),
            &frame(&[0; 2000]),
            framed_complete,
            limits,
        )
        .await
        .expect_err("arguments over the limit");
    assert!(
        matches!(
            err,
            RpcError::TooLarge {
                what: "arguments",
                limit: 1024,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn callees_refuse_arguments_over_their_limit() {
    let nats = connect().await;
    let lattice = lattice();
    let handler = Arc::new(Reverse {
        calls: AtomicUsize::new(0),
    });
    let small = CallLimits {
        max_size: 1024,
        timeout: Duration::from_secs(5),
    };
    let _serving = serve(nats.clone(), &lattice, "callee", handler.clone(), small)
        .await
        .expect("serve");
    let client = WrpcClient::new(connect().await, &lattice)
        .await
        .expect("client");
    // The caller allows more than the callee: the callee says no, and never runs the call.
    let max = nats.server_info().max_payload;
    let err = client
        .invoke(
            &invocation("callee", "reverse"),
            &frame(&vec![7; 2 * max]),
            framed_complete,
            CallLimits::default(),
        )
        .await
        .expect_err("over the callee's limit");
    assert!(
        matches!(&err, RpcError::Remote(m) if m.contains("over the limit of 1024 bytes")),
        "{err:?}"
    );
    assert_eq!(handler.calls.load(Ordering::SeqCst), 0);
    assert_eq!(
        invocation_subject("default", "callee", "a:b/c@1.0.0", "f"),
        "default.callee.wrpc.0.0.1.a:b/c@1.0.0.f"
    );
}

/// Every message on the lattice's wRPC inboxes, from a connection of its own.
async fn watch_inboxes(lattice: &str) -> async_nats::Subscriber {
    let spy = connect().await;
    let sub = spy
        .subscribe(format!(
            "{}.>",
            trellis_lattice::wrpc::inbox_prefix(lattice)
        ))
        .await
        .expect("subscribe");
    spy.flush().await.expect("flush");
    sub
}

/// The messages `sub` has seen until it has been quiet for a while.
async fn drain(sub: &mut async_nats::Subscriber) -> Vec<async_nats::Message> {
    use futures::StreamExt as _;
    let mut seen = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        seen.push(msg);
    }
    seen
}

#[tokio::test]
async fn between_trellis_hosts_a_call_is_one_message_each_way() {
    let nats = connect().await;
    let lattice = lattice();
    let handler = Arc::new(Reverse {
        calls: AtomicUsize::new(0),
    });
    let _serving = serve(
        nats.clone(),
        &lattice,
        "callee",
        handler,
        CallLimits::default(),
    )
    .await
    .expect("serve");
    let client = WrpcClient::new(connect().await, &lattice)
        .await
        .expect("client");
    let mut inboxes = watch_inboxes(&lattice).await;

    let out = client
        .invoke(
            &invocation("callee", "reverse"),
            &frame(b"abc"),
            framed_complete,
            CallLimits::default(),
        )
        .await
        .expect("call");
    assert_eq!(out, frame(b"cba"));
    let seen = drain(&mut inboxes).await;
    assert_eq!(seen.len(), 1, "no handshake, no end message: {seen:?}");
    assert!(seen[0].subject.as_str().ends_with(".results"));
    assert_eq!(
        seen[0]
            .headers
            .as_ref()
            .and_then(|h| h.get(trellis_lattice::wrpc::FAST_PATH_HEADER))
            .map(|v| v.as_str()),
        Some("end")
    );

    // Arguments larger than one message need the handshake: the standard exchange, which
    // ends the results with an empty message.
    let max = nats.server_info().max_payload;
    let big: Vec<u8> = (0..max + 10).map(|i| (i % 7) as u8).collect();
    let out = client
        .invoke(
            &invocation("callee", "reverse"),
            &frame(&big),
            framed_complete,
            CallLimits::default(),
        )
        .await
        .expect("big call");
    let mut expected = big;
    expected.reverse();
    assert!(
        out == frame(&expected),
        "the reversed bytes came back intact"
    );
    let seen = drain(&mut inboxes).await;
    let handshakes = seen
        .iter()
        .filter(|m| {
            !m.subject.as_str().ends_with(".results") && !m.subject.as_str().ends_with(".params")
        })
        .count();
    assert_eq!(handshakes, 1, "one handshake");
    let last = seen
        .iter()
        .rfind(|m| m.subject.as_str().ends_with(".results"))
        .expect("results");
    assert!(
        last.payload.is_empty(),
        "the results end with an empty message"
    );
}

#[tokio::test]
async fn concurrent_calls_on_one_client_each_get_their_own_results() {
    let lattice = lattice();
    let handler = Arc::new(Reverse {
        calls: AtomicUsize::new(0),
    });
    let _serving = serve(
        connect().await,
        &lattice,
        "callee",
        handler.clone(),
        CallLimits::default(),
    )
    .await
    .expect("serve");
    let client = WrpcClient::new(connect().await, &lattice)
        .await
        .expect("client");
    let calls = (0..32u32).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            let body: Vec<u8> = format!("call {i} ").repeat(i as usize + 1).into_bytes();
            let out = client
                .invoke(
                    &invocation("callee", "reverse"),
                    &frame(&body),
                    framed_complete,
                    CallLimits::default(),
                )
                .await
                .expect("call");
            let mut expected = body;
            expected.reverse();
            assert_eq!(out, frame(&expected), "call {i}");
        })
    });
    for call in futures::future::join_all(calls).await {
        call.expect("task");
    }
    assert_eq!(handler.calls.load(Ordering::SeqCst), 32);
}
