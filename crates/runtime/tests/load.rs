//! Loading components: validation, the in-memory dedupe and the on-disk compile cache.

use std::path::Path;
use trellis_control::ComponentId;
use trellis_runtime::{Limits, LoadError, Runtime};

fn small_limits() -> Limits {
    Limits {
        max_total_instances: 4,
        ..Limits::default()
    }
}

#[test]
fn identical_components_compile_once_per_process() {
    let runtime = Runtime::new(small_limits(), None).expect("runtime");
    let wasm = trellis_test_support::guest("http_hello");
    let first = runtime
        .load_file(&ComponentId::new("a"), &wasm)
        .expect("load a");
    let second = runtime
        .load_file(&ComponentId::new("b"), &wasm)
        .expect("load b");
    assert!(!first.from_cache(), "the first copy is compiled");
    assert!(
        second.from_cache(),
        "the second copy reuses the compiled image"
    );
    assert_eq!(second.id(), &ComponentId::new("b"));
    assert!(second.exports_interface("wasi", "http", "incoming-handler"));
}

#[test]
fn a_corrupt_cache_entry_is_recompiled_and_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = trellis_test_support::guest("http_hello");
    let bytes = std::fs::read(&wasm).expect("read");
    let entry = {
        let runtime = Runtime::new(small_limits(), Some(dir.path())).expect("runtime");
        runtime
            .load_bytes(&ComponentId::new("a"), &wasm, &bytes)
            .expect("load");
        runtime.cache().expect("cache").entry_path(&bytes)
    };
    assert!(entry.exists());
    std::fs::write(&entry, b"not a compiled component").expect("corrupt it");

    let runtime = Runtime::new(small_limits(), Some(dir.path())).expect("runtime");
    let loaded = runtime
        .load_bytes(&ComponentId::new("a"), &wasm, &bytes)
        .expect("recompiles");
    assert!(!loaded.from_cache());
    assert_ne!(
        std::fs::read(&entry).expect("entry"),
        b"not a compiled component",
        "entry rewritten"
    );

    let runtime = Runtime::new(small_limits(), Some(dir.path())).expect("runtime");
    assert!(
        runtime
            .load_bytes(&ComponentId::new("a"), &wasm, &bytes)
            .expect("load")
            .from_cache()
    );
}

#[test]
fn non_components_are_refused_with_what_to_do() {
    let runtime = Runtime::new(small_limits(), None).expect("runtime");
    let id = ComponentId::new("x");
    let err = runtime
        .load_bytes(&id, Path::new("x.wasm"), b"\0asm\x01\0\0\0")
        .expect_err("core module");
    assert!(matches!(err, LoadError::CoreModule { .. }), "{err}");
    let err = runtime
        .load_bytes(&id, Path::new("x.wasm"), b"hello")
        .expect_err("not wasm");
    assert!(err.to_string().contains("not a WebAssembly file"), "{err}");
    let err = runtime
        .load_bytes(&id, Path::new("x.wasm"), b"\0asm\x0d\0\x01\0garbage")
        .expect_err("invalid");
    assert!(matches!(err, LoadError::Invalid { .. }), "{err}");
}
