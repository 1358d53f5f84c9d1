//! The wRPC value encoding, against hand-computed bytes and the real types of a test guest.

use super::Signature;
use super::codec::{Blob, DecodeError, blobs, complete, decode_all, encode_all, put_blob};
use crate::limits::Limits;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Type, Val};

/// The parameter and result types of `function` in the `callee` guest's
/// `trellis:test/calls` export.
fn signature(function: &str) -> Signature {
    // The engine the runtime would build; the codec needs only the component's types.
    let engine =
        wasmtime::Engine::new(&Limits::default().engine_config(crate::Compiler::default()))
            .expect("engine");
    let component =
        wasmtime::component::Component::from_file(&engine, trellis_test_support::guest("callee"))
            .expect("load callee");
    let ty = component.component_type();
    for (name, item) in ty.exports(&engine) {
        if !name.starts_with("trellis:test/calls") {
            continue;
        }
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            panic!("{name} is not an instance");
        };
        for (f, export) in instance.exports(&engine) {
            if let (true, ComponentItem::ComponentFunc(func)) = (f == function, export.ty) {
                return Signature::of(&func);
            }
        }
    }
    panic!("callee does not export {function}");
}

fn encode(values: &[Val], types: &[Type]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_all(values, types, &mut out).expect("encode");
    out
}

/// Every strict prefix is incomplete, the whole decodes to `values`, one byte more is an error.
fn assert_round_trip(values: &[Val], types: &[Type]) -> Vec<u8> {
    let bytes = encode(values, types);
    for n in 0..bytes.len() {
        assert_eq!(
            decode_all(&bytes[..n], types),
            Err(DecodeError::Incomplete),
            "prefix of {n} of {} bytes",
            bytes.len()
        );
        assert_eq!(complete(&bytes[..n], types), Ok(false), "prefix of {n}");
    }
    assert_eq!(decode_all(&bytes, types).expect("decode"), values);
    assert_eq!(complete(&bytes, types), Ok(true));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        decode_all(&longer, types),
        Err(DecodeError::Invalid(why)) if why.contains("left over")
    ));
    assert!(complete(&longer, types).is_err_and(|why| why.contains("left over")));
    bytes
}

#[test]
fn integers_are_leb128() {
    let u32s = [Type::U32];
    assert_eq!(encode(&[Val::U32(0)], &u32s), [0]);
    assert_eq!(encode(&[Val::U32(127)], &u32s), [0x7f]);
    assert_eq!(encode(&[Val::U32(128)], &u32s), [0x80, 0x01]);
    assert_eq!(encode(&[Val::U32(624_485)], &u32s), [0xe5, 0x8e, 0x26]);
    assert_eq!(
        encode(&[Val::U32(u32::MAX)], &u32s),
        [0xff, 0xff, 0xff, 0xff, 0x0f]
    );
    let s32s = [Type::S32];
    assert_eq!(encode(&[Val::S32(-1)], &s32s), [0x7f]);
    assert_eq!(encode(&[Val::S32(63)], &s32s), [0x3f]);
    assert_eq!(encode(&[Val::S32(64)], &s32s), [0xc0, 0x00]);
    assert_eq!(encode(&[Val::S32(-64)], &s32s), [0x40]);
    assert_eq!(encode(&[Val::S32(-65)], &s32s), [0xbf, 0x7f]);
    assert_eq!(encode(&[Val::S32(-123_456)], &s32s), [0xc0, 0xbb, 0x78]);
    // s8 and u8 are one raw byte each.
    assert_eq!(
        encode(&[Val::S8(-128), Val::U8(255)], &[Type::S8, Type::U8]),
        [0x80, 0xff]
    );
    for v in [Val::S64(i64::MIN), Val::S64(i64::MAX), Val::S64(0)] {
        assert_round_trip(&[v], &[Type::S64]);
    }
    for v in [Val::U64(u64::MAX), Val::U64(1 << 63)] {
        assert_round_trip(&[v], &[Type::U64]);
    }
    assert_round_trip(&[Val::S16(i16::MIN)], &[Type::S16]);
    assert_round_trip(&[Val::U16(u16::MAX)], &[Type::U16]);
}

#[test]
fn out_of_range_and_malformed_numbers_are_refused() {
    let invalid = |bytes: &[u8], t: Type| {
        assert!(
            matches!(
                decode_all(bytes, std::slice::from_ref(&t)),
                Err(DecodeError::Invalid(_))
            ),
            "{bytes:02x?} as {t:?} should be invalid"
        )
    };
    invalid(&[0x80, 0x80, 0x04], Type::U16); // 65536
    invalid(&[0xff, 0xff, 0xff, 0xff, 0x1f], Type::U32); // 2^33 - 1
    invalid(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00], Type::U32); // six bytes
    invalid(&[0x80, 0x80, 0x02], Type::S16); // 32768
    invalid(&[2], Type::Bool);
    invalid(&[0xff], Type::Char);
    invalid(&[0xed, 0xa0, 0x80], Type::Char); // a surrogate
    invalid(&[2, 0xc3, 0x28], Type::String); // not UTF-8
    assert_eq!(
        decode_all(&[0x80], &[Type::U64]),
        Err(DecodeError::Incomplete)
    );
}

#[test]
fn strings_chars_and_floats() {
    let sig = signature("greet");
    assert_eq!(
        encode(&[Val::String("hé".into())], &sig.params),
        [3, b'h', 0xc3, 0xa9]
    );
    assert_eq!(encode(&[Val::Char('😀')], &[Type::Char]), "😀".as_bytes());
    assert_eq!(
        encode(&[Val::Float32(-1.5)], &[Type::Float32]),
        (-1.5f32).to_le_bytes()
    );
    assert_round_trip(&[Val::Float64(1e300)], &[Type::Float64]);
}

#[test]
fn results_options_and_variants() {
    let sig = signature("divide");
    assert_eq!(sig.params, [Type::S32, Type::S32]);
    let ok = |v| Val::Result(Ok(Some(Box::new(Val::S32(v)))));
    assert_eq!(encode(&[ok(-1)], &sig.results), [0, 0x7f]);
    let err = Val::Result(Err(Some(Box::new(Val::String("x".into())))));
    assert_eq!(
        encode(std::slice::from_ref(&err), &sig.results),
        [1, 1, b'x']
    );
    assert_round_trip(&[err], &sig.results);
    assert!(matches!(
        decode_all(&[2, 0], &sig.results),
        Err(DecodeError::Invalid(_))
    ));
}

fn point(x: i32, y: i32, label: &str) -> Val {
    Val::Record(vec![
        ("x".into(), Val::S32(x)),
        ("y".into(), Val::S32(y)),
        ("label".into(), Val::String(label.into())),
    ])
}

fn everything(variant: u8) -> Val {
    let some = |v: Val| Val::Option(Some(Box::new(v)));
    let fields: Vec<(&str, Val)> = if variant == 0 {
        vec![
            ("b", Val::Bool(false)),
            ("i8v", Val::S8(-128)),
            ("u8v", Val::U8(255)),
            ("i16v", Val::S16(i16::MIN)),
            ("u16v", Val::U16(u16::MAX)),
            ("i32v", Val::S32(i32::MIN)),
            ("u32v", Val::U32(u32::MAX)),
            ("i64v", Val::S64(i64::MIN)),
            ("u64v", Val::U64(u64::MAX)),
            ("f32v", Val::Float32(-1.5)),
            ("f64v", Val::Float64(1e300)),
            ("c", Val::Char('😀')),
            ("s", Val::String("héllo wörld ✓".into())),
            ("bytes", Val::List([0u8, 1, 2, 255].map(Val::U8).to_vec())),
            (
                "points",
                Val::List(vec![point(1, -2, "a"), point(0, 0, "")]),
            ),
            (
                "shape",
                Val::Variant(
                    "rect".into(),
                    Some(Box::new(Val::Tuple(vec![Val::U32(3), Val::U32(4)]))),
                ),
            ),
            ("color", Val::Enum("blue".into())),
            ("perms", Val::Flags(vec!["read".into(), "exec".into()])),
            ("maybe", some(Val::String("x".into()))),
            (
                "outcome",
                Val::Result(Err(Some(Box::new(Val::String("bad".into()))))),
            ),
            (
                "pair",
                Val::Tuple(vec![Val::String("p".into()), Val::U64(7)]),
            ),
            ("nothing", Val::Option(None)),
        ]
    } else {
        vec![
            ("b", Val::Bool(true)),
            ("i8v", Val::S8(0)),
            ("u8v", Val::U8(0)),
            ("i16v", Val::S16(0)),
            ("u16v", Val::U16(0)),
            ("i32v", Val::S32(0)),
            ("u32v", Val::U32(0)),
            ("i64v", Val::S64(0)),
            ("u64v", Val::U64(0)),
            ("f32v", Val::Float32(0.0)),
            ("f64v", Val::Float64(0.0)),
            ("c", Val::Char('a')),
            ("s", Val::String(String::new())),
            ("bytes", Val::List(vec![])),
            ("points", Val::List(vec![])),
            (
                "shape",
                Val::Variant("circle".into(), Some(Box::new(Val::Float64(2.5)))),
            ),
            ("color", Val::Enum("red".into())),
            ("perms", Val::Flags(vec![])),
            ("maybe", Val::Option(None)),
            ("outcome", Val::Result(Ok(Some(Box::new(Val::U32(42)))))),
            (
                "pair",
                Val::Tuple(vec![Val::String(String::new()), Val::U64(0)]),
            ),
            ("nothing", some(point(5, 6, "p"))),
        ]
    };
    Val::Record(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

#[test]
fn records_lists_flags_and_enums_round_trip() {
    let sig = signature("roundtrip");
    assert!(sig.check().is_ok());
    for variant in [0, 1] {
        let value = everything(variant);
        let bytes = assert_round_trip(std::slice::from_ref(&value), &sig.params);
        assert_eq!(
            decode_all(&bytes, &sig.results).expect("as result"),
            [value]
        );
    }
    // The fixed parts of the first value: bool, s8, u8, then s16::MIN as signed LEB128.
    let bytes = encode(&[everything(0)], &sig.params);
    assert_eq!(&bytes[..6], [0, 0x80, 0xff, 0x80, 0x80, 0x7e]);
}

#[test]
fn values_of_another_type_are_refused() {
    let sig = signature("greet");
    let mut out = Vec::new();
    let err = encode_all(&[Val::U32(1)], &sig.params, &mut out).expect_err("mismatch");
    assert!(err.contains("does not match"), "{err}");
    let err = encode_all(&[], &sig.params, &mut out).expect_err("count");
    assert!(err.contains("0 values for 1 types"), "{err}");
}

#[test]
fn lists_of_bytes_and_strings_cross_as_blobs() {
    let echo = signature("echo");
    let greet = signature("greet");
    assert_eq!(Blob::all(&echo.params), Some(vec![Blob::Bytes]));
    assert_eq!(Blob::all(&greet.results), Some(vec![Blob::Text]));
    assert_eq!(Blob::all(&signature("divide").params), None);

    // A blob's encoding is the encoding of the `Val` it stands for, both ways.
    let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let as_vals = encode(
        &[Val::List(data.iter().map(|b| Val::U8(*b)).collect())],
        &echo.params,
    );
    let mut as_blob = Vec::new();
    put_blob(&data, &mut as_blob).expect("blob");
    assert!(as_blob == as_vals, "the same bytes");
    assert_eq!(
        blobs(&as_blob, &[Blob::Bytes]).expect("blobs"),
        vec![data.as_slice()]
    );
    assert_eq!(
        blobs(&as_blob[..as_blob.len() - 1], &[Blob::Bytes]),
        Err(DecodeError::Incomplete)
    );
    let mut longer = as_blob.clone();
    longer.push(0);
    assert!(matches!(
        blobs(&longer, &[Blob::Bytes]),
        Err(DecodeError::Invalid(why)) if why.contains("left over")
    ));

    let text = encode(&[Val::String("grüße".into())], &greet.results);
    assert_eq!(
        blobs(&text, &[Blob::Text]).expect("text"),
        vec!["grüße".as_bytes()]
    );
    assert!(matches!(
        blobs(&[2, 0xc3, 0x28], &[Blob::Text]),
        Err(DecodeError::Invalid(why)) if why.contains("invalid string")
    ));
}
