//! `wasmcloud:postgres/{query,prepared}@0.1.1-draft` on a [`trellis_postgres::Postgres`].
//!
//! The generated WIT types and `trellis_postgres::value`'s mirror each other one to one;
//! [`Conv`] converts between them field by field. Prepared statements belong to the
//! component and the link they were prepared through: the owner handed to the backend is
//! `component id` + link name, so one component cannot run another's tokens, and a token
//! outlives the instance that made it (the next request's instance can run it), as with
//! wasmCloud's provider.

use super::Linked;
use super::bindings::wasmcloud::postgres::{prepared, query, types as wit};
use trellis_control::ComponentId;
use trellis_postgres::value as pg;
use trellis_postgres::{ExecError, Limits, Postgres, PrepareError, QueryError};
use wasmtime::component::{HasData, Linker};

/// What the Postgres bindings see of an instance: its links for each interface, who it is
/// (statements belong to a component's link) and the host's bounds.
pub(crate) struct PostgresView<'a> {
    /// The link `query` calls go through, if any.
    pub(crate) query: Option<&'a Linked<Postgres>>,
    /// Its link name.
    pub(crate) query_link_name: &'a str,
    /// The link `prepared` calls go through, if any.
    pub(crate) prepared: Option<&'a Linked<Postgres>>,
    /// Its link name.
    pub(crate) prepared_link_name: &'a str,
    /// The component, which owns the statements it prepares.
    pub(crate) component_id: &'a ComponentId,
    /// The host's Postgres bounds.
    pub(crate) limits: &'a Limits,
    /// Where its operations are reported.
    pub(crate) observing: super::Observing<'a>,
}

/// Adds `wasmcloud:postgres/{types,query,prepared}` to `linker`; `view` picks out what these
/// bindings need from the store's data, so they never name the store's type.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> PostgresView<'_>,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasPostgres>(linker, view)?;
    query::add_to_linker::<T, HasPostgres>(linker, view)?;
    prepared::add_to_linker::<T, HasPostgres>(linker, view)?;
    Ok(())
}

/// Tells the generated `add_to_linker` functions that the host traits are implemented by a
/// [`PostgresView`] borrowed from the store.
struct HasPostgres;

impl HasData for HasPostgres {
    type Data<'a> = PostgresView<'a>;
}

fn backend(
    linked: Option<&Linked<Postgres>>,
    link_name: &str,
) -> Result<std::sync::Arc<Postgres>, String> {
    match linked {
        Some(linked) => linked.ready().cloned(),
        None => Err(super::no_link("postgres", link_name)),
    }
}

impl PostgresView<'_> {
    /// Runs `operation` through `linked`, traced and counted.
    async fn traced<T, E>(
        &self,
        linked: Option<&Linked<Postgres>>,
        operation: &'static str,
        operation_future: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        self.observing
            .traced(linked, "postgres", operation, operation_future)
            .await
    }
}

fn owner(component_id: &ComponentId, link_name: &str) -> String {
    format!("{component_id}/{link_name}")
}

impl wit::Host for PostgresView<'_> {}

impl query::Host for PostgresView<'_> {
    async fn query(
        &mut self,
        sql: String,
        params: Vec<wit::PgValue>,
    ) -> wasmtime::Result<Result<Vec<wit::ResultRow>, wit::QueryError>> {
        let db = match backend(self.query, self.query_link_name) {
            Ok(db) => db,
            Err(e) => return Ok(Err(wit::QueryError::Unexpected(e))),
        };
        let params: Vec<pg::PgValue> = params.conv();
        let query = db.query(&sql, &params, self.limits);
        Ok(self
            .traced(self.query, "query", query)
            .await
            .map(Conv::conv)
            .map_err(Conv::conv))
    }

    async fn query_batch(&mut self, sql: String) -> wasmtime::Result<Result<(), wit::QueryError>> {
        let db = match backend(self.query, self.query_link_name) {
            Ok(db) => db,
            Err(e) => return Ok(Err(wit::QueryError::Unexpected(e))),
        };
        let batch = db.query_batch(&sql, self.limits);
        Ok(self
            .traced(self.query, "query-batch", batch)
            .await
            .map_err(Conv::conv))
    }
}

impl prepared::Host for PostgresView<'_> {
    async fn prepare(
        &mut self,
        statement: String,
    ) -> wasmtime::Result<Result<String, wit::StatementPrepareError>> {
        let db = match backend(self.prepared, self.prepared_link_name) {
            Ok(db) => db,
            Err(e) => return Ok(Err(wit::StatementPrepareError::Unexpected(e))),
        };
        let owner = owner(self.component_id, self.prepared_link_name);
        let prepare = db.prepare(&owner, &statement, self.limits);
        Ok(self
            .traced(self.prepared, "prepare", prepare)
            .await
            .map_err(|PrepareError::Unexpected(e)| wit::StatementPrepareError::Unexpected(e)))
    }

    async fn exec(
        &mut self,
        token: String,
        params: Vec<wit::PgValue>,
    ) -> wasmtime::Result<Result<u64, wit::PreparedStatementExecError>> {
        let db = match backend(self.prepared, self.prepared_link_name) {
            Ok(db) => db,
            Err(e) => return Ok(Err(wit::PreparedStatementExecError::Unexpected(e))),
        };
        let owner = owner(self.component_id, self.prepared_link_name);
        let params: Vec<pg::PgValue> = params.conv();
        let exec = db.exec(&owner, &token, &params, self.limits);
        Ok(self
            .traced(self.prepared, "exec", exec)
            .await
            .map_err(|e| match e {
                ExecError::UnknownPreparedQuery => {
                    wit::PreparedStatementExecError::UnknownPreparedQuery
                }
                ExecError::QueryError(e) => wit::PreparedStatementExecError::QueryError(e.conv()),
                ExecError::Unexpected(e) => wit::PreparedStatementExecError::Unexpected(e),
            }))
    }
}

/// A conversion between a generated WIT type and its `trellis_postgres` twin.
trait Conv<T> {
    fn conv(self) -> T;
}

macro_rules! same {
    ($($t:ty),*) => {
        $(impl Conv<$t> for $t {
            fn conv(self) -> $t {
                self
            }
        })*
    };
}
same!(bool, u8, u16, u32, u64, i8, i16, i32, i64, String);

impl<A: Conv<B>, B> Conv<Vec<B>> for Vec<A> {
    fn conv(self) -> Vec<B> {
        self.into_iter().map(Conv::conv).collect()
    }
}

impl<A: Conv<B>, B> Conv<Option<B>> for Option<A> {
    fn conv(self) -> Option<B> {
        self.map(Conv::conv)
    }
}

impl<A1: Conv<B1>, A2: Conv<B2>, B1, B2> Conv<(B1, B2)> for (A1, A2) {
    fn conv(self) -> (B1, B2) {
        (self.0.conv(), self.1.conv())
    }
}

impl<A1: Conv<B1>, A2: Conv<B2>, A3: Conv<B3>, B1, B2, B3> Conv<(B1, B2, B3)> for (A1, A2, A3) {
    fn conv(self) -> (B1, B2, B3) {
        (self.0.conv(), self.1.conv(), self.2.conv())
    }
}

/// Both directions of a conversion between twins: `$a` and `$b` name the two types, then
/// one arm per shape (unit variants, newtype variants, record fields).
macro_rules! twins {
    (enum $a:path, $b:path; units: [$($u:ident),*]; values: [$($v:ident),*]) => {
        twins!(@enum $a => $b; [$($u),*]; [$($v),*]);
        twins!(@enum $b => $a; [$($u),*]; [$($v),*]);
    };
    (@enum $from:path => $to:path; [$($u:ident),*]; [$($v:ident),*]) => {
        impl Conv<$to> for $from {
            fn conv(self) -> $to {
                use $from as Src;
                use $to as Dst;
                match self {
                    $(Src::$u => Dst::$u,)*
                    $(Src::$v(x) => Dst::$v(x.conv()),)*
                }
            }
        }
    };
    (struct $a:path, $b:path; [$($f:ident),*]) => {
        twins!(@struct $a => $b; [$($f),*]);
        twins!(@struct $b => $a; [$($f),*]);
    };
    (@struct $from:path => $to:path; [$($f:ident),*]) => {
        impl Conv<$to> for $from {
            fn conv(self) -> $to {
                use $to as Dst;
                Dst { $($f: self.$f.conv(),)* }
            }
        }
    };
}

twins!(enum wit::LexemeWeight, pg::LexemeWeight; units: [A, B, C, D]; values: []);
twins!(enum wit::Offset, pg::Offset; units: []; values: [EasternHemisphereSecs, WesternHemisphereSecs]);
twins!(enum wit::Date, pg::Date; units: [PositiveInfinity, NegativeInfinity]; values: [Ymd]);
twins!(struct wit::Lexeme, pg::Lexeme; [position, weight, data]);
twins!(struct wit::Interval, pg::Interval; [start, start_inclusive, end, end_inclusive]);
twins!(struct wit::Time, pg::Time; [hour, min, sec, micro]);
twins!(struct wit::TimeTz, pg::TimeTz; [timesonze, time]);
twins!(struct wit::Timestamp, pg::Timestamp; [date, time]);
twins!(struct wit::TimestampTz, pg::TimestampTz; [timestamp, offset]);
twins!(struct wit::ResultRowEntry, pg::ResultRowEntry; [column_name, value]);
twins!(enum wit::QueryError, QueryError; units: []; values: [InvalidParams, InvalidQuery, Unexpected]);

impl Conv<pg::MacAddressEui48> for wit::MacAddressEui48 {
    fn conv(self) -> pg::MacAddressEui48 {
        pg::MacAddressEui48 { bytes: self.bytes }
    }
}

impl Conv<wit::MacAddressEui48> for pg::MacAddressEui48 {
    fn conv(self) -> wit::MacAddressEui48 {
        wit::MacAddressEui48 { bytes: self.bytes }
    }
}

impl Conv<pg::MacAddressEui64> for wit::MacAddressEui64 {
    fn conv(self) -> pg::MacAddressEui64 {
        pg::MacAddressEui64 { bytes: self.bytes }
    }
}

impl Conv<wit::MacAddressEui64> for pg::MacAddressEui64 {
    fn conv(self) -> wit::MacAddressEui64 {
        wit::MacAddressEui64 { bytes: self.bytes }
    }
}

twins!(enum wit::PgValue, pg::PgValue; units: [Null]; values: [
    BigInt, Int8, Int8Array, BigSerial, Serial8, Bool, Boolean, BoolArray, Double, Float8,
    Float8Array, Real, Float4, Float4Array, Integer, Int, Int4, Int4Array, Numeric, Decimal,
    NumericArray, Serial, Serial4, SmallInt, Int2, Int2Array, Int2Vector, Int2VectorArray,
    SmallSerial, Serial2, Bit, BitArray, BitVarying, Varbit, VarbitArray, Bytea, ByteaArray,
    Char, CharArray, Varchar, VarcharArray, Cidr, CidrArray, Inet, InetArray, Macaddr,
    MacaddrArray, Macaddr8, Macaddr8Array, Box, BoxArray, Circle, CircleArray, Line, LineArray,
    Lseg, LsegArray, Path, PathArray, Point, PointArray, Polygon, PolygonArray, Date, DateArray,
    Interval, IntervalArray, Time, TimeArray, TimeTz, TimeTzArray, Timestamp, TimestampArray,
    TimestampTz, TimestampTzArray, Json, JsonArray, Jsonb, JsonbArray, Money, MoneyArray, PgLsn,
    PgLsnArray, PgSnapshot, TxidSnapshot, Name, NameArray, Text, TextArray, Xml, XmlArray,
    TsQuery, TsVector, Uuid, UuidArray, Hstore
]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cross_the_boundary_unchanged() {
        let values = vec![
            pg::PgValue::Null,
            pg::PgValue::Int8(-1),
            pg::PgValue::Float4((1, -2, -1)),
            pg::PgValue::TimestampTz(pg::TimestampTz {
                timestamp: pg::Timestamp {
                    date: pg::Date::Ymd((2024, 2, 29)),
                    time: pg::Time {
                        hour: 1,
                        min: 2,
                        sec: 3,
                        micro: 4,
                    },
                },
                offset: pg::Offset::EasternHemisphereSecs(3600),
            }),
            pg::PgValue::MacaddrArray(vec![pg::MacAddressEui48 {
                bytes: (1, 2, 3, 4, 5, 6),
            }]),
            pg::PgValue::TsVector(vec![pg::Lexeme {
                position: Some(1),
                weight: Some(pg::LexemeWeight::B),
                data: "word".into(),
            }]),
            pg::PgValue::Hstore(vec![("k".into(), None)]),
            pg::PgValue::Varchar((Some(3), b"abc".to_vec())),
        ];
        let wit: Vec<wit::PgValue> = values.clone().conv();
        let back: Vec<pg::PgValue> = wit.conv();
        assert_eq!(back, values);
    }
}
