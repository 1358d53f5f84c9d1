//! A guest that makes an outgoing HTTP request through `wasi:http/outgoing-handler`, so
//! integration tests can check what the host lets out and what comes back.
//!
//! | route                              | behaviour                                             |
//! |------------------------------------|-------------------------------------------------------|
//! | `GET /fetch?url=U[&method=M]`      | sends M (default `GET`) to U, an absolute `http://` or `https://` URL (percent-encoded in the query); 200 `status=<upstream status>\n<upstream body>` |
//! | anything else                      | 404 `no such route`                                   |
//!
//! When `outgoing-handler.handle` or the response future fails with an `error-code`, or the
//! upstream body cannot be read, the answer is 502 `error: <error-code as Rust Debug>`. A
//! missing or unparsable `url` answers 400.

use http_util::{Response, missing_param, path_and_query, query_param, respond};
use wasi::exports::http::incoming_handler::Guest;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingRequest,
    ResponseOutparam, Scheme,
};
use wasi::io::streams::StreamError;

struct HttpFetch;

impl Guest for HttpFetch {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let (path, query) = path_and_query(&request);
        let response = match (request.method(), path.as_str()) {
            (Method::Get, "/fetch") => fetch_route(&query),
            _ => Response::new(404, "no such route"),
        };
        respond(response_out, response);
    }
}

wasi::http::proxy::export!(HttpFetch);

fn fetch_route(query: &str) -> Response {
    let Some(url) = query_param(query, "url") else {
        return missing_param("url");
    };
    let target = match Target::parse(&url) {
        Ok(target) => target,
        Err(e) => return Response::new(400, e),
    };
    let method = method(&query_param(query, "method").unwrap_or_else(|| "GET".to_string()));
    match fetch(method, &target) {
        Ok((status, body)) => {
            let mut out = format!("status={status}\n").into_bytes();
            out.extend_from_slice(&body);
            Response::new(200, out)
        }
        Err(code) => Response::new(502, format!("error: {code:?}")),
    }
}

/// An absolute URL split the way `outgoing-request` takes it.
#[derive(Debug)]
struct Target {
    scheme: Scheme,
    authority: String,
    path_with_query: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("not an absolute URL: {url:?}"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(format!("unsupported scheme in {url:?}; use http or https")),
        };
        // The fragment never goes on the wire.
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_with_query) = rest.split_at(split);
        if authority.is_empty() {
            return Err(format!("no host in {url:?}"));
        }
        let path_with_query = match path_with_query {
            "" => "/".to_string(),
            pq if pq.starts_with('?') => format!("/{pq}"),
            pq => pq.to_string(),
        };
        Ok(Target {
            scheme,
            authority: authority.to_string(),
            path_with_query,
        })
    }
}

fn method(name: &str) -> Method {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        _ => Method::Other(name.to_string()),
    }
}

/// Sends the request with an empty body and returns the upstream status and whole body.
fn fetch(method: Method, target: &Target) -> Result<(u16, Vec<u8>), ErrorCode> {
    let request = OutgoingRequest::new(Fields::new());
    let invalid = |what: &str| ErrorCode::InternalError(Some(format!("invalid {what}")));
    request
        .set_method(&method)
        .map_err(|()| invalid("method"))?;
    request
        .set_scheme(Some(&target.scheme))
        .map_err(|()| invalid("scheme"))?;
    request
        .set_authority(Some(&target.authority))
        .map_err(|()| invalid("authority"))?;
    request
        .set_path_with_query(Some(&target.path_with_query))
        .map_err(|()| invalid("path with query"))?;
    let body = request
        .body()
        .map_err(|()| ErrorCode::InternalError(Some("request body unavailable".to_string())))?;

    let future = outgoing_handler::handle(request, None)?;
    // No body to send: finishing it tells the host the request is complete.
    OutgoingBody::finish(body, None)?;

    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(result)) => result?,
        Some(Err(())) => {
            return Err(ErrorCode::InternalError(Some(
                "response already taken".to_string(),
            )));
        }
        None => {
            return Err(ErrorCode::InternalError(Some(
                "response not ready after its pollable fired".to_string(),
            )));
        }
    };
    let status = response.status();

    let incoming = response
        .consume()
        .map_err(|()| ErrorCode::InternalError(Some("response body already taken".to_string())))?;
    let mut bytes = Vec::new();
    {
        let stream = incoming.stream().map_err(|()| {
            ErrorCode::InternalError(Some("response body stream unavailable".to_string()))
        })?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(wasi::http::types::http_error_code(&e)
                        .unwrap_or_else(|| ErrorCode::InternalError(Some(e.to_debug_string()))));
                }
            }
        }
        // The stream is a child of the body and has to be dropped before the body finishes.
        drop(stream);
    }
    drop(IncomingBody::finish(incoming));
    Ok((status, bytes))
}
