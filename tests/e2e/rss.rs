//! Peak resident memory of default-flag commands does not grow with the model (issue 12).
//! A tiny-shaped model with many layers (~160 MB, no tensor over 1 MB) is converted with the
//! default manifest, resharded, verified and listed; each command's peak RSS, read from
//! `wait4(2)`'s rusage of that very process (mapped file pages count, as `/usr/bin/time -v`
//! reports them), must stay well under the bytes it hashed. Before hashing-while-writing and releasing hashed pages, each of these
//! peaked at about the size of its output or input.

use std::path::Path;
use std::process::Command;

use crate::common::bin;

/// Layers of the fixture: enough that the model is several times the bound.
const LAYERS: &str = "96";
/// The bound: the binary's baseline plus a few buffers, far under the data size.
const BOUND_MIB: u64 = 72;

/// Run `llama-tool ARGS` and return (exit code, peak RSS in MiB) of that process alone.
/// A small Python parent forks and `wait4`s it (as `/usr/bin/time` does): the rusage of a
/// child spawned straight from this multi-threaded test process would include this
/// process's own high-water mark, which the kernel carries across `exec`.
fn peak_rss_mib(args: &[&std::ffi::OsStr]) -> (i32, u64) {
    const WAIT4: &str = r#"
import os, sys
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_RDWR)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, ru = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), ru.ru_maxrss)
"#;
    let o = Command::new(crate::common::python())
        .arg("-c")
        .arg(WAIT4)
        .arg(bin())
        .args(args)
        .output()
        .expect("spawn python");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut it = text
        .split_whitespace()
        .map(|v| v.parse::<i64>().unwrap_or(-1));
    let (code, kib) = (it.next().unwrap_or(-1), it.next().unwrap_or(-1));
    assert!(
        kib > 0,
        "no rusage from the wait4 helper: {text} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (code as i32, kib as u64 / 1024)
}

fn size_mib(p: &Path) -> u64 {
    let mut total = 0;
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            total += e.unwrap().metadata().unwrap().len();
        }
    } else {
        total = std::fs::metadata(p).unwrap().len();
    }
    total >> 20
}

#[test]
fn convert_reshard_verify_and_manifest_stay_bounded_on_a_many_layer_model() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    let o = Command::new(bin())
        .args(["synth", "--layers", LAYERS, "-o"])
        .arg(&m)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let data = size_mib(&m);
    assert!(
        data >= 2 * BOUND_MIB,
        "fixture too small to show anything: {data} MiB"
    );

    let gguf = t.path().join("m.gguf");
    let hf = t.path().join("hf");
    let mp2 = t.path().join("mp2");
    let sums = t.path().join("SHA256SUMS");
    let p = |p: &Path| p.as_os_str().to_os_string();
    let s = |s: &str| std::ffi::OsString::from(s);
    let cases: Vec<(&str, Vec<std::ffi::OsString>)> = vec![
        (
            "convert -> gguf",
            vec![s("convert"), p(&m), s("-o"), p(&gguf)],
        ),
        (
            "convert -> safetensors",
            vec![
                s("convert"),
                p(&m),
                s("--to"),
                s("safetensors"),
                s("-o"),
                p(&hf),
            ],
        ),
        (
            "reshard --mp 2",
            vec![s("reshard"), p(&m), s("--mp"), s("2"), s("-o"), p(&mp2)],
        ),
        ("manifest", vec![s("manifest"), p(&m), s("-o"), p(&sums)]),
        (
            "verify m.gguf.sha256",
            vec![s("verify"), p(&t.path().join("m.gguf.sha256"))],
        ),
        (
            "verify mp2/checklist.chk -j 1",
            vec![s("verify"), p(&mp2.join("checklist.chk")), s("-j"), s("1")],
        ),
        (
            "verify hf/SHA256SUMS",
            vec![s("verify"), p(&hf.join("SHA256SUMS"))],
        ),
    ];
    for (what, args) in &cases {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let (code, peak) = peak_rss_mib(&args);
        assert_eq!(code, 0, "{what} failed");
        assert!(
            peak < BOUND_MIB,
            "{what}: peak RSS {peak} MiB over {data} MiB of data (bound {BOUND_MIB} MiB)"
        );
        if *what == "convert -> gguf" {
            assert!(size_mib(&gguf) >= 2 * BOUND_MIB, "output too small");
        }
    }
}
