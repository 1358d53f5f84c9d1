//! Trellis's calls between hosts against plain wRPC peers built on the published
//! `wrpc-transport-nats` crate, both ways, each on a `nats-server` of its own.

use futures::StreamExt as _;
use futures::future::BoxFuture;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use trellis_conformance::{HostProcess, NatsServer, trellis_bin, unique_lattice};
use trellis_lattice::wrpc::{
    CallLimits, FAST_PATH_HEADER, HandlerError, Incoming, Invocation, WrpcClient, WrpcHandler,
    serve,
};
use wrpc_transport::{Invoke as _, Serve as _};

/// The interface of the `callee` test guest, which the in-process peers mimic.
const INSTANCE: &str = "trellis:test/calls@0.1.0";

/// The wRPC encoding of one `list<u8>` (or `string`): LEB128 length, then the bytes.
fn encode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 5);
    let mut n = bytes.len();
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            break;
        }
        out.push(low | 0x80);
    }
    out.extend_from_slice(bytes);
    out
}

/// The length an encoded `list<u8>` announces and where its bytes start, once the length is
/// all there.
fn header(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut n = 0usize;
    for (i, b) in bytes.iter().enumerate().take(5) {
        n |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((n, i + 1));
        }
    }
    None
}

/// Whether `bytes` hold exactly one encoded `list<u8>`.
fn complete(bytes: &[u8]) -> bool {
    header(bytes).is_some_and(|(n, at)| bytes.len() >= at + n)
}

/// A payload of `len` bytes that is not all the same byte.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Reads one encoded `list<u8>` from a plain wRPC stream, as a wRPC value decoder does:
/// exactly its bytes, not to the end of the stream.
async fn read_list(incoming: &mut (impl tokio::io::AsyncRead + Unpin)) -> Vec<u8> {
    let mut n = 0usize;
    for shift in (0..35).step_by(7) {
        let b = incoming.read_u8().await.expect("length byte");
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
    }
    let mut out = vec![0; n];
    incoming.read_exact(&mut out).await.expect("list bytes");
    out
}

/// A plain wRPC call of `echo(list<u8>) -> list<u8>` through the published client: the
/// arguments in the first message and, after the callee's handshake, the rest; the results
/// read to the empty message that ends them.
/// Errors come as text: the published crates return `anyhow` errors.
async fn plain_echo(client: &wrpc_transport_nats::Client, data: &[u8]) -> Result<Vec<u8>, String> {
    let paths: [Box<[Option<usize>]>; 0] = [];
    let (mut outgoing, mut incoming) = client
        .invoke(None, INSTANCE, "echo", encode(data).into(), paths)
        .await
        .map_err(|e| format!("invoke: {e:#}"))?;
    outgoing
        .shutdown()
        .await
        .map_err(|e| format!("sending the arguments: {e}"))?;
    let mut results = Vec::new();
    incoming
        .read_to_end(&mut results)
        .await
        .map_err(|e| format!("reading the results: {e}"))?;
    Ok(results)
}

/// A Trellis callee in process that answers `echo` with its argument.
struct Echo;

impl WrpcHandler for Echo {
    fn params_complete(
        &self,
        instance: &str,
        function: &str,
        bytes: &[u8],
    ) -> Result<bool, HandlerError> {
        if instance != INSTANCE || function != "echo" {
            return Err(HandlerError::Refused(
                format!("no function {instance}.{function}").into(),
            ));
        }
        Ok(complete(bytes))
    }

    fn call(&self, call: Incoming) -> BoxFuture<'static, Result<Vec<u8>, HandlerError>> {
        Box::pin(async move { Ok(call.params) })
    }
}

#[tokio::test]
async fn a_plain_wrpc_client_calls_a_trellis_callee() {
    let nats = NatsServer::start();
    let lattice = unique_lattice("plain-to-trellis");
    let conn = async_nats::connect(nats.url()).await.expect("connect");
    let max = conn.server_info().max_payload;
    let _serving = serve(
        conn,
        &lattice,
        "callee",
        Arc::new(Echo),
        CallLimits::default(),
    )
    .await
    .expect("serve");

    let plain = wrpc_transport_nats::Client::new(
        async_nats_wrpc::connect(nats.url()).await.expect("connect"),
        format!("{lattice}.callee"),
        None,
    )
    .await
    .expect("wRPC client");
    for len in [0, 16, 3 * max] {
        let data = payload(len);
        let results = plain_echo(&plain, &data).await.expect("call");
        assert!(
            results == encode(&data),
            "{len} bytes came back intact ({} bytes of results)",
            results.len()
        );
    }
}

/// A plain wRPC server, through the published crate, answering `echo` on `lattice.callee`;
/// every call's headers are sent on `seen`.
async fn plain_server(
    url: &str,
    lattice: &str,
    seen: tokio::sync::mpsc::UnboundedSender<Option<async_nats_wrpc::HeaderMap>>,
) -> tokio::task::JoinHandle<()> {
    let server = wrpc_transport_nats::Client::new(
        async_nats_wrpc::connect(url).await.expect("connect"),
        format!("{lattice}.callee"),
        Some("plain".into()),
    )
    .await
    .expect("wRPC server");
    let paths: [Box<[Option<usize>]>; 0] = [];
    let mut calls = server
        .serve(INSTANCE, "echo", paths)
        .await
        .expect("serve")
        .boxed();
    tokio::spawn(async move {
        while let Some(call) = calls.next().await {
            let (cx, mut outgoing, mut incoming) = call.expect("an accepted call");
            let _ = seen.send(cx.headers);
            let data = read_list(&mut incoming).await;
            outgoing.write_all(&encode(&data)).await.expect("results");
            outgoing.shutdown().await.expect("end of results");
        }
    })
}

#[tokio::test]
async fn a_trellis_client_calls_a_plain_wrpc_server() {
    let nats = NatsServer::start();
    let lattice = unique_lattice("trellis-to-plain");
    let (seen, mut headers) = tokio::sync::mpsc::unbounded_channel();
    let server = plain_server(&nats.url(), &lattice, seen).await;

    let conn = async_nats::connect(nats.url()).await.expect("connect");
    let max = conn.server_info().max_payload;
    let client = WrpcClient::new(conn, &lattice).await.expect("client");
    let invocation = Invocation {
        target: "callee",
        instance: INSTANCE,
        function: "echo",
        source: "caller",
        link_name: "default",
        traceparent: None,
    };
    for len in [0, 16, 3 * max] {
        let data = payload(len);
        let results = client
            .invoke(&invocation, &encode(&data), complete, CallLimits::default())
            .await
            .expect("call");
        assert!(
            results == encode(&data),
            "{len} bytes came back intact ({} bytes of results)",
            results.len()
        );
        // The server saw the fast path offered on calls whose arguments fit in one
        // message, ignored it, and answered the standard way, which the client took.
        let headers = headers.recv().await.expect("a call").expect("headers");
        assert_eq!(headers.get("source-id").map(|v| v.as_str()), Some("caller"));
        assert_eq!(
            headers.get(FAST_PATH_HEADER).is_some(),
            len < max,
            "fast path offered for {len} bytes"
        );
    }
    server.abort();
}

/// A plain wRPC client calls the `callee` test guest on a real `trellis host`: the component's
/// `echo(list<u8>)` and `greet(string)`, small and larger than one NATS message.
#[tokio::test]
async fn a_plain_wrpc_client_calls_a_component_on_a_trellis_host() {
    let nats = NatsServer::start();
    let lattice = unique_lattice("plain-to-host");
    let _host = HostProcess::start(&nats.url(), &lattice, &[]);
    let callee = trellis_test_support::guest("callee");
    let out = Command::new(trellis_bin())
        .args([
            "start",
            "component",
            &format!("file://{}", callee.display()),
            "callee",
            "--nats",
            &nats.url(),
            "--lattice",
            &lattice,
        ])
        .output()
        .expect("run trellis start component");
    assert!(
        out.status.success(),
        "trellis start component: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let plain = wrpc_transport_nats::Client::new(
        async_nats_wrpc::connect(nats.url()).await.expect("connect"),
        format!("{lattice}.callee"),
        None,
    )
    .await
    .expect("wRPC client");
    // The component starts in the background: calls fail (no responders) until it serves.
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        match plain_echo(&plain, b"hello").await {
            Ok(results) => break results,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the component never answered: {e}"),
        }
    };
    assert_eq!(first, encode(b"hello"));

    let max = async_nats::connect(nats.url())
        .await
        .expect("connect")
        .server_info()
        .max_payload;
    for len in [0, 65_536, max + max / 2] {
        let data = payload(len);
        let results = plain_echo(&plain, &data).await.expect("call");
        assert!(
            results == encode(&data),
            "{len} bytes came back intact ({} bytes of results)",
            results.len()
        );
    }

    // A string argument and result.
    let paths: [Box<[Option<usize>]>; 0] = [];
    let (mut outgoing, mut incoming) = plain
        .invoke(None, INSTANCE, "greet", encode(b"Ada").into(), paths)
        .await
        .expect("invoke greet");
    outgoing.shutdown().await.expect("arguments");
    let mut results = Vec::new();
    incoming.read_to_end(&mut results).await.expect("results");
    assert_eq!(results, encode(b"hello Ada from callee"));
}
