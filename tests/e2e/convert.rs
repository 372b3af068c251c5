//! `synth`, `inspect`, `convert` and `reshard` end to end, proven against real torch,
//! gguf-py, llama.cpp and transformers where the interop venv is available.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::common::*;

fn synth(dir: &Path, extra: &[&str]) {
    let mut args = vec!["synth", "-o", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert_eq!(code(&o), 0, "synth failed: {}", stderr(&o));
}

fn convert(args: &[&OsStr]) -> std::process::Output {
    let mut a: Vec<&OsStr> = vec![OsStr::new("convert")];
    a.extend_from_slice(args);
    run(&a)
}

fn ok(o: std::process::Output) -> std::process::Output {
    assert_eq!(
        code(&o),
        0,
        "failed:\nstdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    o
}

fn inspect_json(path: &Path) -> serde_json::Value {
    let o = ok(run([
        OsStr::new("inspect"),
        path.as_os_str(),
        OsStr::new("--json"),
        OsStr::new("--tensors"),
    ]));
    serde_json::from_slice(&o.stdout).expect("inspect --json parses")
}

fn checks() -> PathBuf {
    repo_root().join("tests/interop/convert_checks.py")
}

fn os(p: &Path) -> &OsStr {
    p.as_os_str()
}

#[test]
fn synth_writes_a_meta_folder_that_inspect_reads() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    synth(&m, &["--mp", "2", "--seed", "3"]);
    for f in [
        "consolidated.00.pth",
        "consolidated.01.pth",
        "params.json",
        "checklist.chk",
        "tokenizer.model",
    ] {
        assert!(m.join(f).is_file(), "{f} missing");
    }
    let v = inspect_json(&m);
    assert_eq!(v["shards"], 2);
    assert_eq!(v["params"]["dim"], 256);
    assert_eq!(v["params"]["vocab_size"], 512);
    assert_eq!(v["tokenizer"]["vocab_size"], 512);
    assert_eq!(v["tokenizer"]["bos_id"], 1);
    assert_eq!(v["tensors"].as_array().unwrap().len(), 2 * (3 + 1 + 2 * 9));
    // md5sum accepts the checklist.
    let o = std::process::Command::new("md5sum")
        .arg("-c")
        .arg("checklist.chk")
        .current_dir(&m)
        .output()
        .unwrap();
    assert!(o.status.success(), "md5sum -c: {}", stdout(&o));
}

#[test]
fn reshard_round_trips_bit_exact_and_torch_agrees() {
    let t = tempfile::tempdir().unwrap();
    let (m1, m2) = (t.path().join("m1"), t.path().join("m2"));
    synth(&m1, &["--mp", "1", "--seed", "7"]);
    synth(&m2, &["--mp", "2", "--seed", "7"]);
    let merged = t.path().join("merged");
    let four = t.path().join("four");
    ok(run([
        OsStr::new("reshard"),
        os(&m2),
        OsStr::new("-o"),
        os(&merged),
        OsStr::new("--mp"),
        OsStr::new("1"),
    ]));
    ok(convert(&[
        os(&m1),
        OsStr::new("--to"),
        OsStr::new("pth"),
        OsStr::new("--mp"),
        OsStr::new("4"),
        OsStr::new("-o"),
        os(&four),
    ]));
    // Our merge of the 2-shard model is byte-identical to the 1-shard synth.
    assert_eq!(
        std::fs::read(merged.join("consolidated.00.pth")).unwrap(),
        std::fs::read(m1.join("consolidated.00.pth")).unwrap()
    );
    assert!(
        four.join("consolidated.03.pth").is_file()
            && four.join("checklist.chk").is_file()
            && four.join("SHA256SUMS").is_file()
    );
    if let Some(py) = python() {
        run_python(
            &py,
            &checks(),
            &[
                OsStr::new("torch-equal"),
                os(&four),
                os(&m1),
                OsStr::new("4"),
            ],
        );
        run_python(
            &py,
            &checks(),
            &[OsStr::new("torch-shards-equal"), os(&merged), os(&m1)],
        );
    }
}

#[test]
fn torch_made_shards_merge_and_split_like_torch() {
    let fx = fixture("torch");
    let (mp1, mp2, mp4) = (
        fx.join("tiny-mp1"),
        fx.join("tiny-mp2"),
        fx.join("tiny-mp4"),
    );
    if !mp1.is_dir() {
        panic!("torch fixtures missing: {}", mp1.display());
    }
    let t = tempfile::tempdir().unwrap();
    let merged = t.path().join("merged");
    ok(run([
        OsStr::new("reshard"),
        os(&mp2),
        OsStr::new("-o"),
        os(&merged),
        OsStr::new("--mp"),
        OsStr::new("1"),
    ]));
    let v = inspect_json(&merged);
    assert_eq!(v["shards"], 1);
    if let Some(py) = python() {
        run_python(
            &py,
            &checks(),
            &[OsStr::new("torch-shards-equal"), os(&merged), os(&mp1)],
        );
        if mp4.is_dir() {
            let split = t.path().join("split4");
            ok(run([
                OsStr::new("reshard"),
                os(&mp1),
                OsStr::new("-o"),
                os(&split),
                OsStr::new("--mp"),
                OsStr::new("4"),
            ]));
            run_python(
                &py,
                &checks(),
                &[OsStr::new("torch-shards-equal"), os(&split), os(&mp4)],
            );
        }
    }
}

#[test]
fn gguf_export_is_read_by_gguf_py_and_runs_in_llama_cpp() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    synth(&m, &["--mp", "2", "--seed", "11"]);
    let out = t.path().join("tiny.gguf");
    let o = ok(convert(&[
        os(&m),
        OsStr::new("-o"),
        os(&out),
        OsStr::new("--json"),
    ]));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["tensors"], 3 + 2 * 9);
    assert!(
        t.path().join("tiny.gguf.sha256").is_file(),
        "manifest beside the output"
    );
    let v = inspect_json(&out);
    assert_eq!(v["format"], "Gguf");
    assert_eq!(v["params"]["n_layers"], 2);
    if let Some(py) = python() {
        run_python(&py, &checks(), &[OsStr::new("gguf"), os(&out), os(&m)]);
        if std::process::Command::new(&py)
            .args(["-c", "import llama_cpp"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
        {
            run_python(
                &py,
                &checks(),
                &[
                    OsStr::new("llama"),
                    os(&out),
                    os(&m),
                    OsStr::new("1,15,300,42,7,99,511,3"),
                ],
            );
        } else {
            assert!(
                std::env::var_os("CI").is_none(),
                "llama-cpp-python missing under CI"
            );
        }
    }
}

#[test]
fn hf_export_loads_in_transformers_and_round_trips() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    synth(&m, &["--seed", "5"]);
    let hf = t.path().join("hf");
    ok(convert(&[
        os(&m),
        OsStr::new("--to"),
        OsStr::new("safetensors"),
        OsStr::new("-o"),
        os(&hf),
    ]));
    for f in [
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.model",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "SHA256SUMS",
    ] {
        assert!(hf.join(f).is_file(), "{f} missing");
    }
    // Sharded output above --max-shard-size.
    let hf_sharded = t.path().join("hf_sharded");
    ok(convert(&[
        os(&m),
        OsStr::new("--to"),
        OsStr::new("safetensors"),
        OsStr::new("--max-shard-size"),
        OsStr::new("1MB"),
        OsStr::new("-o"),
        os(&hf_sharded),
    ]));
    assert!(hf_sharded.join("model.safetensors.index.json").is_file());
    // HF -> Meta -> HF is bit-exact.
    let back = t.path().join("back");
    let hf2 = t.path().join("hf2");
    ok(convert(&[
        os(&hf_sharded),
        OsStr::new("--to"),
        OsStr::new("pth"),
        OsStr::new("-o"),
        os(&back),
    ]));
    ok(convert(&[
        os(&back),
        OsStr::new("--to"),
        OsStr::new("safetensors"),
        OsStr::new("-o"),
        os(&hf2),
    ]));
    assert_eq!(
        std::fs::read(hf.join("model.safetensors")).unwrap(),
        std::fs::read(hf2.join("model.safetensors")).unwrap()
    );
    if let Some(py) = python() {
        run_python(
            &py,
            &checks(),
            &[OsStr::new("torch-equal"), os(&back), os(&m)],
        );
        run_python(
            &py,
            &checks(),
            &[
                OsStr::new("hf"),
                os(&hf_sharded),
                os(&m),
                OsStr::new("1,15,300,42,7,99,511,3"),
            ],
        );
    }
}

#[test]
fn thin_65b_shaped_model_converts_with_real_shapes() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("65b");
    synth(&m, &["--shape", "65B", "--layers", "1", "--mp", "8"]);
    let v = inspect_json(&m);
    assert_eq!(v["shards"], 8);
    assert_eq!(v["params"]["dim"], 8192);
    assert_eq!(v["params"]["hidden_dim"], 22016);
    assert_eq!(v["params"]["norm_eps"], 1e-5);
    assert_eq!(v["size"], "custom (65B-shaped, 1 of 80 layers)");
    let g = t.path().join("65b.gguf");
    ok(convert(&[
        os(&m),
        OsStr::new("-o"),
        os(&g),
        OsStr::new("--no-manifest"),
    ]));
    let gv = inspect_json(&g);
    let tensors = gv["tensors"].as_array().unwrap();
    let shape = |n: &str| {
        tensors
            .iter()
            .find(|t| t["name"] == n)
            .map(|t| t["shape"].clone())
            .unwrap()
    };
    assert_eq!(shape("token_embd.weight"), serde_json::json!([32000, 8192]));
    assert_eq!(
        shape("blk.0.ffn_down.weight"),
        serde_json::json!([8192, 22016])
    );
    std::fs::remove_file(&g).unwrap();
    let hf = t.path().join("hf");
    ok(convert(&[
        os(&m),
        OsStr::new("--to"),
        OsStr::new("safetensors"),
        OsStr::new("-o"),
        os(&hf),
        OsStr::new("--no-manifest"),
    ]));
    let hv = inspect_json(&hf);
    let tensors = hv["tensors"].as_array().unwrap();
    let shape = |n: &str| {
        tensors
            .iter()
            .find(|t| t["name"] == n)
            .map(|t| t["shape"].clone())
            .unwrap()
    };
    assert_eq!(
        shape("model.layers.0.mlp.gate_proj.weight"),
        serde_json::json!([22016, 8192])
    );
    assert_eq!(shape("lm_head.weight"), serde_json::json!([32000, 8192]));
}

#[test]
fn bad_inputs_get_one_line_errors_and_leave_no_output() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    synth(&m, &["--mp", "2", "--seed", "1"]);
    let out = t.path().join("x.gguf");
    // Missing shard.
    let broken = t.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    for f in ["consolidated.00.pth", "params.json", "tokenizer.model"] {
        std::fs::copy(m.join(f), broken.join(f)).unwrap();
    }
    std::fs::copy(
        m.join("consolidated.00.pth"),
        broken.join("consolidated.02.pth"),
    )
    .unwrap();
    let o = convert(&[os(&broken), OsStr::new("-o"), os(&out)]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("consolidated.01.pth is missing"),
        "{}",
        stderr(&o)
    );
    // Shards from different models: replicated norms differ.
    let other = t.path().join("other");
    synth(&other, &["--mp", "2", "--seed", "2"]);
    let mixed = t.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    std::fs::copy(
        m.join("consolidated.00.pth"),
        mixed.join("consolidated.00.pth"),
    )
    .unwrap();
    std::fs::copy(
        other.join("consolidated.01.pth"),
        mixed.join("consolidated.01.pth"),
    )
    .unwrap();
    std::fs::copy(m.join("params.json"), mixed.join("params.json")).unwrap();
    let o = convert(&[os(&mixed), OsStr::new("-o"), os(&out)]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("differs between shard 0 and shard 1"),
        "{}",
        stderr(&o)
    );
    // params.json contradicting the tensors.
    let lying = t.path().join("lying");
    std::fs::create_dir(&lying).unwrap();
    for f in ["consolidated.00.pth", "consolidated.01.pth"] {
        std::fs::copy(m.join(f), lying.join(f)).unwrap();
    }
    std::fs::write(lying.join("params.json"), r#"{"dim": 256, "multiple_of": 256, "n_heads": 4, "n_layers": 3, "norm_eps": 1e-06, "vocab_size": -1}"#).unwrap();
    let o = convert(&[os(&lying), OsStr::new("-o"), os(&out)]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("3 layers"), "{}", stderr(&o));
    assert!(
        !out.exists(),
        "no output under the final name after failures"
    );
    // A non-empty output folder needs --force.
    let busy = t.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("keep.txt"), "x").unwrap();
    let o = convert(&[
        os(&m),
        OsStr::new("--to"),
        OsStr::new("pth"),
        OsStr::new("-o"),
        os(&busy),
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert!(busy.join("keep.txt").exists());
    // No temporaries left behind anywhere.
    let leftovers: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");
}
