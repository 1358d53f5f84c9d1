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
