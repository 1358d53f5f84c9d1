//! The built-in HTTP server provider: the `wasmcloud:httpserver` / `ghcr.io/wasmcloud/http-server`
//! capability, in the host process.
//!
//! It accepts connections with hyper (HTTP/1.1, keep-alive, `TCP_NODELAY`), enforces the
//! protocol-level limits, and hands each request to an [`IncomingHandler`] together with the
//! id of the component the link targets. It knows nothing about WebAssembly: the host
//! implements [`IncomingHandler`] by invoking the component.
//!
//! Limits (each with a default in [`ServerLimits::default`] and a CLI flag):
//! - request body size: a declared `Content-Length` over the limit is refused with 413 before
//!   the component runs; a chunked body that grows past it fails the guest's read and the
//!   request is answered with 413;
//! - header read timeout: a client that does not finish sending its headers in time is
//!   disconnected, so slow clients cannot hold connections open.
//!
//! [`serve`] takes an already-bound listener and a shutdown future (as mini-redis does); on
//! shutdown it stops accepting, lets in-flight requests finish up to the drain timeout, and
//! returns.

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;

/// Boxed error type of request and response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of a request as handlers receive it.
pub type RequestBody = UnsyncBoxBody<Bytes, BoxError>;
/// The body of a response as handlers produce it.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// Invokes the component a link points at. Implemented by the host.
pub trait IncomingHandler: Send + Sync + 'static {
    /// Handles one request for `target` (a component id).
    fn handle(
        &self,
        target: Arc<str>,
        request: Request<RequestBody>,
    ) -> BoxFuture<'static, Response<ResponseBody>>;
}

/// Protocol-level limits of the server.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Largest request body accepted, in bytes.
    pub max_request_body_bytes: u64,
    /// How long a client may take to send its request headers.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers) accepted, in bytes; a larger one
    /// gets 431 Request Header Fields Too Large. At least 8 KiB (hyper's smallest buffer).
    pub max_header_bytes: usize,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub drain_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_request_body_bytes: 10 << 20,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 << 10,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// The smallest head limit hyper accepts ([`ServerLimits::max_header_bytes`] below it is
/// raised to it).
pub const MIN_HEADER_BYTES: usize = 8 << 10;

/// The error a request body yields once it has grown past the limit.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("request body is larger than the limit of {limit} bytes")]
pub struct BodyTooLarge {
    /// The limit, in bytes.
    pub limit: u64,
}

/// Binds a listener for `address`, with `SO_REUSEADDR` so a restarted host can bind again
/// while old connections linger in `TIME_WAIT`.
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    bind_with(address, false)
}

/// Like [`bind`]; with `reuse_port`, other sockets that also set `SO_REUSEPORT` (another
/// Trellis host on the same machine taking over a workload) may listen on the same address
/// at the same time, and the kernel spreads connections between them. A socket that did not
/// set it still makes the bind fail, as without it.
pub fn bind_with(address: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    #[cfg(not(unix))]
    let _ = reuse_port;
    socket.bind(address)?;
    socket.listen(1024)
}

/// How long connections accepted just before shutdown get to send their request.
const CLOSE_GRACE: Duration = Duration::from_millis(250);

/// Serves `target` on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    target: Arc<str>,
    handler: Arc<dyn IncomingHandler>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let limits = Arc::new(limits);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut closing = false;
    loop {
        let (stream, peer) = if closing {
            // Connections the kernel already queued on this socket would be reset when it
            // closes: take them all first (another socket sharing the address with
            // SO_REUSEPORT keeps accepting new ones).
            match std::future::poll_fn(|cx| match listener.poll_accept(cx) {
                Poll::Pending => Poll::Ready(None),
                Poll::Ready(r) => Poll::Ready(Some(r)),
            })
            .await
            {
                Some(Ok(conn)) => conn,
                _ => break,
            }
        } else {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Usually EMFILE: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => {
                    closing = true;
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let service = RequestService {
            target: target.clone(),
            handler: handler.clone(),
            limits: limits.clone(),
        };
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            // A head that does not fit is answered 431 by hyper, without calling the handler.
            .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // A connection accepted a moment ago has not sent its request yet, and graceful
    // shutdown closes connections with no request in progress: give those a moment.
    tokio::time::sleep(CLOSE_GRACE.min(limits.drain_timeout)).await;
    tokio::select! {
        () = graceful.shutdown() => tracing::debug!(%target, "all connections drained"),
        () = tokio::time::sleep(limits.drain_timeout) => {
            tracing::warn!(%target, timeout = ?limits.drain_timeout, "drain timeout reached; closing remaining connections");
        }
    }
}

#[derive(Clone)]
struct RequestService {
    target: Arc<str>,
    handler: Arc<dyn IncomingHandler>,
    limits: Arc<ServerLimits>,
}

impl hyper::service::Service<Request<Incoming>> for RequestService {
    type Response = Response<ResponseBody>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        // hyper's buffer bound is loose (one read may take in more than it): count exactly.
        let head = head_size(&request);
        let max_head = self.limits.max_header_bytes.max(MIN_HEADER_BYTES);
        if head > max_head {
            return Box::pin(async move {
                Ok(text_response(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    format!("request headers are larger than the limit of {max_head} bytes\n"),
                ))
            });
        }
        let limit = self.limits.max_request_body_bytes;
        let declared = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit) {
            return Box::pin(async move { Ok(too_large(limit)) });
        }
        let exceeded = Arc::new(AtomicBool::new(false));
        let request = request.map(|body| {
            LimitedBody {
                inner: body,
                remaining: limit,
                limit,
                exceeded: exceeded.clone(),
            }
            .boxed_unsync()
        });
        let response = self.handler.handle(self.target.clone(), request);
        Box::pin(async move {
            let response = response.await;
            // The guest failed because its body read hit the limit: say so, rather than
            // reporting a generic server error.
            if exceeded.load(Ordering::Relaxed) && response.status().is_server_error() {
                return Ok(too_large(limit));
            }
            Ok(response)
        })
    }
}

/// The size of a request's head as sent: request line and header lines.
fn head_size<B>(request: &Request<B>) -> usize {
    let line = request.method().as_str().len()
        + request
            .uri()
            .path_and_query()
            .map_or(1, |p| p.as_str().len())
        + " HTTP/1.1\r\n ".len();
    request.headers().iter().fold(line, |size, (name, value)| {
        size + name.as_str().len() + value.len() + ": \r\n".len()
    })
}

/// Whether `request` carries `Authorization: Bearer TOKEN` with `token`, compared in
/// constant time (the admin endpoint's and the dashboard's check).
pub fn bearer_matches<B>(request: &Request<B>, token: &str) -> bool {
    let given = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .as_bytes();
    let want = token.as_bytes();
    given.len() == want.len()
        && given
            .iter()
            .zip(want)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// A plain-text response with `status` and `message`.
pub fn text_response(status: StatusCode, message: impl Into<String>) -> Response<ResponseBody> {
    let body = http_body_util::Full::new(Bytes::from(message.into()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn too_large(limit: u64) -> Response<ResponseBody> {
    text_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than this server's limit of {limit} bytes\n"),
    )
}

/// A request body that fails with [`BodyTooLarge`] once more than `limit` bytes arrive.
struct LimitedBody {
    inner: Incoming,
    remaining: u64,
    limit: u64,
    exceeded: Arc<AtomicBool>,
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        this.exceeded.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge {
                            limit: this.limit,
                        }))));
                    }
                    this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers with the number of body bytes it managed to read, or 500 if reading failed.
    struct CountBytes;

    impl IncomingHandler for CountBytes {
        fn handle(
            &self,
            target: Arc<str>,
            request: Request<RequestBody>,
        ) -> BoxFuture<'static, Response<ResponseBody>> {
            Box::pin(async move {
                match request.into_body().collect().await {
                    Ok(body) => text_response(
                        StatusCode::OK,
                        format!("{target}:{}", body.to_bytes().len()),
                    ),
                    Err(e) => text_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                }
            })
        }
    }

    async fn start(
        limits: ServerLimits,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            "web".into(),
            Arc::new(CountBytes),
            limits,
            async {
                let _ = stopped.await;
            },
        ));
        (addr, stop, task)
    }

    async fn raw(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(request).await.expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    fn limits(body: u64) -> ServerLimits {
        ServerLimits {
            max_request_body_bytes: body,
            ..ServerLimits::default()
        }
    }

    #[tokio::test]
    async fn passes_requests_to_the_handler_with_the_target() {
        let (addr, _stop, _task) = start(limits(100)).await;
        let out = raw(
            addr,
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
        )
        .await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.ends_with("web:5"), "{out}");
    }

    #[tokio::test]
    async fn declared_oversize_body_is_413_without_calling_the_handler() {
        let (addr, _stop, _task) = start(limits(4)).await;
        let out = raw(
            addr,
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
        )
        .await;
        assert!(out.starts_with("HTTP/1.1 413"), "{out}");
        assert!(out.contains("limit of 4 bytes"), "{out}");
    }

    #[tokio::test]
    async fn streamed_oversize_body_is_413() {
        let (addr, _stop, _task) = start(limits(4)).await;
        let out = raw(
            addr,
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
        )
        .await;
        assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    }

    #[tokio::test]
    async fn headers_over_the_limit_are_431_without_calling_the_handler() {
        let request = |size: usize| {
            format!(
                "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
                "a".repeat(size)
            )
        };
        let (addr, _stop, _task) = start(ServerLimits {
            max_header_bytes: 16 << 10,
            ..ServerLimits::default()
        })
        .await;
        let out = raw(addr, request(12 << 10).as_bytes()).await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        for size in [17 << 10, 20 << 10, 100 << 10] {
            let out = raw(addr, request(size).as_bytes()).await;
            assert!(out.starts_with("HTTP/1.1 431"), "{size}: {out}");
            assert!(!out.contains("web:"), "the handler was not called: {out}");
        }
        let (addr, _stop, _task) = start(ServerLimits::default()).await;
        let out = raw(addr, request(60 << 10).as_bytes()).await;
        assert!(out.starts_with("HTTP/1.1 200"), "default: {out}");
        let out = raw(addr, request(100 << 10).as_bytes()).await;
        assert!(out.starts_with("HTTP/1.1 431"), "default: {out}");
    }

    #[tokio::test]
    async fn incomplete_headers_are_cut_off() {
        let (addr, _stop, _task) = start(ServerLimits {
            header_read_timeout: Duration::from_millis(200),
            ..ServerLimits::default()
        })
        .await;
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let mut out = Vec::new();
        // The server closes the connection (possibly after a 408); it does not wait forever.
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
        assert!(
            read.is_ok(),
            "connection still open after the header timeout"
        );
    }

    #[tokio::test]
    async fn shutdown_stops_accepting_and_returns() {
        let (addr, stop, task) = start(limits(100)).await;
        stop.send(()).expect("stop");
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("serve returns")
            .expect("join");
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "listener is closed"
        );
    }
}
