//! A WASI 0.3 HTTP component (`wasi:http/handler@0.3.0`, built with the `wasip3` crate): one
//! instance may serve several requests at once, and one after the other.
//!
//! Routes:
//! - `/` answers `hello from WASI 0.3`.
//! - `/count` adds one to a counter kept in guest memory and answers it: it passes 1 only
//!   when the instance is reused.
//! - `/instance` answers a number drawn once per instance, so a test can count instances.
//! - `/sleep/<ms>` waits that long on `wasi:clocks` (an async import: other requests on the
//!   same instance go on meanwhile) and answers `slept <ms> on <instance> with <n> in
//!   flight`, `n` counting the requests in `/sleep` of this instance when it started.
//! - `/echo/<text>` answers `<text>`.
//! - `/trap` panics; `/spin` loops forever (until the host's deadline).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use wasip3::http::types::{self, ErrorCode};
use wasip3::http_compat::{IncomingRequestBody, http_from_wasi_request, http_into_wasi_response};

wasip3::http::service::export!(HelloP3);

struct HelloP3;

static COUNT: AtomicU64 = AtomicU64::new(0);
static IN_FLIGHT: AtomicU64 = AtomicU64::new(0);
static INSTANCE: OnceLock<u64> = OnceLock::new();

fn instance() -> u64 {
    *INSTANCE.get_or_init(wasip3::random::random::get_random_u64)
}

impl wasip3::exports::http::handler::Guest for HelloP3 {
    async fn handle(request: types::Request) -> Result<types::Response, ErrorCode> {
        let request = http_from_wasi_request(request)?;
        let response = serve(request).await;
        http_into_wasi_response(response)
    }
}

async fn serve(request: http::Request<IncomingRequestBody>) -> http::Response<String> {
    let path = request.uri().path().to_owned();
    let body = match path.as_str() {
        "/" => "hello from WASI 0.3".to_owned(),
        "/count" => (COUNT.fetch_add(1, Ordering::SeqCst) + 1).to_string(),
        "/instance" => instance().to_string(),
        "/trap" => panic!("trap requested"),
        "/spin" => {
            #[allow(clippy::empty_loop)]
            loop {}
        }
        other => {
            if let Some(ms) = other.strip_prefix("/sleep/") {
                let Ok(ms) = ms.parse::<u64>() else {
                    return status(400, "/sleep/<milliseconds>");
                };
                let n = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
                wasip3::clocks::monotonic_clock::wait_for(ms.saturating_mul(1_000_000)).await;
                IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
                format!("slept {ms} on {} with {n} in flight", instance())
            } else if let Some(text) = other.strip_prefix("/echo/") {
                text.to_owned()
            } else {
                return status(404, "no such route");
            }
        }
    };
    http::Response::new(body)
}

fn status(code: u16, body: &str) -> http::Response<String> {
    let mut response = http::Response::new(body.to_owned());
    *response.status_mut() = http::StatusCode::from_u16(code).unwrap_or_default();
    response
}
