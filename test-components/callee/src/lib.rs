//! A guest that exports `trellis:test/calls` and nothing else a host would call on its own (no
//! `wasi:http/incoming-handler`), so integration tests can call it from another component
//! (the `caller` guest) and check what crosses the boundary.
//!
//! | function        | behaviour                                                              |
//! |-----------------|------------------------------------------------------------------------|
//! | `greet(name)`   | `hello NAME from WHO`; WHO is the config key `who`, else `callee`      |
//! | `echo(data)`    | returns `data`                                                         |
//! | `roundtrip(v)`  | returns `v`                                                            |
//! | `fail(reason)`  | panics with `reason`, which traps                                      |
//! | `spin(ms)`      | busy-waits `ms` milliseconds on the monotonic clock, then returns      |
//! | `divide(a, b)`  | `ok(a / b)`, `err("division by zero")`, or `err("overflow")` for `i32::MIN / -1` |

use std::time::{Duration, Instant};

mod bindings {
    wit_bindgen::generate!({
        path: ["../../wit/config", "wit"],
        world: "trellis-test:callee/callee",
        // Both interfaces live in other packages; generate them rather than map them.
        generate_all,
    });
}

use bindings::exports::trellis::test::calls::{Everything, Guest};
use bindings::wasi::config::runtime as config;

/// Who greets when the config sets no `who`.
const DEFAULT_WHO: &str = "callee";

struct Callee;

impl Guest for Callee {
    fn greet(name: String) -> String {
        // A config error counts as "not set": the greeting is what the tests look at.
        let who = config::get("who")
            .ok()
            .flatten()
            .unwrap_or_else(|| DEFAULT_WHO.to_string());
        // A line on stdout, which the host keeps for `trellis logs` (tests/logs.rs).
        println!("greeting {name}");
        format!("hello {name} from {who}")
    }

    fn echo(data: Vec<u8>) -> Vec<u8> {
        data
    }

    fn roundtrip(v: Everything) -> Everything {
        v
    }

    fn fail(reason: String) {
        panic!("{reason}");
    }

    fn spin(ms: u32) {
        // On wasm32-wasip2 `Instant::now` reads wasi:clocks/monotonic-clock, so this loop keeps
        // the instance busy (and its fuel or epoch deadline running) instead of sleeping.
        let deadline = Instant::now() + Duration::from_millis(u64::from(ms));
        while Instant::now() < deadline {
            std::hint::spin_loop();
        }
    }

    fn divide(a: i32, b: i32) -> Result<i32, String> {
        match (a.checked_div(b), b) {
            (Some(quotient), _) => Ok(quotient),
            (None, 0) => Err("division by zero".to_string()),
            // The only other way `checked_div` fails: the quotient does not fit an i32.
            (None, _) => Err("overflow".to_string()),
        }
    }
}

bindings::export!(Callee with_types_in bindings);
