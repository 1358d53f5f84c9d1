//! The web dashboard: one page that shows a lattice — hosts, components, providers, links,
//! apps and the live event stream — served by `trellis up` on its control endpoint and by
//! `trellis dashboard` for a lattice on NATS.
//!
//! The page is built from `dashboard/` (Vite + Preact) by `scripts/dashboard build` into
//! `crates/dashboard/assets/`, which is committed and embedded here ([`assets`]): building
//! Trellis needs no Node.js, and the page needs no internet.
//!
//! [`Dashboard`] is an [`IncomingHandler`] that serves the page and a read-only JSON API:
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /`, `/assets/…` | the page (no token: nothing in it is secret) |
//! | `GET /api/snapshot` | a [`Snapshot`] of the lattice, built through a [`CtlClient`] |
//! | `GET /api/events` | every CloudEvent from then on, one JSON line each |
//!
//! Both API routes need `Authorization: Bearer TOKEN`. The page gets the token from the
//! address the CLI prints (`http://127.0.0.1:PORT/#token=TOKEN`: a fragment never reaches a
//! server) and sends it as a header, never a cookie, so another site the browser visits
//! cannot make authenticated requests (nor can a DNS-rebound name). Nothing the dashboard
//! does changes the lattice: it only sends control requests that read.
//!
//! One code path serves both modes: the [`CtlClient`] speaks NATS for a lattice, or the
//! embedded host's own admin endpoint over loopback for `trellis up`.
//!
//! ```no_run
//! # async fn run() {
//! use std::sync::Arc;
//! // The embedded host of a `trellis up` on this machine (a lattice: `CtlClient::new(nats, …)`).
//! let client = trellis_lattice::client::CtlClient::embedded("http://127.0.0.1:7373")
//!     .with_token(Some("its-token".to_owned()));
//! let dashboard = trellis_dashboard::Dashboard::new(client, "default", "a-new-token".to_owned());
//! let listener = trellis_http_server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
//! let handler: Arc<dyn trellis_http_server::IncomingHandler> = dashboard.clone();
//! trellis_http_server::serve(listener, "dashboard".into(), handler, Default::default(), async {
//!     let _ = tokio::signal::ctrl_c().await;
//!     dashboard.close_streams();
//! })
//! .await;
//! # }
//! ```

pub mod assets;
mod snapshot;

pub use snapshot::{AppView, HostView, Snapshot};

use bytes::Bytes;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use std::sync::Arc;
use tokio::sync::watch;
use trellis_http_server::{BoxError, IncomingHandler, RequestBody, ResponseBody, text_response};
use trellis_lattice::client::CtlClient;

/// Serves the dashboard page and its API for one lattice.
pub struct Dashboard {
    client: CtlClient,
    lattice: String,
    /// What `Authorization: Bearer …` must say on `/api/` requests.
    token: String,
    /// Set by [`Dashboard::close_streams`]: event streams end, so a server can drain.
    closed: watch::Sender<bool>,
}

impl Dashboard {
    /// A dashboard that reads `lattice` through `client` and answers API requests that
    /// carry `token`.
    pub fn new(client: CtlClient, lattice: impl Into<String>, token: String) -> Arc<Self> {
        Arc::new(Self {
            client,
            lattice: lattice.into(),
            token,
            closed: watch::channel(false).0,
        })
    }

    /// Whether `path` is the dashboard's (the page, its assets, its API): for a server
    /// that shares its listener with other routes, such as the embedded control endpoint.
    pub fn serves(path: &str) -> bool {
        path == "/" || path.starts_with("/api/") || assets::find(path).is_some()
    }

    /// Ends every open event stream, now and for streams opened later: call it when the
    /// server begins to shut down, or its drain waits for the pages still open.
    pub fn close_streams(&self) {
        let _ = self.closed.send(true);
    }

    /// Whether `request` carries the token (compared in constant time).
    fn authorized(&self, request: &Request<RequestBody>) -> bool {
        trellis_http_server::bearer_matches(request, &self.token)
    }
}

impl IncomingHandler for Dashboard {
    fn handle(
        &self,
        _target: Arc<str>,
        request: Request<RequestBody>,
    ) -> BoxFuture<'static, Response<ResponseBody>> {
        let path = request.uri().path().to_owned();
        if request.method() != Method::GET {
            let answer = text_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "the dashboard only reads: use GET\n",
            );
            return Box::pin(async move { answer });
        }
        if !path.starts_with("/api/") {
            let answer = match assets::find(&path) {
                Some(asset) => asset_response(asset),
                None => text_response(
                    StatusCode::NOT_FOUND,
                    format!("no such page: {path}; the dashboard is at /\n"),
                ),
            };
            return Box::pin(async move { answer });
        }
        if !self.authorized(&request) {
            let answer = text_response(
                StatusCode::UNAUTHORIZED,
                "the dashboard's API needs its token (Authorization: Bearer TOKEN): open the address `trellis up` or `trellis dashboard` printed, which ends in #token=TOKEN\n",
            );
            return Box::pin(async move { answer });
        }
        let client = self.client.clone();
        let lattice = self.lattice.clone();
        let closed = self.closed.subscribe();
        Box::pin(async move {
            match path.as_str() {
                "/api/snapshot" => {
                    let snapshot = Snapshot::gather(&client, &lattice).await;
                    match serde_json::to_vec(&snapshot) {
                        Ok(json) => no_cache(bytes_response(json.into(), "application/json")),
                        Err(e) => text_response(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            format!("cannot encode the snapshot: {e}\n"),
                        ),
                    }
                }
                "/api/events" => events_response(&client, closed).await,
                _ => text_response(
                    StatusCode::NOT_FOUND,
                    format!("no such API: {path}; there are /api/snapshot and /api/events\n"),
                ),
            }
        })
    }
}

/// The lattice's events from now on, one JSON line each, until the source ends (an
/// embedded host stopped) or [`Dashboard::close_streams`]. The subscription is made before
/// the response head goes out, so the page misses nothing published after it has it.
async fn events_response(
    client: &CtlClient,
    mut closed: watch::Receiver<bool>,
) -> Response<ResponseBody> {
    let events = match client.events().await {
        Ok(events) => events,
        Err(e) => {
            return text_response(
                StatusCode::BAD_GATEWAY,
                format!("cannot follow the lattice's events: {e}\n"),
            );
        }
    };
    let lines = events
        .filter_map(|event| async move {
            match serde_json::to_vec(&event) {
                Ok(mut line) => {
                    line.push(b'\n');
                    Some(Ok::<_, BoxError>(Frame::data(Bytes::from(line))))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot encode an event for the dashboard");
                    None
                }
            }
        })
        .take_until(async move {
            let _ = closed.wait_for(|closed| *closed).await;
        });
    let mut response = no_cache(Response::new(StreamBody::new(lines).boxed_unsync()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

fn asset_response(asset: &assets::Asset) -> Response<ResponseBody> {
    let mut response = no_cache(bytes_response(
        Bytes::from_static(asset.bytes),
        asset.content_type,
    ));
    let headers = response.headers_mut();
    // The page loads only its own script and stylesheet and talks only to its own origin;
    // nothing may frame it.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn bytes_response(body: Bytes, content_type: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(
        http_body_util::Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Assets keep fixed names across versions (the build must be reproducible), and the API
/// is live: a browser must ask again every time.
fn no_cache(mut response: Response<ResponseBody>) -> Response<ResponseBody> {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dashboard whose control endpoint is a closed port: enough for everything that is
    /// answered before the lattice is asked, and for a lattice that cannot be reached.
    fn dashboard() -> Arc<Dashboard> {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", closed.local_addr().expect("address"));
        drop(closed);
        Dashboard::new(CtlClient::embedded(base), "default", "s3cret".to_owned())
    }

    async fn get(
        dashboard: &Dashboard,
        path: &str,
        token: Option<&str>,
    ) -> (StatusCode, http::HeaderMap, String) {
        let mut request = Request::get(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(
                http_body_util::Empty::new()
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .expect("request");
        let response = dashboard.handle("dashboard".into(), request).await;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    #[tokio::test]
    async fn the_page_needs_no_token() {
        let dashboard = dashboard();
        let (status, headers, body) = get(&dashboard, "/", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("<title>Trellis dashboard</title>"), "{body}");
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
        let (status, headers, _) = get(&dashboard, "/assets/dashboard.js", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
    }

    #[tokio::test]
    async fn the_api_refuses_requests_without_the_token() {
        let dashboard = dashboard();
        for token in [None, Some("wrong"), Some("s3cre"), Some("s3cret2")] {
            for path in ["/api/snapshot", "/api/events", "/api/nothing"] {
                let (status, _, body) = get(&dashboard, path, token).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} with {token:?}");
                assert!(body.contains("#token="), "{body}");
            }
        }
    }

    #[tokio::test]
    async fn unknown_paths_are_not_found() {
        let dashboard = dashboard();
        let (status, _, body) = get(&dashboard, "/v2/nothing", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, _, body) = get(&dashboard, "/api/nothing", Some("s3cret")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(body.contains("/api/snapshot"), "{body}");
    }

    #[tokio::test]
    async fn only_get_is_answered() {
        let dashboard = dashboard();
        let request = Request::post("/api/snapshot")
            .header(header::AUTHORIZATION, "Bearer s3cret")
            .body(
                http_body_util::Empty::new()
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .expect("request");
        let response = dashboard.handle("dashboard".into(), request).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    /// The lattice cannot be reached: the snapshot still answers, and says why it is empty.
    #[tokio::test]
    async fn an_unreachable_lattice_is_a_problem_in_the_snapshot() {
        let dashboard = dashboard();
        let (status, _, body) = get(&dashboard, "/api/snapshot", Some("s3cret")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let snapshot: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(snapshot["hosts"], serde_json::json!([]));
        let problems = snapshot["problems"].to_string();
        assert!(problems.contains("cannot list the hosts"), "{problems}");
        assert!(
            problems.contains("cannot reach the embedded host"),
            "{problems}"
        );
        let (status, _, body) = get(&dashboard, "/api/events", Some("s3cret")).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    }

    #[test]
    fn serves_names_the_dashboards_routes_only() {
        for path in ["/", "/index.html", "/assets/dashboard.js", "/api/snapshot"] {
            assert!(Dashboard::serves(path), "{path}");
        }
        for path in [
            "/v1/ctl/host.ping",
            "/v1/events",
            "/favicon.ico",
            "/assets/x.js",
        ] {
            assert!(!Dashboard::serves(path), "{path}");
        }
    }
}
