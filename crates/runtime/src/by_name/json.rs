//! Component-model values as JSON, in the natural mapping `trellis call` documents:
//!
//! | type | JSON |
//! | --- | --- |
//! | `bool` | `true` / `false` |
//! | integers | numbers (range-checked) |
//! | `f32`, `f64` | numbers; `"nan"`, `"inf"`, `"-inf"` for what JSON cannot write |
//! | `char` | a one-character string |
//! | `string` | a string |
//! | `list<u8>` | an array of numbers; as an argument also a string (its UTF-8 bytes) |
//! | `list<T>`, `tuple<…>` | arrays |
//! | `record` | an object with the WIT field names; `option` fields may be left out |
//! | `variant` | `{"case": payload}`, or `"case"` for a case without payload |
//! | `enum` | the case name |
//! | `option<T>` | `null` or the value (`{"some": …}` when T is itself an option) |
//! | `result<T, E>` | `{"ok": …}` or `{"err": …}` (`null` for no payload) |
//! | `flags` | an array of the names that are set |

use serde_json::{Map, Number, Value as Json};
use wasmtime::component::wasm_wave::wasm::DisplayType;
use wasmtime::component::{Type, Val};

/// Reads `json` as a value of type `ty`; the error says where (`field `x`: …`) and what was
/// expected.
pub(crate) fn to_val(json: &Json, ty: &Type) -> Result<Val, String> {
    let expected = || format!("expected {}, got {}", DisplayType(ty), describe(json));
    let int = |what: &str| -> Result<i128, String> {
        match json {
            Json::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
                .ok_or_else(|| format!("expected {what}, got {n} (not an integer)")),
            _ => Err(expected()),
        }
    };
    macro_rules! integer {
        ($variant:ident, $rust:ty, $name:literal) => {{
            let n = int($name)?;
            <$rust>::try_from(n)
                .map(Val::$variant)
                .map_err(|_| format!("{n} is out of range for {}", $name))
        }};
    }
    match ty {
        Type::Bool => json.as_bool().map(Val::Bool).ok_or_else(expected),
        Type::S8 => integer!(S8, i8, "s8"),
        Type::U8 => integer!(U8, u8, "u8"),
        Type::S16 => integer!(S16, i16, "s16"),
        Type::U16 => integer!(U16, u16, "u16"),
        Type::S32 => integer!(S32, i32, "s32"),
        Type::U32 => integer!(U32, u32, "u32"),
        Type::S64 => integer!(S64, i64, "s64"),
        Type::U64 => integer!(U64, u64, "u64"),
        // Narrowing to f32 is what a WIT f32 parameter asks for.
        Type::Float32 => float(json)
            .map(|f| Val::Float32(f as f32))
            .ok_or_else(expected),
        Type::Float64 => float(json).map(Val::Float64).ok_or_else(expected),
        Type::Char => match json.as_str().map(|s| {
            let mut chars = s.chars();
            (chars.next(), chars.next())
        }) {
            Some((Some(c), None)) => Ok(Val::Char(c)),
            _ => Err(format!("{} (one character)", expected())),
        },
        Type::String => json
            .as_str()
            .map(|s| Val::String(s.to_owned()))
            .ok_or_else(expected),
        Type::List(list) => {
            let element = list.ty();
            match json {
                Json::String(s) if element == Type::U8 => {
                    Ok(Val::List(s.bytes().map(Val::U8).collect()))
                }
                Json::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| to_val(item, &element).map_err(|e| format!("[{i}]: {e}")))
                    .collect::<Result<_, _>>()
                    .map(Val::List),
                _ => Err(expected()),
            }
        }
        Type::Tuple(tuple) => {
            let Json::Array(items) = json else {
                return Err(expected());
            };
            let types: Vec<Type> = tuple.types().collect();
            if items.len() != types.len() {
                return Err(format!(
                    "expected {} (an array of {}), got an array of {}",
                    DisplayType(ty),
                    types.len(),
                    items.len()
                ));
            }
            items
                .iter()
                .zip(&types)
                .enumerate()
                .map(|(i, (item, t))| to_val(item, t).map_err(|e| format!("[{i}]: {e}")))
                .collect::<Result<_, _>>()
                .map(Val::Tuple)
        }
        Type::Record(record) => {
            let Json::Object(object) = json else {
                return Err(expected());
            };
            let names: Vec<&str> = record.fields().map(|f| f.name).collect();
            if let Some(unknown) = object.keys().find(|k| !names.contains(&k.as_str())) {
                return Err(format!(
                    "unknown field `{unknown}` (the record has {})",
                    names.join(", ")
                ));
            }
            record
                .fields()
                .map(|field| {
                    let value = match (object.get(field.name), &field.ty) {
                        (Some(v), t) => {
                            to_val(v, t).map_err(|e| format!("field `{}`: {e}", field.name))?
                        }
                        (None, Type::Option(_)) => Val::Option(None),
                        (None, t) => {
                            return Err(format!(
                                "missing field `{}` ({})",
                                field.name,
                                DisplayType(t)
                            ));
                        }
                    };
                    Ok((field.name.to_owned(), value))
                })
                .collect::<Result<_, _>>()
                .map(Val::Record)
        }
        Type::Variant(variant) => {
            let (name, payload) = tagged(json).ok_or_else(expected)?;
            let Some(case) = variant.cases().find(|c| c.name == name) else {
                let cases: Vec<&str> = variant.cases().map(|c| c.name).collect();
                return Err(format!(
                    "no case `{name}` (the cases are {})",
                    cases.join(", ")
                ));
            };
            let payload = match (case.ty, payload) {
                (None, None | Some(Json::Null)) => None,
                (None, Some(p)) => {
                    return Err(format!("case `{name}` has no payload, got {}", describe(p)));
                }
                (Some(t), Some(p)) => Some(Box::new(
                    to_val(p, &t).map_err(|e| format!("case `{name}`: {e}"))?,
                )),
                (Some(t), None) => {
                    return Err(format!(
                        "case `{name}` needs a payload ({}): write {{\"{name}\": …}}",
                        DisplayType(&t)
                    ));
                }
            };
            Ok(Val::Variant(name.to_owned(), payload))
        }
        Type::Enum(e) => {
            let name = json.as_str().ok_or_else(expected)?;
            if e.names().any(|n| n == name) {
                Ok(Val::Enum(name.to_owned()))
            } else {
                Err(format!(
                    "no case `{name}` (the cases are {})",
                    e.names().collect::<Vec<_>>().join(", ")
                ))
            }
        }
        Type::Option(option) => {
            let inner = option.ty();
            match (json, &inner) {
                (Json::Null, _) => Ok(Val::Option(None)),
                // option<option<T>>: `null` is the outer none, so the inner one is spelled out.
                (Json::Object(o), Type::Option(_)) if o.len() == 1 && o.contains_key("some") => {
                    to_val(&o["some"], &inner).map(|v| Val::Option(Some(Box::new(v))))
                }
                _ => to_val(json, &inner).map(|v| Val::Option(Some(Box::new(v)))),
            }
        }
        Type::Result(result) => {
            let (name, payload) = tagged(json)
                .filter(|(n, _)| *n == "ok" || *n == "err")
                .ok_or_else(|| format!("{} ({{\"ok\": …}} or {{\"err\": …}})", expected()))?;
            let slot = if name == "ok" {
                result.ok()
            } else {
                result.err()
            };
            let payload = match (slot, payload) {
                (None, None | Some(Json::Null)) => None,
                (None, Some(p)) => {
                    return Err(format!("`{name}` has no payload, got {}", describe(p)));
                }
                (Some(t), Some(p)) => Some(Box::new(
                    to_val(p, &t).map_err(|e| format!("`{name}`: {e}"))?,
                )),
                (Some(t), None) => {
                    return Err(format!(
                        "`{name}` needs a payload ({}): write {{\"{name}\": …}}",
                        DisplayType(&t)
                    ));
                }
            };
            Ok(Val::Result(if name == "ok" {
                Ok(payload)
            } else {
                Err(payload)
            }))
        }
        Type::Flags(flags) => {
            let Json::Array(items) = json else {
                return Err(format!("{} (an array of names)", expected()));
            };
            let names: Vec<&str> = flags.names().collect();
            items
                .iter()
                .map(|item| match item.as_str() {
                    Some(n) if names.contains(&n) => Ok(n.to_owned()),
                    _ => Err(format!(
                        "{} is not a flag (the flags are {})",
                        describe(item),
                        names.join(", ")
                    )),
                })
                .collect::<Result<_, _>>()
                .map(Val::Flags)
        }
        Type::Own(_)
        | Type::Borrow(_)
        | Type::Future(_)
        | Type::Stream(_)
        | Type::ErrorContext
        | Type::Map(_)
        | Type::FixedLengthList(_) => Err("this type cannot be given as text".to_owned()),
    }
}

/// The value as JSON, in the same mapping [`to_val`] reads.
pub(crate) fn from_val(val: &Val) -> Json {
    match val {
        Val::Bool(b) => Json::Bool(*b),
        Val::S8(n) => (*n).into(),
        Val::U8(n) => (*n).into(),
        Val::S16(n) => (*n).into(),
        Val::U16(n) => (*n).into(),
        Val::S32(n) => (*n).into(),
        Val::U32(n) => (*n).into(),
        Val::S64(n) => (*n).into(),
        Val::U64(n) => (*n).into(),
        Val::Float32(f) => float_json(f64::from(*f)),
        Val::Float64(f) => float_json(*f),
        Val::Char(c) => Json::String(c.to_string()),
        Val::String(s) => Json::String(s.clone()),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            Json::Array(items.iter().map(from_val).collect())
        }
        Val::Map(entries) => Json::Array(
            entries
                .iter()
                .map(|(k, v)| Json::Array(vec![from_val(k), from_val(v)]))
                .collect(),
        ),
        Val::Record(fields) => Json::Object(
            fields
                .iter()
                .map(|(name, v)| (name.clone(), from_val(v)))
                .collect(),
        ),
        Val::Variant(name, None) | Val::Enum(name) => Json::String(name.clone()),
        Val::Variant(name, Some(payload)) => single(name, from_val(payload)),
        Val::Option(None) => Json::Null,
        Val::Option(Some(inner)) => match &**inner {
            // Keeps some(none) apart from none.
            Val::Option(_) => single("some", from_val(inner)),
            other => from_val(other),
        },
        Val::Result(Ok(payload)) => single("ok", payload.as_deref().map_or(Json::Null, from_val)),
        Val::Result(Err(payload)) => single("err", payload.as_deref().map_or(Json::Null, from_val)),
        Val::Flags(names) => Json::Array(names.iter().cloned().map(Json::String).collect()),
        // Functions with these in their types are refused before they run.
        Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => Json::Null,
    }
}

fn single(name: &str, value: Json) -> Json {
    let mut map = Map::new();
    map.insert(name.to_owned(), value);
    Json::Object(map)
}

/// `"case"` or `{"case": payload}`.
fn tagged(json: &Json) -> Option<(&str, Option<&Json>)> {
    match json {
        Json::String(name) => Some((name, None)),
        Json::Object(o) if o.len() == 1 => o.iter().next().map(|(k, v)| (k.as_str(), Some(v))),
        _ => None,
    }
}

fn float(json: &Json) -> Option<f64> {
    match json {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => match s.as_str() {
            "nan" | "NaN" => Some(f64::NAN),
            "inf" | "infinity" | "Infinity" => Some(f64::INFINITY),
            "-inf" | "-infinity" | "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn float_json(f: f64) -> Json {
    match Number::from_f64(f) {
        Some(n) => Json::Number(n),
        None if f.is_nan() => Json::String("nan".into()),
        None if f > 0.0 => Json::String("inf".into()),
        None => Json::String("-inf".into()),
    }
}

/// What a JSON value is, for error messages: `the string "x"`, `an object`.
fn describe(json: &Json) -> String {
    match json {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => format!("the number {n}"),
        Json::String(s) if s.chars().count() <= 40 => format!("the string {json}"),
        Json::String(_) => "a string".into(),
        Json::Array(a) => format!("an array of {}", a.len()),
        Json::Object(_) => "an object".into(),
    }
}
