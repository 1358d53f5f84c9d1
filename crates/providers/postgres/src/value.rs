//! The values of `wasmcloud:postgres/types@0.1.1-draft`, as plain Rust types.
//!
//! They mirror the WIT one to one (same variant names as the runtime's generated bindings,
//! same payload shapes), so that the runtime converts between the two mechanically and this
//! crate stays free of wasmtime. What each variant means on the wire is in `codec.rs`.

/// A float as `(mantissa, exponent, sign)`, the integer decoding of `num`'s `Float`:
/// the value is `sign * mantissa * 2^exponent`. The WIT uses it so that values can be
/// hashed and compared; [`float_from_parts`] and [`f64_parts`] convert.
pub type HashableF64 = (u64, i16, i8);

/// A point `(x, y)`.
pub type Point = (HashableF64, HashableF64);

/// `(number of bits, the bits packed most significant first)` for `bit`, or for
/// `bit-varying` `(length limit, bits)`.
pub type Bits = (u32, Vec<u8>);

/// The weight of a lexeme in a `tsvector`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LexemeWeight {
    /// Weight A.
    A,
    /// Weight B.
    B,
    /// Weight C.
    C,
    /// Weight D.
    D,
}

/// One lexeme of a `tsvector`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexeme {
    /// Position (1 to 16383).
    pub position: Option<u16>,
    /// Weight.
    pub weight: Option<LexemeWeight>,
    /// The word.
    pub data: String,
}

/// A time zone offset in seconds, east or west of UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// East of UTC (UTC+n).
    EasternHemisphereSecs(i32),
    /// West of UTC (UTC-n).
    WesternHemisphereSecs(i32),
}

impl Offset {
    /// Seconds east of UTC (negative for west).
    pub fn east_secs(self) -> i64 {
        match self {
            Offset::EasternHemisphereSecs(s) => i64::from(s),
            Offset::WesternHemisphereSecs(s) => -i64::from(s),
        }
    }
}

/// A calendar date, or one of PostgreSQL's infinities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Date {
    /// `infinity`.
    PositiveInfinity,
    /// `-infinity`.
    NegativeInfinity,
    /// `(year, month, day)`, proleptic Gregorian, year 0 = 1 BC.
    Ymd((i32, u32, u32)),
}

/// The WIT's `interval` record: two dates with their inclusiveness (a range, which is not
/// what PostgreSQL calls an interval; see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Start.
    pub start: Date,
    /// Whether the start is included.
    pub start_inclusive: bool,
    /// End.
    pub end: Date,
    /// Whether the end is included.
    pub end_inclusive: bool,
}

/// A time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    /// 0 to 23 (24 only for `24:00:00`).
    pub hour: u32,
    /// 0 to 59.
    pub min: u32,
    /// 0 to 59.
    pub sec: u32,
    /// 0 to 999999.
    pub micro: u32,
}

/// A time of day with a zone, for `timetz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeTz {
    /// The zone as an offset from UTC, `+HH:MM` or `-HH:MM` (seconds `:SS` when there are
    /// some). The field name is the WIT's, typo included.
    pub timesonze: String,
    /// The time of day in that zone.
    pub time: Time,
}

/// A date and time without a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// The date.
    pub date: Date,
    /// The time.
    pub time: Time,
}

/// A wall-clock date and time at an offset from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampTz {
    /// The local date and time at `offset`.
    pub timestamp: Timestamp,
    /// The offset from UTC.
    pub offset: Offset,
}

/// An EUI-48 MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacAddressEui48 {
    /// The six octets.
    pub bytes: (u8, u8, u8, u8, u8, u8),
}

/// An EUI-64 MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacAddressEui64 {
    /// The eight octets.
    pub bytes: (u8, u8, u8, u8, u8, u8, u8, u8),
}

/// A PostgreSQL value as `wasmcloud:postgres/types.pg-value` defines it. Several variants
/// are aliases of one another (`big-int`, `int8`, `big-serial`, `serial8`), as in the WIT;
/// results always use the one named after the column's type (see `codec.rs`).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq)]
pub enum PgValue {
    Null,
    BigInt(i64),
    Int8(i64),
    Int8Array(Vec<i64>),
    BigSerial(i64),
    Serial8(i64),
    Bool(bool),
    Boolean(bool),
    BoolArray(Vec<bool>),
    Double(HashableF64),
    Float8(HashableF64),
    Float8Array(Vec<HashableF64>),
    Real(HashableF64),
    Float4(HashableF64),
    Float4Array(Vec<HashableF64>),
    Integer(i32),
    Int(i32),
    Int4(i32),
    Int4Array(Vec<i32>),
    Numeric(String),
    Decimal(String),
    NumericArray(Vec<String>),
    Serial(u32),
    Serial4(u32),
    SmallInt(i16),
    Int2(i16),
    Int2Array(Vec<i16>),
    Int2Vector(Vec<i16>),
    Int2VectorArray(Vec<Vec<i16>>),
    SmallSerial(i16),
    Serial2(i16),
    Bit(Bits),
    BitArray(Vec<Bits>),
    BitVarying((Option<u32>, Vec<u8>)),
    Varbit((Option<u32>, Vec<u8>)),
    VarbitArray(Vec<(Option<u32>, Vec<u8>)>),
    Bytea(Vec<u8>),
    ByteaArray(Vec<Vec<u8>>),
    Char((u32, Vec<u8>)),
    CharArray(Vec<(u32, Vec<u8>)>),
    Varchar((Option<u32>, Vec<u8>)),
    VarcharArray(Vec<(Option<u32>, Vec<u8>)>),
    Cidr(String),
    CidrArray(Vec<String>),
    Inet(String),
    InetArray(Vec<String>),
    Macaddr(MacAddressEui48),
    MacaddrArray(Vec<MacAddressEui48>),
    Macaddr8(MacAddressEui64),
    Macaddr8Array(Vec<MacAddressEui64>),
    Box((Point, Point)),
    BoxArray(Vec<(Point, Point)>),
    Circle((Point, HashableF64)),
    CircleArray(Vec<(Point, HashableF64)>),
    Line((Point, Point)),
    LineArray(Vec<(Point, Point)>),
    Lseg((Point, Point)),
    LsegArray(Vec<(Point, Point)>),
    Path(Vec<Point>),
    PathArray(Vec<Vec<Point>>),
    Point(Point),
    PointArray(Vec<Point>),
    Polygon(Vec<Point>),
    PolygonArray(Vec<Vec<Point>>),
    Date(Date),
    DateArray(Vec<Date>),
    Interval(Interval),
    IntervalArray(Vec<Interval>),
    Time(Time),
    TimeArray(Vec<Time>),
    TimeTz(TimeTz),
    TimeTzArray(Vec<TimeTz>),
    Timestamp(Timestamp),
    TimestampArray(Vec<Timestamp>),
    TimestampTz(TimestampTz),
    TimestampTzArray(Vec<TimestampTz>),
    Json(String),
    JsonArray(Vec<String>),
    Jsonb(String),
    JsonbArray(Vec<String>),
    Money(String),
    MoneyArray(Vec<String>),
    PgLsn(u64),
    PgLsnArray(Vec<u64>),
    PgSnapshot((i64, i64, Vec<i64>)),
    TxidSnapshot(i64),
    Name(String),
    NameArray(Vec<String>),
    Text(String),
    TextArray(Vec<String>),
    Xml(String),
    XmlArray(Vec<String>),
    TsQuery(String),
    TsVector(Vec<Lexeme>),
    Uuid(String),
    UuidArray(Vec<String>),
    Hstore(Vec<(String, Option<String>)>),
}

/// One column of a result row.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRowEntry {
    /// The column's name.
    pub column_name: String,
    /// Its value.
    pub value: PgValue,
}

/// A result row: its columns in order.
pub type ResultRow = Vec<ResultRowEntry>;

/// `f64`'s integer decoding: `(mantissa, exponent, sign)` with `value = sign * mantissa *
/// 2^exponent` (as `num_traits::Float::integer_decode`).
pub fn f64_parts(f: f64) -> HashableF64 {
    let bits = f.to_bits();
    let sign: i8 = if bits >> 63 == 0 { 1 } else { -1 };
    // Eleven bits: always fits.
    let exponent = ((bits >> 52) & 0x7ff) as i16;
    let mantissa = if exponent == 0 {
        (bits & 0xf_ffff_ffff_ffff) << 1
    } else {
        (bits & 0xf_ffff_ffff_ffff) | 0x10_0000_0000_0000
    };
    (mantissa, exponent - (1023 + 52), sign)
}

/// `f32`'s integer decoding, as [`f64_parts`] for `f32` (what `float4` results carry).
pub fn f32_parts(f: f32) -> HashableF64 {
    let bits = f.to_bits();
    let sign: i8 = if bits >> 31 == 0 { 1 } else { -1 };
    // Eight bits: always fits.
    let exponent = ((bits >> 23) & 0xff) as i16;
    let mantissa = if exponent == 0 {
        (bits & 0x7f_ffff) << 1
    } else {
        (bits & 0x7f_ffff) | 0x80_0000
    };
    (u64::from(mantissa), exponent - (127 + 23), sign)
}

/// The float `sign * mantissa * 2^exponent`, exact whenever the value is an `f64` (as
/// every value made by [`f64_parts`] or [`f32_parts`] is). NaN decodes to infinity, as
/// the integer decoding cannot tell them apart.
pub fn float_from_parts((mantissa, exponent, sign): HashableF64) -> f64 {
    // Lossless for every mantissa an f64 or f32 decodes to (at most 53 bits).
    #[allow(clippy::cast_precision_loss)]
    let mut value = mantissa as f64;
    let mut e = i32::from(exponent);
    // Scale in steps that stay within f64's normal range, so that small results come out
    // exact instead of flushing through an overflowing 2^-e.
    while e != 0 {
        let step = e.clamp(-1000, 1000);
        value *= 2f64.powi(step);
        e -= step;
    }
    if sign < 0 { -value } else { value }
}

impl PgValue {
    /// The size the value's data takes, in bytes: strings and byte strings by length,
    /// numbers by width, lists as the sum of their items. What the bound on bytes returned
    /// counts.
    pub fn data_size(&self) -> usize {
        fn strings(v: &[String]) -> usize {
            v.iter().map(String::len).sum()
        }
        const F: usize = 8;
        const POINT: usize = 16;
        match self {
            PgValue::Null => 0,
            PgValue::Bool(_) | PgValue::Boolean(_) => 1,
            PgValue::BoolArray(v) => v.len(),
            PgValue::SmallInt(_)
            | PgValue::Int2(_)
            | PgValue::SmallSerial(_)
            | PgValue::Serial2(_) => 2,
            PgValue::Int2Array(v) | PgValue::Int2Vector(v) => 2 * v.len(),
            PgValue::Int2VectorArray(v) => v.iter().map(|x| 2 * x.len()).sum(),
            PgValue::Integer(_)
            | PgValue::Int(_)
            | PgValue::Int4(_)
            | PgValue::Serial(_)
            | PgValue::Serial4(_) => 4,
            PgValue::Int4Array(v) => 4 * v.len(),
            PgValue::BigInt(_)
            | PgValue::Int8(_)
            | PgValue::BigSerial(_)
            | PgValue::Serial8(_)
            | PgValue::PgLsn(_)
            | PgValue::TxidSnapshot(_)
            | PgValue::Double(_)
            | PgValue::Float8(_)
            | PgValue::Real(_)
            | PgValue::Float4(_) => F,
            PgValue::Int8Array(v) => F * v.len(),
            PgValue::PgLsnArray(v) => F * v.len(),
            PgValue::Float8Array(v) | PgValue::Float4Array(v) => F * v.len(),
            PgValue::Numeric(s)
            | PgValue::Decimal(s)
            | PgValue::Money(s)
            | PgValue::Cidr(s)
            | PgValue::Inet(s)
            | PgValue::Json(s)
            | PgValue::Jsonb(s)
            | PgValue::Name(s)
            | PgValue::Text(s)
            | PgValue::Xml(s)
            | PgValue::TsQuery(s)
            | PgValue::Uuid(s) => s.len(),
            PgValue::NumericArray(v)
            | PgValue::MoneyArray(v)
            | PgValue::CidrArray(v)
            | PgValue::InetArray(v)
            | PgValue::JsonArray(v)
            | PgValue::JsonbArray(v)
            | PgValue::NameArray(v)
            | PgValue::TextArray(v)
            | PgValue::XmlArray(v)
            | PgValue::UuidArray(v) => strings(v),
            PgValue::Bit((_, b))
            | PgValue::Char((_, b))
            | PgValue::BitVarying((_, b))
            | PgValue::Varbit((_, b))
            | PgValue::Varchar((_, b))
            | PgValue::Bytea(b) => b.len(),
            PgValue::BitArray(v) | PgValue::CharArray(v) => v.iter().map(|(_, b)| b.len()).sum(),
            PgValue::VarbitArray(v) | PgValue::VarcharArray(v) => {
                v.iter().map(|(_, b)| b.len()).sum()
            }
            PgValue::ByteaArray(v) => v.iter().map(Vec::len).sum(),
            PgValue::Macaddr(_) => 6,
            PgValue::MacaddrArray(v) => 6 * v.len(),
            PgValue::Macaddr8(_) => 8,
            PgValue::Macaddr8Array(v) => 8 * v.len(),
            PgValue::Point(_) => POINT,
            PgValue::PointArray(v) | PgValue::Path(v) | PgValue::Polygon(v) => POINT * v.len(),
            PgValue::PathArray(v) | PgValue::PolygonArray(v) => {
                v.iter().map(|p| POINT * p.len()).sum()
            }
            PgValue::Box(_) | PgValue::Line(_) | PgValue::Lseg(_) => 2 * POINT,
            PgValue::BoxArray(v) | PgValue::LineArray(v) | PgValue::LsegArray(v) => {
                2 * POINT * v.len()
            }
            PgValue::Circle(_) => POINT + F,
            PgValue::CircleArray(v) => (POINT + F) * v.len(),
            PgValue::Date(_) => 4,
            PgValue::DateArray(v) => 4 * v.len(),
            PgValue::Interval(_) => 10,
            PgValue::IntervalArray(v) => 10 * v.len(),
            PgValue::Time(_) => F,
            PgValue::TimeArray(v) => F * v.len(),
            PgValue::TimeTz(t) => F + t.timesonze.len(),
            PgValue::TimeTzArray(v) => v.iter().map(|t| F + t.timesonze.len()).sum(),
            PgValue::Timestamp(_) | PgValue::TimestampTz(_) => F,
            PgValue::TimestampArray(v) => F * v.len(),
            PgValue::TimestampTzArray(v) => F * v.len(),
            PgValue::PgSnapshot((_, _, xs)) => 16 + F * xs.len(),
            PgValue::TsVector(v) => v.iter().map(|l| 4 + l.data.len()).sum(),
            PgValue::Hstore(v) => v
                .iter()
                .map(|(k, val)| k.len() + val.as_ref().map_or(0, String::len))
                .sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_survive_their_integer_decoding() {
        for f in [
            0.0,
            -0.0,
            1.0,
            -1.5,
            std::f64::consts::PI,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let back = float_from_parts(f64_parts(f));
            assert_eq!(back.to_bits(), f.to_bits(), "{f}");
        }
        for f in [0.5f32, -3.25, f32::MAX, f32::MIN_POSITIVE, 1e-45] {
            let back = float_from_parts(f32_parts(f));
            // Exact: the f32 is an f64 too.
            #[allow(clippy::cast_possible_truncation)]
            let back = back as f32;
            assert_eq!(back.to_bits(), f.to_bits(), "{f}");
        }
        // As num_traits decodes 1.0.
        assert_eq!(f64_parts(1.0), (1 << 52, -52, 1));
        assert_eq!(f32_parts(1.0), (1 << 23, -23, 1));
    }
}
