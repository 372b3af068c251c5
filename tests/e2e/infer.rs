//! `logits` and `check`: the npy output and top-K table, lossless conversions passing,
//! broken conversions failing (exit 1), a CUDA request in a CPU build (exit 2), and our
//! logits against transformers (HF folder) and llama.cpp (GGUF f16, q8_0, q4_k_m).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use llama_infer::compare::compare;
use llama_infer::npy;

use crate::common::*;

const PROMPT: &str =
    "The quick brown fox jumps over the lazy dog.\nNumbers 12345, naïve café, 中文 😀";
const TOKENS: &str = "1,450,100,200,300,400,17,18,19,20,21,22,23,24,25,26,511,3,260";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A tiny synthetic Meta checkpoint plus conversions: (dir, meta, f16 gguf, hf folder).
fn models(dir: &Path, extra: &[(&str, &str)]) -> PathBuf {
    let meta = dir.join("meta");
    let o = run([
        "synth",
        "--shape",
        "tiny",
        "--mp",
        "2",
        "--seed",
        "3",
        "-o",
        s(&meta),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for (name, outtype) in extra {
        let out = dir.join(name);
        let args: Vec<&str> = if name.ends_with(".gguf") {
            vec![
                "convert",
                s(&meta),
                "--to",
                "gguf",
                "--outtype",
                outtype,
                "-o",
                s(&out),
            ]
        } else {
            vec!["convert", s(&meta), "--to", "safetensors", "-o", s(&out)]
        };
        let o = run(&args);
        assert_eq!(code(&o), 0, "convert {name}: {}", stderr(&o));
    }
    meta
}

#[test]
fn logits_writes_npy_and_prints_decoded_top_tokens() {
    let t = tempfile::tempdir().unwrap();
    let meta = models(t.path(), &[]);
    let out = t.path().join("l.npy");
    let o = run([
        "logits",
        s(&meta),
        "--prompt",
        PROMPT,
        "-o",
        s(&out),
        "--top",
        "5",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("top 5 next tokens"), "{text}");
    let (shape, values) = npy::read_f32(&out).unwrap();
    assert_eq!(shape[1], 512);
    assert_eq!(values.len(), shape[0] * 512);
    assert!(values.iter().all(|v| v.is_finite()));
    // --json: the same tokens and the top list.
    let o = run([
        "logits",
        s(&meta),
        "--prompt",
        PROMPT,
        "--json",
        "--top",
        "3",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["tokens"].as_array().unwrap().len(), shape[0]);
    assert_eq!(v["tokens"][0], 1, "BOS first");
    assert_eq!(v["top"].as_array().unwrap().len(), 3);
    // --tokens and --tokens-file give the same logits.
    let ids: Vec<String> = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.to_string())
        .collect();
    let f = t.path().join("ids.txt");
    std::fs::write(&f, ids.join("\n")).unwrap();
    let out2 = t.path().join("l2.npy");
    let o = run(["logits", s(&meta), "--tokens-file", s(&f), "-o", s(&out2)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(npy::read_f32(&out2).unwrap().1, values);
}

#[test]
fn logits_refuses_bad_input_with_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let meta = models(t.path(), &[]);
    let o = run(["logits", s(&meta), "--tokens", "1,2,99999"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("99999"), "{}", stderr(&o));
    let o = run(["logits", s(&meta), "--tokens", "1,x"]);
    assert_eq!(code(&o), 2);
    let o = run(["logits", s(&meta)]);
    assert_eq!(code(&o), 2, "a token input is required");
    if !llama_infer::CUDA_BUILT {
        let o = run(["logits", s(&meta), "--tokens", "1,2", "--device", "cuda"]);
        assert_eq!(code(&o), 2);
        assert!(
            stderr(&o).contains("without CUDA support"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn check_passes_lossless_and_quantized_conversions() {
    let t = tempfile::tempdir().unwrap();
    let meta = models(
        t.path(),
        &[
            ("f16.gguf", "f16"),
            ("f32.gguf", "f32"),
            ("q8.gguf", "q8_0"),
            ("q4.gguf", "q4_k_m"),
            ("hf", "f16"),
        ],
    );
    for cand in ["f16.gguf", "f32.gguf", "hf", "q8.gguf", "q4.gguf"] {
        let c = t.path().join(cand);
        let o = run(["check", s(&meta), s(&c), "--prompt", PROMPT, "--json"]);
        assert_eq!(code(&o), 0, "{cand}: {}{}", stdout(&o), stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["pass"], true);
        if !cand.starts_with('q') {
            assert_eq!(v["metrics"]["top1_agreement"], 1.0, "{cand}");
            assert!(v["metrics"]["kld_mean"].as_f64().unwrap() < 1e-9, "{cand}");
        }
    }
    // The table form, and a threshold tighter than q4's error fails with exit 1.
    let q4 = t.path().join("q4.gguf");
    let o = run(["check", s(&meta), s(&q4), "--tokens", TOKENS]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("Same top p") && stdout(&o).contains("PASS"));
    let o = run([
        "check",
        s(&meta),
        s(&q4),
        "--tokens",
        TOKENS,
        "--max-kld",
        "1e-9",
    ]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stdout(&o).contains("FAIL"));
}

#[test]
fn check_corpus_reports_perplexity_over_chunks() {
    let t = tempfile::tempdir().unwrap();
    let meta = models(t.path(), &[("f16.gguf", "f16")]);
    let corpus = t.path().join("corpus.txt");
    std::fs::write(&corpus, PROMPT.repeat(6)).unwrap();
    let g = t.path().join("f16.gguf");
    let o = run([
        "check",
        s(&meta),
        s(&g),
        "--corpus",
        s(&corpus),
        "--ctx",
        "64",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["sequences"].as_u64().unwrap() >= 2);
    assert!(v["metrics"]["ppl_reference"].as_f64().unwrap() > 1.0);
    assert_eq!(v["metrics"]["ppl_reference"], v["metrics"]["ppl_candidate"]);
}

/// Swap the names of layers 0 and 1 in a safetensors header (a broken conversion).
fn swap_layers(file: &Path, a: &str, b: &str) {
    let bytes = std::fs::read(file).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n])
        .unwrap()
        .replace(a, "@@")
        .replace(b, a)
        .replace("@@", b);
    let mut out = bytes[..8].to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(file, out).unwrap();
}

#[test]
fn check_fails_a_conversion_with_two_layers_swapped() {
    let t = tempfile::tempdir().unwrap();
    let meta = models(t.path(), &[("hf", "f16")]);
    let hf = t.path().join("hf");
    swap_layers(
        &hf.join("model.safetensors"),
        "model.layers.0.",
        "model.layers.1.",
    );
    let o = run(["check", s(&meta), s(&hf), "--prompt", PROMPT]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("FAIL"));
}

#[test]
fn check_fails_a_conversion_with_q_k_not_permuted() {
    let py = python();
    let t = tempfile::tempdir().unwrap();
    let meta = models(t.path(), &[("hf", "f16")]);
    let hf = t.path().join("hf");
    // Undo the HF rotary permutation of q_proj/k_proj (keep Meta's interleaved rows).
    let script = t.path().join("unpermute.py");
    std::fs::write(
        &script,
        r#"import sys, json
from safetensors.torch import load_file, save_file
p = sys.argv[1]
cfg = json.load(open(p + "/config.json"))
t = load_file(p + "/model.safetensors")
for k, v in list(t.items()):
    if k.endswith("q_proj.weight") or k.endswith("k_proj.weight"):
        h = cfg["num_attention_heads"] if "q_proj" in k else cfg.get("num_key_value_heads", cfg["num_attention_heads"])
        d1, d2 = v.shape
        t[k] = v.view(h, 2, d1 // h // 2, d2).transpose(1, 2).reshape(d1, d2).contiguous()
save_file(t, p + "/model.safetensors", metadata={"format": "pt"})
"#,
    )
    .unwrap();
    run_python(&py, &script, &[hf.as_os_str()]);
    let o = run(["check", s(&meta), s(&hf), "--prompt", PROMPT]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
}

/// Logits of our binary and of a Python consumer on the same tokens.
fn ours_and_theirs(py: &Path, kind: &str, model: &Path, dir: &Path) -> (Vec<f32>, Vec<f32>) {
    let ours = dir.join("ours.npy");
    // Called once per consumer into one folder: each call replaces the last ours.npy.
    let o = run([
        "logits",
        s(model),
        "--tokens",
        TOKENS,
        "-o",
        s(&ours),
        "--force",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let theirs = dir.join("theirs.npy");
    run_python(
        py,
        &repo_root().join("tests/interop/infer_logits.py"),
        &[
            OsStr::new(kind),
            model.as_os_str(),
            OsStr::new(TOKENS),
            theirs.as_os_str(),
        ],
    );
    let (a, b) = (
        npy::read_f32(&ours).unwrap(),
        npy::read_f32(&theirs).unwrap(),
    );
    assert_eq!(a.0, b.0, "shapes");
    (a.1, b.1)
}

fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(0f64, |m, &x| m.max((x as f64).abs()));
    a.iter()
        .zip(b)
        .fold(0f64, |m, (&x, &y)| m.max((x as f64 - y as f64).abs()))
        / scale
}

#[test]
fn logits_match_transformers_on_an_hf_folder() {
    let py = python();
    let t = tempfile::tempdir().unwrap();
    models(t.path(), &[("hf", "f16")]);
    let (ours, theirs) = ours_and_theirs(&py, "hf", &t.path().join("hf"), t.path());
    let e = rel_err(&ours, &theirs);
    assert!(e < 1e-4, "relative error vs transformers {e}");
}

#[test]
fn logits_match_llama_cpp_on_gguf() {
    let py = python();
    let has = Command::new(&py)
        .args(["-c", "import llama_cpp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        assert!(
            std::env::var_os("CI").is_none(),
            "llama-cpp-python missing under CI"
        );
        eprintln!("skipping: llama-cpp-python not installed (scripts/setup-venv.sh --llama)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    models(
        t.path(),
        &[
            ("f16.gguf", "f16"),
            ("q8.gguf", "q8_0"),
            ("q4.gguf", "q4_k_m"),
        ],
    );
    for (name, max_kld) in [("f16.gguf", 1e-5), ("q8.gguf", 2e-3), ("q4.gguf", 2e-3)] {
        let (ours, theirs) = ours_and_theirs(&py, "gguf", &t.path().join(name), t.path());
        let c = compare(&theirs, &ours, 512, None).unwrap();
        eprintln!(
            "{name}: vs llama.cpp rel err {:.2e}, mean KLD {:.2e}, top-1 {:.3}",
            rel_err(&ours, &theirs),
            c.kld_mean,
            c.top1_agreement
        );
        assert!(
            c.kld_mean < max_kld,
            "{name}: mean KLD vs llama.cpp {}",
            c.kld_mean
        );
        if name == "f16.gguf" {
            // llama.cpp keeps f16 activations/KV cache; we compute in f32.
            assert!(rel_err(&ours, &theirs) < 5e-3);
            assert_eq!(c.top1_agreement, 1.0);
        } else {
            assert!(
                c.top1_agreement >= 0.8,
                "{name}: top-1 {}",
                c.top1_agreement
            );
        }
    }
}
