//! Hand-built pickle opcodes for hostile-input tests, shared by formats/tests/budgets.rs
//! (the library) and tests/e2e/hardening.rs (the binary).
#![allow(dead_code)] // each test crate uses its own subset

/// BINUNICODE `s`.
pub fn binunicode(s: &str) -> Vec<u8> {
    let mut v = vec![b'X'];
    v.extend((s.len() as u32).to_le_bytes());
    v.extend(s.as_bytes());
    v
}

/// A tuple of LONG1 integers.
pub fn int_tuple(xs: &[u64]) -> Vec<u8> {
    let mut v = vec![b'('];
    for &x in xs {
        v.push(0x8a); // LONG1
        v.push(8);
        v.extend(x.to_le_bytes());
    }
    v.push(b't');
    v
}

/// A protocol-2 state dict of `names` keys (`t0`, `t1`, ..) all naming one tensor whose
/// storage key is `key_len` bytes long and whose shape has 32 dimensions: each entry used
/// to copy the record out.
pub fn fanned_out_tensor(key_len: usize, names: usize) -> Vec<u8> {
    let mut p = b"\x80\x02}(".to_vec();
    p.extend(binunicode("t0"));
    p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
    p.extend(binunicode("storage"));
    p.extend(b"ctorch\nHalfStorage\n");
    p.extend(binunicode(&"k".repeat(key_len)));
    p.extend(binunicode("cpu"));
    p.extend(b"K\x01tQK\x00");
    p.extend(int_tuple(&[1; 32]));
    p.extend(int_tuple(&[1; 32]));
    p.extend(b"\x89ccollections\nOrderedDict\n)RtR");
    p.extend(b"r\x00\x00\x00\x00"); // memo 0 = the tensor
    for i in 1..names {
        p.extend(binunicode(&format!("t{i}")));
        p.extend(b"j\x00\x00\x00\x00");
    }
    p.extend(b"u.");
    p
}
