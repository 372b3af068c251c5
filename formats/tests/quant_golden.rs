//! Our block quantizers against golden blocks made by llama.cpp's own ggml
//! (`tests/fixtures/quant_golden/make_golden.py`), byte for byte: proves "byte-identical to
//! llama.cpp" in a plain `cargo test`, without Python. The interop tests
//! (tests/e2e/quantize.rs) check more rows and whole files against the live library.

use std::path::PathBuf;

use llama_ggml::quant::quantize;
use llama_ggml::DType;

const TYPES: [&str; 10] = [
    "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
];

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/quant_golden")
}

#[test]
fn every_type_matches_llama_cpp_golden_blocks() {
    let dir = golden_dir();
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            n.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 10,
        "too few golden cases in {}: {cases:?}",
        dir.display()
    );
    let mut compared = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{case}.json"))).unwrap())
                .unwrap();
        let n_per_row = meta["n_per_row"].as_u64().unwrap() as usize;
        let x: Vec<f32> = std::fs::read(dir.join(format!("{case}.f32")))
            .unwrap()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(x.len(), meta["rows"].as_u64().unwrap() as usize * n_per_row);
        for t in TYPES {
            let dtype = DType::from_name(t).unwrap();
            let golden = std::fs::read(dir.join(format!("{case}.{t}.ggml"))).unwrap();
            let ours = quantize(dtype, &x, n_per_row).unwrap();
            compared += 1;
            if ours != golden {
                let bb = dtype.block_bytes();
                let block = ours
                    .chunks(bb)
                    .zip(golden.chunks(bb))
                    .position(|(a, b)| a != b);
                failures.push(format!("{case} {t}: first differing block {block:?}"));
            }
        }
    }
    assert_eq!(compared, cases.len() * TYPES.len());
    assert!(failures.is_empty(), "differ from llama.cpp: {failures:#?}");
}
