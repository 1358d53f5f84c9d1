//! Measures calls to a component on another host against raw NATS request/reply, side by
//! side in one run. Used by `bench/run calls`; prints one JSON object.
//!
//! ```text
//! call_latency NATS_URL LATTICE TARGET_ID PAYLOAD_BYTES ITERATIONS CONCURRENCY
//! ```
//!
//! The target must run the `callee` test guest, whose `trellis:test/calls.echo` returns its
//! `list<u8>` argument. The raw baseline is an async-nats request to a responder in this
//! process (on its own connection) that answers with the request's payload: the same bytes
//! through the same `nats-server`, with no component and no wRPC framing.

use futures::StreamExt as _;
use std::time::{Duration, Instant};
use trellis_lattice::wrpc::{CallLimits, Invocation, WrpcClient};

/// The wRPC encoding of one `list<u8>`: LEB128 length, then the bytes.
fn encode_bytes(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 5);
    let mut n = payload.len() as u64;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(payload);
    out
}

/// Whether `bytes` hold a whole encoded `list<u8>`.
fn complete(bytes: &[u8]) -> bool {
    let (mut n, mut shift, mut i) = (0usize, 0, 0);
    while let Some(b) = bytes.get(i) {
        n |= usize::from(b & 0x7f) << shift;
        i += 1;
        if b & 0x80 == 0 {
            return bytes.len() >= i + n;
        }
        shift += 7;
    }
    false
}

fn summary(mut micros: Vec<f64>, wall: Duration) -> serde_json::Value {
    micros.sort_by(f64::total_cmp);
    let pct = |p: f64| micros[((micros.len() as f64 - 1.0) * p).round() as usize];
    serde_json::json!({
        "p50_us": pct(0.5),
        "p99_us": pct(0.99),
        "mean_us": micros.iter().sum::<f64>() / micros.len() as f64,
        "calls_per_s": micros.len() as f64 / wall.as_secs_f64(),
    })
}

/// Runs `call` `iterations` times on each of `concurrency` tasks; latencies in µs.
async fn measure<F, Fut>(iterations: usize, concurrency: usize, call: F) -> serde_json::Value
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(iterations);
            for _ in 0..iterations {
                let t = Instant::now();
                call().await;
                out.push(t.elapsed().as_secs_f64() * 1e6);
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    summary(all, start.elapsed())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, lattice, target, size, iterations, concurrency] = &args[..] else {
        eprintln!(
            "usage: call_latency NATS_URL LATTICE TARGET_ID PAYLOAD_BYTES ITERATIONS CONCURRENCY"
        );
        std::process::exit(2);
    };
    let size: usize = size.parse().expect("PAYLOAD_BYTES");
    let iterations: usize = iterations.parse().expect("ITERATIONS");
    let concurrency: usize = concurrency.parse().expect("CONCURRENCY");
    let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();

    // Raw baseline: a responder echoing the payload, on its own connection.
    let responder = async_nats::connect(url.as_str()).await.expect("connect");
    let subject = format!("bench.{}.echo", uuid::Uuid::new_v4().simple());
    let mut requests = responder
        .subscribe(subject.clone())
        .await
        .expect("subscribe");
    responder.flush().await.expect("flush");
    let echo = responder.clone();
    tokio::spawn(async move {
        while let Some(m) = requests.next().await {
            if let Some(reply) = m.reply {
                let _ = echo.publish(reply, m.payload).await;
            }
        }
    });
    let raw_client = async_nats::connect(url.as_str()).await.expect("connect");
    let body = bytes::Bytes::from(payload.clone());
    let raw_call = {
        let (client, subject, body) = (raw_client.clone(), subject.clone(), body.clone());
        move || {
            let (client, subject, body) = (client.clone(), subject.clone(), body.clone());
            async move {
                let reply = client
                    .request(subject, body.clone())
                    .await
                    .expect("request");
                assert_eq!(reply.payload.len(), body.len());
            }
        }
    };

    // The component call.
    let rpc = WrpcClient::new(
        async_nats::connect(url.as_str()).await.expect("connect"),
        lattice,
    )
    .await
    .expect("wRPC client");
    let params = std::sync::Arc::new(encode_bytes(&payload));
    let target: std::sync::Arc<str> = target.as_str().into();
    let wrpc_call = {
        move || {
            let (rpc, params, target) = (rpc.clone(), params.clone(), target.clone());
            async move {
                let invocation = Invocation {
                    target: &target,
                    instance: "trellis:test/calls@0.1.0",
                    function: "echo",
                    source: "bench",
                    link_name: "default",
                    traceparent: None,
                };
                let results = rpc
                    .invoke(&invocation, &params, complete, CallLimits::default())
                    .await
                    .expect("call");
                assert_eq!(results.len(), params.len());
            }
        }
    };

    // Warm up both paths (connections, compiled code, instance pool), then alternate rounds
    // so that both see the same machine.
    let warmup = (iterations / 10).max(10);
    measure(warmup, concurrency, raw_call.clone()).await;
    measure(warmup, concurrency, wrpc_call.clone()).await;
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let raw = measure(iterations, concurrency, raw_call.clone()).await;
        let call = measure(iterations, concurrency, wrpc_call.clone()).await;
        rounds.push(serde_json::json!({"raw": raw, "call": call}));
    }
    println!(
        "{}",
        serde_json::json!({"payload_bytes": size, "iterations": iterations, "concurrency": concurrency, "rounds": rounds})
    );
}
