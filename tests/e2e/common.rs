//! Test harness: run the binary, temp folders, the interop Python, fixture paths.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../support/interop.rs"]
mod interop;
pub use interop::{llama_cpp_converter as interop_converter, python, require_llama_cpp};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_llama-tool"))
}

/// Run `llama-tool ARGS...` and capture its output.
pub fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(bin())
        .args(args)
        .output()
        .expect("spawn llama-tool")
}

/// Exit code of a finished process (-1 when killed by a signal).
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// `tests/fixtures/NAME`.
pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests").join("fixtures").join(name)
}

/// Run `python SCRIPT ARGS...` with the interop venv, asserting success; returns stdout.
pub fn run_python(py: &Path, script: &Path, args: &[&std::ffi::OsStr]) -> String {
    let o = Command::new(py)
        .arg(script)
        .args(args)
        .output()
        .expect("spawn python");
    assert!(
        o.status.success(),
        "{} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        script.display(),
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}
