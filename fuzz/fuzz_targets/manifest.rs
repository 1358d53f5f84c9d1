//! Manifest parsing on any text: it must answer `Ok` or an error, never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = trellis_manifest::parse(text, std::path::Path::new("/fuzz/app.yaml"));
    }
});
