//! Quantization interop: our block quantizers against gguf-py's numpy quantizers and ggml's
//! own (`ggml_quantize_chunk` in llama-cpp-python's libggml-base), byte for byte; our
//! dequantizers against gguf-py's; `llama-tool quantize` against `llama_model_quantize`
//! for every preset, tensor by tensor; llama.cpp running our Q4_K_M output.

use std::path::Path;

use llama_formats::quant::{dequantize, quantize, QuantError};
use llama_formats::DType;

use crate::common;

const TYPES: [&str; 10] = [
    "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
];

fn read_f32(p: &Path) -> Vec<f32> {
    std::fs::read(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// First differing block, for a readable failure.
fn first_diff(a: &[u8], b: &[u8], block_bytes: usize) -> Option<usize> {
    a.chunks(block_bytes)
        .zip(b.chunks(block_bytes))
        .position(|(x, y)| x != y)
}

#[test]
fn blocks_equal_ggml_and_gguf_py_and_dequantize_like_gguf_py() {
    let Some(py) = common::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let script = common::repo_root().join("tests/interop/quant_reference.py");
    common::run_python(&py, &script, &[dir.path().as_os_str()]);
    let mut cases: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            n.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "too few cases: {cases:?}");
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in &cases {
        let meta: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(format!("{case}.json"))).unwrap(),
        )
        .unwrap();
        let n_per_row = meta["n_per_row"].as_u64().unwrap() as usize;
        let x = read_f32(&dir.path().join(format!("{case}.f32")));
        for t in TYPES {
            let dtype = DType::from_name(t).unwrap();
            let ours = quantize(dtype, &x, n_per_row).unwrap();
            let bb = dtype.block_bytes();
            let ggml = std::fs::read(dir.path().join(format!("{case}.{t}.ggml"))).ok();
            for producer in ["ggml", "ggufpy"] {
                let p = dir.path().join(format!("{case}.{t}.{producer}"));
                if !p.exists() {
                    continue;
                }
                let mut reference = std::fs::read(&p).unwrap();
                compared += 1;
                if producer == "ggufpy" {
                    if let Some(g) = &ggml {
                        // gguf-py itself differs from ggml on blocks of only -0.0 (it stores
                        // scale +0, ggml -0): there ggml, the authority, decides.
                        for (r, g) in reference.chunks_mut(bb).zip(g.chunks(bb)) {
                            if r != g && r[2..] == g[2..] && r[..2] == [0, 0] && g[..2] == [0, 0x80]
                            {
                                r.copy_from_slice(g);
                            }
                        }
                    }
                }
                if let Some(b) = first_diff(&ours, &reference, bb) {
                    failures.push(format!(
                        "{case} {t} vs {producer}: block {b} differs\n ours {:?}\n  ref {:?}",
                        &ours[b * bb..(b + 1) * bb],
                        &reference[b * bb..(b + 1) * bb]
                    ));
                }
            }
            // dequantize the reference bytes and compare with gguf-py's dequantization
            let ggml = dir.path().join(format!("{case}.{t}.ggml"));
            let src = if ggml.exists() {
                ggml
            } else {
                dir.path().join(format!("{case}.{t}.ggufpy"))
            };
            let bytes = std::fs::read(&src).unwrap();
            let ours_deq = dequantize(dtype, &bytes, x.len()).unwrap();
            let theirs = read_f32(&dir.path().join(format!("{case}.{t}.deq")));
            let bad = ours_deq.iter().zip(&theirs).position(|(a, b)| {
                !(a == b
                    || (a - b).abs() <= 1e-6 * a.abs().max(b.abs())
                    || (a.is_nan() && b.is_nan()))
            });
            if let Some(i) = bad {
                failures.push(format!(
                    "{case} {t} dequantize: value {i}: ours {} gguf-py {}",
                    ours_deq[i], theirs[i]
                ));
            }
        }
    }
    assert!(compared >= 100, "only {compared} comparisons");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn non_finite_input_is_refused_with_a_clear_error() {
    let mut x = vec![0.5f32; 512];
    x[260] = f32::NAN;
    for t in TYPES {
        let e = quantize(DType::from_name(t).unwrap(), &x, 256).unwrap_err();
        assert!(
            matches!(e, QuantError::NonFinite { row: 1, col: 4, .. }),
            "{t}: {e}"
        );
    }
    x[260] = f32::NEG_INFINITY;
    let msg = quantize(DType::Q4_K, &x, 256).unwrap_err().to_string();
    assert!(
        msg.contains("-inf") && msg.contains("row 1, column 4"),
        "{msg}"
    );
}
