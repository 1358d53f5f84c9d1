//! Against the PostgreSQL server on 127.0.0.1:5432 (database `test`, user `postgres`, trust
//! authentication): every supported type round-trips, errors carry the server's message,
//! and the bounds hold.

use std::collections::BTreeMap;
use std::time::Duration;
use trellis_postgres::value::*;
use trellis_postgres::{ExecError, Limits, PgValue, Postgres, PostgresConfig, QueryError};

async fn db(extra: &[(&str, &str)]) -> Postgres {
    let mut map: BTreeMap<String, String> = [
        ("POSTGRES_HOST", "127.0.0.1"),
        ("POSTGRES_PORT", "5432"),
        ("POSTGRES_USERNAME", "postgres"),
        ("POSTGRES_PASSWORD", ""),
        ("POSTGRES_DATABASE", "test"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    map.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Postgres::connect(&PostgresConfig::from_config(&map).expect("config"))
        .await
        .expect("pool")
}

fn p(x: f64, y: f64) -> Point {
    (f64_parts(x), f64_parts(y))
}

fn bytes(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

#[tokio::test]
async fn every_supported_type_round_trips() {
    let db = db(&[]).await;
    let limits = Limits::default();
    let t = Time {
        hour: 13,
        min: 14,
        sec: 15,
        micro: 161_718,
    };
    let d = Date::Ymd((2024, 2, 29));
    let mac = MacAddressEui48 {
        bytes: (0x08, 0, 0x2b, 1, 2, 3),
    };
    let mac8 = MacAddressEui64 {
        bytes: (0x08, 0, 0x2b, 1, 2, 3, 4, 5),
    };
    // (SQL type, what the guest sends, what comes back)
    let cases: Vec<(&str, PgValue, PgValue)> = vec![
        (
            "int8",
            PgValue::BigInt(-9_000_000_000),
            PgValue::Int8(-9_000_000_000),
        ),
        ("int8", PgValue::Serial8(7), PgValue::Int8(7)),
        ("int4", PgValue::Integer(-5), PgValue::Int4(-5)),
        ("int4", PgValue::Serial(5), PgValue::Int4(5)),
        ("int2", PgValue::SmallInt(-3), PgValue::Int2(-3)),
        ("bool", PgValue::Boolean(true), PgValue::Bool(true)),
        (
            "float8",
            PgValue::Double(f64_parts(1.5e300)),
            PgValue::Float8(f64_parts(1.5e300)),
        ),
        (
            "float4",
            PgValue::Real(f32_parts(0.25)),
            PgValue::Float4(f32_parts(0.25)),
        ),
        (
            "numeric",
            PgValue::Decimal("-1234.5678".into()),
            PgValue::Numeric("-1234.5678".into()),
        ),
        (
            "numeric",
            PgValue::Numeric("NaN".into()),
            PgValue::Numeric("NaN".into()),
        ),
        (
            "text",
            PgValue::Text("héllo".into()),
            PgValue::Text("héllo".into()),
        ),
        (
            "varchar",
            PgValue::Varchar((Some(10), bytes("abc"))),
            PgValue::Varchar((None, bytes("abc"))),
        ),
        (
            "char(4)",
            PgValue::Char((2, bytes("ab"))),
            PgValue::Char((4, bytes("ab  "))),
        ),
        ("name", PgValue::Name("n".into()), PgValue::Name("n".into())),
        (
            "xml",
            PgValue::Xml("<a/>".into()),
            PgValue::Xml("<a/>".into()),
        ),
        (
            "bytea",
            PgValue::Bytea(vec![0, 1, 255]),
            PgValue::Bytea(vec![0, 1, 255]),
        ),
        (
            "bit(3)",
            PgValue::Bit((3, vec![0b1010_0000])),
            PgValue::Bit((3, vec![0b1010_0000])),
        ),
        (
            "varbit",
            PgValue::Varbit((None, vec![0xff])),
            PgValue::Varbit((Some(8), vec![0xff])),
        ),
        (
            "json",
            PgValue::Json(r#"{"a": 1}"#.into()),
            PgValue::Json(r#"{"a": 1}"#.into()),
        ),
        (
            "jsonb",
            PgValue::Jsonb(r#"{"a":1}"#.into()),
            PgValue::Jsonb(r#"{"a": 1}"#.into()),
        ),
        (
            "jsonb",
            PgValue::Text(r#"[1]"#.into()),
            PgValue::Jsonb("[1]".into()),
        ),
        (
            "uuid",
            PgValue::Uuid("6ba7b810-9dad-11d1-80b4-00c04fd430c8".into()),
            PgValue::Uuid("6ba7b810-9dad-11d1-80b4-00c04fd430c8".into()),
        ),
        (
            "inet",
            PgValue::Inet("192.168.0.1".into()),
            PgValue::Inet("192.168.0.1".into()),
        ),
        (
            "inet",
            PgValue::Inet("::1/64".into()),
            PgValue::Inet("::1/64".into()),
        ),
        (
            "cidr",
            PgValue::Cidr("10.0.0.0/8".into()),
            PgValue::Cidr("10.0.0.0/8".into()),
        ),
        ("macaddr", PgValue::Macaddr(mac), PgValue::Macaddr(mac)),
        ("macaddr8", PgValue::Macaddr8(mac8), PgValue::Macaddr8(mac8)),
        (
            "point",
            PgValue::Point(p(1.0, -2.0)),
            PgValue::Point(p(1.0, -2.0)),
        ),
        (
            "box",
            PgValue::Box((p(0.0, 0.0), p(2.0, 3.0))),
            PgValue::Box((p(0.0, 0.0), p(2.0, 3.0))),
        ),
        (
            "lseg",
            PgValue::Lseg((p(0.0, 0.0), p(1.0, 1.0))),
            PgValue::Lseg((p(0.0, 0.0), p(1.0, 1.0))),
        ),
        (
            "line",
            PgValue::Line((p(0.0, 1.0), p(1.0, 3.0))),
            PgValue::Line((p(0.0, 1.0), p(1.0, 3.0))),
        ),
        (
            "path",
            PgValue::Path(vec![p(0.0, 0.0), p(1.0, 2.0)]),
            PgValue::Path(vec![p(0.0, 0.0), p(1.0, 2.0)]),
        ),
        (
            "polygon",
            PgValue::Polygon(vec![p(0.0, 0.0), p(1.0, 0.0), p(0.0, 1.0)]),
            PgValue::Polygon(vec![p(0.0, 0.0), p(1.0, 0.0), p(0.0, 1.0)]),
        ),
        (
            "circle",
            PgValue::Circle((p(1.0, 1.0), f64_parts(2.0))),
            PgValue::Circle((p(1.0, 1.0), f64_parts(2.0))),
        ),
        ("date", PgValue::Date(d), PgValue::Date(d)),
        (
            "date",
            PgValue::Date(Date::PositiveInfinity),
            PgValue::Date(Date::PositiveInfinity),
        ),
        ("time", PgValue::Time(t), PgValue::Time(t)),
        (
            "timetz",
            PgValue::TimeTz(TimeTz {
                timesonze: "+02:00".into(),
                time: t,
            }),
            PgValue::TimeTz(TimeTz {
                timesonze: "+02:00".into(),
                time: t,
            }),
        ),
        (
            "timestamp",
            PgValue::Timestamp(Timestamp { date: d, time: t }),
            PgValue::Timestamp(Timestamp { date: d, time: t }),
        ),
        (
            "timestamptz",
            PgValue::TimestampTz(TimestampTz {
                timestamp: Timestamp { date: d, time: t },
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
        (
            "pg_lsn",
            PgValue::PgLsn(0x16_B374_D848),
            PgValue::PgLsn(0x16_B374_D848),
        ),
        (
            "pg_snapshot",
            PgValue::PgSnapshot((10, 20, vec![12, 15])),
            PgValue::PgSnapshot((10, 20, vec![12, 15])),
        ),
        (
            "int8[]",
            PgValue::Int8Array(vec![1, -2]),
            PgValue::Int8Array(vec![1, -2]),
        ),
        (
            "int4[]",
            PgValue::Int4Array(vec![]),
            PgValue::Int4Array(vec![]),
        ),
        (
            "int2[]",
            PgValue::Int2Array(vec![3]),
            PgValue::Int2Array(vec![3]),
        ),
        (
            "int2vector",
            PgValue::Int2Vector(vec![1, 2]),
            PgValue::Int2Vector(vec![1, 2]),
        ),
        (
            "bool[]",
            PgValue::BoolArray(vec![true, false]),
            PgValue::BoolArray(vec![true, false]),
        ),
        (
            "float8[]",
            PgValue::Float8Array(vec![f64_parts(0.5)]),
            PgValue::Float8Array(vec![f64_parts(0.5)]),
        ),
        (
            "float4[]",
            PgValue::Float4Array(vec![f32_parts(0.5)]),
            PgValue::Float4Array(vec![f32_parts(0.5)]),
        ),
        (
            "numeric[]",
            PgValue::NumericArray(vec!["1.5".into()]),
            PgValue::NumericArray(vec!["1.5".into()]),
        ),
        (
            "text[]",
            PgValue::TextArray(vec!["a".into(), "b".into()]),
            PgValue::TextArray(vec!["a".into(), "b".into()]),
        ),
        (
            "varchar[]",
            PgValue::VarcharArray(vec![(None, bytes("x"))]),
            PgValue::VarcharArray(vec![(None, bytes("x"))]),
        ),
        (
            "name[]",
            PgValue::NameArray(vec!["a".into()]),
            PgValue::NameArray(vec!["a".into()]),
        ),
        (
            "bytea[]",
            PgValue::ByteaArray(vec![vec![1]]),
            PgValue::ByteaArray(vec![vec![1]]),
        ),
        (
            "uuid[]",
            PgValue::UuidArray(vec!["6ba7b810-9dad-11d1-80b4-00c04fd430c8".into()]),
            PgValue::UuidArray(vec!["6ba7b810-9dad-11d1-80b4-00c04fd430c8".into()]),
        ),
        (
            "inet[]",
            PgValue::InetArray(vec!["10.1.2.3".into()]),
            PgValue::InetArray(vec!["10.1.2.3".into()]),
        ),
        (
            "date[]",
            PgValue::DateArray(vec![d]),
            PgValue::DateArray(vec![d]),
        ),
        (
            "timestamp[]",
            PgValue::TimestampArray(vec![Timestamp { date: d, time: t }]),
            PgValue::TimestampArray(vec![Timestamp { date: d, time: t }]),
        ),
        (
            "jsonb[]",
            PgValue::JsonbArray(vec!["1".into()]),
            PgValue::JsonbArray(vec!["1".into()]),
        ),
        (
            "point[]",
            PgValue::PointArray(vec![p(1.0, 2.0)]),
            PgValue::PointArray(vec![p(1.0, 2.0)]),
        ),
        (
            "macaddr[]",
            PgValue::MacaddrArray(vec![mac]),
            PgValue::MacaddrArray(vec![mac]),
        ),
        (
            "pg_lsn[]",
            PgValue::PgLsnArray(vec![1]),
            PgValue::PgLsnArray(vec![1]),
        ),
        ("int8", PgValue::Null, PgValue::Null),
    ];
    let mut failures = Vec::new();
    for (ty, sent, expected) in cases {
        let sql = format!("SELECT $1::{ty} AS v");
        match db.query(&sql, std::slice::from_ref(&sent), &limits).await {
            Ok(rows) => {
                let got = &rows[0][0];
                assert_eq!(got.column_name, "v");
                if got.value != expected {
                    failures.push(format!(
                        "{ty}: sent {sent:?}, expected {expected:?}, got {:?}",
                        got.value
                    ));
                }
            }
            Err(e) => failures.push(format!("{ty}: sent {sent:?}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn unsupported_types_say_what_to_cast_to() {
    let db = db(&[]).await;
    let limits = Limits::default();
    let err = db
        .query("SELECT '1 day'::interval AS d", &[], &limits)
        .await
        .expect_err("interval");
    assert!(err.to_string().contains("duration::text"), "{err}");
    let err = db
        .query(
            "SELECT $1::money",
            &[PgValue::Money("1.00".into())],
            &limits,
        )
        .await
        .expect_err("money");
    assert!(matches!(err, QueryError::InvalidParams(_)), "{err:?}");
    assert!(err.to_string().contains("parameter $1"), "{err}");
}

#[tokio::test]
async fn bad_sql_carries_the_servers_message() {
    let db = db(&[]).await;
    let err = db
        .query("SELEC 1", &[], &Limits::default())
        .await
        .expect_err("syntax");
    assert_eq!(
        err,
        QueryError::InvalidQuery("syntax error at or near \"SELEC\" (SQLSTATE 42601)".into())
    );
    let err = db
        .query("SELECT $1::int4", &[], &Limits::default())
        .await
        .expect_err("params");
    assert!(matches!(err, QueryError::InvalidParams(_)), "{err:?}");
}

#[tokio::test]
async fn prepared_statements_belong_to_their_owner() {
    let db = db(&[]).await;
    let limits = Limits::default();
    let table = format!("prep_{}", std::process::id());
    db.query_batch(
        &format!("DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (n int8)"),
        &limits,
    )
    .await
    .expect("create");
    let sql = format!("INSERT INTO {table} VALUES ($1), ($1 + 1)");
    let token = db.prepare("a", &sql, &limits).await.expect("prepare");
    assert_eq!(db.prepare("a", &sql, &limits).await.expect("again"), token);
    assert_eq!(
        db.exec("a", &token, &[PgValue::Int8(1)], &limits).await,
        Ok(2)
    );
    assert_eq!(
        db.exec("b", &token, &[PgValue::Int8(1)], &limits).await,
        Err(ExecError::UnknownPreparedQuery)
    );
    let rows = db
        .query(
            &format!("SELECT sum(n)::int8 AS s FROM {table}"),
            &[],
            &limits,
        )
        .await
        .expect("sum");
    assert_eq!(rows[0][0].value, PgValue::Int8(3));
    db.query_batch(&format!("DROP TABLE {table}"), &limits)
        .await
        .expect("drop");
}

#[tokio::test]
async fn bounds_stop_queries() {
    let db = db(&[("POSTGRES_MAX_ROWS", "5")]).await;
    let limits = Limits {
        query_timeout: Duration::from_millis(300),
        max_bytes: 1000,
        ..Limits::default()
    };
    let err = db
        .query("SELECT generate_series(1, 6) AS n", &[], &limits)
        .await
        .expect_err("rows");
    assert!(err.to_string().contains("more than 5 rows"), "{err}");
    assert!(
        db.query("SELECT generate_series(1, 5) AS n", &[], &limits)
            .await
            .is_ok()
    );
    let err = db
        .query("SELECT repeat('x', 2000) AS s", &[], &limits)
        .await
        .expect_err("bytes");
    assert!(err.to_string().contains("more than 1000 bytes"), "{err}");
    let started = std::time::Instant::now();
    let err = db
        .query("SELECT pg_sleep(5)", &[], &limits)
        .await
        .expect_err("timeout");
    assert!(err.to_string().contains("did not finish within"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // The pool is still good after a cancelled query.
    assert!(db.query("SELECT 1 AS one", &[], &limits).await.is_ok());
    db.health().await.expect("healthy");
}

#[tokio::test]
async fn an_unreachable_server_is_named() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let port = port.to_string();
    let db = db(&[("POSTGRES_PORT", &port)]).await;
    let err = db
        .query("SELECT 1", &[], &Limits::default())
        .await
        .expect_err("down");
    let text = err.to_string();
    assert!(
        text.contains(&format!("postgres at 127.0.0.1:{port} is unreachable")),
        "{text}"
    );
    assert!(db.health().await.is_err());
}
