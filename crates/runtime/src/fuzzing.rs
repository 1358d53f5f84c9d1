//! Entry points for the fuzz targets in `fuzz/` (see `scripts/fuzz`): not an API, and not
//! shown in the documentation.

use crate::calls::Signature;
use crate::limits::Limits;
use wasmtime::component::Type;
use wasmtime::component::types::ComponentItem;

/// The parameter types and the result types (each a list) of every function the component
/// `wasm` exports whose values may cross hosts, in export order.
pub fn wrpc_signatures(wasm: &[u8]) -> Result<Vec<Vec<Type>>, String> {
    let engine =
        wasmtime::Engine::new(&Limits::default().engine_config(crate::Compiler::default()))
            .map_err(|e| e.to_string())?;
    let component =
        wasmtime::component::Component::new(&engine, wasm).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (_, item) in component.component_type().exports(&engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        for (_, export) in instance.exports(&engine) {
            if let ComponentItem::ComponentFunc(func) = export.ty {
                let signature = Signature::of(&func);
                if signature.check().is_ok() {
                    out.push(signature.params);
                    out.push(signature.results);
                }
            }
        }
    }
    Ok(out)
}

/// Decodes `bytes` as wRPC values of `types`, as a call arriving from another host is;
/// whether they decoded.
pub fn decode_wrpc(bytes: &[u8], types: &[Type]) -> bool {
    crate::calls::codec::decode_all(bytes, types).is_ok()
}
