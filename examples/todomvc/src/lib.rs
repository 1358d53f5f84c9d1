//! TodoMVC as one component: it serves the TodoMVC front end (the files in `../assets`,
//! embedded at build time) and the JSON API the front end talks to, with the todos kept in a
//! `wasi:keyvalue` bucket.
//!
//! | path | what |
//! | --- | --- |
//! | `/`, `/index.html`, `/app.js`, `/app.css` | the front end ([`assets`]) |
//! | `/api/todos`, `/api/todos/{id}` | the JSON API ([`api`], which lists the routes) |
//! | anything else | `404` |
//!
//! Modules, bottom-up: [`http`] reads requests and writes responses, [`store`] keeps the todos
//! in key-value (and says why its layout survives concurrent requests), [`api`] validates
//! input and maps each route to the store, [`assets`] serves the embedded files.
//!
//! `app.yaml` beside this crate deploys it with Trellis's built-in durable store and
//! `redis.yaml` with Redis; README.md says how to build and run it.

mod api;
mod assets;
mod http;
mod store;

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, ResponseOutparam};

mod bindings {
    // Only the key-value and config imports are generated here; the HTTP types come from the
    // `wasi` crate.
    wit_bindgen::generate!({
        path: ["../../wit/keyvalue", "../../wit/config", "wit"],
        world: "trellis-example:todomvc/todomvc",
        generate_all,
    });
}

struct TodoMvc;

impl Guest for TodoMvc {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let request = http::Request::new(request);
        let reply = if let Some(rest) = request.path.strip_prefix(api::PREFIX) {
            // `/api/todos`, `/api/todos/` and `/api/todos/{id}`, but not `/api/todosx`.
            match rest {
                "" | "/" => api::collection(request),
                _ => match rest.strip_prefix('/') {
                    Some(id) => {
                        let id = id.to_owned();
                        api::item(request, &id)
                    }
                    None => assets::not_found(&request.path),
                },
            }
        } else if request.path == "/api" || request.path.starts_with("/api/") {
            http::Reply::error(
                404,
                format!("no API at {}; the API is under /api/todos", request.path),
            )
        } else {
            assets::serve(&request)
        };
        http::send(response_out, reply);
    }
}

wasi::http::proxy::export!(TodoMvc);
