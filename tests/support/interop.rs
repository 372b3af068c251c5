//! The interop venv's python, shared by the integration tests of every package
//! (`#[path = ".../tests/support/interop.rs"] mod interop;`).
//!
//! An interop test never passes after doing nothing: when what it needs is absent it fails,
//! naming the variable to set or the script to run. `scripts/test.sh` (what CI runs) installs
//! everything; a plain `cargo test` finds the venv that script made at its default place.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::{Path, PathBuf};

/// The interop venv's python: `LLAMA_TOOL_PYTHON`, else the venv `scripts/setup-venv.sh`
/// makes by default (`~/.cache/llama-tool/venv`). Fails the test when neither exists.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("LLAMA_TOOL_PYTHON") {
        return PathBuf::from(p);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = PathBuf::from(home).join(".cache/llama-tool/venv/bin/python");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "interop test needs the Python venv: run scripts/setup-venv.sh and set LLAMA_TOOL_PYTHON \
         to the path it prints (or run the whole suite with scripts/test.sh)"
    )
}

/// Fails the test unless `py` can import llama-cpp-python (`scripts/setup-venv.sh --llama`).
pub fn require_llama_cpp(py: &Path) {
    let ok = std::process::Command::new(py)
        .args(["-c", "import llama_cpp"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "llama_cpp is not importable by {}: run scripts/setup-venv.sh --llama",
        py.display()
    );
}

/// llama.cpp's `convert_hf_to_gguf.py` from the llama-cpp-python 0.3.36 sdist:
/// `LLAMA_TOOL_HF_TO_GGUF`, else where `scripts/fetch-llama-cpp-converter.sh` unpacks it.
/// Fails the test when absent.
pub fn llama_cpp_converter() -> PathBuf {
    if let Some(p) = std::env::var_os("LLAMA_TOOL_HF_TO_GGUF") {
        return PathBuf::from(p);
    }
    let sdist = std::env::var_os("LLAMA_TOOL_SDIST")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/llama-tool/sdist"))
        });
    if let Some(p) =
        sdist.map(|d| d.join("llama_cpp_python-0.3.36/vendor/llama.cpp/convert_hf_to_gguf.py"))
    {
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "llama.cpp's convert_hf_to_gguf.py is missing: run scripts/fetch-llama-cpp-converter.sh \
         (or set LLAMA_TOOL_HF_TO_GGUF to the script)"
    )
}
