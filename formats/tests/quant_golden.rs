//! Our block quantizers against golden blocks made by llama.cpp's own ggml
//! (`tests/fixtures/quant_golden/make_golden.py`), byte for byte: proves "byte-identical to
//! llama.cpp" in a plain `cargo test`, without Python. The interop tests
//! (tests/e2e/quantize.rs) check more rows and whole files against the live library.

use std::path::PathBuf;

use llama_ggml::quant::quantize;
use llama_ggml::DType;

#[path = "../../tests/support/quant_cases.rs"]
mod quant_cases;
use quant_cases::{cases, first_diff, TYPES};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/quant_golden")
}

#[test]
fn every_type_matches_llama_cpp_golden_blocks() {
    let dir = golden_dir();
    let cases = cases(&dir);
    assert!(
        cases.len() >= 10,
        "too few golden cases in {}: {:?}",
        dir.display(),
        cases.iter().map(|c| &c.name).collect::<Vec<_>>()
    );
    let mut compared = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let (x, n_per_row, case) = (&case.x, case.n_per_row, &case.name);
        for t in TYPES {
            let dtype = DType::from_name(t).unwrap();
            let golden = std::fs::read(dir.join(format!("{case}.{t}.ggml"))).unwrap();
            let ours = quantize(dtype, x, n_per_row).unwrap();
            compared += 1;
            if ours != golden {
                let block = first_diff(&ours, &golden, dtype.block_bytes());
                failures.push(format!("{case} {t}: first differing block {block:?}"));
            }
        }
    }
    assert_eq!(compared, cases.len() * TYPES.len());
    assert!(failures.is_empty(), "differ from llama.cpp: {failures:#?}");
}
