//! A pickle machine that can only build data: it reads the `data.pkl` of a torch zip
//! checkpoint and returns the state dict's tensors as plain records (storage key, dtype,
//! offset, shape, strides). Nothing is imported or executed; every global outside a short
//! allow-list is refused by name.
//!
//! Opcodes follow CPython's `Lib/pickletools.py` (protocols 0-5,
//! <https://github.com/python/cpython/blob/main/Lib/pickletools.py>); the torch globals follow
//! `torch/_utils.py` and `torch/serialization.py` (`_rebuild_tensor_v2`, persistent ids
//! `('storage', <storage type>, key, location, numel)`). Why not `serde-pickle`: see
//! `docs/decisions/pickle.md`.
//!
//! The machine is iterative (no recursion), objects live in a flat heap (so dropping a deeply
//! nested structure cannot overflow the stack), and the stack, mark stack, memo, heap,
//! container sizes and nesting depth are all capped.

use std::collections::HashMap;
use std::rc::Rc;

use super::globals::Global;
use crate::dtype::DType;

/// Caps on what a pickle may make the machine allocate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Values on the stack.
    pub stack: usize,
    /// Open MARKs.
    pub marks: usize,
    /// Memo entries.
    pub memo: usize,
    /// Objects (tuples, lists, dicts, tensors...) built in total.
    pub(crate) objects: usize,
    /// Elements held by all containers together.
    pub elements: usize,
    /// Nesting depth of containers.
    pub depth: u32,
    /// Bytes materialised in total: strings, bytes, keys, tuples, lists, dict entries,
    /// memo entries and every copy made into a storage or tensor record.
    pub bytes: usize,
    /// Work done, in bytes processed (dict keys hashed, `_codecs.encode` input, argument
    /// tuples copied, shapes read): bounds the time a small file can cost.
    pub work: usize,
    /// Longest string `_codecs.encode` accepts.
    pub(crate) encode_input: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            stack: 1 << 20,
            marks: 256,
            memo: 1 << 22,
            objects: 1 << 22,
            elements: 1 << 24,
            depth: 64,
            bytes: 64 << 20,
            work: 512 << 20,
            encode_input: 1 << 20,
        }
    }
}

/// Why a pickle was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum PickleError {
    /// A global outside the allow-list (GLOBAL, STACK_GLOBAL or INST).
    #[error(
        "refused pickle global `{module}.{name}` (not on the allow-list; nothing was executed)"
    )]
    RefusedGlobal {
        /// The module.
        module: String,
        /// The name, as written in the file.
        name: String,
    },
    /// A `torch.<X>Storage` of a dtype we do not read (not a security refusal).
    #[error(
        "unsupported torch storage type `torch.{name}` (supported: Float, Half, BFloat16, \
         Double, Long, Int, Short, Char, Byte, Bool)"
    )]
    UnsupportedStorage {
        /// The name, as written in the file.
        name: String,
    },
    /// An object-building opcode applied to something that may not be built that way.
    #[error("refused pickle {opcode} on {target} at byte {offset} (nothing was executed)")]
    RefusedCall {
        /// The opcode.
        opcode: &'static str,
        /// The target.
        target: String,
        /// Byte offset.
        offset: usize,
    },
    /// The data ended inside an opcode or before STOP.
    #[error("pickle is truncated: it ends inside {what} at byte {offset}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Byte offset.
        offset: usize,
    },
    /// An opcode this machine does not implement.
    #[error("unsupported pickle opcode {name} (0x{op:02x}) at byte {offset}")]
    UnsupportedOpcode {
        /// The opcode.
        op: u8,
        /// The name, as written in the file.
        name: &'static str,
        /// Byte offset.
        offset: usize,
    },
    /// A cap was exceeded.
    #[error("pickle exceeds the cap on {what} ({limit}) at byte {offset}")]
    Limit {
        /// What was being read.
        what: &'static str,
        /// The limit.
        limit: usize,
        /// Byte offset.
        offset: usize,
    },
    /// The stack or mark stack had too few items for an opcode.
    #[error("malformed pickle: {opcode} at byte {offset} finds {what}")]
    Malformed {
        /// The opcode.
        opcode: &'static str,
        /// What was being read.
        what: &'static str,
        /// Byte offset.
        offset: usize,
    },
    /// BINGET of an index never stored.
    #[error("malformed pickle: memo index {index} read at byte {offset} was never stored")]
    MemoMissing {
        /// The index.
        index: u64,
        /// Byte offset.
        offset: usize,
    },
    /// A value of the wrong kind where a particular kind is needed.
    #[error("malformed pickle: {context} at byte {offset} expects {expected}, found {found}")]
    Type {
        /// The context.
        context: &'static str,
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: &'static str,
        /// Byte offset.
        offset: usize,
    },
    /// An allow-listed call with arguments it cannot take.
    #[error("malformed pickle: {call} at byte {offset}: {reason}")]
    BadCall {
        /// The call.
        call: &'static str,
        /// What is wrong.
        reason: BadArgs,
        /// Byte offset.
        offset: usize,
    },
    /// The pickle's result is not a dict of tensors.
    #[error("pickle holds {found}, not a state dict (a dict of tensors)")]
    NotStateDict {
        /// What was found.
        found: &'static str,
    },
    /// A state dict entry is not a tensor.
    #[error("state dict entry `{key}` is {found}, not a tensor")]
    NotTensor {
        /// The key.
        key: String,
        /// What was found.
        found: &'static str,
    },
}

/// What is wrong with the arguments of an allow-listed call or an opcode's operand
/// ([`PickleError::BadCall`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadArgs {
    /// A text line that is not UTF-8.
    #[error("text is not UTF-8")]
    TextNotUtf8,
    /// A string operand that is not UTF-8.
    #[error("string is not UTF-8")]
    StringNotUtf8,
    /// A LONG1/LONG4 wider than 64 bits.
    #[error("{bytes}-byte integer is wider than 64 bits")]
    WideInt {
        /// Its byte length.
        bytes: usize,
    },
    /// A PROTO newer than 5.
    #[error("protocol {version} is newer than 5")]
    Protocol {
        /// The protocol.
        version: u8,
    },
    /// An INT line that is not a 64-bit integer.
    #[error("`{text}` is not a 64-bit integer")]
    NotInt {
        /// The line.
        text: String,
    },
    /// A PUT/GET line that is not a memo index.
    #[error("`{text}` is not a memo index")]
    NotMemoIndex {
        /// The line.
        text: String,
    },
    /// A negative integer where a size or offset is needed.
    #[error("negative {value}")]
    Negative {
        /// The value.
        value: i64,
    },
    /// `OrderedDict()` with arguments.
    #[error("called with arguments")]
    WithArguments,
    /// A call with the wrong number of arguments.
    #[error("takes {expected} arguments, got {got}")]
    ArgCount {
        /// Arguments taken.
        expected: usize,
        /// Arguments given.
        got: usize,
    },
    /// `_rebuild_tensor_v2` with other than 6 or 7 arguments.
    #[error("takes 6 or 7 arguments, got {got}")]
    RebuildArgCount {
        /// Arguments given.
        got: usize,
    },
    /// A size or stride tuple with too many dimensions.
    #[error("{what} has {rank} dimensions (at most {max})")]
    Rank {
        /// `size` or `stride`.
        what: &'static str,
        /// Its dimensions.
        rank: usize,
        /// The most allowed.
        max: usize,
    },
    /// Size and stride of different lengths.
    #[error("size has {size} dims but stride has {stride}")]
    StrideRank {
        /// Dimensions of the size.
        size: usize,
        /// Dimensions of the stride.
        stride: usize,
    },
    /// `_codecs.encode` input over its cap.
    #[error("{bytes} bytes of text exceed the {cap}-byte cap")]
    TextCap {
        /// Bytes of text.
        bytes: usize,
        /// The cap.
        cap: usize,
    },
    /// `_codecs.encode` of text outside latin-1.
    #[error("text is not latin-1")]
    NotLatin1,
    /// `_codecs.encode` with other arguments than (str, 'latin1').
    #[error("expects (str, 'latin1')")]
    EncodeArgs,
    /// A persistent id of another shape than torch's storage tuple.
    #[error("expects ('storage', storage type, key, location, numel)")]
    PersistentIdShape,
    /// A persistent id whose kind is not `storage`.
    #[error("unknown persistent id kind `{tag}`")]
    PersistentIdKind {
        /// The kind.
        tag: String,
    },
}

/// A storage as named by a persistent id: zip record `data/<key>` of `numel` elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRef {
    /// The record key (`data/<key>` in the archive).
    pub key: String,
    /// Element type of the typed storage.
    pub dtype: DType,
    /// Elements the storage holds.
    pub numel: u64,
    /// Device it was saved from (`cpu`, `cuda:0`); informational.
    pub location: String,
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided view into a storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRecord {
    /// The storage it views.
    pub storage: StorageRef,
    /// Offset into the storage, in elements.
    pub offset: u64,
    /// Shape, outermost first.
    pub shape: Vec<u64>,
    /// Strides in elements.
    pub strides: Vec<u64>,
}

/// A value on the stack or in the memo. Containers live in the heap and are referred to by
/// index, so values are cheap to copy and a structure's nesting never recurses.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Obj(usize),
}

/// Dict keys the machine can index (state dicts and their `_metadata` use strings and ints).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Key {
    Str(Rc<str>),
    Int(i64),
    Bool(bool),
    None,
}

#[derive(Debug)]
pub(super) enum Obj {
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict {
        ordered: bool,
        items: Vec<(Value, Value)>,
        index: HashMap<Key, usize>,
    },
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRecord),
}

impl Obj {
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Obj::Tuple(_) => "a tuple",
            Obj::List(_) => "a list",
            Obj::Dict { ordered: true, .. } => "an OrderedDict",
            Obj::Dict { .. } => "a dict",
            Obj::Global(_) => "a global",
            Obj::Storage(_) => "a storage",
            Obj::Tensor(_) => "a tensor",
        }
    }
}

/// Objects plus their nesting depth, with the caps that bound them.
pub(super) struct Heap {
    objs: Vec<(Obj, u32)>,
    elements: usize,
    bytes: usize,
    work: usize,
    limits: Limits,
}

impl Heap {
    pub(super) fn limits(&self) -> Limits {
        self.limits
    }

    /// Count `n` bytes materialised against [`Limits::bytes`].
    pub(super) fn charge_bytes(&mut self, n: usize, offset: usize) -> Result<(), PickleError> {
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > self.limits.bytes {
            return Err(limit("bytes materialised", self.limits.bytes, offset));
        }
        Ok(())
    }

    /// Count `n` bytes of work against [`Limits::work`].
    pub(super) fn charge_work(&mut self, n: usize, offset: usize) -> Result<(), PickleError> {
        self.work = self.work.saturating_add(n);
        if self.work > self.limits.work {
            return Err(limit("work (bytes processed)", self.limits.work, offset));
        }
        Ok(())
    }

    pub(super) fn get(&self, i: usize) -> &Obj {
        &self.objs[i].0
    }

    pub(super) fn kind(&self, v: &Value) -> &'static str {
        match v {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a str",
            Value::Bytes(_) => "bytes",
            Value::Obj(i) => self.get(*i).kind(),
        }
    }

    fn depth(&self, v: &Value) -> u32 {
        match v {
            Value::Obj(i) => self.objs[*i].1,
            _ => 0,
        }
    }

    /// Add an object, counting the values it holds against the caps.
    pub(super) fn alloc(&mut self, obj: Obj, offset: usize) -> Result<Value, PickleError> {
        if self.objs.len() >= self.limits.objects {
            return Err(limit("objects", self.limits.objects, offset));
        }
        let (n, child_depth) = match &obj {
            Obj::Tuple(items) | Obj::List(items) => (
                items.len(),
                items.iter().map(|c| self.depth(c)).max().unwrap_or(0),
            ),
            _ => (0, 0),
        };
        let depth = child_depth + 1;
        self.check_growth(n, depth, offset)?;
        let inner = match &obj {
            Obj::Storage(s) => s.key.len() + s.location.len(),
            Obj::Tensor(t) => record_bytes(t),
            _ => 0,
        };
        self.charge_bytes(std::mem::size_of::<(Obj, u32)>() + inner, offset)?;
        self.charge_work(inner + n, offset)?;
        self.objs.push((obj, depth));
        Ok(Value::Obj(self.objs.len() - 1))
    }

    fn check_growth(&mut self, n: usize, depth: u32, offset: usize) -> Result<(), PickleError> {
        self.charge_bytes(n.saturating_mul(std::mem::size_of::<Value>()), offset)?;
        self.elements = self.elements.saturating_add(n);
        if self.elements > self.limits.elements {
            return Err(limit("container elements", self.limits.elements, offset));
        }
        if depth > self.limits.depth {
            return Err(limit("nesting depth", self.limits.depth as usize, offset));
        }
        Ok(())
    }

    /// Append values to the list at `target` (APPEND/APPENDS).
    pub(super) fn extend_list(
        &mut self,
        target: &Value,
        vals: Vec<Value>,
        offset: usize,
    ) -> Result<(), PickleError> {
        let i = self.obj_index(target, "APPEND target", "a list", offset)?;
        let depth = vals
            .iter()
            .map(|c| self.depth(c) + 1)
            .fold(self.objs[i].1, u32::max);
        self.check_growth(vals.len(), depth, offset)?;
        let found = self.objs[i].0.kind();
        match &mut self.objs[i] {
            (Obj::List(items), d) => {
                items.extend(vals);
                *d = depth;
                Ok(())
            }
            _ => Err(type_err("APPEND target", "a list", found, offset)),
        }
    }

    /// Set key/value pairs in the dict at `target` (SETITEM/SETITEMS); a repeated key keeps
    /// its first position and takes the new value, as Python's dict does.
    pub(super) fn set_items(
        &mut self,
        target: &Value,
        kvs: Vec<Value>,
        offset: usize,
    ) -> Result<(), PickleError> {
        if !kvs.len().is_multiple_of(2) {
            return Err(malformed("SETITEMS", "an odd number of items", offset));
        }
        let i = self.obj_index(target, "SETITEM target", "a dict", offset)?;
        let depth = kvs
            .iter()
            .map(|c| self.depth(c) + 1)
            .fold(self.objs[i].1, u32::max);
        self.check_growth(kvs.len(), depth, offset)?;
        // Each entry also costs an index slot; hashing a key costs its length.
        let per_entry = std::mem::size_of::<(Key, usize)>() + std::mem::size_of::<(Value, Value)>();
        self.charge_bytes((kvs.len() / 2).saturating_mul(per_entry), offset)?;
        let hashed: usize = kvs
            .iter()
            .step_by(2)
            .map(|k| match k {
                Value::Str(s) => s.len() + 8,
                _ => 8,
            })
            .sum();
        self.charge_work(hashed, offset)?;
        let mut keys = Vec::with_capacity(kvs.len() / 2);
        for k in kvs.iter().step_by(2) {
            keys.push(match k {
                Value::Str(s) => Key::Str(s.clone()),
                Value::Int(n) => Key::Int(*n),
                Value::Bool(b) => Key::Bool(*b),
                Value::None => Key::None,
                other => {
                    return Err(type_err(
                        "dict key",
                        "a str or int",
                        self.kind(other),
                        offset,
                    ))
                }
            });
        }
        let found = self.objs[i].0.kind();
        let (Obj::Dict { items, index, .. }, d) = &mut self.objs[i] else {
            return Err(type_err("SETITEM target", "a dict", found, offset));
        };
        *d = depth;
        let mut it = kvs.into_iter();
        for key in keys {
            let (Some(k), Some(v)) = (it.next(), it.next()) else {
                break;
            };
            match index.get(&key) {
                Some(&pos) => items[pos].1 = v,
                None => {
                    index.insert(key, items.len());
                    items.push((k, v));
                }
            }
        }
        Ok(())
    }

    fn obj_index(
        &self,
        v: &Value,
        context: &'static str,
        expected: &'static str,
        offset: usize,
    ) -> Result<usize, PickleError> {
        match v {
            Value::Obj(i) => Ok(*i),
            other => Err(type_err(context, expected, self.kind(other), offset)),
        }
    }

    /// The items of a tuple value.
    pub(super) fn tuple<'h>(
        &'h self,
        v: &Value,
        context: &'static str,
        offset: usize,
    ) -> Result<&'h [Value], PickleError> {
        match v {
            Value::Obj(i) => match self.get(*i) {
                Obj::Tuple(items) => Ok(items),
                other => Err(type_err(context, "a tuple", other.kind(), offset)),
            },
            other => Err(type_err(context, "a tuple", self.kind(other), offset)),
        }
    }
}

/// Bytes a tensor record holds beyond its own struct (copied key, location, shape, strides).
pub(super) fn record_bytes(t: &TensorRecord) -> usize {
    t.storage.key.len() + t.storage.location.len() + 8 * (t.shape.len() + t.strides.len())
}

pub(super) fn limit(what: &'static str, limit: usize, offset: usize) -> PickleError {
    PickleError::Limit {
        what,
        limit,
        offset,
    }
}

pub(super) fn malformed(opcode: &'static str, what: &'static str, offset: usize) -> PickleError {
    PickleError::Malformed {
        opcode,
        what,
        offset,
    }
}

pub(super) fn type_err(
    context: &'static str,
    expected: &'static str,
    found: &'static str,
    offset: usize,
) -> PickleError {
    PickleError::Type {
        context,
        expected,
        found,
        offset,
    }
}

/// Read a torch `data.pkl` and return the state dict's tensors in insertion order.
pub fn load_state_dict(pkl: &[u8]) -> Result<Vec<(String, TensorRecord)>, PickleError> {
    load_state_dict_with(pkl, Limits::default())
}

/// [`load_state_dict`] with explicit caps.
pub(crate) fn load_state_dict_with(
    pkl: &[u8],
    limits: Limits,
) -> Result<Vec<(String, TensorRecord)>, PickleError> {
    let mut heap = Heap {
        objs: Vec::new(),
        elements: 0,
        bytes: 0,
        work: 0,
        limits,
    };
    let result = super::machine::run(pkl, &mut heap)?;
    let Value::Obj(i) = result else {
        return Err(PickleError::NotStateDict {
            found: heap.kind(&result),
        });
    };
    let Obj::Dict { items, .. } = heap.get(i) else {
        return Err(PickleError::NotStateDict {
            found: heap.get(i).kind(),
        });
    };
    let mut out = Vec::with_capacity(items.len());
    // The records handed out are copies: one tensor named a million times must not become
    // a million copies of its shape, so they count against the byte budget too.
    let mut copied = heap.bytes;
    for (k, v) in items {
        let key = match k {
            Value::Str(s) => s.to_string(),
            other => {
                return Err(PickleError::NotStateDict {
                    found: match heap.kind(other) {
                        "an int" => "a dict with an int key",
                        _ => "a dict with a non-string key",
                    },
                })
            }
        };
        match v {
            Value::Obj(j) => match heap.get(*j) {
                Obj::Tensor(t) => {
                    copied = copied.saturating_add(
                        record_bytes(t) + key.len() + std::mem::size_of::<(String, TensorRecord)>(),
                    );
                    if copied > heap.limits.bytes {
                        return Err(limit("bytes materialised", heap.limits.bytes, pkl.len()));
                    }
                    out.push((key, t.clone()))
                }
                other => {
                    return Err(PickleError::NotTensor {
                        key,
                        found: other.kind(),
                    })
                }
            },
            other => {
                return Err(PickleError::NotTensor {
                    key,
                    found: heap.kind(other),
                })
            }
        }
    }
    Ok(out)
}

/// Build `Obj::Dict` for EMPTY_DICT / DICT / OrderedDict().
pub(super) fn new_dict(ordered: bool) -> Obj {
    Obj::Dict {
        ordered,
        items: Vec::new(),
        index: HashMap::new(),
    }
}
