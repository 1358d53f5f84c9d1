//! Compile time of one component with the optimising compiler (Cranelift, what hosts use)
//! and the baseline compiler (Winch, what `trellis dev` uses), side by side.
//!
//! `TRELLIS_BENCH_COMPONENT=path/to/component.wasm cargo bench -p trellis-runtime --bench
//! compile` (`bench/run dev` passes a 15 MB componentize-py component); without it, the
//! hello test component.

#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use trellis_control::ComponentId;
use trellis_runtime::{Compiler, Limits, Runtime};

fn compile(c: &mut Criterion) {
    let path = std::env::var_os("TRELLIS_BENCH_COMPONENT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| trellis_test_support::guest("http_hello"));
    let bytes = std::fs::read(&path).expect("read the component");
    let mut group = c.benchmark_group(format!(
        "compile {} ({:.1} MB)",
        path.file_name().unwrap_or_default().to_string_lossy(),
        bytes.len() as f64 / 1e6
    ));
    group.sample_size(10);
    for (name, compiler) in [
        ("optimizing (cranelift)", Compiler::Optimizing),
        ("baseline (winch)", Compiler::Baseline),
    ] {
        // No cache: every iteration compiles.
        let runtime = Runtime::with_compiler(Limits::default(), None, compiler).expect("runtime");
        let mut n = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                // A new id each time, and new bytes: the runtime keeps compiled components
                // by content hash, so identical bytes would not compile again.
                n += 1;
                let mut unique = bytes.clone();
                append_custom_section(&mut unique, n);
                runtime
                    .load_bytes(&ComponentId::new("bench"), &path, &unique)
                    .expect("compile")
            })
        });
    }
    group.finish();
}

/// Appends a custom section (ignored by the compiler) that makes the bytes unique.
fn append_custom_section(bytes: &mut Vec<u8>, n: u64) {
    let name = b"trellis-bench";
    let payload = n.to_le_bytes();
    let size = 1 + name.len() + payload.len();
    bytes.push(0); // custom section id
    bytes.push(size as u8); // LEB128, < 128
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(&payload);
}

criterion_group!(benches, compile);
criterion_main!(benches);
