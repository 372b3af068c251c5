//! The interop venv's python, shared by the integration tests of every package
//! (`#[path = ".../tests/support/interop.rs"] mod interop;`).

use std::path::PathBuf;

/// The interop venv's python (`LLAMA_TOOL_PYTHON`). Returns None, after saying so, when it
/// is not set outside CI; under CI (`CI=true`) a missing venv fails the test.
pub fn python() -> Option<PathBuf> {
    match std::env::var_os("LLAMA_TOOL_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("CI").is_some() => {
            panic!("LLAMA_TOOL_PYTHON is not set under CI: run tests through .ci/run")
        }
        None => {
            eprintln!(
                "skipping interop part: set LLAMA_TOOL_PYTHON (scripts/setup-venv.sh prints it)"
            );
            None
        }
    }
}
