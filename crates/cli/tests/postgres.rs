//! `wasmcloud:postgres` through the real binary and the `pg-query` guest, against the
//! PostgreSQL server on 127.0.0.1:5432 (database `test`, user `postgres`, trust
//! authentication): every supported type, parameters and rows, prepared statements, the
//! bounds, bad SQL, and a server of the test's own that stops and comes back.
//!
//! Each test works in a table of its own, named after the test and the process.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const IMAGE: &str = "ghcr.io/wasmcloud/sqldb-postgres:0.10.0";
const PG: (&str, &str, &str) = ("wasmcloud", "postgres", "query, prepared");

/// Target config lines (20 spaces' indent) for the shared server.
fn shared_server(extra: &str) -> String {
    format!(
        "                    POSTGRES_HOST: 127.0.0.1\n\
         \x20                   POSTGRES_PORT: '5432'\n\
         \x20                   POSTGRES_USERNAME: postgres\n\
         \x20                   POSTGRES_PASSWORD: ''\n\
         \x20                   POSTGRES_DATABASE: test\n{extra}"
    )
}

/// Deploys `pg-query` linked to a `sqldb-postgres` provider.
fn deploy(dir: &Path, target_config: &str, provider_config: &str, flags: &[&str]) -> Trellis {
    install_guest(dir, "pg_query");
    let manifest = write_manifest(
        dir,
        &capability_app("pg_query", IMAGE, PG, target_config, provider_config),
    );
    Trellis::up(&manifest, flags)
}

fn table(test: &str) -> String {
    format!("trellis_{test}_{}", std::process::id())
}

/// `psql` on the shared server: the rows, `|`-separated, one per line.
fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-AtXc",
            sql,
        ])
        .output()
        .expect("run psql (apt-get install postgresql-client)");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

fn post(trellis: &Trellis, path: &str, sql: &str) -> Response {
    request(trellis.addr(), "POST", path, sql.as_bytes())
}

#[test]
fn a_component_round_trips_every_supported_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trellis = deploy(dir.path(), &shared_server(""), "", &[]);
    let t = table("types");
    let r = post(&trellis, &format!("/roundtrip?table={t}"), "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.starts_with("ok: "), "{}", r.body);
    let count: usize = r.body["ok: ".len()..]
        .trim_end_matches(" values")
        .parse()
        .expect("a count");
    assert!(count > 60, "{}", r.body);
    // Another client sees what the component wrote, as PostgreSQL prints it.
    assert_eq!(
        psql(&format!(
            "SELECT c0, c10, c12, c22, c26, c35, c40 AT TIME ZONE 'UTC', c44 FROM {t}"
        )),
        "9000000000|-1234.5678|héllo, wörld|6ba7b810-9dad-11d1-80b4-00c04fd430c8|\
         08:00:2b:01:02:03|2024-02-29|2024-02-29 12:14:15.161718|{1,-2,3}"
    );
    psql(&format!("DROP TABLE {t}"));
}

#[test]
fn queries_take_parameters_and_return_rows_and_the_link_config_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The provider's own config names a database that does not exist; the link's wins.
    let provider = "                  POSTGRES_DATABASE: no_such_database\n\
                    \x20                 POSTGRES_POOL_SIZE: '2'\n";
    let trellis = deploy(dir.path(), &shared_server(""), provider, &[]);
    let t = table("params");
    let r = post(
        &trellis,
        "/batch",
        &format!(
            "DROP TABLE IF EXISTS {t}; CREATE TABLE {t} (id int8 PRIMARY KEY, name text, score float8)"
        ),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let r = post(
        &trellis,
        "/query?p=int8:1&p=text:ann%20lee&p=float8:2.5",
        &format!("INSERT INTO {t} VALUES ($1, $2, $3) RETURNING id, name"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        "id=PgValue::Int8(1); name=PgValue::Text(\"ann lee\")\n"
    );
    let r = post(
        &trellis,
        "/query?p=int8:1",
        &format!("SELECT current_database() AS db, score FROM {t} WHERE id = $1"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .starts_with("db=PgValue::Name(\"test\"); score=PgValue::Float8("),
        "{}",
        r.body
    );
    // Zero rows is an empty answer, not an error.
    let r = post(
        &trellis,
        "/query?p=int8:2",
        &format!("SELECT * FROM {t} WHERE id = $1"),
    );
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_eq!(
        psql(&format!("SELECT id, name, score FROM {t}")),
        "1|ann lee|2.5"
    );
    psql(&format!("DROP TABLE {t}"));
}

#[test]
fn prepared_statements_outlive_the_instance_that_prepared_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trellis = deploy(
        dir.path(),
        &shared_server(""),
        "",
        &["--metrics", "127.0.0.1:0"],
    );
    let t = table("prepared");
    assert_eq!(
        post(
            &trellis,
            "/batch",
            &format!("DROP TABLE IF EXISTS {t}; CREATE TABLE {t} (n int8)")
        )
        .status,
        204
    );
    let insert = format!("INSERT INTO {t} SELECT generate_series(1, $1)");
    let r = post(&trellis, "/prepare", &insert);
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.body.clone();
    assert!(token.starts_with("prepared-statement-"), "{token}");
    // Every request runs in a fresh instance: the token is the component's, not the
    // instance's.
    let exec = |p: &str| post(&trellis, &format!("/exec?token={token}&{p}"), "");
    assert_eq!(exec("p=int8:3").body, "3");
    assert_eq!(exec("p=int8:2").body, "2");
    // Preparing the same SQL again gives the same token.
    assert_eq!(post(&trellis, "/prepare", &insert).body, token);
    let r = exec("p=text:x");
    assert_eq!(r.status, 500);
    assert!(
        r.body.contains("QueryError::InvalidParams(\"parameter $1: a `text` value cannot be sent as PostgreSQL type `int4`\")"),
        "{}",
        r.body
    );
    let r = post(
        &trellis,
        "/exec?token=prepared-statement-made-up&p=int8:1",
        "",
    );
    assert_eq!(r.status, 500);
    assert!(r.body.contains("UnknownPreparedQuery"), "{}", r.body);
    let r = post(&trellis, "/prepare", "SELEC nothing");
    assert_eq!(r.status, 500);
    assert!(r.body.contains("syntax error at or near"), "{}", r.body);
    assert_eq!(psql(&format!("SELECT count(*), sum(n) FROM {t}")), "5|9");
    psql(&format!("DROP TABLE {t}"));

    // Every operation was counted, with the error values as errors.
    let scrape = metrics::scrape_metrics(metrics::metrics_addr(&trellis));
    for (operation, outcome, count) in [
        ("query-batch", "ok", 1.0),
        ("prepare", "ok", 2.0),
        ("prepare", "error", 1.0),
        ("exec", "ok", 2.0),
        ("exec", "error", 2.0),
    ] {
        assert_eq!(
            scrape.operations("postgres", operation, outcome),
            count,
            "{operation} {outcome}:\n{}",
            scrape.text
        );
    }
}

#[test]
fn bad_sql_reaches_the_guest_with_the_servers_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trellis = deploy(dir.path(), &shared_server(""), "", &[]);
    let r = post(&trellis, "/query", "SELEC 1");
    assert_eq!(r.status, 500);
    assert_eq!(
        r.body,
        "query error: QueryError::InvalidQuery(\"syntax error at or near \\\"SELEC\\\" (SQLSTATE 42601)\")"
    );
    let r = post(&trellis, "/query", "SELECT * FROM no_such_table_anywhere");
    assert!(
        r.body
            .contains("relation \\\"no_such_table_anywhere\\\" does not exist (SQLSTATE 42P01)"),
        "{}",
        r.body
    );
    let r = post(&trellis, "/query", "SELECT 1/0 AS x");
    assert!(
        r.body
            .contains("Unexpected(\"postgres: division by zero (SQLSTATE 22012)\")"),
        "{}",
        r.body
    );
    let r = post(&trellis, "/query?p=int4:1", "SELECT 1");
    assert!(r.body.contains("InvalidParams"), "{}", r.body);
    // A type the WIT cannot carry faithfully says what to cast to.
    let r = post(&trellis, "/query", "SELECT '1 day'::interval AS d");
    assert!(
        r.body.contains("d::text") || r.body.contains("duration::text"),
        "{}",
        r.body
    );
    // The instance survived it all.
    assert_eq!(
        post(&trellis, "/query", "SELECT 2::int4 AS two").body,
        "two=PgValue::Int4(2)\n"
    );
}

#[test]
fn bounds_have_flags_and_link_config_and_stop_the_query_on_the_server() {
    let help = run(&["up", "--help"]);
    for flag in [
        "--pg-query-timeout",
        "--max-pg-rows",
        "--max-pg-bytes",
        "--max-pg-statement",
    ] {
        assert!(help.stdout.contains(flag), "{flag} in {}", help.stdout);
    }
    assert!(help.stdout.contains("[default: 10000]"), "{}", help.stdout);

    let dir = tempfile::tempdir().expect("tempdir");
    let trellis = deploy(
        dir.path(),
        &shared_server("                    POSTGRES_MAX_ROWS: '3'\n"),
        "",
        &[
            "--pg-query-timeout",
            "500ms",
            "--max-pg-bytes",
            "1KiB",
            "--max-pg-statement",
            "2KiB",
        ],
    );
    let r = post(&trellis, "/query", "SELECT generate_series(1, 3) AS n");
    assert_eq!(r.body.lines().count(), 3, "{}", r.body);
    let r = post(&trellis, "/query", "SELECT generate_series(1, 4) AS n");
    assert_eq!(r.status, 500);
    assert!(r.body.contains("more than 3 rows"), "{}", r.body);
    assert!(r.body.contains("POSTGRES_MAX_ROWS"), "{}", r.body);

    let r = post(&trellis, "/query", "SELECT repeat('x', 2000) AS s");
    assert_eq!(r.status, 500);
    assert!(r.body.contains("more than 1024 bytes"), "{}", r.body);
    assert!(r.body.contains("--max-pg-bytes"), "{}", r.body);

    let long = format!("SELECT 1 AS n -- {}", "x".repeat(3000));
    let r = post(&trellis, "/query", &long);
    assert!(r.body.contains("--max-pg-statement"), "{}", r.body);

    let marker = format!("trellis_sleep_{}", std::process::id());
    let started = Instant::now();
    let r = post(
        &trellis,
        "/query",
        &format!("SELECT pg_sleep(30) AS {marker}"),
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.status, 500);
    assert!(r.body.contains("did not finish within 500ms"), "{}", r.body);
    // Cancelled on the server, not left running.
    eventually("the sleep to be cancelled", Duration::from_secs(10), || {
        let running = psql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'trellis' AND query LIKE '%{marker}%'"
        ));
        (running == "0").then_some(())
    });
    assert_eq!(
        post(&trellis, "/query", "SELECT 1::int2 AS one").body,
        "one=PgValue::Int2(1)\n"
    );
}

/// A PostgreSQL cluster of the test's own on a free port, run as the `postgres` OS user;
/// stopped on drop.
struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl Cluster {
    fn create() -> Cluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect(
                "PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)",
            )
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("pg_ctl").is_file())
            .max()
            .expect("a PostgreSQL version with pg_ctl");
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .expect("chown");
        assert!(status.success());
        let cluster = Cluster {
            dir,
            bin,
            port: free_port(),
        };
        cluster.as_postgres(
            "initdb",
            &["-A", "trust", "-U", "postgres", "--no-sync", "-D"],
        );
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, tool: &str, args: &[&str]) {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .args(args)
            .arg(self.data())
            .output()
            .expect("runuser");
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log");
        self.as_postgres(
            "pg_ctl",
            &[
                "-w",
                "-o",
                &options,
                "-l",
                &log.to_string_lossy(),
                "start",
                "-D",
            ],
        );
    }

    fn stop(&self) {
        self.as_postgres("pg_ctl", &["-w", "-m", "fast", "stop", "-D"]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-m", "immediate", "stop", "-D"])
            .arg(self.data())
            .output();
    }
}

#[test]
fn a_stopped_server_fails_calls_clearly_and_they_work_again_when_it_returns() {
    let cluster = Cluster::create();
    cluster.start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "                    POSTGRES_HOST: 127.0.0.1\n\
         \x20                   POSTGRES_PORT: '{}'\n\
         \x20                   POSTGRES_USERNAME: postgres\n\
         \x20                   POSTGRES_DATABASE: postgres\n\
         \x20                   POSTGRES_CONNECT_TIMEOUT_MS: '2000'\n",
        cluster.port
    );
    let trellis = deploy(
        dir.path(),
        &config,
        "",
        &["--provider-health-interval", "300ms"],
    );
    let ask = || post(&trellis, "/query", "SELECT 41 + 1 AS answer");
    assert_eq!(ask().body, "answer=PgValue::Int4(42)\n");
    let token = post(&trellis, "/prepare", "SELECT 1").body;

    cluster.stop();
    let r = ask();
    assert_eq!(r.status, 500, "{}", r.body);
    let endpoint = format!("postgres at 127.0.0.1:{} is unreachable", cluster.port);
    assert!(r.body.contains(&endpoint), "{}", r.body);
    assert!(r.body.contains("start the server"), "{}", r.body);
    let r = post(&trellis, &format!("/exec?token={token}"), "");
    assert!(r.body.contains(&endpoint), "{}", r.body);
    let unhealthy =
        trellis.wait_for_stderr("capability provider is unhealthy", Duration::from_secs(20));
    let line = unhealthy
        .lines()
        .find(|l| l.contains("capability provider is unhealthy"))
        .expect("the line");
    assert!(line.contains(&endpoint), "{line}");

    cluster.start();
    let body = eventually("queries to work again", Duration::from_secs(20), || {
        let r = ask();
        (r.status == 200).then_some(r.body)
    });
    assert_eq!(body, "answer=PgValue::Int4(42)\n");
    // The token prepared before the outage still runs.
    assert_eq!(
        post(&trellis, &format!("/exec?token={token}"), "").body,
        "1"
    );
    trellis.wait_for_stderr(
        "capability provider is healthy again",
        Duration::from_secs(20),
    );
}
