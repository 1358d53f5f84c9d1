//! The back half of the greeter example: a component with no HTTP handler at all. It exports
//! `example:greeter/greet` (see `wit/greeter.wit`), so only another component can call it; in
//! `app.yaml` that is `front`.
//!
//! `greet("Ada")` returns `Hello, Ada!`, and `greet("")` returns `Hello, world!`. When the
//! component's config sets `who`, the greeting ends with ` (from WHO)`.

mod bindings {
    // Generates the `Guest` trait for the `greet` export and the wasi:config import; `path`
    // says where the WIT of both packages is read from.
    wit_bindgen::generate!({
        path: ["../../../wit/config", "../wit"],
        world: "example:greeter/back",
        // wasi:config is another package; generate it rather than map it to a crate.
        generate_all,
    });
}

use bindings::exports::example::greeter::greet::Guest;
use bindings::wasi::config::runtime as config;

struct Back;

impl Guest for Back {
    fn greet(name: String) -> String {
        let name = if name.is_empty() { "world" } else { &name };
        // `who` comes from the manifest (`config` on the `back` component). A missing key, or
        // config that cannot be read, just leaves the suffix off.
        match config::get("who") {
            Ok(Some(who)) => format!("Hello, {name}! (from {who})"),
            _ => format!("Hello, {name}!"),
        }
    }
}

// Makes `Back` the implementation of the component's exports.
bindings::export!(Back with_types_in bindings);
