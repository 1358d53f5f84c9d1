//! wRPC value decoding, as a call from another host arrives: any bytes against the real
//! parameter and result types of a test component's exports (the first byte picks the
//! signature). The component is `TRELLIS_FUZZ_COMPONENT` (scripts/fuzz builds and sets it).
//! It must decode or refuse, never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use trellis_runtime::fuzzing::{decode_wrpc, wrpc_signatures};

static SIGNATURES: LazyLock<Vec<Vec<wasmtime::component::Type>>> = LazyLock::new(|| {
    let path = std::env::var("TRELLIS_FUZZ_COMPONENT")
        .expect("set TRELLIS_FUZZ_COMPONENT to a component with typed exports (scripts/fuzz does)");
    let wasm = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let signatures = wrpc_signatures(&wasm).expect("the component's types");
    assert!(!signatures.is_empty(), "{path} exports no function to fuzz");
    signatures
});

fuzz_target!(|data: &[u8]| {
    let Some((pick, bytes)) = data.split_first() else {
        return;
    };
    let types = &SIGNATURES[usize::from(*pick) % SIGNATURES.len()];
    let _ = decode_wrpc(bytes, types);
});
