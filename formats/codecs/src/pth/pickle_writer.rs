//! Writes the `data.pkl` of a state dict the way `torch.save` does (pickle protocol 2): an
//! `OrderedDict` whose values are `torch._utils._rebuild_tensor_v2(<storage pid>, 0, size,
//! stride, False, OrderedDict())`, each storage a persistent id
//! `('storage', torch.<X>Storage, '<key>', 'cpu', numel)`. One contiguous storage per tensor,
//! keyed `0, 1, ...` in order. The output is read by torch's `weights_only` unpickler and by
//! our own [`pickle`](super::pickle) machine.

use std::collections::HashMap;

use super::globals::Global;
use crate::tensor::{contiguous_strides, TensorInfo};

/// Python's pickler batches SETITEMS in groups of this many pairs.
const BATCH: usize = 1000;

struct Pickler {
    out: Vec<u8>,
    memo: HashMap<String, u32>,
}

impl Pickler {
    fn put(&mut self, key: String) {
        let i = self.memo.len() as u32;
        if let Ok(b) = u8::try_from(i) {
            self.out.extend_from_slice(&[b'q', b]);
        } else {
            self.out.push(b'r');
            self.out.extend_from_slice(&i.to_le_bytes());
        }
        self.memo.insert(key, i);
    }

    /// Emit a value stored once and fetched from the memo afterwards.
    fn memoized(&mut self, key: String, emit: impl FnOnce(&mut Vec<u8>)) {
        match self.memo.get(&key) {
            Some(&i) => match u8::try_from(i) {
                Ok(b) => self.out.extend_from_slice(&[b'h', b]),
                Err(_) => {
                    self.out.push(b'j');
                    self.out.extend_from_slice(&i.to_le_bytes());
                }
            },
            None => {
                emit(&mut self.out);
                self.put(key);
            }
        }
    }

    fn global(&mut self, module: &str, name: &str) {
        self.memoized(format!("global:{module}.{name}"), |o| {
            o.push(b'c');
            o.extend_from_slice(module.as_bytes());
            o.push(b'\n');
            o.extend_from_slice(name.as_bytes());
            o.push(b'\n');
        });
    }

    fn str(&mut self, s: &str) {
        self.out.push(b'X');
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
    }

    fn int(&mut self, v: u64) {
        if let Ok(b) = u8::try_from(v) {
            self.out.extend_from_slice(&[b'K', b]);
        } else if let Ok(w) = u16::try_from(v) {
            self.out.push(b'M');
            self.out.extend_from_slice(&w.to_le_bytes());
        } else if let Ok(d) = i32::try_from(v) {
            self.out.push(b'J');
            self.out.extend_from_slice(&d.to_le_bytes());
        } else {
            // LONG1: little-endian two's complement, with a 0 byte when the top bit is set.
            let mut b = v.to_le_bytes().to_vec();
            while b.len() > 1 && b[b.len() - 1] == 0 && b[b.len() - 2] & 0x80 == 0 {
                b.pop();
            }
            if b[b.len() - 1] & 0x80 != 0 {
                b.push(0);
            }
            self.out.extend_from_slice(&[0x8a, b.len() as u8]);
            self.out.extend_from_slice(&b);
        }
    }

    fn int_tuple(&mut self, vals: &[u64]) {
        if vals.is_empty() {
            self.out.push(b')');
            return;
        }
        if vals.len() > 3 {
            self.out.push(b'(');
        }
        for &v in vals {
            self.int(v);
        }
        self.out.push(match vals.len() {
            1 => 0x85,
            2 => 0x86,
            3 => 0x87,
            _ => b't',
        });
    }
}

/// The `data.pkl` bytes for `tensors`, tensor `i` in storage `i`. Every dtype must have a
/// torch storage type (checked by the caller).
pub(super) fn state_dict_pickle(tensors: &[TensorInfo]) -> Vec<u8> {
    let mut p = Pickler {
        out: vec![0x80, 2],
        memo: HashMap::new(),
    };
    p.global("collections", "OrderedDict");
    p.out.extend_from_slice(b")R");
    p.put("state_dict".into());
    for (batch_no, batch) in tensors.chunks(BATCH).enumerate() {
        p.out.push(b'(');
        for (j, t) in batch.iter().enumerate() {
            let key = batch_no * BATCH + j;
            p.str(&t.name);
            p.global("torch._utils", "_rebuild_tensor_v2");
            p.out.extend_from_slice(b"((");
            p.memoized("str:storage".into(), |o| {
                o.push(b'X');
                o.extend_from_slice(&7u32.to_le_bytes());
                o.extend_from_slice(b"storage");
            });
            let storage = Global::storage_name(t.dtype).unwrap_or("ByteStorage");
            p.global("torch", storage);
            p.str(&key.to_string());
            p.memoized("str:cpu".into(), |o| {
                o.push(b'X');
                o.extend_from_slice(&3u32.to_le_bytes());
                o.extend_from_slice(b"cpu");
            });
            p.int(t.n_elements().unwrap_or(0));
            p.out.extend_from_slice(b"tQ");
            p.int(0);
            p.int_tuple(&t.shape);
            p.int_tuple(&contiguous_strides(&t.shape));
            p.out.push(0x89);
            p.global("collections", "OrderedDict");
            p.out.extend_from_slice(b")Rt");
            p.out.push(b'R');
        }
        p.out.push(b'u');
    }
    p.out.push(b'.');
    p.out
}
