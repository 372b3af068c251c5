//! GGUF metadata parity with llama.cpp's own converter: `convert_hf_to_gguf.py` (from the
//! llama-cpp-python 0.3.36 sdist, `scripts/fetch-llama-cpp-converter.sh`) run on our Hugging
//! Face export writes the same keys, types, values and key order, and the same tensors, as
//! our direct export from the Meta folder and our export from the HF folder
//! (`tests/interop/gguf_parity.py` compares them).

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
