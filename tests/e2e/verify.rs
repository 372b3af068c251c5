//! `llama-tool verify`: a release-shaped folder checked against Meta-style md5 checklists
//! made by coreutils (theirs pass ours), damage of every kind, hostile manifests, `--json`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{code, run, stderr, stdout};

/// Deterministic bytes (xorshift), so fixtures need no committed binaries.
pub fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Run a coreutils tool in `dir`, returning (exit code, stdout).
pub fn coreutils(dir: &Path, tool: &str, args: &[&str]) -> (i32, String) {
    let o = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("spawn coreutils");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// A release-shaped folder: tokenizer + 13B-like two shards, with `checklist.chk` and
/// `tokenizer_checklist.chk` written by `md5sum`.
pub fn release_folder() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("llama");
    let m = root.join("13B");
    fs::create_dir_all(&m).unwrap();
    fs::write(root.join("tokenizer.model"), bytes(1, 5000)).unwrap();
    fs::write(m.join("consolidated.00.pth"), bytes(2, 700_000)).unwrap();
    fs::write(m.join("consolidated.01.pth"), bytes(3, 650_001)).unwrap();
    fs::write(m.join("params.json"), br#"{"dim": 5120, "multiple_of": 256, "n_heads": 40, "n_layers": 40, "norm_eps": 1e-06, "vocab_size": -1}"#).unwrap();
    let (c, out) = coreutils(
        &m,
        "md5sum",
        &["consolidated.00.pth", "consolidated.01.pth", "params.json"],
    );
    assert_eq!(c, 0);
    fs::write(m.join("checklist.chk"), out).unwrap();
    let (c, out) = coreutils(&root, "md5sum", &["tokenizer.model"]);
    assert_eq!(c, 0);
    fs::write(root.join("tokenizer_checklist.chk"), out).unwrap();
    (tmp, root)
}

fn arg(p: &Path) -> &std::ffi::OsStr {
    p.as_os_str()
}

#[test]
fn good_release_folder_verifies_with_md5sum_made_checklists() {
    let (_t, root) = release_folder();
    let o = run([std::ffi::OsStr::new("verify"), arg(&root)]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.matches("OK ").count(), 4, "{out}");
    assert!(out.contains("verified: 4 files"), "{out}");
}

#[test]
fn one_flipped_byte_in_one_shard_is_a_mismatch_naming_it() {
    let (_t, root) = release_folder();
    let shard = root.join("13B/consolidated.01.pth");
    let mut b = fs::read(&shard).unwrap();
    b[123_456] ^= 0x01;
    fs::write(&shard, b).unwrap();
    let o = run(["verify".as_ref(), arg(&root)]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("MISMATCH  ") && out.contains("consolidated.01.pth: md5 expected"),
        "{out}"
    );
    assert!(
        out.contains("OK        ") && out.contains("consolidated.00.pth"),
        "{out}"
    );
    assert!(out.contains("3 OK, 1 MISMATCH"), "{out}");
}

#[test]
fn missing_and_truncated_shards_fail() {
    let (_t, root) = release_folder();
    fs::remove_file(root.join("13B/consolidated.00.pth")).unwrap();
    let shard = root.join("13B/consolidated.01.pth");
    let f = fs::OpenOptions::new().write(true).open(&shard).unwrap();
    f.set_len(1000).unwrap();
    let o = run(["verify".as_ref(), arg(&root)]);
    assert_eq!(code(&o), 1);
    let out = stdout(&o);
    assert!(
        out.contains("MISSING   ") && out.contains("consolidated.00.pth"),
        "{out}"
    );
    assert!(
        out.contains("MISMATCH  ") && out.contains("consolidated.01.pth"),
        "{out}"
    );
}

#[test]
fn garbage_manifest_line_is_exit_2_naming_the_line() {
    let (_t, root) = release_folder();
    let chk = root.join("13B/checklist.chk");
    let mut text = fs::read_to_string(&chk).unwrap();
    text.push_str("this line is garbage\n");
    fs::write(&chk, text).unwrap();
    let o = run(["verify".as_ref(), arg(&root)]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("checklist.chk:4:"), "{}", stderr(&o));
}

#[test]
fn paths_escaping_the_manifest_folder_are_refused() {
    for (name, setup) in [
        ("parent", "../tokenizer.model"),
        ("absolute", "/etc/hostname"),
        ("symlink", "link.pth"),
    ] {
        let (_t, root) = release_folder();
        let m = root.join("13B");
        if name == "symlink" {
            std::os::unix::fs::symlink(root.join("tokenizer.model"), m.join("link.pth")).unwrap();
        }
        fs::write(
            m.join("checklist.chk"),
            format!("{}  {setup}\n", "0".repeat(32)),
        )
        .unwrap();
        let o = run(["verify".as_ref(), arg(&root)]);
        assert_eq!(code(&o), 2, "{name}: {}{}", stdout(&o), stderr(&o));
        assert!(
            stderr(&o).contains("escapes the manifest's folder"),
            "{name}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn json_output_parses_and_holds_the_results() {
    let (_t, root) = release_folder();
    fs::remove_file(root.join("13B/params.json")).unwrap();
    let o = run([
        "verify".as_ref(),
        arg(&root),
        "--json".as_ref(),
        "--jobs".as_ref(),
        "2".as_ref(),
    ]);
    assert_eq!(code(&o), 1);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("one JSON document");
    assert_eq!(v["summary"]["files"], 4);
    assert_eq!(v["summary"]["ok"], 3);
    assert_eq!(v["summary"]["missing"], 1);
    let files = v["files"].as_array().unwrap();
    let shard = files
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("consolidated.00.pth"))
        .unwrap();
    assert_eq!(shard["status"], "OK");
    assert_eq!(shard["bytes"], 700_000);
    let (_, md5) = coreutils(&root.join("13B"), "md5sum", &["consolidated.00.pth"]);
    assert_eq!(shard["digests"]["md5"].as_str().unwrap(), &md5[..32]);
    let missing = files
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("params.json"))
        .unwrap();
    assert_eq!(missing["status"], "MISSING");
}

#[test]
fn sha256sum_gnu_tagged_and_binary_lists_pass_ours() {
    let (_t, root) = release_folder();
    let m = root.join("13B");
    fs::remove_file(m.join("checklist.chk")).unwrap();
    let (_, gnu) = coreutils(&m, "sha256sum", &["-b", "consolidated.00.pth"]);
    assert!(gnu.contains(" *consolidated"), "binary marker: {gnu}");
    let (_, tagged) = coreutils(
        &m,
        "sha256sum",
        &["--tag", "consolidated.01.pth", "params.json"],
    );
    assert!(tagged.starts_with("SHA256 ("), "{tagged}");
    fs::write(m.join("SHA256SUMS"), format!("{gnu}{tagged}")).unwrap();
    let o = run(["verify".as_ref(), arg(&root)]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("4 OK"), "{}", stdout(&o));
}

#[test]
fn strict_reports_unlisted_files() {
    let (_t, root) = release_folder();
    fs::write(root.join("13B/extra.bin"), b"stray").unwrap();
    assert_eq!(code(&run(["verify".as_ref(), arg(&root)])), 0);
    let o = run(["verify".as_ref(), arg(&root), "--strict".as_ref()]);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains("UNLISTED  ") && stdout(&o).contains("extra.bin"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn single_file_against_its_checklist_or_a_flag() {
    let (_t, root) = release_folder();
    let shard = root.join("13B/consolidated.00.pth");
    let o = run(["verify".as_ref(), arg(&shard)]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let (_, sha) = coreutils(&root.join("13B"), "sha256sum", &["consolidated.00.pth"]);
    assert_eq!(
        code(&run([
            "verify".as_ref(),
            arg(&shard),
            "--sha256".as_ref(),
            sha[..64].as_ref()
        ])),
        0
    );
    let o = run([
        "verify".as_ref(),
        arg(&shard),
        "--md5".as_ref(),
        "0".repeat(32).as_ref(),
    ]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("MISMATCH"), "{}", stdout(&o));
    let stray = root.join("13B/unlisted.bin");
    fs::write(&stray, b"x").unwrap();
    let o = run(["verify".as_ref(), arg(&stray)]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("no manifest"), "{}", stderr(&o));
}

/// sha256 of `data` as coreutils `sha256sum` computes it.
pub fn sha256_hex(data: &[u8]) -> String {
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("f"), data).unwrap();
    let (c, out) = coreutils(t.path(), "sha256sum", &["f"]);
    assert_eq!(c, 0);
    out[..64].to_string()
}
