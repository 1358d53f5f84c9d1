//! A guest that calls its `trellis:test/calls` import from HTTP routes, so integration tests
//! can drive calls from one component to another (the `callee` guest exports the interface).
//!
//! | route                     | behaviour                                                     |
//! |---------------------------|---------------------------------------------------------------|
//! | `GET /greet?name=X`       | 200 with `greet(X)`                                           |
//! | `POST /echo`              | 200 with `echo(request body)`                                 |
//! | `GET /roundtrip[?variant=N]` | `roundtrip` of fixed value N (1, the default, 2 or 3); 200 `ok` if it comes back equal, else 500 naming the fields that differ, with a Debug dump of both |
//! | `GET /fail?reason=X`      | calls `fail(X)`, which traps the callee and so this call too  |
//! | `GET /spin?ms=N`          | `spin(N)`, then 200 `spun`                                    |
//! | `GET /divide?a=A&b=B`     | 200 `ok:<quotient>` or 200 `err:<message>`                    |
//! | anything else             | 404 `no such route`                                           |
//!
//! Every route takes `?link=NAME`: the calls go through the link named NAME
//! (`wasmcloud:bus/lattice@2.0.0`); a refusal answers 500 `link error: <message>`.
//!
//! Query parameters are percent-decoded; a missing or malformed one answers 400.
//!
//! The three `roundtrip` values together take every case of each variant, enum, option and
//! result, and both ends of every integer range.

use http_util::{Response, missing_param, path_and_query, query_param, read_body, respond};
use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, Method, ResponseOutparam};

mod bindings {
    // Only the calls import is generated here; the HTTP types come from the `wasi` crate.
    wit_bindgen::generate!({
        path: ["../../wit/bus", "wit"],
        world: "trellis-test:caller/caller",
        // The interface lives in another package; generate it rather than map it.
        generate_all,
        // `/roundtrip` compares what comes back with what it sent.
        additional_derives: [PartialEq],
    });
}

use bindings::trellis::test::calls::{self, Color, Everything, Perms, Point, Shape};

struct Caller;

impl Guest for Caller {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let response = route(&request).unwrap_or_else(|response| response);
        respond(response_out, response);
    }
}

wasi::http::proxy::export!(Caller);

fn route(request: &IncomingRequest) -> Result<Response, Response> {
    let (path, query) = path_and_query(request);
    let param = |name: &str| query_param(&query, name).ok_or_else(|| missing_param(name));
    if let Some(name) = query_param(&query, "link") {
        use bindings::wasmcloud::bus::lattice;
        let target = lattice::CallTargetInterface::new("trellis", "test", "calls");
        lattice::set_link_name(&name, vec![target])
            .map_err(|e| Response::new(500, format!("link error: {e}")))?;
    }

    match (request.method(), path.as_str()) {
        (Method::Get, "/greet") => Ok(Response::new(200, calls::greet(&param("name")?))),
        (Method::Post, "/echo") => {
            let body = read_body(request).map_err(|e| Response::new(400, e))?;
            Ok(Response::new(200, calls::echo(&body)))
        }
        (Method::Get, "/roundtrip") => {
            let sent = match query_param(&query, "variant").as_deref() {
                None | Some("1") => first_value(),
                Some("2") => second_value(),
                Some("3") => third_value(),
                Some(other) => {
                    return Err(Response::new(
                        400,
                        format!("no roundtrip variant {other:?}"),
                    ));
                }
            };
            let received = calls::roundtrip(&sent);
            let differing = differing_fields(&sent, &received);
            if differing.is_empty() {
                Ok(Response::new(200, "ok"))
            } else {
                let dump = format!(
                    "fields differ: {}\nsent: {sent:#?}\nreceived: {received:#?}\n",
                    differing.join(", ")
                );
                Ok(Response::new(500, dump))
            }
        }
        (Method::Get, "/fail") => {
            calls::fail(&param("reason")?);
            // Only reached if the callee did not trap, which is itself a bug to report.
            Ok(Response::new(500, "fail returned instead of trapping"))
        }
        (Method::Get, "/spin") => {
            calls::spin(parse(&param("ms")?, "ms")?);
            Ok(Response::new(200, "spun"))
        }
        (Method::Get, "/divide") => {
            let a = parse(&param("a")?, "a")?;
            let b = parse(&param("b")?, "b")?;
            let body = match calls::divide(a, b) {
                Ok(quotient) => format!("ok:{quotient}"),
                Err(message) => format!("err:{message}"),
            };
            Ok(Response::new(200, body))
        }
        _ => Ok(Response::new(404, "no such route")),
    }
}

/// Parses a query parameter, or answers 400 naming it.
fn parse<T: std::str::FromStr>(value: &str, name: &str) -> Result<T, Response> {
    value.parse().map_err(|_| {
        let expected = std::any::type_name::<T>();
        Response::new(400, format!("{name} must be {expected}, got {value:?}"))
    })
}

/// The names of the fields of `a` and `b` that are not equal.
fn differing_fields(a: &Everything, b: &Everything) -> Vec<&'static str> {
    macro_rules! differing {
        ($($field:ident),* $(,)?) => {{
            // Destructuring without `..` makes this fail to compile if the WIT gains a field.
            let Everything { $($field: _),* } = a;
            let mut names = Vec::new();
            $(if a.$field != b.$field { names.push(stringify!($field)); })*
            names
        }};
    }
    differing!(
        b, i8v, u8v, i16v, u16v, i32v, u32v, i64v, u64v, f32v, f64v, c, s, bytes, points, shape,
        color, perms, maybe, outcome, pair, nothing,
    )
}

/// Variant 1: the extreme end of every integer range, non-ASCII text, and the `rect`, `blue`,
/// `some`, `err` cases.
fn first_value() -> Everything {
    Everything {
        b: false,
        i8v: i8::MIN,
        u8v: u8::MAX,
        i16v: i16::MIN,
        u16v: u16::MAX,
        i32v: i32::MIN,
        u32v: u32::MAX,
        i64v: i64::MIN,
        u64v: u64::MAX,
        f32v: -1.5,
        f64v: 1e300,
        c: '😀',
        s: "héllo wörld ✓".to_string(),
        bytes: vec![0, 1, 2, 255],
        points: vec![
            Point {
                x: -1,
                y: 2,
                label: "a".to_string(),
            },
            Point {
                x: i32::MAX,
                y: i32::MIN,
                label: "ünïcödé".to_string(),
            },
        ],
        shape: Shape::Rect((3, 4)),
        color: Color::Blue,
        perms: Perms::READ | Perms::EXEC,
        maybe: Some("x".to_string()),
        outcome: Err("bad".to_string()),
        pair: ("p".to_string(), 7),
        nothing: None,
    }
}

/// Variant 2: empty strings and lists, the other end of the signed ranges, and the `circle`,
/// `red`, no flags, `none`, `ok` cases.
fn second_value() -> Everything {
    Everything {
        b: true,
        i8v: i8::MAX,
        u8v: 0,
        i16v: i16::MAX,
        u16v: 0,
        i32v: i32::MAX,
        u32v: 0,
        i64v: i64::MAX,
        u64v: 0,
        f32v: 0.0,
        f64v: -2.5e-300,
        c: 'a',
        s: String::new(),
        bytes: Vec::new(),
        points: Vec::new(),
        shape: Shape::Circle(2.5),
        color: Color::Red,
        perms: Perms::empty(),
        maybe: None,
        outcome: Ok(42),
        pair: (String::new(), 0),
        nothing: Some(Point {
            x: 0,
            y: -7,
            label: String::new(),
        }),
    }
}

/// Variant 3: the cases the other two leave out: `empty`, `green` and every flag, plus the
/// largest `char` and a large byte list.
fn third_value() -> Everything {
    Everything {
        b: true,
        i8v: -1,
        u8v: 1,
        i16v: -1,
        u16v: 1,
        i32v: -1,
        u32v: 1,
        i64v: -1,
        u64v: 1,
        f32v: f32::MAX,
        f64v: f64::MIN_POSITIVE,
        c: char::MAX,
        s: "x".repeat(1000),
        bytes: (0..=255).cycle().take(70_000).collect(),
        points: vec![
            Point {
                x: 1,
                y: 1,
                label: "one".to_string(),
            };
            3
        ],
        shape: Shape::Empty,
        color: Color::Green,
        perms: Perms::READ | Perms::WRITE | Perms::EXEC,
        maybe: Some(String::new()),
        outcome: Ok(0),
        pair: ("q".to_string(), u64::MAX),
        nothing: Some(Point {
            x: i32::MIN,
            y: i32::MAX,
            label: "n".to_string(),
        }),
    }
}
