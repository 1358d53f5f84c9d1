//! [`PgValue`]s to and from PostgreSQL's binary wire format.
//!
//! Parameters are encoded for the type PostgreSQL inferred for each `$n` (the statement is
//! prepared first), so a value is accepted wherever it fits: any integer variant for
//! `int2`/`int4`/`int8`/`numeric`/`float*` (range-checked), any text variant for the text
//! types, enums, `json` and `jsonb`. Results are decoded by the column's type into the
//! variant named after it (`int8` → `int8`, never `big-int`). A type or variant that has no
//! faithful mapping is an error that says what to cast to; the table is in the crate docs.

use crate::value::{
    Date, HashableF64, MacAddressEui48, MacAddressEui64, Offset, PgValue, Point, Time, TimeTz,
    Timestamp, TimestampTz, f32_parts, f64_parts, float_from_parts,
};
use bytes::{BufMut, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::types as wire;
use std::error::Error;
use std::fmt::Write as _;
use std::net::IpAddr;
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};

type BoxError = Box<dyn Error + Sync + Send>;

/// A guest's value as a statement parameter.
#[derive(Debug)]
pub(crate) struct Param<'a>(pub(crate) &'a PgValue);

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        encode(self.0, ty, out)
    }

    // Every type is "accepted" so that `to_sql` can say precisely what does not fit.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for PgValue {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        decode(ty, raw)
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(PgValue::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The WIT name of `v`'s variant, for messages (`int8`, `text`, …).
pub(crate) fn variant_name(v: &PgValue) -> String {
    /// Stops formatting once the variant's name is written, so a large value costs nothing.
    struct UpToParen(String);
    impl std::fmt::Write for UpToParen {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            match s.find('(') {
                Some(i) => {
                    self.0.push_str(&s[..i]);
                    Err(std::fmt::Error)
                }
                None => {
                    self.0.push_str(s);
                    Ok(())
                }
            }
        }
    }
    let mut name = UpToParen(String::new());
    let _ = write!(name, "{v:?}");
    // CamelCase to the WIT's kebab-case.
    let mut out = String::new();
    for (i, c) in name.0.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn mismatch(v: &PgValue, ty: &Type) -> BoxError {
    format!(
        "a `{}` value cannot be sent as PostgreSQL type `{}`",
        variant_name(v),
        ty.name()
    )
    .into()
}

fn unsupported(what: &str, instead: &str) -> BoxError {
    format!("{what} is not supported by this provider; {instead}").into()
}

fn is_text_type(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::XML | Type::UNKNOWN
    ) || matches!(ty.kind(), Kind::Enum(_))
        || ty.name() == "citext"
}

fn encode_text(bytes: &[u8], v: &PgValue, ty: &Type, out: &mut BytesMut) -> Result<(), BoxError> {
    if is_text_type(ty) || *ty == Type::JSON {
        out.put_slice(bytes);
    } else if *ty == Type::JSONB {
        out.put_u8(1);
        out.put_slice(bytes);
    } else if *ty == Type::CHAR && bytes.len() == 1 {
        out.put_slice(bytes);
    } else {
        return Err(mismatch(v, ty));
    }
    Ok(())
}

fn encode_int(n: i64, v: &PgValue, ty: &Type, out: &mut BytesMut) -> Result<(), BoxError> {
    let out_of_range = || -> BoxError {
        format!(
            "{n} (a `{}` value) is out of range for PostgreSQL type `{}`",
            variant_name(v),
            ty.name()
        )
        .into()
    };
    match *ty {
        Type::INT2 => wire::int2_to_sql(i16::try_from(n).map_err(|_| out_of_range())?, out),
        Type::INT4 => wire::int4_to_sql(i32::try_from(n).map_err(|_| out_of_range())?, out),
        Type::INT8 => wire::int8_to_sql(n, out),
        Type::OID => wire::oid_to_sql(u32::try_from(n).map_err(|_| out_of_range())?, out),
        Type::NUMERIC => numeric_to_sql(&n.to_string(), out)?,
        // Exact up to 2^53, as a float literal would be.
        #[allow(clippy::cast_precision_loss)]
        Type::FLOAT8 => wire::float8_to_sql(n as f64, out),
        #[allow(clippy::cast_precision_loss)]
        Type::FLOAT4 => wire::float4_to_sql(n as f32, out),
        _ => return Err(mismatch(v, ty)),
    }
    Ok(())
}

fn encode_float(
    f: HashableF64,
    v: &PgValue,
    ty: &Type,
    out: &mut BytesMut,
) -> Result<(), BoxError> {
    let f = float_from_parts(f);
    match *ty {
        Type::FLOAT8 => wire::float8_to_sql(f, out),
        // The value came from an f32 when the guest sent a `real`/`float4`; otherwise
        // narrowing is what PostgreSQL itself does with a float8 for a float4 column.
        #[allow(clippy::cast_possible_truncation)]
        Type::FLOAT4 => wire::float4_to_sql(f as f32, out),
        Type::NUMERIC => numeric_to_sql(&f.to_string(), out)?,
        _ => return Err(mismatch(v, ty)),
    }
    Ok(())
}

fn expect(v: &PgValue, ty: &Type, types: &[Type]) -> Result<(), BoxError> {
    if types.contains(ty) {
        Ok(())
    } else {
        Err(mismatch(v, ty))
    }
}

fn point_of((x, y): &Point) -> (f64, f64) {
    (float_from_parts(*x), float_from_parts(*y))
}

fn put_point(p: &Point, out: &mut BytesMut) {
    let (x, y) = point_of(p);
    out.put_f64(x);
    out.put_f64(y);
}

fn count(n: usize) -> Result<i32, BoxError> {
    i32::try_from(n).map_err(|_| "too many elements".into())
}

/// Encodes `v` for a parameter of type `ty`.
pub(crate) fn encode(v: &PgValue, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    use PgValue as V;
    match v {
        V::Null => return Ok(IsNull::Yes),
        V::BigInt(n) | V::Int8(n) | V::BigSerial(n) | V::Serial8(n) => encode_int(*n, v, ty, out)?,
        V::Integer(n) | V::Int(n) | V::Int4(n) => encode_int((*n).into(), v, ty, out)?,
        V::Serial(n) | V::Serial4(n) => encode_int((*n).into(), v, ty, out)?,
        V::SmallInt(n) | V::Int2(n) | V::SmallSerial(n) | V::Serial2(n) => {
            encode_int((*n).into(), v, ty, out)?
        }
        V::Bool(b) | V::Boolean(b) => {
            expect(v, ty, &[Type::BOOL])?;
            wire::bool_to_sql(*b, out);
        }
        V::Double(f) | V::Float8(f) | V::Real(f) | V::Float4(f) => encode_float(*f, v, ty, out)?,
        V::Numeric(s) | V::Decimal(s) => match *ty {
            Type::NUMERIC => numeric_to_sql(s, out)?,
            _ => return Err(mismatch(v, ty)),
        },
        V::Money(_) | V::MoneyArray(_) => {
            return Err(unsupported(
                "`money`",
                "send a `numeric` and cast it in the query, as in `$1::numeric::money`",
            ));
        }
        V::Text(s) | V::Name(s) | V::Xml(s) => encode_text(s.as_bytes(), v, ty, out)?,
        V::Char((len, bytes)) => {
            if bytes.len() != *len as usize {
                return Err(format!(
                    "a `char` value says it has {len} bytes but carries {}",
                    bytes.len()
                )
                .into());
            }
            encode_text(bytes, v, ty, out)?;
        }
        V::Varchar((limit, bytes)) => {
            if let Some(limit) = limit
                && bytes.len() > *limit as usize
            {
                return Err(format!(
                    "a `varchar` value of {} bytes is over its limit of {limit}",
                    bytes.len()
                )
                .into());
            }
            encode_text(bytes, v, ty, out)?;
        }
        V::Bytea(b) => {
            expect(v, ty, &[Type::BYTEA])?;
            wire::bytea_to_sql(b, out);
        }
        V::Bit((bits, bytes)) => {
            expect(v, ty, &[Type::BIT, Type::VARBIT])?;
            if bytes.len() != (*bits as usize).div_ceil(8) {
                return Err(format!(
                    "a `bit` value of {bits} bits needs {} bytes, not {}",
                    (*bits as usize).div_ceil(8),
                    bytes.len()
                )
                .into());
            }
            wire::varbit_to_sql(*bits as usize, bytes.iter().copied(), out)?;
        }
        V::BitVarying((limit, bytes)) | V::Varbit((limit, bytes)) => {
            expect(v, ty, &[Type::BIT, Type::VARBIT])?;
            let bits = bytes.len() * 8;
            if let Some(limit) = limit
                && bits > *limit as usize
            {
                return Err(format!(
                    "a `bit-varying` value of {bits} bits is over its limit of {limit}"
                )
                .into());
            }
            wire::varbit_to_sql(bits, bytes.iter().copied(), out)?;
        }
        V::Json(s) | V::Jsonb(s) => match *ty {
            Type::JSON => out.put_slice(s.as_bytes()),
            Type::JSONB => {
                out.put_u8(1);
                out.put_slice(s.as_bytes());
            }
            _ if is_text_type(ty) => out.put_slice(s.as_bytes()),
            _ => return Err(mismatch(v, ty)),
        },
        V::Uuid(s) => {
            expect(v, ty, &[Type::UUID])?;
            let u = uuid::Uuid::parse_str(s).map_err(|e| format!("`{s}` is not a UUID: {e}"))?;
            wire::uuid_to_sql(*u.as_bytes(), out);
        }
        V::Inet(s) | V::Cidr(s) => {
            expect(v, ty, &[Type::INET, Type::CIDR])?;
            let (addr, mask) = parse_inet(s)?;
            wire::inet_to_sql(addr, mask, out);
        }
        V::Macaddr(m) => {
            expect(v, ty, &[Type::MACADDR])?;
            let b = m.bytes;
            wire::macaddr_to_sql([b.0, b.1, b.2, b.3, b.4, b.5], out);
        }
        V::Macaddr8(m) => {
            expect(v, ty, &[Type::MACADDR8])?;
            let b = m.bytes;
            out.put_slice(&[b.0, b.1, b.2, b.3, b.4, b.5, b.6, b.7]);
        }
        V::Point(p) => {
            expect(v, ty, &[Type::POINT])?;
            put_point(p, out);
        }
        V::Box((lower_left, upper_right)) => {
            expect(v, ty, &[Type::BOX])?;
            let (x1, y1) = point_of(upper_right);
            let (x2, y2) = point_of(lower_left);
            wire::box_to_sql(x1, y1, x2, y2, out);
        }
        V::Lseg((a, b)) => {
            expect(v, ty, &[Type::LSEG])?;
            put_point(a, out);
            put_point(b, out);
        }
        V::Line((a, b)) => {
            expect(v, ty, &[Type::LINE])?;
            let ((x1, y1), (x2, y2)) = (point_of(a), point_of(b));
            if x1 == x2 && y1 == y2 {
                return Err("a `line` needs two distinct points".into());
            }
            // The line through both points as Ax + By + C = 0, PostgreSQL's form.
            let a = y2 - y1;
            let b = x1 - x2;
            out.put_f64(a);
            out.put_f64(b);
            out.put_f64(-(a * x1 + b * y1));
        }
        V::Path(points) => {
            expect(v, ty, &[Type::PATH])?;
            wire::path_to_sql(false, points.iter().map(point_of), out)?;
        }
        V::Polygon(points) => {
            expect(v, ty, &[Type::POLYGON])?;
            out.put_i32(count(points.len())?);
            for p in points {
                put_point(p, out);
            }
        }
        V::Circle((center, radius)) => {
            expect(v, ty, &[Type::CIRCLE])?;
            put_point(center, out);
            out.put_f64(float_from_parts(*radius));
        }
        V::Date(d) => {
            expect(v, ty, &[Type::DATE])?;
            wire::date_to_sql(date_to_days(d)?, out);
        }
        V::Time(t) => {
            expect(v, ty, &[Type::TIME])?;
            wire::time_to_sql(time_to_micros(t)?, out);
        }
        V::TimeTz(t) => {
            expect(v, ty, &[Type::TIMETZ])?;
            out.put_i64(time_to_micros(&t.time)?);
            // PostgreSQL counts seconds west of UTC.
            out.put_i32(-parse_zone(&t.timesonze)?);
        }
        V::Timestamp(ts) => {
            expect(v, ty, &[Type::TIMESTAMP])?;
            wire::timestamp_to_sql(timestamp_to_micros(ts)?, out);
        }
        V::TimestampTz(tz) => {
            expect(v, ty, &[Type::TIMESTAMPTZ])?;
            let local = timestamp_to_micros(&tz.timestamp)?;
            let utc = if local == i64::MAX || local == i64::MIN {
                local
            } else {
                local
                    .checked_sub(tz.offset.east_secs() * 1_000_000)
                    .ok_or("timestamp out of range")?
            };
            wire::timestamp_to_sql(utc, out);
        }
        V::Interval(_) | V::IntervalArray(_) => {
            return Err(unsupported(
                "`interval` (the WIT's interval is a pair of dates, not PostgreSQL's interval)",
                "send the interval as text and cast it, as in `$1::text::interval`",
            ));
        }
        V::TimeTzArray(items) => {
            return encode_array(ty, items.iter().cloned().map(V::TimeTz), v, out);
        }
        V::PgLsn(n) => {
            expect(v, ty, &[Type::PG_LSN])?;
            wire::lsn_to_sql(*n, out);
        }
        V::PgSnapshot((xmin, xmax, xips)) => {
            expect(v, ty, &[Type::PG_SNAPSHOT, Type::TXID_SNAPSHOT])?;
            out.put_i32(count(xips.len())?);
            out.put_i64(*xmin);
            out.put_i64(*xmax);
            for x in xips {
                out.put_i64(*x);
            }
        }
        V::TxidSnapshot(_) => {
            return Err(unsupported(
                "`txid-snapshot` (one number cannot hold a snapshot)",
                "use `pg-snapshot`",
            ));
        }
        V::TsQuery(_) | V::TsVector(_) => {
            return Err(unsupported(
                "`ts-query`/`ts-vector`",
                "send text and cast it, as in `$1::text::tsquery` or `to_tsvector($1)`",
            ));
        }
        V::Hstore(pairs) => {
            if ty.name() != "hstore" {
                return Err(mismatch(v, ty));
            }
            wire::hstore_to_sql(pairs.iter().map(|(k, v)| (k.as_str(), v.as_deref())), out)?;
        }
        V::Int8Array(x) => return encode_array(ty, x.iter().map(|n| V::Int8(*n)), v, out),
        V::BoolArray(x) => return encode_array(ty, x.iter().map(|b| V::Bool(*b)), v, out),
        V::Float8Array(x) => return encode_array(ty, x.iter().map(|f| V::Float8(*f)), v, out),
        V::Float4Array(x) => return encode_array(ty, x.iter().map(|f| V::Float4(*f)), v, out),
        V::Int4Array(x) => return encode_array(ty, x.iter().map(|n| V::Int4(*n)), v, out),
        V::NumericArray(x) => {
            return encode_array(ty, x.iter().cloned().map(V::Numeric), v, out);
        }
        V::Int2Array(x) | V::Int2Vector(x) => {
            return encode_array(ty, x.iter().map(|n| V::Int2(*n)), v, out);
        }
        V::Int2VectorArray(x) => {
            return encode_array(ty, x.iter().cloned().map(V::Int2Vector), v, out);
        }
        V::BitArray(x) => return encode_array(ty, x.iter().cloned().map(V::Bit), v, out),
        V::VarbitArray(x) => return encode_array(ty, x.iter().cloned().map(V::Varbit), v, out),
        V::ByteaArray(x) => return encode_array(ty, x.iter().cloned().map(V::Bytea), v, out),
        V::CharArray(x) => return encode_array(ty, x.iter().cloned().map(V::Char), v, out),
        V::VarcharArray(x) => {
            return encode_array(ty, x.iter().cloned().map(V::Varchar), v, out);
        }
        V::CidrArray(x) => return encode_array(ty, x.iter().cloned().map(V::Cidr), v, out),
        V::InetArray(x) => return encode_array(ty, x.iter().cloned().map(V::Inet), v, out),
        V::MacaddrArray(x) => return encode_array(ty, x.iter().map(|m| V::Macaddr(*m)), v, out),
        V::Macaddr8Array(x) => {
            return encode_array(ty, x.iter().map(|m| V::Macaddr8(*m)), v, out);
        }
        V::BoxArray(x) => return encode_array(ty, x.iter().map(|b| V::Box(*b)), v, out),
        V::CircleArray(x) => return encode_array(ty, x.iter().map(|c| V::Circle(*c)), v, out),
        V::LineArray(x) => return encode_array(ty, x.iter().map(|l| V::Line(*l)), v, out),
        V::LsegArray(x) => return encode_array(ty, x.iter().map(|l| V::Lseg(*l)), v, out),
        V::PathArray(x) => return encode_array(ty, x.iter().cloned().map(V::Path), v, out),
        V::PointArray(x) => return encode_array(ty, x.iter().map(|p| V::Point(*p)), v, out),
        V::PolygonArray(x) => return encode_array(ty, x.iter().cloned().map(V::Polygon), v, out),
        V::DateArray(x) => return encode_array(ty, x.iter().map(|d| V::Date(*d)), v, out),
        V::TimeArray(x) => return encode_array(ty, x.iter().map(|t| V::Time(*t)), v, out),
        V::TimestampArray(x) => {
            return encode_array(ty, x.iter().map(|t| V::Timestamp(*t)), v, out);
        }
        V::TimestampTzArray(x) => {
            return encode_array(ty, x.iter().map(|t| V::TimestampTz(*t)), v, out);
        }
        V::JsonArray(x) => return encode_array(ty, x.iter().cloned().map(V::Json), v, out),
        V::JsonbArray(x) => return encode_array(ty, x.iter().cloned().map(V::Jsonb), v, out),
        V::PgLsnArray(x) => return encode_array(ty, x.iter().map(|n| V::PgLsn(*n)), v, out),
        V::NameArray(x) => return encode_array(ty, x.iter().cloned().map(V::Name), v, out),
        V::TextArray(x) => return encode_array(ty, x.iter().cloned().map(V::Text), v, out),
        V::XmlArray(x) => return encode_array(ty, x.iter().cloned().map(V::Xml), v, out),
        V::UuidArray(x) => return encode_array(ty, x.iter().cloned().map(V::Uuid), v, out),
    }
    Ok(IsNull::No)
}

fn encode_array<I>(ty: &Type, items: I, v: &PgValue, out: &mut BytesMut) -> Result<IsNull, BoxError>
where
    I: ExactSizeIterator<Item = PgValue>,
{
    let Kind::Array(member) = ty.kind() else {
        return Err(mismatch(v, ty));
    };
    let dimension = wire::ArrayDimension {
        len: count(items.len())?,
        // PostgreSQL's vectors count from 0, its arrays from 1.
        lower_bound: i32::from(*ty != Type::INT2_VECTOR),
    };
    wire::array_to_sql(
        Some(dimension),
        member.oid(),
        items,
        |item, buf| {
            encode(&item, member, buf).map(|n| match n {
                IsNull::Yes => postgres_protocol::IsNull::Yes,
                IsNull::No => postgres_protocol::IsNull::No,
            })
        },
        out,
    )?;
    Ok(IsNull::No)
}

/// Column `i` of `row`, or what keeps it from being returned.
pub(crate) fn decode_column(row: &tokio_postgres::Row, i: usize) -> Result<PgValue, String> {
    row.try_get::<usize, PgValue>(i)
        .map_err(|e| Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string))
}

/// Decodes a value of type `ty`.
pub(crate) fn decode(ty: &Type, raw: &[u8]) -> Result<PgValue, BoxError> {
    use PgValue as V;
    if let Kind::Array(member) = ty.kind() {
        return decode_array(ty, member, raw);
    }
    if matches!(ty.kind(), Kind::Enum(_)) || ty.name() == "citext" {
        return Ok(V::Text(wire::text_from_sql(raw)?.to_owned()));
    }
    if ty.name() == "hstore" {
        let pairs = wire::hstore_from_sql(raw)?
            .map(|(k, v)| Ok((k.to_owned(), v.map(str::to_owned))))
            .collect()?;
        return Ok(V::Hstore(pairs));
    }
    Ok(match *ty {
        Type::BOOL => V::Bool(wire::bool_from_sql(raw)?),
        Type::INT2 => V::Int2(wire::int2_from_sql(raw)?),
        Type::INT4 => V::Int4(wire::int4_from_sql(raw)?),
        Type::INT8 => V::Int8(wire::int8_from_sql(raw)?),
        Type::FLOAT4 => V::Float4(f32_parts(wire::float4_from_sql(raw)?)),
        Type::FLOAT8 => V::Float8(f64_parts(wire::float8_from_sql(raw)?)),
        Type::NUMERIC => V::Numeric(numeric_from_sql(raw)?),
        Type::TEXT | Type::UNKNOWN => V::Text(wire::text_from_sql(raw)?.to_owned()),
        Type::NAME => V::Name(wire::text_from_sql(raw)?.to_owned()),
        Type::XML => V::Xml(wire::text_from_sql(raw)?.to_owned()),
        Type::VARCHAR => V::Varchar((None, raw.to_vec())),
        Type::BPCHAR | Type::CHAR => V::Char((length(raw.len())?, raw.to_vec())),
        Type::BYTEA => V::Bytea(wire::bytea_from_sql(raw).to_vec()),
        Type::BIT => {
            let bits = wire::varbit_from_sql(raw)?;
            V::Bit((length(bits.len())?, bits.bytes().to_vec()))
        }
        Type::VARBIT => {
            let bits = wire::varbit_from_sql(raw)?;
            V::Varbit((Some(length(bits.len())?), bits.bytes().to_vec()))
        }
        Type::JSON => V::Json(wire::text_from_sql(raw)?.to_owned()),
        Type::JSONB => match raw.split_first() {
            Some((1, text)) => V::Jsonb(std::str::from_utf8(text)?.to_owned()),
            _ => return Err("unknown jsonb format version".into()),
        },
        Type::UUID => V::Uuid(uuid::Uuid::from_bytes(wire::uuid_from_sql(raw)?).to_string()),
        Type::INET => {
            let inet = wire::inet_from_sql(raw)?;
            let full = if inet.addr().is_ipv4() { 32 } else { 128 };
            if inet.netmask() == full {
                V::Inet(inet.addr().to_string())
            } else {
                V::Inet(format!("{}/{}", inet.addr(), inet.netmask()))
            }
        }
        Type::CIDR => {
            let inet = wire::inet_from_sql(raw)?;
            V::Cidr(format!("{}/{}", inet.addr(), inet.netmask()))
        }
        Type::MACADDR => {
            let b = wire::macaddr_from_sql(raw)?;
            V::Macaddr(MacAddressEui48 {
                bytes: (b[0], b[1], b[2], b[3], b[4], b[5]),
            })
        }
        Type::MACADDR8 => match raw {
            [a, b, c, d, e, f, g, h] => V::Macaddr8(MacAddressEui64 {
                bytes: (*a, *b, *c, *d, *e, *f, *g, *h),
            }),
            _ => return Err("a macaddr8 is 8 bytes".into()),
        },
        Type::POINT => {
            let p = wire::point_from_sql(raw)?;
            V::Point(parts(p.x(), p.y()))
        }
        Type::BOX => {
            let b = wire::box_from_sql(raw)?;
            let (ll, ur) = (b.lower_left(), b.upper_right());
            V::Box((parts(ll.x(), ll.y()), parts(ur.x(), ur.y())))
        }
        Type::LSEG => {
            let f = floats::<4>(raw)?;
            V::Lseg((parts(f[0], f[1]), parts(f[2], f[3])))
        }
        Type::LINE => {
            let [a, b, c] = floats::<3>(raw)?;
            // Two points on Ax + By + C = 0.
            let (p, q) = if b == 0.0 {
                let x = -c / a;
                ((x, 0.0), (x, 1.0))
            } else {
                ((0.0, -c / b), (1.0, (-c - a) / b))
            };
            V::Line((parts(p.0, p.1), parts(q.0, q.1)))
        }
        Type::PATH => {
            let path = wire::path_from_sql(raw)?;
            V::Path(path.points().map(|p| Ok(parts(p.x(), p.y()))).collect()?)
        }
        Type::POLYGON => {
            let (n, rest) = raw.split_at_checked(4).ok_or("polygon too short")?;
            let n = usize::try_from(i32::from_be_bytes(n.try_into()?))?;
            if rest.len() != n * 16 {
                return Err("polygon length does not match its point count".into());
            }
            V::Polygon(
                rest.chunks_exact(16)
                    .map(|c| {
                        let f = floats::<2>(c)?;
                        Ok(parts(f[0], f[1]))
                    })
                    .collect::<Result<_, BoxError>>()?,
            )
        }
        Type::CIRCLE => {
            let [x, y, r] = floats::<3>(raw)?;
            V::Circle((parts(x, y), f64_parts(r)))
        }
        Type::DATE => V::Date(days_to_date(wire::date_from_sql(raw)?)),
        Type::TIME => V::Time(micros_to_time(wire::time_from_sql(raw)?)),
        Type::TIMETZ => {
            let (micros, zone) = raw.split_at_checked(8).ok_or("timetz too short")?;
            let micros = i64::from_be_bytes(micros.try_into()?);
            let west = i32::from_be_bytes(zone.try_into()?);
            V::TimeTz(TimeTz {
                timesonze: format_zone(-west),
                time: micros_to_time(micros),
            })
        }
        Type::TIMESTAMP => V::Timestamp(micros_to_timestamp(wire::timestamp_from_sql(raw)?)),
        Type::TIMESTAMPTZ => V::TimestampTz(TimestampTz {
            timestamp: micros_to_timestamp(wire::timestamp_from_sql(raw)?),
            // UTC, written as wasmCloud's provider writes it.
            offset: Offset::WesternHemisphereSecs(0),
        }),
        Type::PG_LSN => V::PgLsn(wire::lsn_from_sql(raw)?),
        Type::PG_SNAPSHOT | Type::TXID_SNAPSHOT => {
            let (head, rest) = raw.split_at_checked(20).ok_or("snapshot too short")?;
            let n = usize::try_from(i32::from_be_bytes(head[..4].try_into()?))?;
            let xmin = i64::from_be_bytes(head[4..12].try_into()?);
            let xmax = i64::from_be_bytes(head[12..20].try_into()?);
            if rest.len() != n * 8 {
                return Err("snapshot length does not match its count".into());
            }
            let xips = rest
                .chunks_exact(8)
                .map(|c| c.try_into().map(i64::from_be_bytes))
                .collect::<Result<_, _>>()?;
            V::PgSnapshot((xmin, xmax, xips))
        }
        Type::MONEY => {
            return Err(unsupported(
                "reading `money`",
                "cast the column to numeric in the query, as in `price::numeric`",
            ));
        }
        Type::INTERVAL => {
            return Err(unsupported(
                "reading `interval` (the WIT's interval is a pair of dates)",
                "cast the column to text in the query, as in `duration::text`",
            ));
        }
        Type::TS_VECTOR | Type::TSQUERY => {
            return Err(unsupported(
                "reading `tsvector`/`tsquery`",
                "cast the column to text in the query, as in `document::text`",
            ));
        }
        _ => {
            return Err(unsupported(
                &format!("reading PostgreSQL type `{}`", ty.name()),
                "cast the column to a supported type in the query, as in `value::text`",
            ));
        }
    })
}

fn decode_array(ty: &Type, member: &Type, raw: &[u8]) -> Result<PgValue, BoxError> {
    use PgValue as V;
    let array = wire::array_from_sql(raw)?;
    if array.dimensions().count()? > 1 {
        return Err(format!(
            "a multi-dimensional `{}` cannot be returned (the WIT has one-dimensional arrays); \
             unnest it or cast it to text",
            ty.name()
        )
        .into());
    }
    let items: Vec<PgValue> = array
        .values()
        .map(|item| match item {
            Some(raw) => decode(member, raw),
            None => Err(format!(
                "a `{}` with NULL elements cannot be returned (the WIT's arrays have no NULLs); \
                 filter them out with array_remove(value, NULL)",
                ty.name()
            )
            .into()),
        })
        .collect()?;
    macro_rules! pack {
        ($array:ident, $item:ident) => {
            V::$array(
                items
                    .into_iter()
                    .map(|v| match v {
                        V::$item(x) => Ok(x),
                        other => Err(BoxError::from(format!(
                            "unexpected `{}` in a `{}`",
                            variant_name(&other),
                            ty.name()
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
            )
        };
    }
    Ok(match *member {
        Type::INT2 if *ty == Type::INT2_VECTOR => pack!(Int2Vector, Int2),
        Type::INT2 => pack!(Int2Array, Int2),
        Type::INT2_VECTOR => pack!(Int2VectorArray, Int2Vector),
        Type::INT4 => pack!(Int4Array, Int4),
        Type::INT8 => pack!(Int8Array, Int8),
        Type::BOOL => pack!(BoolArray, Bool),
        Type::FLOAT4 => pack!(Float4Array, Float4),
        Type::FLOAT8 => pack!(Float8Array, Float8),
        Type::NUMERIC => pack!(NumericArray, Numeric),
        Type::BYTEA => pack!(ByteaArray, Bytea),
        Type::BPCHAR | Type::CHAR => pack!(CharArray, Char),
        Type::VARCHAR => pack!(VarcharArray, Varchar),
        Type::TEXT => pack!(TextArray, Text),
        Type::NAME => pack!(NameArray, Name),
        Type::XML => pack!(XmlArray, Xml),
        Type::BIT => pack!(BitArray, Bit),
        Type::VARBIT => pack!(VarbitArray, Varbit),
        Type::JSON => pack!(JsonArray, Json),
        Type::JSONB => pack!(JsonbArray, Jsonb),
        Type::UUID => pack!(UuidArray, Uuid),
        Type::INET => pack!(InetArray, Inet),
        Type::CIDR => pack!(CidrArray, Cidr),
        Type::MACADDR => pack!(MacaddrArray, Macaddr),
        Type::MACADDR8 => pack!(Macaddr8Array, Macaddr8),
        Type::POINT => pack!(PointArray, Point),
        Type::BOX => pack!(BoxArray, Box),
        Type::LSEG => pack!(LsegArray, Lseg),
        Type::LINE => pack!(LineArray, Line),
        Type::PATH => pack!(PathArray, Path),
        Type::POLYGON => pack!(PolygonArray, Polygon),
        Type::CIRCLE => pack!(CircleArray, Circle),
        Type::DATE => pack!(DateArray, Date),
        Type::TIME => pack!(TimeArray, Time),
        Type::TIMETZ => pack!(TimeTzArray, TimeTz),
        Type::TIMESTAMP => pack!(TimestampArray, Timestamp),
        Type::TIMESTAMPTZ => pack!(TimestampTzArray, TimestampTz),
        Type::PG_LSN => pack!(PgLsnArray, PgLsn),
        _ if matches!(member.kind(), Kind::Enum(_)) || member.name() == "citext" => {
            pack!(TextArray, Text)
        }
        _ => {
            return Err(unsupported(
                &format!("reading PostgreSQL type `{}`", ty.name()),
                "cast the column to a supported type in the query, as in `value::text[]`",
            ));
        }
    })
}

fn length(n: usize) -> Result<u32, BoxError> {
    u32::try_from(n).map_err(|_| "value too long".into())
}

fn parts(x: f64, y: f64) -> Point {
    (f64_parts(x), f64_parts(y))
}

fn floats<const N: usize>(raw: &[u8]) -> Result<[f64; N], BoxError> {
    if raw.len() != N * 8 {
        return Err(format!("expected {} bytes of floats, got {}", N * 8, raw.len()).into());
    }
    let mut out = [0.0; N];
    for (slot, chunk) in out.iter_mut().zip(raw.chunks_exact(8)) {
        *slot = f64::from_be_bytes(chunk.try_into()?);
    }
    Ok(out)
}

fn parse_inet(s: &str) -> Result<(IpAddr, u8), BoxError> {
    let (addr, mask) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|e| format!("`{s}` is not an IP address or network: {e}"))?;
    let full = if addr.is_ipv4() { 32 } else { 128 };
    let mask = match mask {
        Some(m) => m
            .parse::<u8>()
            .ok()
            .filter(|m| *m <= full)
            .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {full}"))?,
        None => full,
    };
    Ok((addr, mask))
}

// ---- dates and times: PostgreSQL counts days and microseconds from 2000-01-01 ----

/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `z` days after 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn date_to_days(d: &Date) -> Result<i32, BoxError> {
    match d {
        Date::PositiveInfinity => Ok(i32::MAX),
        Date::NegativeInfinity => Ok(i32::MIN),
        Date::Ymd((y, m, d)) => {
            let (yy, mm, dd) = (i64::from(*y), i64::from(*m), i64::from(*d));
            let days = days_from_civil(yy, mm, dd);
            if !(1..=12).contains(&mm) || civil_from_days(days) != (yy, mm, dd) {
                return Err(format!("{y}-{m}-{d} is not a date").into());
            }
            i32::try_from(days - PG_EPOCH_DAYS).map_err(|_| "date out of range".into())
        }
    }
}

fn days_to_date(days: i32) -> Date {
    match days {
        i32::MAX => Date::PositiveInfinity,
        i32::MIN => Date::NegativeInfinity,
        days => {
            let (y, m, d) = civil_from_days(i64::from(days) + PG_EPOCH_DAYS);
            // In range: from an i32 count of days, and month and day are small.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Date::Ymd((y as i32, m as u32, d as u32))
        }
    }
}

fn time_to_micros(t: &Time) -> Result<i64, BoxError> {
    let ok = (t.hour < 24 && t.min < 60 && t.sec < 60 && t.micro < 1_000_000)
        || (t.hour == 24 && t.min == 0 && t.sec == 0 && t.micro == 0);
    if !ok {
        return Err(format!(
            "{}:{}:{}.{:06} is not a time of day",
            t.hour, t.min, t.sec, t.micro
        )
        .into());
    }
    Ok(
        ((i64::from(t.hour) * 60 + i64::from(t.min)) * 60 + i64::from(t.sec)) * 1_000_000
            + i64::from(t.micro),
    )
}

fn micros_to_time(micros: i64) -> Time {
    let secs = micros / 1_000_000;
    // Within a day: every part fits.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Time {
        hour: (secs / 3600) as u32,
        min: (secs / 60 % 60) as u32,
        sec: (secs % 60) as u32,
        micro: (micros % 1_000_000) as u32,
    }
}

fn timestamp_to_micros(ts: &Timestamp) -> Result<i64, BoxError> {
    match ts.date {
        Date::PositiveInfinity => Ok(i64::MAX),
        Date::NegativeInfinity => Ok(i64::MIN),
        Date::Ymd(_) => {
            let days = i64::from(date_to_days(&ts.date)?);
            days.checked_mul(MICROS_PER_DAY)
                .and_then(|d| d.checked_add(time_to_micros(&ts.time).ok()?))
                .ok_or_else(|| "timestamp out of range".into())
        }
    }
}

fn micros_to_timestamp(micros: i64) -> Timestamp {
    let midnight = Time {
        hour: 0,
        min: 0,
        sec: 0,
        micro: 0,
    };
    match micros {
        i64::MAX => Timestamp {
            date: Date::PositiveInfinity,
            time: midnight,
        },
        i64::MIN => Timestamp {
            date: Date::NegativeInfinity,
            time: midnight,
        },
        m => {
            let days = m.div_euclid(MICROS_PER_DAY);
            let (y, mo, d) = civil_from_days(days + PG_EPOCH_DAYS);
            // In range: PostgreSQL's timestamps end in year 294276.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Timestamp {
                date: Date::Ymd((y as i32, mo as u32, d as u32)),
                time: micros_to_time(m.rem_euclid(MICROS_PER_DAY)),
            }
        }
    }
}

/// `+HH:MM[:SS]` for an offset of `east` seconds.
fn format_zone(east: i32) -> String {
    let sign = if east < 0 { '-' } else { '+' };
    let s = east.unsigned_abs();
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    if sec == 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}:{m:02}:{sec:02}")
    }
}

/// Seconds east of UTC of `+HH[:MM[:SS]]`, `-HH…`, `Z` or `UTC`.
fn parse_zone(zone: &str) -> Result<i32, BoxError> {
    let bad = || -> BoxError {
        format!("time zone `{zone}` is not an offset like +02:00, -05:30 or Z").into()
    };
    let z = zone.trim();
    if z.eq_ignore_ascii_case("z") || z.eq_ignore_ascii_case("utc") {
        return Ok(0);
    }
    let (sign, rest) = match z.split_at_checked(1) {
        Some(("+", rest)) => (1, rest),
        Some(("-", rest)) => (-1, rest),
        _ => return Err(bad()),
    };
    let mut fields = rest.split(':');
    let mut next = |max: i32| -> Result<i32, BoxError> {
        match fields.next() {
            None => Ok(0),
            Some(f) => f
                .parse::<i32>()
                .ok()
                .filter(|v| (0..=max).contains(v))
                .ok_or_else(bad),
        }
    };
    let (h, m, s) = (next(15)?, next(59)?, next(59)?);
    if fields.next().is_some() {
        return Err(bad());
    }
    Ok(sign * (h * 3600 + m * 60 + s))
}

// ---- numeric: base-10000 digits, as PostgreSQL sends them ----

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

/// Encodes a decimal string (`-12.345`, `NaN`, `Infinity`, `-Infinity`) as a `numeric`.
pub(crate) fn numeric_to_sql(s: &str, out: &mut BytesMut) -> Result<(), BoxError> {
    let t = s.trim();
    let special = match t.to_ascii_lowercase().as_str() {
        "nan" => Some(NUMERIC_NAN),
        "infinity" | "+infinity" | "inf" => Some(NUMERIC_PINF),
        "-infinity" | "-inf" => Some(NUMERIC_NINF),
        _ => None,
    };
    if let Some(sign) = special {
        out.put_i16(0);
        out.put_i16(0);
        out.put_u16(sign);
        out.put_u16(0);
        return Ok(());
    }
    let bad = || -> BoxError { format!("`{s}` is not a decimal number like -12.345").into() };
    let (negative, unsigned) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let dscale = u16::try_from(frac.len()).map_err(|_| bad())?;
    let int = int.trim_start_matches('0');
    // Pad to whole base-10000 digits: the integer part on the left, the fraction on the right.
    let int_pad = (4 - int.len() % 4) % 4;
    let frac_pad = (4 - frac.len() % 4) % 4;
    let digits_str: String = "0".repeat(int_pad) + int + frac + &"0".repeat(frac_pad);
    let mut digits: Vec<i16> = digits_str
        .as_bytes()
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
        .collect();
    let mut weight = i32::try_from((int.len() + int_pad) / 4).map_err(|_| bad())? - 1;
    while digits.first() == Some(&0) {
        digits.remove(0);
        weight -= 1;
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    out.put_i16(i16::try_from(digits.len()).map_err(|_| bad())?);
    out.put_i16(i16::try_from(weight).map_err(|_| bad())?);
    out.put_u16(if negative && !digits.is_empty() {
        NUMERIC_NEG
    } else {
        NUMERIC_POS
    });
    out.put_u16(dscale);
    for d in digits {
        out.put_i16(d);
    }
    Ok(())
}

/// Decodes a `numeric` into its decimal text, as PostgreSQL prints it.
pub(crate) fn numeric_from_sql(raw: &[u8]) -> Result<String, BoxError> {
    let (head, rest) = raw.split_at_checked(8).ok_or("numeric too short")?;
    let ndigits = usize::try_from(i16::from_be_bytes([head[0], head[1]]))?;
    let weight = i32::from(i16::from_be_bytes([head[2], head[3]]));
    let sign = u16::from_be_bytes([head[4], head[5]]);
    let dscale = usize::from(u16::from_be_bytes([head[6], head[7]]));
    match sign {
        NUMERIC_NAN => return Ok("NaN".into()),
        NUMERIC_PINF => return Ok("Infinity".into()),
        NUMERIC_NINF => return Ok("-Infinity".into()),
        NUMERIC_POS | NUMERIC_NEG => {}
        _ => return Err("invalid numeric sign".into()),
    }
    if rest.len() != ndigits * 2 {
        return Err("numeric length does not match its digit count".into());
    }
    let digits: Vec<i32> = rest
        .chunks_exact(2)
        .map(|c| i32::from(i16::from_be_bytes([c[0], c[1]])))
        .collect();
    // Digit i is worth 10000^(weight - i).
    let digit = |power: i32| -> i32 {
        usize::try_from(weight - power)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == NUMERIC_NEG {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for power in (0..=weight).rev() {
            if power == weight {
                let _ = write!(out, "{}", digit(power));
            } else {
                let _ = write!(out, "{:04}", digit(power));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut power = -1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(power));
            power -= 1;
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_round_trip(s: &str) -> String {
        let mut buf = BytesMut::new();
        numeric_to_sql(s, &mut buf).expect("encodes");
        numeric_from_sql(&buf).expect("decodes")
    }

    #[test]
    fn numerics_round_trip_as_postgres_prints_them() {
        for (input, printed) in [
            ("0", "0"),
            ("0.00", "0.00"),
            ("1", "1"),
            ("-1", "-1"),
            ("10000", "10000"),
            ("12345678.9", "12345678.9"),
            ("0.0001", "0.0001"),
            ("-0.000012", "-0.000012"),
            (
                "123456789012345678901234567890.123456789",
                "123456789012345678901234567890.123456789",
            ),
            ("007.50", "7.50"),
            ("+3", "3"),
            ("NaN", "NaN"),
            ("Infinity", "Infinity"),
            ("-Infinity", "-Infinity"),
            (".5", "0.5"),
        ] {
            assert_eq!(numeric_round_trip(input), printed, "{input}");
        }
        for bad in ["", "-", "1e5", "1.2.3", "abc", "1 000"] {
            assert!(
                numeric_to_sql(bad, &mut BytesMut::new()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_known_numeric_encoding() {
        // 12345.678 as PostgreSQL sends it: digits [1, 2345, 6780], weight 1, dscale 3.
        let mut buf = BytesMut::new();
        numeric_to_sql("12345.678", &mut buf).expect("encodes");
        assert_eq!(
            &buf[..],
            &[0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c]
        );
    }

    #[test]
    fn dates_and_times_convert_both_ways() {
        assert_eq!(date_to_days(&Date::Ymd((2000, 1, 1))).expect("date"), 0);
        assert_eq!(date_to_days(&Date::Ymd((1999, 12, 31))).expect("date"), -1);
        assert_eq!(date_to_days(&Date::Ymd((2024, 2, 29))).expect("date"), 8825);
        assert!(date_to_days(&Date::Ymd((2023, 2, 29))).is_err());
        assert!(date_to_days(&Date::Ymd((2023, 13, 1))).is_err());
        for days in [-1_000_000, -1, 0, 1, 8825, 2_000_000] {
            let d = days_to_date(days);
            assert_eq!(date_to_days(&d).expect("date"), days);
        }
        assert_eq!(days_to_date(i32::MAX), Date::PositiveInfinity);
        let t = Time {
            hour: 13,
            min: 45,
            sec: 6,
            micro: 789,
        };
        assert_eq!(micros_to_time(time_to_micros(&t).expect("time")), t);
        let ts = micros_to_timestamp(-1);
        assert_eq!(ts.date, Date::Ymd((1999, 12, 31)));
        assert_eq!(ts.time.micro, 999_999);
        assert_eq!(timestamp_to_micros(&ts).expect("timestamp"), -1);
    }

    #[test]
    fn zones_parse_and_print() {
        assert_eq!(parse_zone("+02:00").expect("zone"), 7200);
        assert_eq!(parse_zone("-05:30").expect("zone"), -19800);
        assert_eq!(parse_zone("Z").expect("zone"), 0);
        assert_eq!(parse_zone("+01").expect("zone"), 3600);
        assert!(parse_zone("02:00").is_err());
        assert_eq!(format_zone(-19800), "-05:30");
        assert_eq!(format_zone(7200), "+02:00");
        assert_eq!(format_zone(3601), "+01:00:01");
    }

    #[test]
    fn variant_names_are_the_wits() {
        assert_eq!(variant_name(&PgValue::BigInt(1)), "big-int");
        assert_eq!(variant_name(&PgValue::Null), "null");
        assert_eq!(
            variant_name(&PgValue::Int2VectorArray(vec![])),
            "int2-vector-array"
        );
        assert_eq!(variant_name(&PgValue::Bytea(vec![0; 1 << 20])), "bytea");
    }

    #[test]
    fn values_that_do_not_fit_their_parameter_say_so() {
        let mut buf = BytesMut::new();
        let mut encode = |v: &PgValue, ty: &Type| encode(v, ty, &mut buf).map(|_| ());
        let err = encode(&PgValue::Int8(70_000), &Type::INT2).expect_err("range");
        assert!(
            err.to_string()
                .contains("out of range for PostgreSQL type `int2`"),
            "{err}"
        );
        let err = encode(&PgValue::Text("x".into()), &Type::INT4).expect_err("type");
        assert_eq!(
            err.to_string(),
            "a `text` value cannot be sent as PostgreSQL type `int4`"
        );
        let err = encode(&PgValue::Money("1".into()), &Type::MONEY).expect_err("money");
        assert!(err.to_string().contains("$1::numeric::money"), "{err}");
    }
}
