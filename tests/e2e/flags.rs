//! One spelling per concept across commands (issue 9, item 6): `-o/--output` for every
//! output path, `-j/--jobs` for parallelism, `--force` to replace an existing output, types
//! and devices matched case-insensitively with a "did you mean" for a typo, `--ctx-len`
//! (context length written into a GGUF) apart from `check --chunk` (tokens per chunk); and
//! every old spelling (`--out`, `--threads`, `--dir`, `--out-dir`, `--ctx`) still accepted.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;

fn ok(o: Output) -> Output {
    assert_eq!(code(&o), 0, "failed:\n{}\n{}", stdout(&o), stderr(&o));
    o
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A usage error from clap (exit 2, clap's own `error:` line), not a run-time error.
fn usage_error(o: &Output) -> bool {
    code(o) == 2 && stderr(o).starts_with("error:")
}

/// The tiny model and its f16 GGUF (also `force.rs`'s).
pub(crate) fn fixture(dir: &Path) -> (PathBuf, PathBuf) {
    let m = dir.join("m");
    ok(run(["synth", "--output", s(&m), "-q"]));
    let g = dir.join("m.gguf");
    ok(run([
        "convert",
        s(&m),
        "--output",
        s(&g),
        "--no-manifest",
        "-q",
    ]));
    (m, g)
}

#[test]
fn output_is_dash_o_or_dash_dash_output_on_every_command_and_old_spellings_still_work() {
    let t = tempfile::tempdir().unwrap();
    let (m, g) = fixture(t.path());
    let p = |n: &str| t.path().join(n);
    for (flag, n) in [("-o", 1), ("--output", 2), ("--out", 3)] {
        ok(run(["synth", flag, s(&p(&format!("s{n}"))), "-q"]));
        assert!(
            p(&format!("s{n}")).join("params.json").is_file(),
            "synth {flag}"
        );
        let gguf = p(&format!("c{n}.gguf"));
        ok(run([
            "convert",
            s(&m),
            flag,
            s(&gguf),
            "--no-manifest",
            "-q",
        ]));
        assert!(gguf.is_file(), "convert {flag}");
        let r = p(&format!("r{n}"));
        ok(run(["reshard", s(&m), "--mp", "2", flag, s(&r), "-q"]));
        assert!(r.join("consolidated.01.pth").is_file(), "reshard {flag}");
        let q = p(&format!("q{n}.gguf"));
        ok(run(["quantize", s(&g), "q8_0", flag, s(&q), "-q"]));
        assert!(q.is_file(), "quantize IN TYPE {flag} OUT");
        let sums = p(&format!("sums{n}"));
        ok(run(["manifest", s(&m), flag, s(&sums)]));
        assert!(
            std::fs::read_to_string(&sums)
                .unwrap()
                .contains("params.json"),
            "manifest {flag}"
        );
        let npy = p(&format!("l{n}.npy"));
        ok(run(["logits", s(&m), "--tokens", "1,2,3", flag, s(&npy)]));
        assert!(npy.is_file(), "logits {flag}");
        let pages = p(&format!("man{n}"));
        ok(run(["man", flag, s(&pages), "-q"]));
        assert!(pages.join("llama-tool-quantize.1").is_file(), "man {flag}");
    }
    // The positional form of quantize, as llama-quantize takes it; the output twice is a
    // usage error.
    ok(run(["quantize", s(&g), s(&p("q0.gguf")), "Q8_0", "-q"]));
    let o = run([
        "quantize",
        s(&g),
        s(&p("q9.gguf")),
        "Q8_0",
        "-o",
        s(&p("q9b.gguf")),
    ]);
    assert!(usage_error(&o), "{}", stderr(&o));
    // man's old --out-dir.
    ok(run(["man", "--out-dir", s(&p("man4")), "-q"]));
    assert!(p("man4").join("llama-tool.1").is_file());
    // download and sign: the flags parse (a run-time error about the missing input, not a
    // usage error).
    for flag in ["-o", "--output", "--dir", "--out"] {
        let o = run([
            "download",
            "--manifest",
            s(&p("no-such-manifest")),
            flag,
            s(&p("dl")),
        ]);
        assert_eq!(code(&o), 2, "download {flag}: {}", stderr(&o));
        assert!(!usage_error(&o), "download {flag}: {}", stderr(&o));
        assert!(stderr(&o).contains("no-such-manifest"), "{}", stderr(&o));
    }
    for flag in ["-o", "--output", "--out"] {
        let o = run([
            "sign",
            s(&m),
            "--key",
            s(&p("no-such-key.pem")),
            flag,
            s(&p("x.sig")),
        ]);
        assert_eq!(code(&o), 2, "sign {flag}: {}", stderr(&o));
        assert!(!usage_error(&o), "sign {flag}: {}", stderr(&o));
    }
    // The old spellings are hidden: --help shows only -o/--output.
    for cmd in ["convert", "reshard", "synth", "quantize", "download", "man"] {
        let help = stdout(&ok(run([cmd, "--help"])));
        assert!(help.contains("-o, --output"), "{cmd}: {help}");
        for old in ["--out ", "--out-dir", "--dir", "--threads"] {
            assert!(!help.contains(old), "{cmd} --help shows {old}: {help}");
        }
    }
}

#[test]
fn jobs_is_dash_j_or_dash_dash_jobs_and_threads_still_works() {
    let t = tempfile::tempdir().unwrap();
    let (m, g) = fixture(t.path());
    let p = |n: &str| t.path().join(n);
    for (flag, n) in [("-j", 1), ("--jobs", 2), ("--threads", 3)] {
        ok(run([
            "convert",
            s(&m),
            "--outtype",
            "q8_0",
            "-o",
            s(&p(&format!("c{n}.gguf"))),
            "--no-manifest",
            flag,
            "1",
            "-q",
        ]));
        ok(run([
            "quantize",
            s(&g),
            s(&p(&format!("q{n}.gguf"))),
            "Q4_0",
            flag,
            "2",
            "-q",
        ]));
        ok(run(["manifest", s(&m), flag, "2"]));
        ok(run(["verify", s(&m), flag, "1", "-q"]));
    }
    // Same bytes whatever the thread count.
    let c1 = std::fs::read(p("c1.gguf")).unwrap();
    assert!(c1 == std::fs::read(p("c3.gguf")).unwrap());
    let q1 = std::fs::read(p("q1.gguf")).unwrap();
    assert!(q1 == std::fs::read(p("q3.gguf")).unwrap());
    for cmd in [
        "convert", "quantize", "manifest", "verify", "sign", "seed", "download",
    ] {
        let help = stdout(&ok(run([cmd, "--help"])));
        assert!(help.contains("-j, --jobs"), "{cmd}: {help}");
    }
}

#[test]
fn quantize_refuses_an_existing_output_without_force_and_replaces_it_with_force() {
    let t = tempfile::tempdir().unwrap();
    let (_, g) = fixture(t.path());
    let out = t.path().join("q.gguf");
    std::fs::write(&out, b"precious").unwrap();
    for args in [
        vec![s(&g), s(&out), "q8_0"],
        vec![s(&g), "q8_0", "-o", s(&out)],
    ] {
        let mut all = vec!["quantize"];
        all.extend(args);
        let o = run(&all);
        assert_eq!(code(&o), 2, "{all:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(s(&out)) && err.contains("--force"),
            "names the file and --force: {err}"
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"precious", "left alone");
    }
    ok(run(["quantize", s(&g), s(&out), "q8_0", "--force", "-q"]));
    let v = inspect_json(&out);
    assert_eq!(v["metadata"]["general.file_type"], 7, "a Q8_0 GGUF now");
    // Nothing but the fixture and the output in the folder: no temporary left behind.
    let names: Vec<String> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

fn inspect_json(p: &Path) -> serde_json::Value {
    let o = ok(run(["inspect", s(p), "--json"]));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn synth_refuses_a_non_empty_folder_without_force() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    ok(run(["synth", "-o", s(&m), "-q"]));
    std::fs::write(m.join("stray"), b"x").unwrap();
    let o = run(["synth", "-o", s(&m), "--layers", "1"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert!(m.join("stray").exists());
    ok(run([
        "synth",
        "-o",
        s(&m),
        "--layers",
        "1",
        "--force",
        "-q",
    ]));
    assert!(!m.join("stray").exists(), "the old folder was replaced");
    assert_eq!(inspect_json(&m)["params"]["n_layers"], 1);
}

#[test]
fn types_are_case_insensitive_and_a_typo_gets_the_nearest_name() {
    let t = tempfile::tempdir().unwrap();
    let (m, g) = fixture(t.path());
    let p = |n: &str| t.path().join(n);
    ok(run(["quantize", s(&g), s(&p("a.gguf")), "q4_k_m", "-q"]));
    ok(run(["quantize", s(&g), s(&p("b.gguf")), "Q4_k_M", "-q"]));
    assert!(std::fs::read(p("a.gguf")).unwrap() == std::fs::read(p("b.gguf")).unwrap());
    // Q4_K means Q4_K_M, as in llama-quantize.
    ok(run(["quantize", s(&g), s(&p("c.gguf")), "q4_k", "-q"]));
    assert!(std::fs::read(p("a.gguf")).unwrap() == std::fs::read(p("c.gguf")).unwrap());
    ok(run([
        "convert",
        s(&m),
        "--to",
        "GGUF",
        "--outtype",
        "Q8_0",
        "-o",
        s(&p("d.gguf")),
        "--no-manifest",
        "-q",
    ]));
    ok(run([
        "manifest",
        s(&m),
        "--format",
        "JSON",
        "--algo",
        "SHA256",
    ]));
    ok(run([
        "synth",
        "-o",
        s(&p("s")),
        "--shape",
        "TINY",
        "--dtype",
        "F32",
        "-q",
    ]));
    ok(run(["completions", "BASH"]));
    ok(run(["logits", s(&m), "--tokens", "1,2", "--device", "CPU"]));
    // A typo: a usage error (exit 2) naming the nearest name and nothing written.
    for (args, want) in [
        (
            vec!["quantize", s(&g), s(&p("e.gguf")), "Q4_K_N"],
            "did you mean Q4_K_M?",
        ),
        (
            vec!["quantize", s(&g), "q4_k_n", "-o", s(&p("e.gguf"))],
            "did you mean Q4_K_M?",
        ),
        (
            vec!["convert", s(&m), "--outtype", "q80", "-o", s(&p("e.gguf"))],
            "did you mean Q8_0?",
        ),
        (
            vec!["convert", s(&m), "--to", "gguff", "-o", s(&p("e.gguf"))],
            "did you mean gguf?",
        ),
        (
            vec!["manifest", s(&m), "--format", "jsn"],
            "did you mean json?",
        ),
        (
            vec!["manifest", s(&m), "--algo", "sha265"],
            "did you mean sha256?",
        ),
        (
            vec!["synth", "-o", s(&p("e")), "--shape", "7c"],
            "did you mean 7B?",
        ),
        (
            vec!["logits", s(&m), "--tokens", "1,2", "--device", "cpy"],
            "did you mean cpu?",
        ),
        (
            vec![
                "check",
                s(&m),
                s(&g),
                "--tokens",
                "1,2",
                "--cand-device",
                "cudaa",
            ],
            "did you mean cuda?",
        ),
    ] {
        let o = run(&args);
        assert!(usage_error(&o), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    assert!(!p("e.gguf").exists() && !p("e").exists());
    // Nothing near: the possible values, no guess.
    let o = run(["quantize", s(&g), s(&p("e.gguf")), "zzz"]);
    assert!(usage_error(&o));
    assert!(
        !stderr(&o).contains("did you mean") && stderr(&o).contains("Q4_K_M, Q4_K_S"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn ctx_len_is_written_into_the_gguf_and_check_cuts_chunks_with_chunk() {
    let t = tempfile::tempdir().unwrap();
    let (m, g) = fixture(t.path());
    let p = |n: &str| t.path().join(n);
    for (flag, n) in [("--ctx-len", 1), ("--ctx", 2)] {
        let out = p(&format!("ctx{n}.gguf"));
        ok(run([
            "convert",
            s(&m),
            "-o",
            s(&out),
            flag,
            "1234",
            "--no-manifest",
            "-q",
        ]));
        assert_eq!(
            inspect_json(&out)["metadata"]["llama.context_length"],
            1234,
            "{flag}"
        );
    }
    let help = stdout(&ok(run(["convert", "--help"])));
    assert!(
        help.contains("--ctx-len") && help.contains("--chunk"),
        "{help}"
    );
    let corpus = p("corpus.txt");
    std::fs::write(
        &corpus,
        "the quick brown fox jumps over the lazy dog ".repeat(8),
    )
    .unwrap();
    let mut chunks = Vec::new();
    for flag in ["--chunk", "--ctx"] {
        let o = ok(run([
            "check",
            s(&m),
            s(&g),
            "--corpus",
            s(&corpus),
            flag,
            "16",
            "--json",
        ]));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        chunks.push(v["sequences"].clone());
    }
    assert!(chunks[0].as_u64().unwrap() > 1, "{chunks:?}");
    assert_eq!(chunks[0], chunks[1]);
    let o = run([
        "check",
        s(&m),
        s(&g),
        "--corpus",
        s(&corpus),
        "--chunk",
        "1",
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--chunk"), "{}", stderr(&o));
    let help = stdout(&ok(run(["check", "--help"])));
    assert!(
        help.contains("--chunk <TOKENS>") && !help.contains("--ctx "),
        "{help}"
    );
}

#[test]
fn usage_errors_exit_2_before_anything_is_written() {
    let t = tempfile::tempdir().unwrap();
    for args in [
        vec!["quantize", "in.gguf"],
        vec!["quantize", "in.gguf", "out.gguf"],
        vec!["quantize", "in.gguf", "-o", "out.gguf"],
        vec!["convert", "in", "-o", "a.gguf", "--out", "b.gguf"],
        vec!["convert", "in", "-o", "a.gguf", "--jobs", "x"],
        vec!["synth", "-o", "x", "--dtype", "q4_0"],
    ] {
        let o = Command::new(bin())
            .args(&args)
            .current_dir(t.path())
            .output()
            .unwrap();
        assert!(usage_error(&o), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
}

#[test]
fn default_ctx_len_comes_from_the_model_family() {
    let t = tempfile::tempdir().unwrap();
    let p = |n: &str| t.path().join(n);
    let ctx_of = |model: &Path, name: &str| {
        let out = p(name);
        ok(run([
            "convert",
            s(model),
            "-o",
            s(&out),
            "--no-manifest",
            "-q",
        ]));
        inspect_json(&out)["metadata"]["llama.context_length"].clone()
    };
    // A custom LLaMA-1-style model: 2048.
    let m = p("m");
    ok(run(["synth", "-o", s(&m), "-q"]));
    assert_eq!(ctx_of(&m, "m.gguf"), 2048);
    // Grouped-query attention (Llama 2 70B's kind): 4096.
    let gqa = p("gqa");
    ok(run(["synth", "-o", s(&gqa), "--kv-heads", "2", "-q"]));
    assert_eq!(ctx_of(&gqa, "gqa.gguf"), 4096);
    // Code Llama's rope_theta: 16384 (it was 2048 when the CLI guessed).
    let params = m.join("params.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&params).unwrap()).unwrap();
    v["rope_theta"] = serde_json::json!(1_000_000.0);
    std::fs::write(&params, v.to_string()).unwrap();
    assert_eq!(ctx_of(&m, "code.gguf"), 16384);
}
