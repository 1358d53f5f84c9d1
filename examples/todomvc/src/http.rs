//! The `wasi:http` plumbing: a request with its path split from its query and a bounded body
//! read, and a [`Reply`] written back in one go.

use serde::Serialize;
use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasi::io::streams::StreamError;

/// An incoming request, with what the routes look at taken out of it up front.
pub struct Request {
    pub method: Method,
    /// The path without its query, `/` when the request had none.
    pub path: String,
    /// What follows the `?`, if anything did.
    pub query: Option<String>,
    inner: IncomingRequest,
}

impl Request {
    pub fn new(inner: IncomingRequest) -> Request {
        let path_with_query = inner.path_with_query().unwrap_or_else(|| "/".to_owned());
        let (path, query) = match path_with_query.split_once('?') {
            Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
            None => (path_with_query, None),
        };
        Request {
            method: inner.method(),
            path,
            query,
            inner,
        }
    }

    /// The first value of header `name`, if it is there and is text.
    pub fn header(&self, name: &str) -> Option<String> {
        let values = self.inner.headers().get(name);
        values
            .into_iter()
            .next()
            .and_then(|value| String::from_utf8(value).ok())
    }

    /// The method as it appears on the request line, for messages.
    pub fn method_name(&self) -> String {
        method_name(&self.method)
    }

    /// Reads the whole body, refusing one longer than `limit` bytes with `413` as soon as that
    /// is known, so an oversized upload is never held in memory.
    pub fn read_body(self, limit: usize) -> Result<Vec<u8>, Reply> {
        let too_large = || {
            Reply::error(
                413,
                format!("the request body is larger than {limit} bytes, the most this API reads"),
            )
        };
        if let Some(length) = self.header("content-length") {
            if length.trim().parse::<u64>().is_ok_and(|n| n > limit as u64) {
                return Err(too_large());
            }
        }
        let unreadable =
            |why: String| Reply::error(400, format!("could not read the request body: {why}"));
        let body = self
            .inner
            .consume()
            .map_err(|()| unreadable("it was already taken".to_owned()))?;
        let stream = body
            .stream()
            .map_err(|()| unreadable("it has no stream".to_owned()))?;
        let mut bytes = Vec::new();
        loop {
            // Ask for one byte more than may still come, so a body of exactly `limit` bytes is
            // accepted and one of `limit + 1` is refused without reading further.
            let want = (limit + 1 - bytes.len()).min(64 * 1024) as u64;
            match stream.blocking_read(want) {
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > limit {
                        return Err(too_large());
                    }
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(unreadable(e.to_debug_string()));
                }
            }
        }
        Ok(bytes)
    }
}

pub fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET".to_owned(),
        Method::Head => "HEAD".to_owned(),
        Method::Post => "POST".to_owned(),
        Method::Put => "PUT".to_owned(),
        Method::Delete => "DELETE".to_owned(),
        Method::Connect => "CONNECT".to_owned(),
        Method::Options => "OPTIONS".to_owned(),
        Method::Trace => "TRACE".to_owned(),
        Method::Patch => "PATCH".to_owned(),
        Method::Other(name) => name.clone(),
    }
}

/// A whole response: status, headers and body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

const JSON: &str = "application/json; charset=utf-8";

impl Reply {
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: vec![
                ("content-type".to_owned(), content_type.as_bytes().to_vec()),
                // The content types are exact; a browser must not guess others.
                ("x-content-type-options".to_owned(), b"nosniff".to_vec()),
            ],
            body,
        }
    }

    /// `value` as JSON.
    pub fn json(status: u16, value: &impl Serialize) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply::new(status, JSON, body),
            Err(e) => Reply::error(500, format!("could not write the answer as JSON: {e}")),
        }
    }

    /// `{"error": message}`: every API failure has this shape, so a client can show why.
    pub fn error(status: u16, message: impl Into<String>) -> Reply {
        #[derive(Serialize)]
        struct Failure {
            error: String,
        }
        let body = serde_json::to_vec(&Failure {
            error: message.into(),
        })
        .unwrap_or_else(|_| br#"{"error":"unprintable error"}"#.to_vec());
        Reply::new(status, JSON, body)
    }

    /// `204 No Content`.
    pub fn no_content() -> Reply {
        Reply {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `405` naming the methods `path` takes, in the `allow` header as well.
    pub fn method_not_allowed(request: &Request, allow: &str) -> Reply {
        Reply::error(
            405,
            format!(
                "{} does not take {}; it takes {allow}",
                request.path,
                request.method_name()
            ),
        )
        .with_header("allow", allow)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers
            .push((name.to_owned(), value.as_bytes().to_vec()));
        self
    }
}

/// Sends `reply`. Once the head is out, the host owns the connection; a client that went away
/// makes the writes fail, and with no one left to tell, that just ends the handler.
pub fn send(response_out: ResponseOutparam, reply: Reply) {
    let headers = match Fields::from_list(&reply.headers) {
        Ok(headers) => headers,
        // Only headers written in this crate are sent, so this is a bug here; say so rather
        // than answer with an empty 200.
        Err(e) => {
            let reply = Reply::error(500, format!("bad response header: {e:?}"));
            return send(response_out, reply);
        }
    };
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(reply.status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(response_out, Ok(response));

    if let Ok(stream) = outgoing.write() {
        // `blocking_write_and_flush` takes at most 4096 bytes per call.
        for chunk in reply.body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
        // The stream is a child of the body and must be dropped before the body finishes.
        drop(stream);
    }
    let _ = OutgoingBody::finish(outgoing, None);
}
