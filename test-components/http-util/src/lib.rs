//! HTTP plumbing shared by the test guests that export `wasi:http/incoming-handler`
//! (`kv-ops`, `blob-ops`, `http-fetch`, `msg-client`, `caller`): splitting the request target,
//! reading percent-encoded query parameters, reading whole bodies and streams, and sending a
//! response.
//!
//! It is a plain library, not a component; each guest links it in.

use wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasi::io::streams::{InputStream, StreamError};

/// Largest chunk `blocking_write_and_flush` accepts in one call.
pub const WRITE_CHUNK: usize = 4096;

/// The request's path and query string (without the `?`), e.g. `("/get", "key=a")`.
pub fn path_and_query(request: &IncomingRequest) -> (String, String) {
    let target = request.path_with_query().unwrap_or_default();
    match target.split_once('?') {
        Some((path, query)) => (path.to_string(), query.to_string()),
        None => (target, String::new()),
    }
}

/// The percent-decoded value of the first `name=value` pair in a query string. A bare `name`
/// counts as an empty value.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| percent_decode(key) == name)
        .map(|(_, value)| percent_decode(value))
}

/// Decodes `%XX` escapes and `+` (a space in form encoding). Malformed escapes are kept as
/// they are; invalid UTF-8 is replaced rather than refused, since these are test guests.
pub fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i + 1..i + 3) {
            Some(&[high, low]) => hex_digit(high).zip(hex_digit(low)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match (bytes[i], escaped) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).map(|digit| digit as u8)
}

/// Reads the whole request body. Errors are human-readable descriptions.
pub fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, String> {
    let body = request
        .consume()
        .map_err(|()| "request body already consumed".to_string())?;
    let bytes = {
        let stream = body
            .stream()
            .map_err(|()| "request body stream unavailable".to_string())?;
        let bytes = read_to_end(&stream).map_err(|e| format!("reading the request body: {e}"))?;
        // The stream is a child of the body and has to be dropped before the body finishes.
        drop(stream);
        bytes
    };
    drop(IncomingBody::finish(body));
    Ok(bytes)
}

/// Reads `stream` until it reports `closed`.
pub fn read_to_end(stream: &InputStream) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(bytes),
            Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
        }
    }
}

/// A response to send with [`respond`]: `text/plain` unless a header says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// 204 with no body.
    pub fn no_content() -> Self {
        Response::new(204, Vec::new())
    }

    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// 400 naming the query parameter the route needs.
pub fn missing_param(name: &str) -> Response {
    Response::new(400, format!("expected ?{name}=<value>"))
}

/// Sends `response`. Once the response is set the host owns the connection; if the client has
/// gone away the writes fail and there is no one left to tell, so failures just end the call.
pub fn respond(response_out: ResponseOutparam, response: Response) {
    let mut headers = response.headers;
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        headers.push((
            "content-type".to_string(),
            b"text/plain; charset=utf-8".to_vec(),
        ));
    }
    let fields = match Fields::from_list(&headers) {
        Ok(fields) => fields,
        Err(e) => {
            let fallback = OutgoingResponse::new(Fields::new());
            let _ = fallback.set_status_code(500);
            let message = format!("the guest built an invalid header list: {e:?}");
            return send(response_out, fallback, message.as_bytes());
        }
    };
    let outgoing = OutgoingResponse::new(fields);
    let _ = outgoing.set_status_code(response.status);
    send(response_out, outgoing, &response.body);
}

fn send(response_out: ResponseOutparam, response: OutgoingResponse, body: &[u8]) {
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(response_out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        for chunk in body.chunks(WRITE_CHUNK) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
        // The stream is a child of the body and must be dropped before the body finishes.
        drop(stream);
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_percent_decoded() {
        let query = "key=a%2Fb+c&by=3&flag&bucket=";
        assert_eq!(query_param(query, "key").as_deref(), Some("a/b c"));
        assert_eq!(query_param(query, "by").as_deref(), Some("3"));
        assert_eq!(query_param(query, "flag").as_deref(), Some(""));
        assert_eq!(query_param(query, "bucket").as_deref(), Some(""));
        assert_eq!(query_param(query, "missing"), None);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
