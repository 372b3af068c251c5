//! Quantization interop: our block quantizers against gguf-py's numpy quantizers and ggml's
//! own (`ggml_quantize_chunk` in llama-cpp-python's libggml-base), byte for byte; our
//! dequantizers against gguf-py's; `llama-tool quantize` against `llama_model_quantize`
//! for every preset, tensor by tensor; llama.cpp running our Q4_K_M output.

use std::path::Path;

use llama_ggml::quant::{dequantize, quantize, QuantError};
use llama_ggml::DType;

use crate::common;

#[path = "../support/quant_cases.rs"]
mod quant_cases;
use quant_cases::{cases, first_diff, read_f32, TYPES};

#[test]
fn blocks_equal_ggml_and_gguf_py_and_dequantize_like_gguf_py() {
    let py = common::python();
    let dir = tempfile::tempdir().unwrap();
    let script = common::repo_root().join("tests/interop/quant_reference.py");
    common::run_python(&py, &script, &[dir.path().as_os_str()]);
    let cases = cases(dir.path());
    assert!(cases.len() >= 10, "too few cases: {}", cases.len());
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in &cases {
        let (x, n_per_row, case) = (&case.x, case.n_per_row, &case.name);
        for t in TYPES {
            let dtype = DType::from_name(t).unwrap();
            let ours = quantize(dtype, x, n_per_row).unwrap();
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

/// Write a LLaMA GGUF fixture with `tests/interop/make_llama_gguf.py ARGS`.
fn make_fixture(py: &Path, out: &Path, args: &[&str]) {
    let script = common::repo_root().join("tests/interop/make_llama_gguf.py");
    let mut all: Vec<&std::ffi::OsStr> = vec![out.as_os_str()];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    common::run_python(py, &script, &all);
}

const PRESETS: [&str; 17] = [
    "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S",
    "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "F16", "BF16", "F32",
];

/// Quantize `fixture` with llama.cpp and with us for every preset; collect differences.
fn compare_all_presets(py: &Path, fixture: &Path, work: &Path, failures: &mut Vec<String>) {
    let lq = common::repo_root().join("tests/interop/llama_quantize.py");
    let theirs = work.join("llama.cpp");
    std::fs::create_dir_all(&theirs).unwrap();
    let mut args: Vec<std::ffi::OsString> = vec![
        "quantize".into(),
        fixture.into(),
        theirs.clone().into(),
        "--threads".into(),
        "2".into(),
    ];
    args.extend(PRESETS.iter().map(|p| p.into()));
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    common::run_python(py, &lq, &refs);
    for p in PRESETS {
        let ours = work.join(format!("ours-{p}.gguf"));
        let o = common::run([
            "quantize".as_ref(),
            fixture.as_os_str(),
            ours.as_os_str(),
            p.as_ref(),
            "--threads".as_ref(),
            "2".as_ref(),
            "--json".as_ref(),
        ]);
        if common::code(&o) != 0 {
            failures.push(format!(
                "{} {p}: llama-tool failed: {}",
                fixture.display(),
                common::stderr(&o)
            ));
            continue;
        }
        let report: serde_json::Value = serde_json::from_str(&common::stdout(&o)).unwrap();
        assert_eq!(report["preset"], p);
        let cmp = std::process::Command::new(py)
            .arg(&lq)
            .arg("compare")
            .arg(&ours)
            .arg(theirs.join(format!("{p}.gguf")))
            .output()
            .unwrap();
        let out = common::stdout(&cmp);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|_| {
            panic!("compare {p}: {out}\n{}", common::stderr(&cmp));
        });
        for problem in v["problems"].as_array().unwrap() {
            failures.push(format!(
                "{} {p}: {}",
                fixture.display(),
                problem.as_str().unwrap()
            ));
        }
        if v["identical_file"] != true && v["problems"].as_array().unwrap().is_empty() {
            failures.push(format!(
                "{} {p}: tensors equal but files differ",
                fixture.display()
            ));
        }
        std::fs::remove_file(&ours).unwrap();
    }
}

#[test]
fn every_preset_is_byte_identical_to_llama_cpp() {
    let py = common::python();
    common::require_llama_cpp(&py);
    let dir = tempfile::tempdir().unwrap();
    let fixtures: [(&str, &[&str]); 3] = [
        // rows multiple of 256, 8 layers: k-quants and the per-layer rules
        ("llama512.gguf", &[]),
        // rows of 704 (22 blocks of 32) and 1900 (not even a multiple of 32): the fallbacks;
        // grouped-query attention (n_gqa 4) for Q2_K's attn_v rule
        (
            "llama704.gguf",
            &[
                "--dim",
                "704",
                "--hidden",
                "1900",
                "--layers",
                "4",
                "--kv-heads",
                "2",
                "--vocab",
                "300",
            ],
        ),
        // BF16 source without output.weight: token_embd takes the output's type
        (
            "tied-bf16.gguf",
            &[
                "--dim", "256", "--hidden", "768", "--layers", "3", "--dtype", "bf16", "--tied",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (name, args) in fixtures {
        let fixture = dir.path().join(name);
        make_fixture(&py, &fixture, args);
        let work = dir.path().join(format!("{name}.out"));
        std::fs::create_dir_all(&work).unwrap();
        compare_all_presets(&py, &fixture, &work, &mut failures);
        std::fs::remove_dir_all(&work).unwrap();
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn llama_cpp_runs_our_q4_k_m_output() {
    let py = common::python();
    common::require_llama_cpp(&py);
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("llama.gguf");
    make_fixture(&py, &fixture, &[]);
    let out = dir.path().join("llama-q4_k_m.gguf");
    let o = common::run([
        "quantize".as_ref(),
        fixture.as_os_str(),
        out.as_os_str(),
        "q4_k_m".as_ref(),
    ]);
    assert_eq!(common::code(&o), 0, "{}", common::stderr(&o));
    let text = common::stdout(&o);
    assert!(
        text.contains("attn_v.weight") && text.contains("Q6_K"),
        "{text}"
    );
    assert!(text.contains("bits per weight"), "{text}");
    let lq = common::repo_root().join("tests/interop/llama_quantize.py");
    let res = common::run_python(&py, &lq, &["eval".as_ref(), out.as_os_str()]);
    let v: serde_json::Value = serde_json::from_str(res.trim()).unwrap();
    assert_eq!(v["n_vocab"], 512);
}

#[test]
fn quantize_refuses_bad_type_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gguf");
    let o = common::run([
        "quantize".as_ref(),
        dir.path().join("missing.gguf").as_os_str(),
        out.as_os_str(),
        "q4_k_m".as_ref(),
    ]);
    assert_eq!(common::code(&o), 2);
    assert!(
        common::stderr(&o).contains("missing.gguf"),
        "{}",
        common::stderr(&o)
    );
    let o = common::run(["quantize", "a.gguf", "b.gguf", "q4_k_x"]);
    assert_eq!(common::code(&o), 2);
    assert!(
        common::stderr(&o).contains("invalid value 'q4_k_x' for TYPE; did you mean Q4_K_M?"),
        "{}",
        common::stderr(&o)
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temporary file left behind"
    );
}

#[test]
fn nan_in_a_tensor_fails_naming_it_and_leaves_no_output() {
    use llama_codecs::gguf::{GgufValue, GgufWriter};
    use llama_codecs::TensorInfo;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("nan.gguf");
    let md = vec![
        (
            "general.architecture".to_string(),
            GgufValue::String("llama".into()),
        ),
        ("llama.block_count".to_string(), GgufValue::U32(1)),
        ("llama.attention.head_count".to_string(), GgufValue::U32(2)),
    ];
    let t = TensorInfo {
        name: "blk.0.attn_q.weight".into(),
        dtype: DType::F32,
        shape: vec![2, 256],
    };
    let mut vals = vec![0.25f32; 512];
    vals[300] = f32::NAN;
    let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut w = GgufWriter::new(std::fs::File::create(&input).unwrap(), md, vec![t], 32).unwrap();
    w.write_tensor("blk.0.attn_q.weight", &bytes).unwrap();
    w.finish().unwrap();
    let out = dir.path().join("out.gguf");
    let o = common::run([
        "quantize".as_ref(),
        input.as_os_str(),
        out.as_os_str(),
        "Q4_K_M".as_ref(),
    ]);
    assert_eq!(common::code(&o), 2);
    let err = common::stderr(&o);
    assert!(
        err.contains("blk.0.attn_q.weight") && err.contains("row 1, column 44"),
        "{err}"
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "temporary file left behind"
    );
}
