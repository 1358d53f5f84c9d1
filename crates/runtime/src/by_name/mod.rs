//! Calls by name with values as text: what `trellis call COMPONENT FUNCTION ARGS…` runs on
//! the host. The command line knows no types, so the host finds the export, reads each
//! argument against its parameter's type, and writes the results back as text.
//!
//! A function is named `namespace:package/interface[@version].function` (the version may be
//! left out when the component exports one), or by its bare name when the component exports
//! it at the level of its world. Any exported function whose types hold only plain values
//! can be called, including those the host calls itself (`wasi:cli/run.run`); one with a
//! resource, stream or future in its types is refused, since such a value lives inside one
//! instance and cannot be written down.
//!
//! Each argument is JSON when it parses as JSON (in the mapping of [`json`]), and WAVE text
//! otherwise (the WebAssembly Value Encoding of `wasm-wave`, as wasmtime implements it for its
//! values). Where both read a text, they agree: numbers, `true`, `"strings"`, `[lists]`. The
//! results come back both ways: JSON for scripts, WAVE for people.

mod json;

use crate::calls::codec;
use crate::invoke::InvokeError;
use trellis_control::ComponentId;
use trellis_control::ctl::{CallReply, CallValue};
use wasmtime::Engine;
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::wasm_wave;
use wasmtime::component::wasm_wave::wasm::DisplayType;
use wasmtime::component::{Component, ComponentExportIndex, Type, Val};

/// Why a call by name could not run, or failed.
#[derive(Debug, thiserror::Error)]
pub enum ByNameError {
    /// The component does not export the function named.
    #[error("component `{id}` does not export {what}; it exports:{exports}")]
    NoSuchExport {
        /// The component.
        id: ComponentId,
        /// What was asked for, with a hint when one helps.
        what: String,
        /// Every function it exports with its type, one per line.
        exports: String,
    },
    /// The name matches the function in several versions of the interface.
    #[error("`{asked}` is ambiguous: the component exports {matches}; name the version")]
    Ambiguous {
        /// What was asked for.
        asked: String,
        /// The functions it matches.
        matches: String,
    },
    /// The function's types hold a resource, stream or future.
    #[error("`{function}` cannot be called from the command line: {reason}")]
    NotPlain {
        /// The function.
        function: String,
        /// Which parameter or result, and why.
        reason: String,
    },
    /// Too many or too few arguments.
    #[error("`{function}` takes {takes}, got {got}")]
    ArgumentCount {
        /// The function.
        function: String,
        /// How many arguments it takes and their types, for example `1 argument (name: string)`.
        takes: String,
        /// How many were given.
        got: usize,
    },
    /// An argument is not a value of its parameter's type.
    #[error("argument {position} of `{function}` (`{param}: {ty}`): {reason}")]
    Argument {
        /// The function.
        function: String,
        /// 1-based.
        position: usize,
        /// The parameter's name.
        param: String,
        /// The parameter's type, in WIT-like text.
        ty: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The call ran and failed: a trap, the deadline, no instance.
    #[error(transparent)]
    Invoke(#[from] InvokeError),
    /// A result could not be written as WAVE.
    #[error("`{function}` returned a value that cannot be shown: {reason}")]
    Result {
        /// The function.
        function: String,
        /// Why.
        reason: String,
    },
}

/// The function a name resolved to.
pub(crate) struct Target {
    /// As the component exports it: `namespace:package/interface@version.function`, or the
    /// bare name of a world-level function.
    pub(crate) name: String,
    pub(crate) index: ComponentExportIndex,
    pub(crate) func: ComponentFunc,
}

/// One function the component exports.
struct Exported {
    /// The exported interface, or `None` for a function of the world.
    instance: Option<String>,
    function: String,
    func: ComponentFunc,
}

impl Exported {
    fn name(&self) -> String {
        match &self.instance {
            Some(i) => format!("{i}.{}", self.function),
            None => self.function.clone(),
        }
    }
}

fn exported(engine: &Engine, component: &Component) -> Vec<Exported> {
    let mut all = Vec::new();
    for (name, item) in component.component_type().exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(func) => all.push(Exported {
                instance: None,
                function: name.to_owned(),
                func,
            }),
            ComponentItem::ComponentInstance(instance) => {
                for (function, item) in instance.exports(engine) {
                    if let ComponentItem::ComponentFunc(func) = item.ty {
                        all.push(Exported {
                            instance: Some(name.to_owned()),
                            function: function.to_owned(),
                            func,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    all
}

/// Finds the function `asked` names among the exports of `component`.
pub(crate) fn resolve(
    engine: &Engine,
    component: &Component,
    id: &ComponentId,
    asked: &str,
) -> Result<Target, ByNameError> {
    let all = exported(engine, component);
    let no_such = |what: String| ByNameError::NoSuchExport {
        id: id.clone(),
        what,
        exports: listing(&all),
    };
    let (instance, function) = match asked.find('/') {
        Some(slash) => match asked[slash..].rfind('.') {
            Some(dot) => (Some(&asked[..slash + dot]), &asked[slash + dot + 1..]),
            None => {
                return Err(no_such(format!(
                    "a function named `{asked}` (that is an interface: add `.FUNCTION`)"
                )));
            }
        },
        None => (None, asked),
    };
    let unversioned = |name: &str| name.split('@').next().unwrap_or(name).to_owned();
    let matches: Vec<&Exported> = all
        .iter()
        .filter(|e| e.function == function)
        .filter(|e| match (&e.instance, instance) {
            (None, None) => true,
            (Some(have), Some(want)) => {
                have == want || (!want.contains('@') && unversioned(have) == want)
            }
            _ => false,
        })
        .collect();
    let found = match matches.as_slice() {
        [one] => *one,
        [] => {
            let in_interfaces: Vec<String> = all
                .iter()
                .filter(|e| e.instance.is_some() && e.function == function)
                .map(Exported::name)
                .collect();
            let what = if instance.is_none() && !in_interfaces.is_empty() {
                format!(
                    "a function `{asked}` at the level of its world (did you mean `{}`?)",
                    in_interfaces.join("` or `")
                )
            } else {
                format!("`{asked}`")
            };
            return Err(no_such(what));
        }
        many => {
            return Err(ByNameError::Ambiguous {
                asked: asked.to_owned(),
                matches: many
                    .iter()
                    .map(|e| format!("`{}`", e.name()))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };
    let name = found.name();
    let func = &found.func;
    for (param, ty) in func.params() {
        if let Err(kind) = codec::check_type(&ty) {
            return Err(ByNameError::NotPlain {
                function: name,
                reason: format!(
                    "parameter `{param}` holds a {kind}, which lives inside one instance and cannot be written as text"
                ),
            });
        }
    }
    for ty in func.results() {
        if let Err(kind) = codec::check_type(&ty) {
            return Err(ByNameError::NotPlain {
                function: name,
                reason: format!(
                    "its result holds a {kind}, which would not outlive the instance the call runs in"
                ),
            });
        }
    }
    let index = match &found.instance {
        Some(instance) => component
            .get_export_index(None, instance)
            .and_then(|i| component.get_export_index(Some(&i), &found.function)),
        None => component.get_export_index(None, &found.function),
    };
    let Some(index) = index else {
        return Err(no_such(format!("`{asked}` (its export index is missing)")));
    };
    Ok(Target {
        name,
        index,
        func: func.clone(),
    })
}

/// Reads each argument against its parameter's type.
pub(crate) fn parse_args(target: &Target, args: &[String]) -> Result<Vec<Val>, ByNameError> {
    let params: Vec<(&str, Type)> = target.func.params().collect();
    if params.len() != args.len() {
        let plural = if params.len() == 1 { "" } else { "s" };
        return Err(ByNameError::ArgumentCount {
            function: target.name.clone(),
            takes: format!(
                "{} argument{plural} {}",
                params.len(),
                params_text(&target.func)
            ),
            got: args.len(),
        });
    }
    params
        .iter()
        .zip(args)
        .enumerate()
        .map(|(i, ((param, ty), arg))| {
            parse_arg(arg, ty).map_err(|reason| ByNameError::Argument {
                function: target.name.clone(),
                position: i + 1,
                param: (*param).to_owned(),
                ty: type_text(ty),
                reason,
            })
        })
        .collect()
}

fn parse_arg(arg: &str, ty: &Type) -> Result<Val, String> {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(arg) {
        return json::to_val(&json, ty).map_err(|e| format!("{e} (read as JSON)"));
    }
    wasm_wave::from_str::<Val>(ty, arg).map_err(|e| {
        let mut reason = format!("`{arg}` is not JSON, and not WAVE of this type: {e}");
        if *ty == Type::String && !arg.starts_with('"') {
            reason.push_str(
                "; a string is written in double quotes, for example '\"hello\"' (inside the shell's own quotes)",
            );
        }
        reason
    })
}

/// The results as JSON and WAVE.
pub(crate) fn show(target: &Target, results: &[Val]) -> Result<CallReply, ByNameError> {
    let results = results
        .iter()
        .map(|val| {
            let wave = wasm_wave::to_string(val).map_err(|e| ByNameError::Result {
                function: target.name.clone(),
                reason: e.to_string(),
            })?;
            Ok(CallValue {
                json: json::from_val(val),
                wave,
            })
        })
        .collect::<Result<_, ByNameError>>()?;
    Ok(CallReply {
        function: target.name.clone(),
        results,
    })
}

/// Every exported function with its type, one per line (each line starts with a newline).
fn listing(all: &[Exported]) -> String {
    if all.is_empty() {
        return " no functions".to_owned();
    }
    let mut lines: Vec<String> = all
        .iter()
        .map(|e| {
            let plain = e
                .func
                .params()
                .map(|(_, t)| t)
                .chain(e.func.results())
                .all(|t| codec::check_type(&t).is_ok());
            let note = if plain {
                ""
            } else {
                "  (not callable from the command line: resources, streams or futures)"
            };
            format!("\n  {}: func{}{note}", e.name(), signature(&e.func))
        })
        .collect();
    lines.sort();
    lines.concat()
}

fn params_text(func: &ComponentFunc) -> String {
    let params: Vec<String> = func
        .params()
        .map(|(name, ty)| format!("{name}: {}", type_text(&ty)))
        .collect();
    format!("({})", params.join(", "))
}

/// `(a: string, b: u32) -> string`.
fn signature(func: &ComponentFunc) -> String {
    let results: Vec<String> = func.results().map(|t| type_text(&t)).collect();
    match results.as_slice() {
        [] => params_text(func),
        [one] => format!("{} -> {one}", params_text(func)),
        many => format!("{} -> ({})", params_text(func), many.join(", ")),
    }
}

/// A type in WIT-like text; WAVE has no words for handles, so those are named here.
fn type_text(ty: &Type) -> String {
    match ty {
        Type::Own(_) => "own<resource>".to_owned(),
        Type::Borrow(_) => "borrow<resource>".to_owned(),
        Type::Future(_) => "future".to_owned(),
        Type::Stream(_) => "stream".to_owned(),
        other => DisplayType(other).to_string(),
    }
}
