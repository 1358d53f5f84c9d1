//! In-process cost of one HTTP request: prepared component → fresh store and instance →
//! `wasi:http/incoming-handler.handle` → response body collected. No sockets, no hyper server:
//! this is the part of a request that Trellis adds on top of the network.
//!
//! Run with `cargo bench -p trellis-runtime --bench instantiate` (part of `bench/run`).

#![allow(missing_docs)]

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Empty};
use std::collections::BTreeMap;
use std::sync::Arc;
use trellis_control::ComponentId;
use trellis_runtime::{InstanceContext, Limits, Runtime, WasiHttpError};

fn handle_request(c: &mut Criterion) {
    // Slots reset in place (the default) and handed back to the kernel (as before), on a
    // runtime with worker threads (criterion waits on another thread than the one the guest
    // runs on: a handoff each way) and on one thread (the request's own cost).
    for (keep, keep_name) in [
        (
            Limits::default().memory_keep_resident_bytes,
            "slots kept resident",
        ),
        (0, "slots released"),
    ] {
        for (threads, threads_name) in [(true, "worker threads"), (false, "one thread")] {
            let rt = if threads {
                tokio::runtime::Builder::new_multi_thread()
            } else {
                tokio::runtime::Builder::new_current_thread()
            }
            .enable_all()
            .build()
            .expect("tokio");
            bench(
                c,
                &rt,
                Limits {
                    memory_keep_resident_bytes: keep,
                    ..Limits::default()
                },
                &format!(
                    "hello: instantiate + handle + collect body ({keep_name}, {threads_name})"
                ),
            );
        }
    }
}

fn bench(c: &mut Criterion, rt: &tokio::runtime::Runtime, limits: Limits, name: &str) {
    let runtime = Runtime::new(limits, None).expect("runtime");
    let id = ComponentId::new("hello");
    let wasm = trellis_test_support::guest("http_hello");
    let component = runtime.load_file(&id, &wasm).expect("load");
    let context = InstanceContext {
        component_id: id,
        config: Arc::new(BTreeMap::new()),
        secrets: Default::default(),
        links: Default::default(),
        calls: None,
        observer: None,
    };
    let http = runtime
        .prepare_http(&component, context, 64, None)
        .expect("prepare");

    c.bench_function(name, |b| {
        b.to_async(rt).iter(|| async {
            let request = http::Request::builder()
                .uri("http://localhost/")
                .body(Empty::<Bytes>::new().map_err(|never| -> WasiHttpError { match never {} }))
                .expect("request");
            let response = http.handle(request).await.expect("handled");
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            assert_eq!(&body[..], b"Hello from Trellis!\n");
        })
    });
}

criterion_group!(benches, handle_request);
criterion_main!(benches);
