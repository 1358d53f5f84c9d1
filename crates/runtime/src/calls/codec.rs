//! The wRPC value encoding of component-model values, so that calls between hosts speak what
//! `wrpc-transport-nats` speaks.
//!
//! A function's parameters are encoded one after another, as a tuple; so are its results.
//! Each value, by type:
//!
//! | type | bytes |
//! | --- | --- |
//! | `bool`, `u8`, `s8` | one byte |
//! | `u16`…`u64` | unsigned LEB128 |
//! | `s16`…`s64` | signed LEB128 |
//! | `f32`, `f64` | little-endian IEEE 754 |
//! | `char` | UTF-8 |
//! | `string` | LEB128 byte length, then UTF-8 |
//! | `list<T>` | LEB128 element count, then the elements |
//! | `record`, `tuple` | the fields in order |
//! | `variant`, `enum` | LEB128 case index, then the case's payload if it has one |
//! | `option<T>` | `0`, or `1` then the value |
//! | `result<T, E>` | `0` then the ok payload, or `1` then the error payload |
//! | `flags` | a little-endian bit set of ⌈n/8⌉ bytes, bit i for the i-th flag |
//!
//! Resources, streams and futures do not cross hosts: [`check_type`] refuses them before a
//! component is ever linked, so encoding never meets one.
//!
//! Whether bytes hold all the values ([`complete`]) is answered by walking them, without
//! building any value. Functions whose parameters and results are all `list<u8>` or `string`
//! ([`Blob`]) skip `Val`s altogether: their values are byte slices, read from and written to
//! the encoding directly ([`blobs`], [`put_blob`]), so a `list<u8>` is one copy, not one value
//! per byte.

use wasmtime::component::{Type, Val};

/// Why bytes do not decode to a value of the expected type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The bytes end before the value does: more may be on the way.
    Incomplete,
    /// The bytes cannot be a value of the type.
    Invalid(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Incomplete => f.write_str("the encoded values end early"),
            DecodeError::Invalid(why) => f.write_str(why),
        }
    }
}

/// What kind of type cannot cross between components, if `ty` holds one.
pub(crate) fn check_type(ty: &Type) -> Result<(), &'static str> {
    match ty {
        Type::Own(_) | Type::Borrow(_) => Err("resource"),
        Type::Future(_) => Err("future"),
        Type::Stream(_) => Err("stream"),
        Type::ErrorContext => Err("error-context"),
        Type::Map(_) => Err("map"),
        Type::FixedLengthList(_) => Err("fixed-length list"),
        Type::List(l) => check_type(&l.ty()),
        Type::Record(r) => r.fields().try_for_each(|f| check_type(&f.ty)),
        Type::Tuple(t) => t.types().try_for_each(|t| check_type(&t)),
        Type::Variant(v) => v
            .cases()
            .try_for_each(|c| c.ty.map_or(Ok(()), |t| check_type(&t))),
        Type::Option(o) => check_type(&o.ty()),
        Type::Result(r) => {
            r.ok().map_or(Ok(()), |t| check_type(&t))?;
            r.err().map_or(Ok(()), |t| check_type(&t))
        }
        _ => Ok(()),
    }
}

/// Appends the encoding of `values`, each of the matching type in `types`.
pub(crate) fn encode_all(values: &[Val], types: &[Type], out: &mut Vec<u8>) -> Result<(), String> {
    if values.len() != types.len() {
        return Err(format!("{} values for {} types", values.len(), types.len()));
    }
    for (v, t) in values.iter().zip(types) {
        encode(v, t, out)?;
    }
    Ok(())
}

/// Decodes exactly one value of each of `types` from `bytes`; trailing bytes are an error.
pub(crate) fn decode_all(bytes: &[u8], types: &[Type]) -> Result<Vec<Val>, DecodeError> {
    let mut r = Reader { bytes, pos: 0 };
    let values = types
        .iter()
        .map(|t| decode(&mut r, t))
        .collect::<Result<Vec<_>, _>>()?;
    if r.pos != bytes.len() {
        return Err(DecodeError::Invalid(format!(
            "{} bytes left over after the last value",
            bytes.len() - r.pos
        )));
    }
    Ok(values)
}

/// Whether `bytes` hold exactly one value of each of `types`: `Ok(false)` when they end
/// early, an error when they cannot be such values (trailing bytes included). Only the
/// structure is checked (lengths, tags, cases); decoding checks the rest.
pub(crate) fn complete(bytes: &[u8], types: &[Type]) -> Result<bool, String> {
    let mut r = Reader { bytes, pos: 0 };
    for t in types {
        match skip(&mut r, t) {
            Ok(()) => {}
            Err(DecodeError::Incomplete) => return Ok(false),
            Err(DecodeError::Invalid(why)) => return Err(why),
        }
    }
    if r.pos != bytes.len() {
        return Err(format!(
            "{} bytes left over after the last value",
            bytes.len() - r.pos
        ));
    }
    Ok(true)
}

/// Moves past one value of type `t`.
fn skip(r: &mut Reader<'_>, t: &Type) -> Result<(), DecodeError> {
    match t {
        Type::Bool | Type::S8 | Type::U8 => {
            r.take(1)?;
        }
        Type::S16 => {
            r.sleb(16)?;
        }
        Type::U16 => {
            r.uleb(16)?;
        }
        Type::S32 => {
            r.sleb(32)?;
        }
        Type::U32 => {
            r.uleb(32)?;
        }
        Type::S64 => {
            r.sleb(64)?;
        }
        Type::U64 => {
            r.uleb(64)?;
        }
        Type::Float32 => {
            r.take(4)?;
        }
        Type::Float64 => {
            r.take(8)?;
        }
        Type::Char => {
            decode(r, t)?;
        }
        Type::String => {
            let n = r.len()?;
            r.take(n)?;
        }
        Type::List(l) => {
            let n = r.len()?;
            let ty = l.ty();
            if let Type::U8 | Type::S8 | Type::Bool = ty {
                r.take(n)?;
            } else {
                for _ in 0..n {
                    skip(r, &ty)?;
                }
            }
        }
        Type::Record(rt) => {
            for f in rt.fields() {
                skip(r, &f.ty)?;
            }
        }
        Type::Tuple(tt) => {
            for ty in tt.types() {
                skip(r, &ty)?;
            }
        }
        Type::Variant(vt) => {
            let index = r.uleb(32)? as usize;
            let case = vt.cases().nth(index).ok_or_else(|| {
                invalid(format!(
                    "variant case {index} does not exist ({} cases)",
                    vt.cases().len()
                ))
            })?;
            if let Some(ty) = case.ty {
                skip(r, &ty)?;
            }
        }
        Type::Enum(e) => {
            let index = r.uleb(32)? as usize;
            if index >= e.names().len() {
                return Err(invalid(format!(
                    "enum case {index} does not exist ({} cases)",
                    e.names().len()
                )));
            }
        }
        Type::Option(o) => match r.byte()? {
            0 => {}
            1 => skip(r, &o.ty())?,
            b => return Err(invalid(format!("{b} is not an option tag"))),
        },
        Type::Result(rt) => {
            let ty = match r.byte()? {
                0 => rt.ok(),
                1 => rt.err(),
                b => return Err(invalid(format!("{b} is not a result tag"))),
            };
            if let Some(ty) = ty {
                skip(r, &ty)?;
            }
        }
        Type::Flags(f) => {
            r.take(f.names().len().div_ceil(8))?;
        }
        other => {
            return Err(invalid(format!(
                "values of type {} cannot cross between components",
                type_name(other)
            )));
        }
    }
    Ok(())
}

/// A type whose values are bytes on both sides of the wire: `list<u8>` or `string`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blob {
    /// `list<u8>`.
    Bytes,
    /// `string`.
    Text,
}

impl Blob {
    /// `Some` when `t` is `list<u8>` or `string`.
    pub(crate) fn of(t: &Type) -> Option<Self> {
        match t {
            Type::String => Some(Blob::Text),
            Type::List(l) if matches!(l.ty(), Type::U8) => Some(Blob::Bytes),
            _ => None,
        }
    }

    /// `Some` when every one of `types` is a blob.
    pub(crate) fn all(types: &[Type]) -> Option<Vec<Self>> {
        types.iter().map(Self::of).collect()
    }
}

/// The values of `blobs`, in order, as slices of `bytes` (a string's checked to be UTF-8);
/// trailing bytes are an error.
pub(crate) fn blobs<'a>(bytes: &'a [u8], blobs: &[Blob]) -> Result<Vec<&'a [u8]>, DecodeError> {
    let mut r = Reader { bytes, pos: 0 };
    let mut out = Vec::with_capacity(blobs.len());
    for blob in blobs {
        let n = r.len()?;
        let start = r.pos;
        r.take(n)?;
        let value = &bytes[start..start + n];
        if *blob == Blob::Text {
            std::str::from_utf8(value).map_err(|e| invalid(format!("invalid string: {e}")))?;
        }
        out.push(value);
    }
    if r.pos != bytes.len() {
        return Err(DecodeError::Invalid(format!(
            "{} bytes left over after the last value",
            bytes.len() - r.pos
        )));
    }
    Ok(out)
}

/// Appends the encoding of one `list<u8>` or `string` with these bytes.
pub(crate) fn put_blob(value: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    put_len(value.len(), out)?;
    out.extend_from_slice(value);
    Ok(())
}

fn mismatch(v: &Val, t: &Type) -> String {
    format!("value {v:?} does not match type {}", type_name(t))
}

/// The WIT name of a type's kind, for messages.
fn type_name(t: &Type) -> &'static str {
    match t {
        Type::Bool => "bool",
        Type::S8 => "s8",
        Type::U8 => "u8",
        Type::S16 => "s16",
        Type::U16 => "u16",
        Type::S32 => "s32",
        Type::U32 => "u32",
        Type::S64 => "s64",
        Type::U64 => "u64",
        Type::Float32 => "f32",
        Type::Float64 => "f64",
        Type::Char => "char",
        Type::String => "string",
        Type::List(_) => "list",
        Type::Map(_) => "map",
        Type::Record(_) => "record",
        Type::Tuple(_) => "tuple",
        Type::Variant(_) => "variant",
        Type::Enum(_) => "enum",
        Type::Option(_) => "option",
        Type::Result(_) => "result",
        Type::Flags(_) => "flags",
        Type::Own(_) => "own",
        Type::Borrow(_) => "borrow",
        Type::Future(_) => "future",
        Type::Stream(_) => "stream",
        Type::ErrorContext => "error-context",
        Type::FixedLengthList(_) => "fixed-length list",
    }
}

fn put_uleb(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_sleb(mut n: i64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        let done = (n == 0 && byte & 0x40 == 0) || (n == -1 && byte & 0x40 != 0);
        if done {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_len(n: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let n = u32::try_from(n).map_err(|_| format!("length {n} does not fit in u32"))?;
    put_uleb(n.into(), out);
    Ok(())
}

fn encode(v: &Val, t: &Type, out: &mut Vec<u8>) -> Result<(), String> {
    match (v, t) {
        (Val::Bool(b), Type::Bool) => out.push(u8::from(*b)),
        (Val::S8(n), Type::S8) => out.push(*n as u8),
        (Val::U8(n), Type::U8) => out.push(*n),
        (Val::S16(n), Type::S16) => put_sleb((*n).into(), out),
        (Val::U16(n), Type::U16) => put_uleb((*n).into(), out),
        (Val::S32(n), Type::S32) => put_sleb((*n).into(), out),
        (Val::U32(n), Type::U32) => put_uleb((*n).into(), out),
        (Val::S64(n), Type::S64) => put_sleb(*n, out),
        (Val::U64(n), Type::U64) => put_uleb(*n, out),
        (Val::Float32(f), Type::Float32) => out.extend_from_slice(&f.to_le_bytes()),
        (Val::Float64(f), Type::Float64) => out.extend_from_slice(&f.to_le_bytes()),
        (Val::Char(c), Type::Char) => {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        (Val::String(s), Type::String) => {
            put_len(s.len(), out)?;
            out.extend_from_slice(s.as_bytes());
        }
        (Val::List(items), Type::List(l)) => {
            put_len(items.len(), out)?;
            let ty = l.ty();
            if let Type::U8 = ty {
                // The common case, bytes: no per-element dispatch.
                for item in items {
                    match item {
                        Val::U8(b) => out.push(*b),
                        other => return Err(mismatch(other, &ty)),
                    }
                }
            } else {
                for item in items {
                    encode(item, &ty, out)?;
                }
            }
        }
        (Val::Record(fields), Type::Record(r)) => {
            if fields.len() != r.fields().len() {
                return Err(mismatch(v, t));
            }
            for ((_, value), field) in fields.iter().zip(r.fields()) {
                encode(value, &field.ty, out)?;
            }
        }
        (Val::Tuple(items), Type::Tuple(tt)) => {
            if items.len() != tt.types().len() {
                return Err(mismatch(v, t));
            }
            for (item, ty) in items.iter().zip(tt.types()) {
                encode(item, &ty, out)?;
            }
        }
        (Val::Variant(name, payload), Type::Variant(vt)) => {
            let (index, case) = vt
                .cases()
                .enumerate()
                .find(|(_, c)| c.name == name)
                .ok_or_else(|| mismatch(v, t))?;
            put_uleb(index as u64, out);
            match (payload, case.ty) {
                (Some(p), Some(ty)) => encode(p, &ty, out)?,
                (None, None) => {}
                _ => return Err(mismatch(v, t)),
            }
        }
        (Val::Enum(name), Type::Enum(e)) => {
            let index = e
                .names()
                .position(|n| n == name)
                .ok_or_else(|| mismatch(v, t))?;
            put_uleb(index as u64, out);
        }
        (Val::Option(None), Type::Option(_)) => out.push(0),
        (Val::Option(Some(inner)), Type::Option(o)) => {
            out.push(1);
            encode(inner, &o.ty(), out)?;
        }
        (Val::Result(result), Type::Result(rt)) => {
            let (tag, payload, ty) = match result {
                Ok(p) => (0, p, rt.ok()),
                Err(p) => (1, p, rt.err()),
            };
            out.push(tag);
            match (payload, ty) {
                (Some(p), Some(ty)) => encode(p, &ty, out)?,
                (None, None) => {}
                _ => return Err(mismatch(v, t)),
            }
        }
        (Val::Flags(set), Type::Flags(f)) => {
            let names: Vec<&str> = f.names().collect();
            let mut bits = vec![0u8; names.len().div_ceil(8)];
            for flag in set {
                let i = names
                    .iter()
                    .position(|n| n == flag)
                    .ok_or_else(|| mismatch(v, t))?;
                bits[i / 8] |= 1 << (i % 8);
            }
            out.extend_from_slice(&bits);
        }
        _ => return Err(mismatch(v, t)),
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Incomplete);
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// An unsigned LEB128 number of at most `bits` bits.
    fn uleb(&mut self, bits: u32) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        let mut shift = 0;
        loop {
            let byte = self.byte()?;
            let low = u64::from(byte & 0x7f);
            if shift >= bits || (bits - shift < 7 && low >> (bits - shift) != 0) {
                return Err(invalid(format!("LEB128 number too large for u{bits}")));
            }
            value |= low << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    /// A signed LEB128 number of at most `bits` bits.
    fn sleb(&mut self, bits: u32) -> Result<i64, DecodeError> {
        let mut value: i64 = 0;
        let mut shift = 0;
        loop {
            let byte = self.byte()?;
            if shift >= bits {
                return Err(invalid(format!("LEB128 number too large for s{bits}")));
            }
            value |= i64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                let min = -(1i128 << (bits - 1));
                let max = (1i128 << (bits - 1)) - 1;
                if i128::from(value) < min || i128::from(value) > max {
                    return Err(invalid(format!("LEB128 number out of range for s{bits}")));
                }
                return Ok(value);
            }
        }
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        Ok(self.uleb(32)? as usize)
    }
}

fn invalid(why: String) -> DecodeError {
    DecodeError::Invalid(why)
}

fn decode(r: &mut Reader<'_>, t: &Type) -> Result<Val, DecodeError> {
    Ok(match t {
        Type::Bool => match r.byte()? {
            0 => Val::Bool(false),
            1 => Val::Bool(true),
            b => return Err(invalid(format!("{b} is not a bool"))),
        },
        Type::S8 => Val::S8(r.byte()? as i8),
        Type::U8 => Val::U8(r.byte()?),
        Type::S16 => Val::S16(r.sleb(16)? as i16),
        Type::U16 => Val::U16(r.uleb(16)? as u16),
        Type::S32 => Val::S32(r.sleb(32)? as i32),
        Type::U32 => Val::U32(r.uleb(32)? as u32),
        Type::S64 => Val::S64(r.sleb(64)?),
        Type::U64 => Val::U64(r.uleb(64)?),
        Type::Float32 => Val::Float32(f32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"))),
        Type::Float64 => Val::Float64(f64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"))),
        Type::Char => {
            let first = r.byte()?;
            let width = match first {
                0x00..=0x7f => 1,
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf7 => 4,
                _ => return Err(invalid(format!("byte {first:#x} cannot start a char"))),
            };
            r.pos -= 1;
            let s = std::str::from_utf8(r.take(width)?)
                .map_err(|e| invalid(format!("invalid char: {e}")))?;
            Val::Char(s.chars().next().expect("one char"))
        }
        Type::String => {
            let n = r.len()?;
            let s = std::str::from_utf8(r.take(n)?)
                .map_err(|e| invalid(format!("invalid string: {e}")))?;
            Val::String(s.to_owned())
        }
        Type::List(l) => {
            let n = r.len()?;
            let ty = l.ty();
            // Every element takes at least one byte (except empty records and tuples), so
            // a length beyond what is left cannot be honoured yet: do not allocate for it.
            let mut items = Vec::with_capacity(n.min(r.remaining()));
            if let Type::U8 = ty {
                items.extend(r.take(n)?.iter().map(|b| Val::U8(*b)));
            } else {
                for _ in 0..n {
                    items.push(decode(r, &ty)?);
                }
            }
            Val::List(items)
        }
        Type::Record(rt) => Val::Record(
            rt.fields()
                .map(|f| Ok((f.name.to_owned(), decode(r, &f.ty)?)))
                .collect::<Result<_, DecodeError>>()?,
        ),
        Type::Tuple(tt) => Val::Tuple(
            tt.types()
                .map(|ty| decode(r, &ty))
                .collect::<Result<_, _>>()?,
        ),
        Type::Variant(vt) => {
            let index = r.uleb(32)? as usize;
            let case = vt.cases().nth(index).ok_or_else(|| {
                invalid(format!(
                    "variant case {index} does not exist ({} cases)",
                    vt.cases().len()
                ))
            })?;
            let payload = match case.ty {
                Some(ty) => Some(Box::new(decode(r, &ty)?)),
                None => None,
            };
            Val::Variant(case.name.to_owned(), payload)
        }
        Type::Enum(e) => {
            let index = r.uleb(32)? as usize;
            let name = e.names().nth(index).ok_or_else(|| {
                invalid(format!(
                    "enum case {index} does not exist ({} cases)",
                    e.names().len()
                ))
            })?;
            Val::Enum(name.to_owned())
        }
        Type::Option(o) => match r.byte()? {
            0 => Val::Option(None),
            1 => Val::Option(Some(Box::new(decode(r, &o.ty())?))),
            b => return Err(invalid(format!("{b} is not an option tag"))),
        },
        Type::Result(rt) => {
            let (ty, ok) = match r.byte()? {
                0 => (rt.ok(), true),
                1 => (rt.err(), false),
                b => return Err(invalid(format!("{b} is not a result tag"))),
            };
            let payload = match ty {
                Some(ty) => Some(Box::new(decode(r, &ty)?)),
                None => None,
            };
            Val::Result(if ok { Ok(payload) } else { Err(payload) })
        }
        Type::Flags(f) => {
            let names: Vec<&str> = f.names().collect();
            let bits = r.take(names.len().div_ceil(8))?;
            let mut set = Vec::new();
            for (i, name) in names.iter().enumerate() {
                if bits[i / 8] & (1 << (i % 8)) != 0 {
                    set.push((*name).to_owned());
                }
            }
            if !names.len().is_multiple_of(8) {
                let last = bits[bits.len() - 1];
                if last >> (names.len() % 8) != 0 {
                    return Err(invalid("flags set beyond the last flag".into()));
                }
            }
            Val::Flags(set)
        }
        other => {
            return Err(invalid(format!(
                "values of type {} cannot cross between components",
                type_name(other)
            )));
        }
    })
}
