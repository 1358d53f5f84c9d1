//! Traces over OTLP: one request through two components on two hosts is one trace, received
//! by an OTLP/HTTP receiver that decodes the protocol with OpenTelemetry's own protobuf
//! definitions (`opentelemetry-proto`).

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    /// The `host.name` resource attribute of the process that sent it.
    host: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: Vec<(String, String)>,
}

/// An OTLP/HTTP receiver on a free port: `POST /v1/traces` with a protobuf
/// `ExportTraceServiceRequest`, answered 200 as the protocol says.
struct Receiver {
    port: u16,
    spans: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let kept = kept.clone();
                std::thread::spawn(move || serve(stream, &kept));
            }
        });
        Receiver { port, spans }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().expect("lock").clone()
    }
}

/// Answers the exports on one connection (HTTP/1.1, keep-alive).
fn serve(stream: std::net::TcpStream, spans: &Mutex<Vec<Received>>) {
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        let mut content_type = String::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "content-type" => content_type = value.trim().to_owned(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let ok = request_line.starts_with("POST /v1/traces ")
            && content_type == "application/x-protobuf";
        if ok {
            let request =
                ExportTraceServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
            let mut kept = spans.lock().expect("lock");
            for resource in request.resource_spans {
                let host = resource
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|a| a.key == "host.name")
                    .map(|a| value_text(a.value.as_ref()))
                    .unwrap_or_default();
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        kept.push(Received {
                            host: host.clone(),
                            name: span.name,
                            trace_id: hex(&span.trace_id),
                            span_id: hex(&span.span_id),
                            parent_span_id: hex(&span.parent_span_id),
                            attributes: span
                                .attributes
                                .iter()
                                .map(|a| (a.key.clone(), value_text(a.value.as_ref())))
                                .collect(),
                        });
                    }
                }
            }
        }
        let (status, body): (&str, Vec<u8>) = if ok {
            ("200 OK", Vec::new())
        } else {
            (
                "400 Bad Request",
                b"expected POST /v1/traces (protobuf)".to_vec(),
            )
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&body).is_err() {
            return;
        }
    }
}

fn value_text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A `trellis host` labelled `zone=ZONE` that exports its spans to `receiver` as host
/// `name`.
fn traced_host(
    nats: &str,
    lattice: &str,
    name: &str,
    zone: &str,
    receiver: &Receiver,
) -> LatticeHost {
    let mut cmd = Command::new(trellis_bin());
    cmd.args(["host", "--nats", nats, "--lattice", lattice])
        .args(["--friendly-name", name, "--label", &format!("zone={zone}")])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_RESOURCE_ATTRIBUTES", format!("host.name={name}"))
        // Send spans every 100 ms rather than every 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    LatticeHost::start_command(cmd)
}

#[test]
fn one_request_through_two_components_on_two_hosts_is_one_trace() {
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::start(free_port(), &dir.path().join("nats"));
    let url = nats.url();
    let lattice = "traced";
    let _front = traced_host(&url, lattice, "front-host", "a", &receiver);
    let _back = traced_host(&url, lattice, "back-host", "b", &receiver);

    // The greeter example as shipped, on a free port: front on zone a, back on zone b.
    let addr = deploy_greeter(dir.path(), "lattice.yaml", &url, lattice);

    // The caller's own trace: the request carries its traceparent.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let body = eventually("the greeter answers", Duration::from_secs(60), || {
        let mut stream = std::net::TcpStream::connect(addr).ok()?;
        write!(
            stream,
            "GET /?name=Ada HTTP/1.1\r\nHost: x\r\ntraceparent: 00-{trace_id}-{caller_span}-01\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let response = read_response(&mut stream).ok()?;
        (response.status == 200).then_some(response.body)
    });
    assert!(body.contains("Hello, Ada"), "{body}");

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans: Vec<Received> = receiver
            .spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect();
        let served = spans.iter().any(|s| s.name.starts_with("serve "));
        let request = spans.iter().any(|s| s.name.starts_with("GET "));
        if served && request {
            break spans;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no request and served spans in trace {trace_id}; received:\n{:#?}",
            receiver.spans()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let find = |prefix: &str| {
        spans
            .iter()
            .rfind(|s| s.name.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}… span in {spans:#?}"))
            .clone()
    };
    // front-host: the HTTP request, a child of the caller's span; the call to back under it.
    let request = find("GET ");
    assert_eq!(request.host, "front-host", "{request:?}");
    assert_eq!(request.parent_span_id, caller_span, "{request:?}");
    assert!(
        request
            .attributes
            .contains(&("component_id".into(), "greeter-front".into())),
        "{request:?}"
    );
    assert!(
        request
            .attributes
            .contains(&("http.response.status_code".into(), "200".into())),
        "{request:?}"
    );
    let call = find("call greeter-back");
    assert_eq!(call.host, "front-host", "{call:?}");
    assert_eq!(call.parent_span_id, request.span_id, "{call:?}");
    // back-host: serving the call, a child of front's call span, carried in the wRPC headers.
    let served = find("serve ");
    assert_eq!(served.host, "back-host", "{served:?}");
    assert_eq!(served.parent_span_id, call.span_id, "{served:?}");
    assert!(
        served
            .attributes
            .contains(&("component_id".into(), "greeter-back".into())),
        "{served:?}"
    );
}

#[test]
fn a_request_a_component_sends_out_is_a_span_of_the_trace_and_carries_it() {
    outgoing_requests_are_traced(false);
}

/// Warm instances serve one request after another from one instance: each request's spans
/// still nest under that request.
#[test]
fn a_warm_instance_nests_each_requests_spans_under_that_request() {
    outgoing_requests_are_traced(true);
}

/// Three requests to a component that fetches from an upstream, each in a trace of its own:
/// the component's request out is a client span under the request it served, and the
/// upstream is told the trace with that client span as its parent.
fn outgoing_requests_are_traced(warm: bool) {
    let receiver = Receiver::start();
    let upstream = Upstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    install_guest(dir.path(), "http_fetch");
    let mut manifest = capability_app(
        "http_fetch",
        "ghcr.io/wasmcloud/http-client:0.13.1",
        ("wasi", "http", "outgoing-handler"),
        "",
        &format!("              allowed_hosts: 127.0.0.1:{}\n", upstream.port),
    );
    if warm {
        manifest = manifest.replace(
            "  name: capabilities\n",
            "  name: capabilities\n  annotations:\n    trellis.dev/warm: \"true\"\n",
        );
    }
    let manifest = write_manifest(dir.path(), &manifest);
    let mut cmd = Command::new(trellis_bin());
    cmd.arg("up")
        .arg(&manifest)
        .args(["--http", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args(["--otlp-endpoint", &receiver.endpoint()])
        .env("OTEL_RESOURCE_ATTRIBUTES", "host.name=embedded")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    let trellis = Trellis::start(cmd);

    let caller_span = "b7ad6b7169203331";
    let trace_ids: Vec<String> = (0..3)
        .map(|i| format!("0af7651916cd43dd8448eb211c80319{i}"))
        .collect();
    for trace_id in &trace_ids {
        let mut stream = std::net::TcpStream::connect(trellis.addr()).expect("connect");
        write!(
            stream,
            "GET /fetch?url=http%3A%2F%2F127.0.0.1%3A{}%2Fitem HTTP/1.1\r\nHost: x\r\ntraceparent: 00-{trace_id}-{caller_span}-01\r\nConnection: close\r\n\r\n",
            upstream.port
        )
        .expect("write");
        let response = read_response(&mut stream).expect("response");
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(response.body, "status=200\nupstream saw /item");
    }

    let mut told = Vec::new();
    for trace_id in &trace_ids {
        let spans = eventually(
            "the request's spans are exported",
            Duration::from_secs(20),
            || {
                let spans: Vec<Received> = receiver
                    .spans()
                    .into_iter()
                    .filter(|s| &s.trace_id == trace_id)
                    .collect();
                let sent = spans.iter().any(|s| s.name == "GET");
                let served = spans.iter().any(|s| s.name.starts_with("GET "));
                (sent && served).then_some(spans)
            },
        );
        let served = spans
            .iter()
            .find(|s| s.name.starts_with("GET "))
            .expect("server span");
        assert_eq!(served.parent_span_id, caller_span, "{served:?}");
        let sent = spans.iter().find(|s| s.name == "GET").expect("client span");
        assert_eq!(sent.parent_span_id, served.span_id, "{spans:#?}");
        assert!(
            sent.attributes
                .contains(&("server.address".into(), "127.0.0.1".into())),
            "{sent:?}"
        );
        told.push(Some(format!("00-{trace_id}-{}-01", sent.span_id)));
    }
    // The upstream was told each trace, with the client span as its parent.
    assert_eq!(upstream.header("traceparent"), told);
}
