//! GGUF metadata parity with llama.cpp's own converter: `convert_hf_to_gguf.py` (from the
//! llama-cpp-python 0.3.36 sdist, `scripts/fetch-llama-cpp-converter.sh`) run on our Hugging
//! Face export writes the same keys, types, values and key order, and the same tensors, as
//! our direct export from the Meta folder and our export from the HF folder; `--vocab-only`
//! likewise on both sides (`tests/interop/gguf_parity.py` compares them).

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use crate::common::interop_converter as converter;
use crate::common::*;

fn ok(o: std::process::Output) {
    assert_eq!(code(&o), 0, "failed:\n{}\n{}", stdout(&o), stderr(&o));
}

fn llama(args: &[&OsStr]) {
    ok(run(args));
}

/// Run llama.cpp's converter on `hf` (offline), writing `out`; `extra` are more flags.
pub fn run_converter(py: &Path, hf: &Path, out: &Path, extra: &[&str]) {
    let o = Command::new(py)
        .arg(converter())
        .arg(hf)
        .arg("--outfile")
        .arg(out)
        .args(extra)
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .output()
        .expect("spawn python");
    assert!(
        o.status.success(),
        "convert_hf_to_gguf.py failed:\n{}",
        stderr(&o)
    );
}

/// `gguf_parity.py OURS THEIRS`: asserts no difference, printing them when there are.
fn assert_same(py: &Path, ours: &Path, theirs: &Path) {
    let o = Command::new(py)
        .arg(repo_root().join("tests/interop/gguf_parity.py"))
        .arg(ours)
        .arg(theirs)
        .output()
        .expect("spawn python");
    assert!(
        o.status.success(),
        "{} differs from llama.cpp's {}:\n{}{}",
        ours.display(),
        theirs.display(),
        stdout(&o),
        stderr(&o)
    );
}

/// Meta folder `dir/NAME` -> our GGUF, our HF export `dir/hf/NAME` -> our GGUF and
/// llama.cpp's GGUF: all three the same.
fn parity_case(dir: &Path, name: &str, synth_flags: &[&str]) {
    let py = python();
    let meta = dir.join(name);
    let mut a: Vec<&OsStr> = vec![OsStr::new("synth"), OsStr::new("-o"), meta.as_os_str()];
    a.extend(synth_flags.iter().map(OsStr::new));
    llama(&a);
    let hf = dir.join("hf").join(name);
    llama(&[
        OsStr::new("convert"),
        meta.as_os_str(),
        OsStr::new("--to"),
        OsStr::new("safetensors"),
        OsStr::new("-o"),
        hf.as_os_str(),
        OsStr::new("--no-manifest"),
    ]);
    let theirs = dir.join(format!("{name}-llama-cpp.gguf"));
    run_converter(&py, &hf, &theirs, &["--outtype", "f16"]);
    for (src, out) in [(&meta, "from-meta"), (&hf, "from-hf")] {
        let ours = dir.join(format!("{name}-{out}.gguf"));
        llama(&[
            OsStr::new("convert"),
            src.as_os_str(),
            OsStr::new("-o"),
            ours.as_os_str(),
            OsStr::new("--no-manifest"),
        ]);
        assert_same(&py, &ours, &theirs);
    }
    // Vocabulary only (no tensors), as `--vocab-only` on both sides.
    let theirs = dir.join(format!("{name}-vocab-llama-cpp.gguf"));
    run_converter(&py, &hf, &theirs, &["--vocab-only"]);
    let ours = dir.join(format!("{name}-vocab.gguf"));
    llama(&[
        OsStr::new("convert"),
        meta.as_os_str(),
        OsStr::new("--vocab-only"),
        OsStr::new("-o"),
        ours.as_os_str(),
        OsStr::new("--no-manifest"),
    ]);
    assert_same(&py, &ours, &theirs);
}

#[test]
fn gguf_metadata_and_tensors_match_llama_cpp_converter() {
    let t = tempfile::tempdir().unwrap();
    parity_case(t.path(), "tiny", &["--seed", "3"]);
}

#[test]
fn gguf_parity_holds_for_gqa_and_hub_style_names() {
    // Grouped-query attention, two shards, and a folder name whose parts llama.cpp reads as
    // basename, version, size (a context-length-like "7b" on a tiny model: a finetune) and
    // finetune.
    let t = tempfile::tempdir().unwrap();
    parity_case(
        t.path(),
        "Llama-2-7b-chat-v1.1",
        &["--kv-heads", "2", "--mp", "2", "--seed", "8"],
    );
}

#[test]
fn model_id_heuristics_match_gguf_py() {
    use llama_formats::gguf_naming::{id_to_title, model_id_components, weight_count_rounded};
    let py = python();
    let ids = [
        "tiny",
        "7B",
        "65B",
        "llama-7b",
        "Llama-2-7b-hf",
        "meta-llama/Llama-2-13b-chat-hf",
        "huggyllama/llama-30b",
        "Llama-2-7b-chat-v1.1",
        "Mistral-7B-Instruct-v0.2",
        "bloom-7b1",
        "open_llama_3b_v2",
        "Mixtral-8x7B-v0.1",
        "model-q4_k_m",
        "llama-f16",
        "llama-bf16-32k",
        "TinyLlama-1.1B-Chat-v1.0",
        "phi-2",
        "gpt2-xl",
        "SmolLM-135M-Instruct",
        "Qwen1.5-0.5B",
        "v1.2-model",
        "a-b-c",
        "some model name",
        "./local-7b",
        "iter100-llama",
        "llama-A3B",
    ];
    let totals = [227_328u64, 1_800_000, 6_738_415_616, 0];
    let cases: Vec<(String, u64)> = ids
        .iter()
        .flat_map(|id| totals.iter().map(move |&t| (id.to_string(), t)))
        .collect();
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("cases.json");
    std::fs::write(&f, serde_json::to_string(&cases).unwrap()).unwrap();
    let out = run_python(
        &py,
        &repo_root().join("tests/interop/gguf_naming.py"),
        &[converter().as_os_str(), f.as_os_str()],
    );
    let want: Vec<Vec<Option<String>>> = serde_json::from_str(&out).unwrap();
    let mut bad = Vec::new();
    for ((id, total), w) in cases.iter().zip(&want) {
        let p = model_id_components(id, *total as i64);
        let got = vec![
            p.full_name,
            p.organization,
            p.basename,
            p.finetune,
            p.version,
            p.size_label,
            Some(id_to_title(id)),
            Some(weight_count_rounded(*total, 2)),
        ];
        if &got != w {
            bad.push(format!("{id} ({total}): ours {got:?}\n  gguf-py {w:?}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
