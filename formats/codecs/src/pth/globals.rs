//! The pickle allow-list: the only globals a torch state dict may name, and what calling
//! each one builds. Everything else is refused by name before anything is looked up.
//!
//! Follows `torch/_utils.py` (`_rebuild_tensor_v2(storage, storage_offset, size, stride,
//! requires_grad, backward_hooks, metadata=None)`, `_rebuild_parameter`,
//! `_rebuild_parameter_with_state`) and `torch/serialization.py` (persistent ids
//! `('storage', storage_type, key, location, numel)`), as torch 2.15's `torch.save` emits them
//! (see `docs/decisions/pickle.md` for a disassembly).

use std::rc::Rc;

use super::pickle::{
    new_dict, type_err, BadArgs, Heap, Obj, PickleError, StorageRef, TensorRecord, Value,
};
use crate::dtype::DType;

/// An allow-listed global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Global {
    /// `collections.OrderedDict`: called with `()` for the state dict and backward hooks.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2`.
    RebuildTensorV2,
    /// `torch._utils._rebuild_parameter`.
    RebuildParameter,
    /// `torch._utils._rebuild_parameter_with_state`.
    RebuildParameterWithState,
    /// `torch.<X>Storage`: only ever named inside a storage persistent id.
    Storage(DType),
    /// `_codecs.encode`: how protocol 2 pickles `bytes` (`encode(str, 'latin1')`).
    CodecsEncode,
}

const STORAGES: [(&str, DType); 10] = [
    ("FloatStorage", DType::F32),
    ("HalfStorage", DType::F16),
    ("BFloat16Storage", DType::BF16),
    ("DoubleStorage", DType::F64),
    ("LongStorage", DType::I64),
    ("IntStorage", DType::I32),
    ("ShortStorage", DType::I16),
    ("CharStorage", DType::I8),
    ("ByteStorage", DType::U8),
    ("BoolStorage", DType::Bool),
];

impl Global {
    /// Look up `module.name` on the allow-list; anything else is refused by name.
    pub fn resolve(module: &str, name: &str) -> Result<Global, PickleError> {
        let g = match (module, name) {
            ("collections", "OrderedDict") => Some(Global::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
            ("torch._utils", "_rebuild_parameter") => Some(Global::RebuildParameter),
            ("torch._utils", "_rebuild_parameter_with_state") => {
                Some(Global::RebuildParameterWithState)
            }
            ("_codecs", "encode") => Some(Global::CodecsEncode),
            ("torch", n) => STORAGES
                .iter()
                .find(|(s, _)| *s == n)
                .map(|&(_, d)| Global::Storage(d)),
            _ => None,
        };
        g.ok_or_else(|| match (module, name) {
            ("torch", n) if n.ends_with("Storage") && !n.contains(['.', ' ']) => {
                PickleError::UnsupportedStorage {
                    name: n.to_string(),
                }
            }
            _ => PickleError::RefusedGlobal {
                module: module.to_string(),
                name: name.to_string(),
            },
        })
    }

    /// The global's dotted name.
    pub fn name(self) -> String {
        match self {
            Global::OrderedDict => "collections.OrderedDict".into(),
            Global::RebuildTensorV2 => "torch._utils._rebuild_tensor_v2".into(),
            Global::RebuildParameter => "torch._utils._rebuild_parameter".into(),
            Global::RebuildParameterWithState => {
                "torch._utils._rebuild_parameter_with_state".into()
            }
            Global::CodecsEncode => "_codecs.encode".into(),
            Global::Storage(d) => {
                let n = STORAGES.iter().find(|(_, x)| *x == d).map_or("?", |p| p.0);
                format!("torch.{n}")
            }
        }
    }

    /// The `torch.<X>Storage` name for a dtype (for the writer).
    pub(crate) fn storage_name(dtype: DType) -> Option<&'static str> {
        STORAGES.iter().find(|(_, d)| *d == dtype).map(|p| p.0)
    }
}

/// Most dimensions a tensor may have (LLaMA's have 1 or 2).
pub(crate) const MAX_RANK: usize = 32;

fn bad(call: &'static str, reason: BadArgs, offset: usize) -> PickleError {
    PickleError::BadCall {
        call,
        reason,
        offset,
    }
}

fn int(heap: &Heap, v: &Value, context: &'static str, offset: usize) -> Result<u64, PickleError> {
    match v {
        Value::Int(n) => {
            u64::try_from(*n).map_err(|_| bad(context, BadArgs::Negative { value: *n }, offset))
        }
        other => Err(type_err(context, "an int", heap.kind(other), offset)),
    }
}

fn ints(
    heap: &Heap,
    v: &Value,
    context: &'static str,
    offset: usize,
) -> Result<Vec<u64>, PickleError> {
    heap.tuple(v, context, offset)?
        .iter()
        .map(|x| int(heap, x, context, offset))
        .collect()
}

fn tensor(
    heap: &Heap,
    v: &Value,
    context: &'static str,
    offset: usize,
) -> Result<TensorRecord, PickleError> {
    match v {
        Value::Obj(i) => match heap.get(*i) {
            Obj::Tensor(t) => Ok(t.clone()),
            other => Err(type_err(context, "a tensor", other.kind(), offset)),
        },
        other => Err(type_err(context, "a tensor", heap.kind(other), offset)),
    }
}

fn is_dict_or_none(heap: &Heap, v: &Value) -> bool {
    match v {
        Value::None => true,
        Value::Obj(i) => matches!(heap.get(*i), Obj::Dict { .. }),
        _ => false,
    }
}

/// REDUCE: call an allow-listed global with an argument tuple.
pub fn call(
    heap: &mut Heap,
    global: Global,
    args: &Value,
    offset: usize,
) -> Result<Value, PickleError> {
    let a = heap.tuple(args, "REDUCE arguments", offset)?.to_vec();
    heap.charge_work(a.len() * std::mem::size_of::<Value>(), offset)?;
    let obj = match global {
        Global::OrderedDict => {
            if !a.is_empty() {
                return Err(bad(
                    "collections.OrderedDict",
                    BadArgs::WithArguments,
                    offset,
                ));
            }
            new_dict(true)
        }
        Global::RebuildTensorV2 => {
            const C: &str = "torch._utils._rebuild_tensor_v2";
            if a.len() != 6 && a.len() != 7 {
                return Err(bad(C, BadArgs::RebuildArgCount { got: a.len() }, offset));
            }
            let storage = match &a[0] {
                Value::Obj(i) => match heap.get(*i) {
                    Obj::Storage(s) => s.clone(),
                    other => return Err(type_err(C, "a storage", other.kind(), offset)),
                },
                other => return Err(type_err(C, "a storage", heap.kind(other), offset)),
            };
            let off = int(heap, &a[1], C, offset)?;
            for (v, what) in [(&a[2], "size"), (&a[3], "stride")] {
                let rank = heap.tuple(v, C, offset)?.len();
                if rank > MAX_RANK {
                    return Err(bad(
                        C,
                        BadArgs::Rank {
                            what,
                            rank,
                            max: MAX_RANK,
                        },
                        offset,
                    ));
                }
            }
            let shape = ints(heap, &a[2], C, offset)?;
            let strides = ints(heap, &a[3], C, offset)?;
            if shape.len() != strides.len() {
                return Err(bad(
                    C,
                    BadArgs::StrideRank {
                        size: shape.len(),
                        stride: strides.len(),
                    },
                    offset,
                ));
            }
            if !matches!(a[4], Value::Bool(_)) {
                return Err(type_err(
                    C,
                    "a bool requires_grad",
                    heap.kind(&a[4]),
                    offset,
                ));
            }
            if !is_dict_or_none(heap, &a[5]) {
                return Err(type_err(
                    C,
                    "backward hooks (a dict)",
                    heap.kind(&a[5]),
                    offset,
                ));
            }
            Obj::Tensor(TensorRecord {
                storage,
                offset: off,
                shape,
                strides,
            })
        }
        Global::RebuildParameter | Global::RebuildParameterWithState => {
            const C: &str = "torch._utils._rebuild_parameter";
            let n = if global == Global::RebuildParameter {
                3
            } else {
                4
            };
            if a.len() != n {
                return Err(bad(
                    C,
                    BadArgs::ArgCount {
                        expected: n,
                        got: a.len(),
                    },
                    offset,
                ));
            }
            Obj::Tensor(tensor(heap, &a[0], C, offset)?)
        }
        Global::CodecsEncode => {
            const C: &str = "_codecs.encode";
            return match a.as_slice() {
                [Value::Str(s), Value::Str(enc)] if &**enc == "latin1" || &**enc == "latin-1" => {
                    let cap = heap.limits().encode_input;
                    if s.len() > cap {
                        return Err(bad(
                            C,
                            BadArgs::TextCap {
                                bytes: s.len(),
                                cap,
                            },
                            offset,
                        ));
                    }
                    heap.charge_work(s.len(), offset)?;
                    heap.charge_bytes(s.len(), offset)?;
                    let bytes: Option<Vec<u8>> =
                        s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect();
                    bytes
                        .map(|b| Value::Bytes(Rc::from(b)))
                        .ok_or_else(|| bad(C, BadArgs::NotLatin1, offset))
                }
                _ => Err(bad(C, BadArgs::EncodeArgs, offset)),
            };
        }
        Global::Storage(_) => {
            return Err(PickleError::RefusedCall {
                opcode: "REDUCE",
                target: format!("`{}`", global.name()),
                offset,
            })
        }
    };
    heap.alloc(obj, offset)
}

/// BINPERSID: torch's persistent id for a storage,
/// `('storage', torch.<X>Storage, key, location, numel)`.
pub(crate) fn persistent_load(
    heap: &mut Heap,
    pid: &Value,
    offset: usize,
) -> Result<Value, PickleError> {
    const C: &str = "storage persistent id";
    let t = heap.tuple(pid, C, offset)?;
    let [Value::Str(tag), Value::Obj(g), Value::Str(key), Value::Str(location), numel] = t else {
        return Err(bad(C, BadArgs::PersistentIdShape, offset));
    };
    if &**tag != "storage" {
        return Err(bad(
            C,
            BadArgs::PersistentIdKind {
                tag: tag.to_string(),
            },
            offset,
        ));
    }
    let dtype = match heap.get(*g) {
        Obj::Global(Global::Storage(d)) => *d,
        other => return Err(type_err(C, "a torch storage type", other.kind(), offset)),
    };
    let numel = int(heap, numel, C, offset)?;
    let s = StorageRef {
        key: key.to_string(),
        dtype,
        numel,
        location: location.to_string(),
    };
    heap.alloc(Obj::Storage(s), offset)
}
