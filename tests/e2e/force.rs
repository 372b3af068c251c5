//! `--force` everywhere (issue 9, item 6): every command that writes an output file refuses
//! to replace an existing one (exit 2, one line naming the file and `--force`, the file
//! untouched) and replaces it atomically with `--force`. A device or FIFO at the output's
//! name (`-o /dev/null`, `-o /dev/stdout`) is written through and never renamed over or
//! removed; the tests use a FIFO and a link to `/dev/null` inside a temporary folder.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;

/// A tiny Meta checkpoint, its GGUF and a signing key, made once per test.
struct Fixture {
    _t: tempfile::TempDir,
    dir: PathBuf,
    model: PathBuf,
    gguf: PathBuf,
}

fn ok(o: Output) -> Output {
    assert_eq!(code(&o), 0, "failed:\n{}\n{}", stdout(&o), stderr(&o));
    o
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn fixture() -> Fixture {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().to_path_buf();
    let (model, gguf) = crate::flags::fixture(&dir);
    Fixture {
        _t: t,
        dir,
        model,
        gguf,
    }
}

/// A P-256 key made by openssl (as tests/e2e/sign.rs does).
fn key(dir: &Path) -> PathBuf {
    let k = dir.join("key.pem");
    let o = std::process::Command::new("openssl")
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(&k)
        .output()
        .expect("run openssl (apt-get install openssl)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    k
}

fn os(parts: &[&OsStr]) -> Vec<OsString> {
    parts.iter().map(|p| p.to_os_string()).collect()
}

/// Each command writing an output file, as arguments with the output at `out`.
fn commands(f: &Fixture) -> Vec<(&'static str, Vec<OsString>)> {
    let key = key(&f.dir);
    let m = f.model.as_os_str();
    let g = f.gguf.as_os_str();
    let s = OsStr::new;
    vec![
        ("manifest", os(&[s("manifest"), m, s("-o")])),
        (
            "manifest --format torrent",
            os(&[s("manifest"), m, s("--format"), s("torrent"), s("-o")]),
        ),
        (
            "sign",
            os(&[s("sign"), m, s("--key"), key.as_os_str(), s("-o")]),
        ),
        (
            "logits",
            os(&[s("logits"), m, s("--tokens"), s("1,2,3"), s("-o")]),
        ),
        ("verify --junit", os(&[s("verify"), m, s("--junit")])),
        ("diff --junit", os(&[s("diff"), m, m, s("--junit")])),
        (
            "check --junit",
            os(&[s("check"), m, m, s("--tokens"), s("1,2,3"), s("--junit")]),
        ),
        (
            "check --report",
            os(&[s("check"), m, m, s("--tokens"), s("1,2,3"), s("--report")]),
        ),
        ("quantize", os(&[s("quantize"), g, s("q8_0"), s("-o")])),
        (
            "convert",
            os(&[
                s("convert"),
                m,
                s("--to"),
                s("gguf"),
                s("--no-manifest"),
                s("-q"),
                s("-o"),
            ]),
        ),
    ]
}

/// No `.tmp-` temporary left in `dir`.
fn no_temporaries(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "temporaries left: {left:?}");
}

fn with(args: &[OsString], out: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut a = args.to_vec();
    a.push(out.as_os_str().to_os_string());
    a.extend(extra.iter().map(OsString::from));
    a
}

#[test]
fn every_output_file_is_replaced_only_with_force() {
    let f = fixture();
    for (name, args) in commands(&f) {
        let out = f.dir.join(format!("{}.out", name.replace([' ', '-'], "_")));
        std::fs::write(&out, b"keep me").unwrap();
        let o = run(with(&args, &out, &[]));
        let err = stderr(&o);
        assert_eq!(code(&o), 2, "{name} without --force: {err}");
        let line = err.lines().find(|l| l.contains("error")).unwrap_or("");
        assert!(
            line.contains(out.to_str().unwrap()) && line.contains("--force"),
            "{name}: one line naming the file and --force: {err}"
        );
        assert_eq!(
            std::fs::read(&out).unwrap(),
            b"keep me",
            "{name}: untouched"
        );
        ok(run(with(&args, &out, &["--force"])));
        let new = std::fs::read(&out).unwrap();
        assert!(!new.is_empty() && new != b"keep me", "{name}: replaced");
        assert!(std::fs::symlink_metadata(&out).unwrap().is_file());
    }
    no_temporaries(&f.dir);
}

#[test]
fn man_pages_are_replaced_only_with_force() {
    let t = tempfile::tempdir().unwrap();
    let pages = t.path().join("man1");
    ok(run(["man", "-o", s(&pages), "-q"]));
    let page = pages.join("llama-tool-convert.1");
    std::fs::write(&page, b"keep me").unwrap();
    let o = run(["man", "-o", s(&pages)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(pages.to_str().unwrap()) && stderr(&o).contains("--force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&page).unwrap(), b"keep me");
    ok(run(["man", "-o", s(&pages), "--force", "-q"]));
    assert!(std::fs::read_to_string(&page).unwrap().contains(".TH"));
}

#[test]
fn seed_refuses_to_replace_a_saved_torrent_without_force() {
    let f = fixture();
    let out = f.dir.join("saved.torrent");
    std::fs::write(&out, b"keep me").unwrap();
    let o = run([
        OsStr::new("seed"),
        f.model.as_os_str(),
        OsStr::new("--save-torrent"),
        out.as_os_str(),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
}

/// `-o LINK` where LINK leads to `/dev/null`: written through with or without `--force`;
/// the link stays a link and `/dev/null` a character device.
#[test]
fn a_link_to_a_device_is_written_through_not_replaced() {
    let f = fixture();
    let link = f.dir.join("null");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    for (name, args) in commands(&f) {
        if name == "quantize" || name == "convert" {
            continue; // a GGUF needs a seekable file: refused below
        }
        for extra in [&[][..], &["--force"][..]] {
            ok(run(with(&args, &link, extra)));
            let lm = std::fs::symlink_metadata(&link).unwrap();
            assert!(lm.file_type().is_symlink(), "{name} {extra:?}: link kept");
        }
    }
    for (name, args) in commands(&f) {
        if name == "quantize" || name == "convert" {
            let o = run(with(&args, &link, &["--force"]));
            assert_eq!(code(&o), 2, "{name}: {}", stderr(&o));
            assert!(
                stderr(&o).contains("not a regular file"),
                "{name}: {}",
                stderr(&o)
            );
            assert!(std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink());
        }
    }
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    no_temporaries(&f.dir);
}

/// `-o FIFO`: the bytes go through the pipe to its reader; the FIFO stays a FIFO.
#[test]
fn a_fifo_output_is_written_through_and_kept() {
    let f = fixture();
    let fifo = f.dir.join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    ok(run([
        OsStr::new("manifest"),
        f.model.as_os_str(),
        OsStr::new("-o"),
        fifo.as_os_str(),
    ]));
    let text = reader.join().unwrap();
    assert!(text.contains("params.json"), "{text}");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
}
