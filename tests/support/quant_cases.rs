//! Quantization reference cases on disk, shared by the golden-block test
//! (formats/tests/quant_golden.rs) and the live interop test (tests/e2e/quantize.rs):
//! `{case}.json` (`n_per_row`, `rows`), `{case}.f32` (the input rows) and
//! `{case}.{TYPE}.{producer}` (the reference blocks).
#![allow(dead_code)] // each test crate uses its own subset

use std::path::Path;

/// The block types every case is quantized to.
pub const TYPES: [&str; 10] = [
    "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
];

/// One case: its name, row length and input values.
pub struct Case {
    pub name: String,
    pub n_per_row: usize,
    pub x: Vec<f32>,
}

/// Every case in `dir`, sorted by name.
pub fn cases(dir: &Path) -> Vec<Case> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            n.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap())
                    .unwrap();
            let n_per_row = meta["n_per_row"].as_u64().unwrap() as usize;
            let x = read_f32(&dir.join(format!("{name}.f32")));
            let rows = meta["rows"].as_u64().unwrap() as usize;
            assert_eq!(x.len(), rows * n_per_row, "{name}");
            Case { name, n_per_row, x }
        })
        .collect()
}

/// Little-endian f32 values of the file `p`.
pub fn read_f32(p: &Path) -> Vec<f32> {
    std::fs::read(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// First differing block, for a readable failure.
pub fn first_diff(a: &[u8], b: &[u8], block_bytes: usize) -> Option<usize> {
    a.chunks(block_bytes)
        .zip(b.chunks(block_bytes))
        .position(|(x, y)| x != y)
}
