//! Puts the git commit into `llama-tool --version`: `0.1.0 (commit 1a2b3c4d5e6f)`. (No
//! `-dirty` mark: knowing it would mean rerunning on every edit of every file.)
//!
//! The commit comes from `LLAMA_TOOL_GIT_COMMIT` when set (packagers building from a tarball),
//! else from `git` in the source tree; without either the version says `commit unknown`
//! rather than failing the build. Cargo reruns this script only when HEAD or the branch it
//! points to moves, so a commit rebuilds the `llama-tool` crate alone,
//! never the libraries.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let o = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !o.status.success() {
        return None;
    }
    let s = String::from_utf8(o.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LLAMA_TOOL_GIT_COMMIT");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = match std::env::var("LLAMA_TOOL_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => Some(c.trim().to_string()),
        _ => from_git(&dir),
    };
    let version = env!("CARGO_PKG_VERSION");
    let long = match commit {
        Some(c) => format!("{version} (commit {c})"),
        None => format!("{version} (commit unknown)"),
    };
    println!("cargo:rustc-env=LLAMA_TOOL_VERSION={long}");
}

/// The short commit of HEAD, and the rerun triggers.
fn from_git(dir: &Path) -> Option<String> {
    let git_dir = PathBuf::from(git(dir, &["rev-parse", "--absolute-git-dir"])?);
    let common = git(dir, &["rev-parse", "--git-common-dir"])
        .map(|p| {
            let p = PathBuf::from(p);
            if p.is_absolute() {
                p
            } else {
                dir.join(p)
            }
        })
        .unwrap_or_else(|| git_dir.clone());
    // HEAD (a worktree's own), the branch file it names, and packed refs: only those that
    // exist (Cargo reruns a script on every build while a watched path is missing).
    let mut watch = vec![git_dir.join("HEAD"), common.join("packed-refs")];
    if let Some(r) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(common.join(r));
    }
    for p in watch.iter().filter(|p| p.is_file()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    git(dir, &["rev-parse", "--short=12", "HEAD"])
}
