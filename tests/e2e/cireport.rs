//! Issue 13's CI and diagnosis features: `check` naming a wrong hyper-parameter of a lossless
//! copy, `check --per-layer` pointing at a corrupted layer, `diff`, `--junit` (read back by
//! a real JUnit consumer) with GitHub annotations, and the `check --report` page.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

const PROMPT: &str = "The quick brown fox jumps over the lazy dog. 12345 naïve café";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A tiny synthetic Meta checkpoint with `layers` layers in `dir/meta`.
fn synth(dir: &Path, layers: u32, mp: u32) -> PathBuf {
    let meta = dir.join("meta");
    let o = run([
        "synth",
        "--shape",
        "tiny",
        "--layers",
        &layers.to_string(),
        "--mp",
        &mp.to_string(),
        "--seed",
        "7",
        "-o",
        s(&meta),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    meta
}

/// A copy of a Meta folder (its files; the tokenizer beside it stays found via the parent).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn convert(from: &Path, to: &str, out: &Path) {
    let o = run(["convert", s(from), "--to", to, "-o", s(out)]);
    assert_eq!(code(&o), 0, "convert: {}", stderr(&o));
}

/// Rename tensors in a safetensors header (same-shape swaps keep the file valid).
fn swap_names(file: &Path, a: &str, b: &str) {
    let bytes = std::fs::read(file).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n])
        .unwrap()
        .replace(a, "@@")
        .replace(b, a)
        .replace("@@", b);
    let mut out = bytes[..8].to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(file, out).unwrap();
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
}

#[test]
fn check_fails_a_lossless_copy_whose_norm_eps_is_wrong_and_names_it() {
    let t = tempfile::tempdir().unwrap();
    let meta = synth(t.path(), 2, 1);
    let copy = t.path().join("copy");
    copy_dir(&meta, &copy);
    let pj = copy.join("params.json");
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&pj).unwrap()).unwrap();
    assert_eq!(p["norm_eps"], 1e-6);
    p["norm_eps"] = serde_json::json!(1e-5);
    std::fs::write(&pj, p.to_string()).unwrap();
    // The untouched copy passes, with identical logits.
    let same = t.path().join("same");
    copy_dir(&meta, &same);
    let o = run(["check", s(&meta), s(&same), "--prompt", PROMPT, "--json"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let v = json(&o);
    assert_eq!(v["metrics"]["max_abs_diff"], 0.0);
    assert!(v["hyper_parameters"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["differs"] == false));
    // The eps copy fails with exit 1, naming norm_eps, side by side in the table.
    let o = run(["check", s(&meta), s(&copy), "--prompt", PROMPT]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let row = out
        .lines()
        .find(|l| l.trim_start().starts_with("norm_eps"))
        .unwrap_or_else(|| panic!("no norm_eps row:\n{out}"));
    assert!(
        row.contains("1e-6") && row.contains("1e-5") && row.contains("differs"),
        "{row}"
    );
    assert!(
        out.contains("FAIL") && out.contains("hyper-parameter norm_eps differs"),
        "{out}"
    );
    for name in [
        "dim",
        "n_heads",
        "n_kv_heads",
        "rope_theta",
        "vocab_size",
        "context_length",
    ] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(name)),
            "no {name} row:\n{out}"
        );
    }
    let o = run(["check", s(&meta), s(&copy), "--prompt", PROMPT, "--json"]);
    assert_eq!(code(&o), 1);
    let v = json(&o);
    let differing: Vec<&str> = v["hyper_parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["differs"] == true)
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(differing, ["norm_eps"]);
    assert_eq!(v["thresholds"]["fidelity"], "lossless");
    // The logits moved, though far less than any KLD limit would notice: the lossless gate
    // catches it too.
    assert!(v["metrics"]["max_abs_diff"].as_f64().unwrap() > 0.0);
    let failed: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["pass"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"hyper_parameters"), "{failed:?}");
}

#[test]
fn check_per_layer_points_at_the_corrupted_layer() {
    let t = tempfile::tempdir().unwrap();
    let meta = synth(t.path(), 4, 1);
    let hf = t.path().join("hf");
    convert(&meta, "safetensors", &hf);
    // Faithful: every layer's divergence is zero.
    let o = run([
        "check",
        s(&meta),
        s(&hf),
        "--prompt",
        PROMPT,
        "--per-layer",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let v = json(&o);
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 4);
    assert!(layers.iter().all(|l| l["rel_rms"] == 0.0), "{layers:?}");
    assert!(v["first_bad_layer"].is_null());
    // Layer 2's gate and up projections swapped (same shape): layers 0 and 1 still agree,
    // layer 2 is the first bad one.
    swap_names(
        &hf.join("model.safetensors"),
        "model.layers.2.mlp.gate_proj",
        "model.layers.2.mlp.up_proj",
    );
    let o = run([
        "check",
        s(&meta),
        s(&hf),
        "--prompt",
        PROMPT,
        "--per-layer",
        "--json",
    ]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let v = json(&o);
    assert_eq!(v["first_bad_layer"], 2, "{}", stdout(&o));
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers[0]["rel_rms"], 0.0);
    assert_eq!(layers[1]["rel_rms"], 0.0);
    assert!(layers[2]["rel_rms"].as_f64().unwrap() > 1e-3);
    assert!(layers[2]["cosine_min"].as_f64().unwrap() < 1.0);
    // The table names it too.
    let o = run(["check", s(&meta), s(&hf), "--prompt", PROMPT, "--per-layer"]);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains("<- first bad layer")
            && stdout(&o).contains("diverge first after layer 2"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn check_per_layer_passes_a_quantized_conversion() {
    let t = tempfile::tempdir().unwrap();
    let meta = synth(t.path(), 2, 1);
    let q = t.path().join("q4.gguf");
    let o = run([
        "convert",
        s(&meta),
        "--to",
        "gguf",
        "--outtype",
        "q4_k_m",
        "-o",
        s(&q),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run([
        "check",
        s(&meta),
        s(&q),
        "--prompt",
        PROMPT,
        "--per-layer",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let v = json(&o);
    for l in v["layers"].as_array().unwrap() {
        let r = l["rel_rms"].as_f64().unwrap();
        assert!(r > 0.0 && r < 0.5, "{l}");
    }
}

fn synth_args(out: &Path, extra: &[&str]) {
    let mut args = vec!["synth", "--shape", "tiny", "--seed", "7", "-o", s(out)];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

fn statuses(v: &serde_json::Value) -> std::collections::BTreeMap<String, String> {
    v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn diff_finds_conversions_equal_across_formats() {
    let t = tempfile::tempdir().unwrap();
    let meta = synth(t.path(), 2, 2);
    let gguf = t.path().join("f16.gguf");
    let hf = t.path().join("hf");
    let st = t.path().join("one.safetensors");
    convert(&meta, "gguf", &gguf);
    convert(&meta, "safetensors", &hf);
    for b in [&gguf, &hf] {
        let o = run(["diff", s(&meta), s(b), "--json"]);
        assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
        let v = json(&o);
        assert_eq!(v["equal"], true);
        let n = v["tensors"].as_array().unwrap().len();
        assert_eq!(n, 2 + 2 * 9 + 1, "{}", stdout(&o));
        let (same, dtype) = (
            v["summary"]["identical"].as_u64().unwrap(),
            v["summary"]["dtype"].as_u64().unwrap(),
        );
        // GGUF keeps the 1-D norms in f32 (llama.cpp's convention): same values, other dtype.
        assert_eq!(same + dtype, n as u64, "{}", stdout(&o));
        assert!(same >= 16, "{}", stdout(&o));
        // Identity hashes are shown per side and agree.
        let t0 = &v["tensors"][0];
        assert_eq!(t0["a"]["sha256"], t0["b"]["sha256"]);
        assert_eq!(t0["max_abs"], 0.0);
    }
    // HF vs GGUF: both sides mapped, q/k compared in one layout.
    let o = run(["diff", s(&hf), s(&gguf)]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("equal: 21 tensors: "), "{}", stdout(&o));
    // A lone HF safetensors file has no config.json to un-permute q/k with: a one-line
    // error naming it, exit 2 (never a wrong verdict).
    std::fs::copy(hf.join("model.safetensors"), &st).unwrap();
    let o = run(["diff", s(&gguf), s(&st), "--json"]);
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("one.safetensors"), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn diff_reports_dtype_values_shape_missing_and_extra_with_exit_1() {
    let t = tempfile::tempdir().unwrap();
    let meta = synth(t.path(), 2, 1);
    // f32 copy: same values, another dtype.
    let f32g = t.path().join("f32.gguf");
    let o = run([
        "convert",
        s(&meta),
        "--to",
        "gguf",
        "--outtype",
        "f32",
        "-o",
        s(&f32g),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(["diff", s(&meta), s(&f32g), "--json"]);
    assert_eq!(code(&o), 0, "same values: {}", stderr(&o));
    assert_eq!(json(&o)["equal"], true);
    let o = run(["diff", s(&meta), s(&f32g), "--json", "--strict-dtype"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["equal"], false);
    let st = statuses(&v);
    assert_eq!(st["layers.0.attention.wq.weight"], "dtype");
    assert_eq!(v["tensors"][0]["max_abs"], 0.0);
    // q8_0: values differ by a little; max abs and rel reported.
    let q8 = t.path().join("q8.gguf");
    let o = run([
        "convert",
        s(&meta),
        "--to",
        "gguf",
        "--outtype",
        "q8_0",
        "-o",
        s(&q8),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(["diff", s(&meta), s(&q8), "--json"]);
    assert_eq!(code(&o), 1);
    let v = json(&o);
    let wq = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "layers.0.attention.wq.weight")
        .unwrap();
    assert_eq!(wq["status"], "values");
    assert_eq!(wq["b"]["dtype"], "Q8_0");
    let (abs, rel) = (
        wq["max_abs"].as_f64().unwrap(),
        wq["max_rel"].as_f64().unwrap(),
    );
    assert!(abs > 0.0 && rel > 0.0 && rel < 0.02, "{wq}");
    // Layers 0..3 vs 0..2, and kv heads 4 vs 2: missing/extra tensors and shapes.
    let three = t.path().join("three");
    synth_args(&three, &["--layers", "3"]);
    let gqa = t.path().join("gqa");
    synth_args(&gqa, &["--layers", "2", "--kv-heads", "2"]);
    let o = run(["diff", s(&three), s(&meta), "--json"]);
    assert_eq!(code(&o), 1);
    let st = statuses(&json(&o));
    assert_eq!(st["layers.2.attention.wq.weight"], "missing");
    let o = run(["diff", s(&meta), s(&three)]);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains("EXTRA") && stdout(&o).contains("layers.2.feed_forward.w2.weight"),
        "{}",
        stdout(&o)
    );
    let o = run(["diff", s(&meta), s(&gqa), "--json"]);
    assert_eq!(code(&o), 1);
    let st = statuses(&json(&o));
    assert_eq!(st["layers.0.attention.wk.weight"], "shape");
    // Bad input: exit 2 naming the path.
    let o = run(["diff", s(&meta), s(&t.path().join("nope.gguf"))]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("nope.gguf"), "{}", stderr(&o));
}

/// The CI venv's python with junitparser (scripts/setup-ci-venv.sh), or a failure naming it.
fn ci_python() -> PathBuf {
    let p = std::env::var_os("LLAMA_TOOL_CI_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/llama-tool/venv-ci/bin/python")
        });
    let ok = Command::new(&p)
        .args(["-c", "import junitparser"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{}: no python with junitparser; run scripts/setup-ci-venv.sh (scripts/test.sh does) or set LLAMA_TOOL_CI_PYTHON",
        p.display()
    );
    p
}

/// Parse a JUnit file with junitparser and xmllint; returns [(name, result, message)].
fn read_junit(path: &Path) -> Vec<(String, String, String)> {
    let xmllint = Command::new("xmllint")
        .args(["--noout", s(path)])
        .output()
        .unwrap_or_else(|e| panic!("xmllint: {e}; run scripts/install-report-tools.sh"));
    assert!(
        xmllint.status.success(),
        "xmllint: {}",
        String::from_utf8_lossy(&xmllint.stderr)
    );
    let script = r#"
import sys, json
from junitparser import JUnitXml, Failure, Error
xml = JUnitXml.fromfile(sys.argv[1])
out = []
for suite in xml:
    for case in suite:
        res = [r for r in case.result if isinstance(r, (Failure, Error))]
        kind = "pass" if not res else type(res[0]).__name__.lower()
        out.append([case.name, kind, res[0].message if res else ""])
    assert suite.tests == len(list(suite)), (suite.tests, len(list(suite)))
print(json.dumps(out))
"#;
    let o = Command::new(ci_python())
        .args(["-c", script, s(path)])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "junitparser: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn junit_and_github_annotations_for_verify_check_and_diff() {
    let t = tempfile::tempdir().unwrap();
    let meta = synth(t.path(), 2, 1);
    // verify: a hostile file name in the listing, one corrupted shard.
    let dir = t.path().join("art");
    copy_dir(&meta, &dir);
    let odd = "odd <&\"'>,:%\tname.bin";
    std::fs::write(dir.join(odd), b"x").unwrap();
    let o = run([
        "manifest",
        s(&dir),
        "-o",
        s(&dir.join("SHA256SUMS")),
        "--format",
        "sha256sums",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let shard = dir.join("consolidated.00.pth");
    let mut bytes = std::fs::read(&shard).unwrap();
    let n = bytes.len();
    bytes[n - 100] ^= 0xff;
    std::fs::write(&shard, bytes).unwrap();
    let junit = t.path().join("verify.xml");
    let o = Command::new(bin())
        .args(["verify", s(&dir), "--junit", s(&junit)])
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let cases = read_junit(&junit);
    let bad: Vec<_> = cases.iter().filter(|c| c.1 != "pass").collect();
    assert_eq!(bad.len(), 1, "{cases:?}");
    assert!(bad[0].0.ends_with("consolidated.00.pth") && bad[0].1 == "failure");
    assert!(bad[0].2.contains("mismatch"), "{:?}", bad[0]);
    assert!(
        cases.iter().any(|c| c.0.ends_with(odd) && c.1 == "pass"),
        "{cases:?}"
    );
    let out = stdout(&o);
    let ann: Vec<&str> = out.lines().filter(|l| l.starts_with("::error ")).collect();
    assert_eq!(ann.len(), 1, "{out}");
    assert!(
        ann[0].contains("consolidated.00.pth::") && ann[0].contains("file="),
        "{}",
        ann[0]
    );
    // Bad input (exit 2) still leaves a JUnit file with one error case.
    let bad = t.path().join("bad.xml");
    let o = run(["verify", s(&t.path().join("absent")), "--junit", s(&bad)]);
    assert_eq!(code(&o), 2);
    let cases = read_junit(&bad);
    assert!(
        cases.len() == 1 && cases[0].1 == "error" && cases[0].2.contains("absent"),
        "{cases:?}"
    );
    // Without GITHUB_ACTIONS there are none; with --json they go to stderr.
    let o = run(["verify", s(&dir)]);
    assert!(!stdout(&o).contains("::error"));
    let o = Command::new(bin())
        .args(["verify", s(&dir), "--json"])
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&o.stdout).is_ok());
    assert!(stderr(&o).contains("::error file="), "{}", stderr(&o));

    // check: one case per check; the eps copy fails hyper_parameters.
    let copy = t.path().join("copy");
    copy_dir(&meta, &copy);
    let pj = copy.join("params.json");
    let text = std::fs::read_to_string(&pj)
        .unwrap()
        .replace("1e-6", "1e-5");
    std::fs::write(&pj, text).unwrap();
    let junit = t.path().join("check.xml");
    let o = Command::new(bin())
        .args([
            "check",
            s(&meta),
            s(&copy),
            "--prompt",
            PROMPT,
            "--junit",
            s(&junit),
        ])
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let cases = read_junit(&junit);
    let names: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
    for want in [
        "hyper_parameters",
        "finite_logits",
        "mean_kld",
        "top1_agreement",
        "lossless_logits",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    let hp = cases.iter().find(|c| c.0 == "hyper_parameters").unwrap();
    assert!(hp.1 == "failure" && hp.2.contains("norm_eps"), "{hp:?}");
    assert!(stdout(&o).contains("::error file="), "{}", stdout(&o));

    // diff: one case per tensor.
    let gguf = t.path().join("f16.gguf");
    convert(&meta, "gguf", &gguf);
    let junit = t.path().join("diff.xml");
    let o = run(["diff", s(&meta), s(&gguf), "--junit", s(&junit)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let cases = read_junit(&junit);
    assert_eq!(cases.len(), 21);
    assert!(cases.iter().all(|c| c.1 == "pass"));
    // Bad input (exit 2) still leaves a JUnit file: one error case saying why.
    let o = run([
        "diff",
        s(&meta),
        s(&t.path().join("nope.gguf")),
        "--junit",
        s(&junit),
        "--force",
    ]);
    assert_eq!(code(&o), 2);
    let cases = read_junit(&junit);
    assert_eq!(cases.len(), 1);
    assert!(
        cases[0].1 == "error" && cases[0].2.contains("nope.gguf"),
        "{cases:?}"
    );
}

#[test]
fn check_report_is_one_self_contained_page_with_plots_and_values() {
    let t = tempfile::tempdir().unwrap();
    let meta = synth(t.path(), 3, 1);
    let q = t.path().join("q4.gguf");
    let o = run([
        "convert",
        s(&meta),
        "--to",
        "gguf",
        "--outtype",
        "q4_k_m",
        "-o",
        s(&q),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let page = t.path().join("report.html");
    let o = run([
        "check",
        s(&meta),
        s(&q),
        "--prompt",
        PROMPT,
        "--per-layer",
        "--report",
        s(&page),
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let v = json(&o);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    let lower = html.to_ascii_lowercase();
    for bad in [
        "http://", "https://", "<script", "<link", "src=", "@import", "url(",
    ] {
        assert!(
            !lower.contains(bad),
            "external reference {bad:?} in the page"
        );
    }
    assert_eq!(
        html.matches("<svg").count(),
        3,
        "KLD per position, distribution, per layer"
    );
    assert_eq!(html.matches("</svg>").count(), 3);
    assert!(
        html.contains("KL divergence per position")
            && html.contains("Distribution of KL divergence")
    );
    assert!(html.contains("Hidden-state divergence per layer"));
    assert!(html.contains("PASS") && html.contains("norm_eps"));
    // One point per evaluated position, and the summary values as --json gives them.
    let tokens = v["tokens"].as_u64().unwrap() as usize;
    assert_eq!(html.matches("<circle").count(), tokens);
    let top1 = format!(
        "{:.3} %",
        v["metrics"]["top1_agreement"].as_f64().unwrap() * 100.0
    );
    assert!(html.contains(&top1), "{top1}");
    let cos = format!("{:.8}", v["metrics"]["cosine_min"].as_f64().unwrap());
    assert!(html.contains(&cos), "{cos}");
    for l in 0..3 {
        assert!(
            html.contains(&format!("<title>layer {l}: ")),
            "layer {l} bar"
        );
    }
    // Well-formed enough for an XML parser once the doctype is dropped.
    let body = html.replacen("<!DOCTYPE html>", "", 1);
    let x = t.path().join("page.xml");
    std::fs::write(&x, body).unwrap();
    let o = Command::new("xmllint")
        .args(["--noout", s(&x)])
        .output()
        .unwrap_or_else(|e| panic!("xmllint: {e}; run scripts/install-report-tools.sh"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn the_ci_recipe_runs_and_its_commands_are_the_documented_ones() {
    let root = repo_root();
    let doc = std::fs::read_to_string(root.join("docs/CI.md")).unwrap();
    let script = std::fs::read_to_string(root.join("scripts/ci-recipe.sh")).unwrap();
    let recipes = &doc[doc.find("## GitHub Actions").unwrap()..doc.find("## Other gates").unwrap()];
    let lines: Vec<&str> = recipes
        .lines()
        .map(|l| {
            l.trim()
                .trim_start_matches("- ")
                .trim_start_matches("run: ")
        })
        .filter(|l| l.starts_with("llama-tool ") || l.starts_with("test -x .llama-tool"))
        .collect();
    assert!(lines.len() >= 6, "{lines:?}");
    for l in &lines {
        assert!(
            script.contains(l),
            "docs/CI.md line not run by scripts/ci-recipe.sh: {l}"
        );
    }
    let t = tempfile::tempdir().unwrap();
    let o = Command::new("bash")
        .arg(root.join("scripts/ci-recipe.sh"))
        .arg(t.path())
        .env("LLAMA_TOOL", bin())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ci-recipe.sh failed:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(stdout(&o).contains("ci-recipe: ok"), "{}", stdout(&o));
    let cases = read_junit(&t.path().join("reports/check.xml"));
    assert!(
        cases.iter().any(|c| c.0 == "mean_kld" && c.1 == "pass"),
        "{cases:?}"
    );
}
