//! A guest with HTTP routes that run `wasmcloud:postgres@0.1.1-draft` calls, so integration
//! tests can drive a Postgres link from outside.
//!
//! Parameters come from the query string as `p=TYPE:VALUE`, in order (`$1` is the first):
//! TYPE is one of `null`, `int8`, `int4`, `int2`, `bool`, `float8`, `numeric`, `text`,
//! `json`, `jsonb`, `uuid`. Rows are answered one per line as `column=VALUE; …` with each
//! value in its `Debug` form (`PgValue::Int8(5)`); a `wasmcloud:postgres` error answers 500
//! with `query error: `, `prepare error: ` or `exec error: ` and the error's `Debug` form.
//!
//! | route                              | behaviour                                                |
//! |------------------------------------|----------------------------------------------------------|
//! | `POST /query?p=…` (body: SQL)      | `query`; 200 with the rows                               |
//! | `POST /batch` (body: SQL)          | `query-batch`; 204                                       |
//! | `POST /prepare` (body: SQL)        | `prepare`; 200 with the token                            |
//! | `POST /exec?token=T&p=…`           | `exec`; 200 with the number of rows affected            |
//! | `POST /roundtrip?table=T`          | creates table T with a column per supported type, inserts one value of each with a prepared statement, reads the row back with `query` and compares; 200 `ok: N values` or 500 with every mismatch |
//! | anything else                      | 404 `no such route`                                      |

use http_util::{Response, missing_param, path_and_query, percent_decode, read_body, respond};
use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, Method, ResponseOutparam};

mod bindings {
    wit_bindgen::generate!({
        path: ["../../wit/postgres", "wit"],
        world: "trellis-test:pg-query/pg-query",
        generate_all,
        additional_derives: [PartialEq],
    });
}

use bindings::wasmcloud::postgres::types::{
    Date, MacAddressEui48, MacAddressEui64, Offset, PgValue, ResultRow, Time, TimeTz, Timestamp,
    TimestampTz,
};
use bindings::wasmcloud::postgres::{prepared, query};

struct PgQuery;

impl Guest for PgQuery {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        respond(response_out, route(&request));
    }
}

wasi::http::proxy::export!(PgQuery);

fn route(request: &IncomingRequest) -> Response {
    let (path, query_string) = path_and_query(request);
    if !matches!(request.method(), Method::Post) {
        return Response::new(404, "no such route");
    }
    let body = || -> Result<String, Response> {
        let bytes = read_body(request).map_err(|e| Response::new(400, e))?;
        String::from_utf8(bytes).map_err(|_| Response::new(400, "the SQL is not UTF-8"))
    };
    let params = || parse_params(&query_string).map_err(|e| Response::new(400, e));
    let result = match path.as_str() {
        "/query" => body().and_then(|sql| {
            let params = params()?;
            match query::query(&sql, &params) {
                Ok(rows) => Ok(Response::new(200, format_rows(&rows))),
                Err(e) => Ok(Response::new(500, format!("query error: {e:?}"))),
            }
        }),
        "/batch" => body().map(|sql| match query::query_batch(&sql) {
            Ok(()) => Response::no_content(),
            Err(e) => Response::new(500, format!("query error: {e:?}")),
        }),
        "/prepare" => body().map(|sql| match prepared::prepare(&sql) {
            Ok(token) => Response::new(200, token),
            Err(e) => Response::new(500, format!("prepare error: {e:?}")),
        }),
        "/exec" => http_util::query_param(&query_string, "token")
            .ok_or_else(|| missing_param("token"))
            .and_then(|token| {
                let params = params()?;
                Ok(match prepared::exec(&token, &params) {
                    Ok(n) => Response::new(200, n.to_string()),
                    Err(e) => Response::new(500, format!("exec error: {e:?}")),
                })
            }),
        "/roundtrip" => http_util::query_param(&query_string, "table")
            .ok_or_else(|| missing_param("table"))
            .map(|table| round_trip(&table)),
        _ => Err(Response::new(404, "no such route")),
    };
    result.unwrap_or_else(|response| response)
}

fn parse_params(query_string: &str) -> Result<Vec<PgValue>, String> {
    query_string
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| *key == "p")
        .map(|(_, value)| {
            let value = percent_decode(value);
            let (ty, v) = value.split_once(':').unwrap_or((value.as_str(), ""));
            let bad = || format!("bad {ty} parameter `{v}`");
            Ok(match ty {
                "null" => PgValue::Null,
                "int8" => PgValue::Int8(v.parse().map_err(|_| bad())?),
                "int4" => PgValue::Int4(v.parse().map_err(|_| bad())?),
                "int2" => PgValue::Int2(v.parse().map_err(|_| bad())?),
                "bool" => PgValue::Bool(v.parse().map_err(|_| bad())?),
                "float8" => PgValue::Float8(f64_parts(v.parse().map_err(|_| bad())?)),
                "numeric" => PgValue::Numeric(v.to_string()),
                "text" => PgValue::Text(v.to_string()),
                "json" => PgValue::Json(v.to_string()),
                "jsonb" => PgValue::Jsonb(v.to_string()),
                "uuid" => PgValue::Uuid(v.to_string()),
                _ => return Err(format!("unknown parameter type `{ty}`")),
            })
        })
        .collect()
}

fn format_rows(rows: &[ResultRow]) -> String {
    rows.iter()
        .map(|row| {
            row.iter()
                .map(|entry| format!("{}={:?}", entry.column_name, entry.value))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .map(|line| line + "\n")
        .collect()
}

/// `num_traits::Float::integer_decode` for f64, as the WIT's `hashable-f64` wants it.
fn f64_parts(f: f64) -> (u64, i16, i8) {
    let bits = f.to_bits();
    let sign = if bits >> 63 == 0 { 1 } else { -1 };
    let exponent = ((bits >> 52) & 0x7ff) as i16;
    let mantissa = if exponent == 0 {
        (bits & 0xf_ffff_ffff_ffff) << 1
    } else {
        (bits & 0xf_ffff_ffff_ffff) | 0x10_0000_0000_0000
    };
    (mantissa, exponent - 1075, sign)
}

/// The same for f32.
fn f32_parts(f: f32) -> (u64, i16, i8) {
    let bits = f.to_bits();
    let sign = if bits >> 31 == 0 { 1 } else { -1 };
    let exponent = ((bits >> 23) & 0xff) as i16;
    let mantissa = if exponent == 0 {
        (bits & 0x7f_ffff) << 1
    } else {
        (bits & 0x7f_ffff) | 0x80_0000
    };
    (u64::from(mantissa), exponent - 150, sign)
}

fn point(x: f64, y: f64) -> ((u64, i16, i8), (u64, i16, i8)) {
    (f64_parts(x), f64_parts(y))
}

/// Every supported type: (column type, what is sent, what must come back).
fn cases() -> Vec<(&'static str, PgValue, PgValue)> {
    let t = Time {
        hour: 13,
        min: 14,
        sec: 15,
        micro: 161_718,
    };
    let d = Date::Ymd((2024, 2, 29));
    let ts = Timestamp { date: d, time: t };
    let mac = MacAddressEui48 {
        bytes: (0x08, 0, 0x2b, 1, 2, 3),
    };
    let mac8 = MacAddressEui64 {
        bytes: (0x08, 0, 0x2b, 1, 2, 3, 4, 5),
    };
    let same = |ty, v: PgValue| (ty, v.clone(), v);
    let uuid = "6ba7b810-9dad-11d1-80b4-00c04fd430c8".to_string();
    vec![
        (
            "int8",
            PgValue::BigInt(9_000_000_000),
            PgValue::Int8(9_000_000_000),
        ),
        ("int8", PgValue::BigSerial(-1), PgValue::Int8(-1)),
        ("int4", PgValue::Integer(-5), PgValue::Int4(-5)),
        ("int4", PgValue::Serial4(6), PgValue::Int4(6)),
        ("int2", PgValue::SmallInt(-3), PgValue::Int2(-3)),
        ("int2", PgValue::Serial2(3), PgValue::Int2(3)),
        ("bool", PgValue::Boolean(true), PgValue::Bool(true)),
        same("bool", PgValue::Bool(false)),
        (
            "float8",
            PgValue::Double(f64_parts(-2.5e-300)),
            PgValue::Float8(f64_parts(-2.5e-300)),
        ),
        (
            "float4",
            PgValue::Real(f32_parts(0.25)),
            PgValue::Float4(f32_parts(0.25)),
        ),
        (
            "numeric(20,4)",
            PgValue::Decimal("-1234.5678".into()),
            PgValue::Numeric("-1234.5678".into()),
        ),
        same(
            "numeric",
            PgValue::Numeric("12345678901234567890.000001".into()),
        ),
        same("text", PgValue::Text("héllo, wörld".into())),
        (
            "varchar(10)",
            PgValue::Varchar((Some(10), b"abc".to_vec())),
            PgValue::Varchar((None, b"abc".to_vec())),
        ),
        (
            "char(4)",
            PgValue::Char((2, b"ab".to_vec())),
            PgValue::Char((4, b"ab  ".to_vec())),
        ),
        same("name", PgValue::Name("a_name".into())),
        same("xml", PgValue::Xml("<a>b</a>".into())),
        same("bytea", PgValue::Bytea(vec![0, 1, 2, 254, 255])),
        same("bit(3)", PgValue::Bit((3, vec![0b1010_0000]))),
        (
            "varbit",
            PgValue::BitVarying((None, vec![0xf0])),
            PgValue::Varbit((Some(8), vec![0xf0])),
        ),
        same("json", PgValue::Json(r#"{"a": [1, 2]}"#.into())),
        (
            "jsonb",
            PgValue::Jsonb(r#"{"a":[1,2]}"#.into()),
            PgValue::Jsonb(r#"{"a": [1, 2]}"#.into()),
        ),
        same("uuid", PgValue::Uuid(uuid.clone())),
        same("inet", PgValue::Inet("192.168.0.1".into())),
        same("inet", PgValue::Inet("2001:db8::1/64".into())),
        same("cidr", PgValue::Cidr("10.0.0.0/8".into())),
        same("macaddr", PgValue::Macaddr(mac)),
        same("macaddr8", PgValue::Macaddr8(mac8)),
        same("point", PgValue::Point(point(1.5, -2.0))),
        same("box", PgValue::Box((point(0.0, 0.0), point(2.0, 3.0)))),
        same("lseg", PgValue::Lseg((point(0.0, 0.0), point(1.0, 1.0)))),
        same("line", PgValue::Line((point(0.0, 1.0), point(1.0, 3.0)))),
        same(
            "path",
            PgValue::Path(vec![point(0.0, 0.0), point(1.0, 2.0)]),
        ),
        same(
            "polygon",
            PgValue::Polygon(vec![point(0.0, 0.0), point(1.0, 0.0), point(0.0, 1.0)]),
        ),
        same("circle", PgValue::Circle((point(1.0, 1.0), f64_parts(2.0)))),
        same("date", PgValue::Date(d)),
        same("date", PgValue::Date(Date::NegativeInfinity)),
        same("time", PgValue::Time(t)),
        same(
            "timetz",
            PgValue::TimeTz(TimeTz {
                timesonze: "-05:30".into(),
                time: t,
            }),
        ),
        same("timestamp", PgValue::Timestamp(ts)),
        (
            "timestamptz",
            PgValue::TimestampTz(TimestampTz {
                timestamp: ts,
                offset: Offset::EasternHemisphereSecs(3600),
            }),
            PgValue::TimestampTz(TimestampTz {
                timestamp: Timestamp {
                    date: d,
                    time: Time { hour: 12, ..t },
                },
                offset: Offset::WesternHemisphereSecs(0),
            }),
        ),
        same("pg_lsn", PgValue::PgLsn(0x16_B374_D848)),
        same("pg_snapshot", PgValue::PgSnapshot((10, 20, vec![12, 15]))),
        same(
            "hstore",
            PgValue::Hstore(vec![("k".into(), Some("v".into()))]),
        ),
        same("int8[]", PgValue::Int8Array(vec![1, -2, 3])),
        same("int4[]", PgValue::Int4Array(vec![])),
        same("int2[]", PgValue::Int2Array(vec![7])),
        same("int2vector", PgValue::Int2Vector(vec![1, 2])),
        same("bool[]", PgValue::BoolArray(vec![true, false])),
        same("float8[]", PgValue::Float8Array(vec![f64_parts(0.5)])),
        same("float4[]", PgValue::Float4Array(vec![f32_parts(1.5)])),
        same(
            "numeric[]",
            PgValue::NumericArray(vec!["1.5".into(), "-2".into()]),
        ),
        same("text[]", PgValue::TextArray(vec!["a".into(), "b c".into()])),
        same(
            "varchar[]",
            PgValue::VarcharArray(vec![(None, b"x".to_vec())]),
        ),
        same("bytea[]", PgValue::ByteaArray(vec![vec![1], vec![]])),
        same("uuid[]", PgValue::UuidArray(vec![uuid])),
        same("inet[]", PgValue::InetArray(vec!["10.1.2.3".into()])),
        same(
            "date[]",
            PgValue::DateArray(vec![d, Date::PositiveInfinity]),
        ),
        same("timestamp[]", PgValue::TimestampArray(vec![ts])),
        same("json[]", PgValue::JsonArray(vec!["1".into()])),
        same("jsonb[]", PgValue::JsonbArray(vec!["true".into()])),
        same("point[]", PgValue::PointArray(vec![point(1.0, 2.0)])),
        same("macaddr[]", PgValue::MacaddrArray(vec![mac])),
        same("pg_lsn[]", PgValue::PgLsnArray(vec![1, 2])),
        ("text", PgValue::Null, PgValue::Null),
    ]
}

fn round_trip(table: &str) -> Response {
    let cases = cases();
    let columns: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, (ty, _, _))| format!("c{i} {ty}"))
        .collect();
    let create = format!(
        "CREATE EXTENSION IF NOT EXISTS hstore; DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({})",
        columns.join(", ")
    );
    if let Err(e) = query::query_batch(&create) {
        return Response::new(500, format!("query error: {e:?}"));
    }
    let placeholders: Vec<String> = (1..=cases.len()).map(|i| format!("${i}")).collect();
    let insert = format!("INSERT INTO {table} VALUES ({})", placeholders.join(", "));
    let token = match prepared::prepare(&insert) {
        Ok(token) => token,
        Err(e) => return Response::new(500, format!("prepare error: {e:?}")),
    };
    let sent: Vec<PgValue> = cases.iter().map(|(_, v, _)| v.clone()).collect();
    match prepared::exec(&token, &sent) {
        Ok(1) => {}
        Ok(n) => return Response::new(500, format!("exec inserted {n} rows, not 1")),
        Err(e) => return Response::new(500, format!("exec error: {e:?}")),
    }
    // Read back with `query`, passing a parameter too.
    let rows = match query::query(
        &format!("SELECT * FROM {table} WHERE c0 = $1"),
        &[PgValue::Int8(9_000_000_000)],
    ) {
        Ok(rows) => rows,
        Err(e) => return Response::new(500, format!("query error: {e:?}")),
    };
    let [row] = rows.as_slice() else {
        return Response::new(500, format!("expected one row, got {}", rows.len()));
    };
    let mut mismatches = Vec::new();
    for (i, (ty, _, expected)) in cases.iter().enumerate() {
        match row.get(i) {
            Some(entry) if entry.column_name == format!("c{i}") && entry.value == *expected => {}
            Some(entry) => mismatches.push(format!(
                "c{i} {ty}: expected {expected:?}, got {}={:?}",
                entry.column_name, entry.value
            )),
            None => mismatches.push(format!("c{i} {ty}: missing")),
        }
    }
    if mismatches.is_empty() {
        Response::new(200, format!("ok: {} values", cases.len()))
    } else {
        Response::new(500, mismatches.join("\n"))
    }
}
