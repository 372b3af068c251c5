//! The pickle opcode loop (CPython `Lib/pickletools.py`, protocols 0-5): an iterative
//! stack machine over the [`Heap`](super::pickle) that only builds data. Object-building
//! opcodes reach nothing but the allow-list in [`globals`](super::globals).

use std::collections::HashMap;
use std::rc::Rc;

use super::globals::{self, Global};
use super::pickle::{limit, malformed, new_dict, type_err, BadArgs, Heap, Obj, PickleError, Value};

/// Longest text line (GLOBAL/INST names, text ints) accepted.
const MAX_LINE: usize = 1024;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], PickleError> {
        let truncated = PickleError::Truncated {
            what,
            offset: self.pos,
        };
        let n = usize::try_from(n).map_err(|_| truncated.clone())?;
        let end = self.pos.checked_add(n).ok_or(truncated.clone())?;
        let s = self.data.get(self.pos..end).ok_or(truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, PickleError> {
        Ok(self.take(1, what)?[0])
    }

    fn le<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], PickleError> {
        let mut b = [0u8; N];
        b.copy_from_slice(self.take(N as u64, what)?);
        Ok(b)
    }

    fn line(&mut self, what: &'static str) -> Result<&'a str, PickleError> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let window = &rest[..rest.len().min(MAX_LINE)];
        let Some(n) = window.iter().position(|&b| b == b'\n') else {
            return Err(PickleError::Truncated {
                what,
                offset: self.pos,
            });
        };
        let s = std::str::from_utf8(&window[..n]).map_err(|_| PickleError::BadCall {
            call: what,
            reason: BadArgs::TextNotUtf8,
            offset: self.pos,
        })?;
        self.pos += n + 1;
        Ok(s)
    }
}

fn text(b: &[u8], what: &'static str, offset: usize) -> Result<Value, PickleError> {
    std::str::from_utf8(b)
        .map(|s| Value::Str(Rc::from(s)))
        .map_err(|_| PickleError::BadCall {
            call: what,
            reason: BadArgs::StringNotUtf8,
            offset,
        })
}

fn little_int(b: &[u8], offset: usize) -> Result<Value, PickleError> {
    if b.len() > 8 {
        return Err(PickleError::BadCall {
            call: "LONG1/LONG4",
            reason: BadArgs::WideInt { bytes: b.len() },
            offset,
        });
    }
    if b.is_empty() {
        return Ok(Value::Int(0));
    }
    let fill = if b[b.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
    let mut full = [fill; 8];
    full[..b.len()].copy_from_slice(b);
    Ok(Value::Int(i64::from_le_bytes(full)))
}

struct Machine<'h> {
    heap: &'h mut Heap,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
}

impl Machine<'_> {
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self, opcode: &'static str, at: usize) -> Result<Value, PickleError> {
        if self.stack.len() <= self.floor() {
            return Err(malformed(opcode, "an empty stack", at));
        }
        self.stack
            .pop()
            .ok_or_else(|| malformed(opcode, "an empty stack", at))
    }

    fn top(&self, opcode: &'static str, at: usize) -> Result<Value, PickleError> {
        match self.stack.last() {
            Some(v) if self.stack.len() > self.floor() => Ok(v.clone()),
            _ => Err(malformed(opcode, "an empty stack", at)),
        }
    }

    fn pop_mark(&mut self, opcode: &'static str, at: usize) -> Result<Vec<Value>, PickleError> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| malformed(opcode, "no MARK", at))?;
        Ok(self.stack.split_off(m.min(self.stack.len())))
    }

    fn put(&mut self, index: u64, at: usize) -> Result<(), PickleError> {
        let v = self.top("PUT", at)?;
        if !self.memo.contains_key(&index) {
            if self.memo.len() >= self.heap.limits().memo {
                return Err(limit("memo entries", self.heap.limits().memo, at));
            }
            // Memo values are shared (Rc strings, heap indices), never deep-copied: an
            // entry costs its slot only.
            self.heap
                .charge_bytes(2 * std::mem::size_of::<(u64, Value)>(), at)?;
        }
        self.memo.insert(index, v);
        Ok(())
    }

    fn get(&mut self, index: u64, at: usize) -> Result<(), PickleError> {
        let v = self
            .memo
            .get(&index)
            .cloned()
            .ok_or(PickleError::MemoMissing { index, offset: at })?;
        self.stack.push(v);
        Ok(())
    }

    fn alloc(&mut self, obj: Obj, at: usize) -> Result<(), PickleError> {
        let v = self.heap.alloc(obj, at)?;
        self.stack.push(v);
        Ok(())
    }

    fn tuple(&mut self, items: Vec<Value>, at: usize) -> Result<(), PickleError> {
        self.alloc(Obj::Tuple(items), at)
    }

    fn global_name(&self, v: &Value) -> String {
        match v {
            Value::Obj(i) => match self.heap.get(*i) {
                Obj::Global(g) => format!("`{}`", g.name()),
                other => other.kind().to_string(),
            },
            other => self.heap.kind(other).to_string(),
        }
    }

    fn refuse(&self, opcode: &'static str, target: &Value, at: usize) -> PickleError {
        PickleError::RefusedCall {
            opcode,
            target: self.global_name(target),
            offset: at,
        }
    }
}

/// Run a pickle to its STOP and return the value it leaves.
pub(super) fn run(pkl: &[u8], heap: &mut Heap) -> Result<Value, PickleError> {
    let lim = heap.limits();
    let mut r = Reader { data: pkl, pos: 0 };
    let mut m = Machine {
        heap,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    loop {
        let at = r.pos;
        let op = r.u8("the opcode stream (no STOP)")?;
        match op {
            0x80 => {
                let v = r.u8("PROTO")?;
                if v > 5 {
                    return Err(PickleError::BadCall {
                        call: "PROTO",
                        reason: BadArgs::Protocol { version: v },
                        offset: at,
                    });
                }
            }
            0x95 => {
                r.take(8, "FRAME")?;
            }
            b'.' => return m.pop("STOP", at),
            b'(' => {
                if m.marks.len() >= lim.marks {
                    return Err(limit("open MARKs", lim.marks, at));
                }
                m.marks.push(m.stack.len());
            }
            b'0' => {
                if m.stack.len() > m.floor() {
                    m.stack.pop();
                } else {
                    m.pop_mark("POP", at)?;
                }
            }
            b'1' => {
                m.pop_mark("POP_MARK", at)?;
            }
            b'2' => {
                let v = m.top("DUP", at)?;
                m.stack.push(v);
            }
            b'N' => m.stack.push(Value::None),
            0x88 => m.stack.push(Value::Bool(true)),
            0x89 => m.stack.push(Value::Bool(false)),
            b'J' => m
                .stack
                .push(Value::Int(i32::from_le_bytes(r.le("BININT")?).into())),
            b'K' => m.stack.push(Value::Int(r.u8("BININT1")?.into())),
            b'M' => m
                .stack
                .push(Value::Int(u16::from_le_bytes(r.le("BININT2")?).into())),
            0x8a => {
                let n = r.u8("LONG1")?;
                let b = r.take(n.into(), "LONG1")?;
                m.stack.push(little_int(b, at)?);
            }
            0x8b => {
                let n = u32::from_le_bytes(r.le("LONG4")?);
                let b = r.take(n.into(), "LONG4")?;
                m.stack.push(little_int(b, at)?);
            }
            b'I' | b'L' => {
                let s = r.line("INT")?;
                let v = match s {
                    "01" => Value::Bool(true),
                    "00" => Value::Bool(false),
                    _ => Value::Int(s.trim_end_matches('L').parse().map_err(|_| {
                        PickleError::BadCall {
                            call: "INT",
                            reason: BadArgs::NotInt {
                                text: s.to_string(),
                            },
                            offset: at,
                        }
                    })?),
                };
                m.stack.push(v);
            }
            b'G' => m
                .stack
                .push(Value::Float(f64::from_be_bytes(r.le("BINFLOAT")?))),
            b'X' | 0x8c | 0x8d | b'T' | b'U' => {
                let n: u64 = match op {
                    b'X' | b'T' => u32::from_le_bytes(r.le("BINUNICODE")?).into(),
                    0x8c | b'U' => r.u8("SHORT_BINUNICODE")?.into(),
                    _ => u64::from_le_bytes(r.le("BINUNICODE8")?),
                };
                let b = r.take(n, "a string")?;
                m.heap.charge_bytes(b.len(), at)?;
                m.stack.push(text(b, "BINUNICODE", at)?);
            }
            b'B' | b'C' | 0x8e => {
                let n: u64 = match op {
                    b'B' => u32::from_le_bytes(r.le("BINBYTES")?).into(),
                    b'C' => r.u8("SHORT_BINBYTES")?.into(),
                    _ => u64::from_le_bytes(r.le("BINBYTES8")?),
                };
                let b = r.take(n, "bytes")?;
                m.heap.charge_bytes(b.len(), at)?;
                m.stack.push(Value::Bytes(Rc::from(b)));
            }
            b')' => m.tuple(Vec::new(), at)?,
            b't' => {
                let items = m.pop_mark("TUPLE", at)?;
                m.tuple(items, at)?;
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(m.pop("TUPLEn", at)?);
                }
                items.reverse();
                m.tuple(items, at)?;
            }
            b']' => m.alloc(Obj::List(Vec::new()), at)?,
            b'l' => {
                let items = m.pop_mark("LIST", at)?;
                let v = m.heap.alloc(Obj::List(Vec::new()), at)?;
                m.heap.extend_list(&v, items, at)?;
                m.stack.push(v);
            }
            b'a' => {
                let v = m.pop("APPEND", at)?;
                let target = m.top("APPEND", at)?;
                m.heap.extend_list(&target, vec![v], at)?;
            }
            b'e' => {
                let items = m.pop_mark("APPENDS", at)?;
                let target = m.top("APPENDS", at)?;
                m.heap.extend_list(&target, items, at)?;
            }
            b'}' => m.alloc(new_dict(false), at)?,
            b'd' => {
                let items = m.pop_mark("DICT", at)?;
                let v = m.heap.alloc(new_dict(false), at)?;
                m.heap.set_items(&v, items, at)?;
                m.stack.push(v);
            }
            b's' => {
                let v = m.pop("SETITEM", at)?;
                let k = m.pop("SETITEM", at)?;
                let target = m.top("SETITEM", at)?;
                m.heap.set_items(&target, vec![k, v], at)?;
            }
            b'u' => {
                let items = m.pop_mark("SETITEMS", at)?;
                let target = m.top("SETITEMS", at)?;
                m.heap.set_items(&target, items, at)?;
            }
            b'q' => {
                let i = r.u8("BINPUT")?;
                m.put(i.into(), at)?;
            }
            b'r' => {
                let i = u32::from_le_bytes(r.le("LONG_BINPUT")?);
                m.put(i.into(), at)?;
            }
            0x94 => {
                let i = m.memo.len() as u64;
                m.put(i, at)?;
            }
            b'p' | b'g' => {
                let s = r.line("PUT/GET")?;
                let i: u64 = s.parse().map_err(|_| PickleError::BadCall {
                    call: "PUT/GET",
                    reason: BadArgs::NotMemoIndex {
                        text: s.to_string(),
                    },
                    offset: at,
                })?;
                if op == b'p' {
                    m.put(i, at)?;
                } else {
                    m.get(i, at)?;
                }
            }
            b'h' => {
                let i = r.u8("BINGET")?;
                m.get(i.into(), at)?;
            }
            b'j' => {
                let i = u32::from_le_bytes(r.le("LONG_BINGET")?);
                m.get(i.into(), at)?;
            }
            b'c' | b'i' => {
                let module = r.line("GLOBAL module")?;
                let name = r.line("GLOBAL name")?;
                let g = Global::resolve(module, name)?;
                if op == b'i' {
                    return Err(PickleError::RefusedCall {
                        opcode: "INST",
                        target: format!("`{}`", g.name()),
                        offset: at,
                    });
                }
                m.alloc(Obj::Global(g), at)?;
            }
            0x93 => {
                let name = m.pop("STACK_GLOBAL", at)?;
                let module = m.pop("STACK_GLOBAL", at)?;
                let (Value::Str(module), Value::Str(name)) = (&module, &name) else {
                    return Err(type_err(
                        "STACK_GLOBAL",
                        "two strs",
                        m.heap.kind(&module),
                        at,
                    ));
                };
                let g = Global::resolve(module, name)?;
                m.alloc(Obj::Global(g), at)?;
            }
            b'o' => {
                let items = m.pop_mark("OBJ", at)?;
                let cls = items.first().cloned().unwrap_or(Value::None);
                return Err(m.refuse("OBJ", &cls, at));
            }
            0x81 | 0x92 => {
                if op == 0x92 {
                    m.pop("NEWOBJ_EX", at)?;
                }
                m.pop("NEWOBJ", at)?;
                let cls = m.pop("NEWOBJ", at)?;
                return Err(m.refuse(if op == 0x81 { "NEWOBJ" } else { "NEWOBJ_EX" }, &cls, at));
            }
            b'R' => {
                let args = m.pop("REDUCE", at)?;
                let f = m.pop("REDUCE", at)?;
                let g = match &f {
                    Value::Obj(i) => match m.heap.get(*i) {
                        Obj::Global(g) => *g,
                        _ => return Err(m.refuse("REDUCE", &f, at)),
                    },
                    _ => return Err(m.refuse("REDUCE", &f, at)),
                };
                let v = globals::call(m.heap, g, &args, at)?;
                m.stack.push(v);
            }
            b'b' => {
                let state = m.pop("BUILD", at)?;
                let target = m.top("BUILD", at)?;
                let ordered = matches!(&target, Value::Obj(i)
                    if matches!(m.heap.get(*i), Obj::Dict { ordered: true, .. }));
                let state_ok = match &state {
                    Value::None => true,
                    Value::Obj(i) => matches!(m.heap.get(*i), Obj::Dict { .. }),
                    _ => false,
                };
                // An OrderedDict's state is its `__dict__` (`_metadata` of a module's
                // state_dict): accepted and ignored. Nothing else may be built.
                if !(ordered && state_ok) {
                    return Err(m.refuse("BUILD", &target, at));
                }
            }
            b'Q' => {
                let pid = m.pop("BINPERSID", at)?;
                let v = globals::persistent_load(m.heap, &pid, at)?;
                m.stack.push(v);
            }
            _ => {
                return Err(PickleError::UnsupportedOpcode {
                    op,
                    name: opcode_name(op),
                    offset: at,
                })
            }
        }
        if m.stack.len() > lim.stack {
            return Err(limit("stack values", lim.stack, at));
        }
    }
}

fn opcode_name(op: u8) -> &'static str {
    match op {
        b'F' => "FLOAT",
        b'S' => "STRING",
        b'V' => "UNICODE",
        b'P' => "PERSID",
        0x82..=0x84 => "EXT",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "unknown",
    }
}
