//! Control and app API request decoding on any subject and body: the first line is the
//! operation (the subject after `wasmbus.ctl.v1.{lattice}.` or `wadm.api.{lattice}.model.`),
//! the rest the body. It must answer a request or an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (operation, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(operation) = std::str::from_utf8(operation) else {
        return;
    };
    if let Ok(request) = trellis_control::CtlRequest::parse(operation, body) {
        // What parses must also name its subject and body again.
        let _ = request.subject("fuzz");
        let _ = request.body();
    }
    let request = trellis_control::wadm::AppRequest::parse(operation, body);
    let _ = request.subject("fuzz");
});
