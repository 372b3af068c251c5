//! `synth` output is what it claims: real torch loads every shard with `weights_only=True`
//! and sees exactly the values our reader sees; every dtype; `inspect` detects the shapes.

use std::ffi::OsStr;

use llama_codecs::pth::PthFile;
use llama_codecs::safetensors::SafetensorsFile;

use crate::common::*;

#[test]
fn real_torch_loads_synth_output_with_identical_values() {
    let t = tempfile::tempdir().unwrap();
    for dtype in ["f16", "bf16", "f32"] {
        let m = t.path().join(dtype);
        let o = run([
            "synth",
            "-o",
            m.to_str().unwrap(),
            "--mp",
            "2",
            "--dtype",
            dtype,
            "--seed",
            "9",
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        for shard in ["consolidated.00.pth", "consolidated.01.pth"] {
            let ours = PthFile::open(&m.join(shard)).unwrap();
            assert_eq!(ours.tensors().len(), 3 + 1 + 2 * 9);
            for t in ours.tensors() {
                let want = if t.info.name == "rope.freqs" {
                    "F32"
                } else {
                    &dtype.to_uppercase()
                };
                assert_eq!(t.info.dtype.name(), want, "{}", t.info.name);
            }
            let py = python();
            let dump = t.path().join(format!("{dtype}-{shard}.safetensors"));
            run_python(
                &py,
                &repo_root().join("tests/interop/torch_dump.py"),
                &[m.join(shard).as_os_str(), dump.as_os_str()],
            );
            let theirs = SafetensorsFile::open(&dump).unwrap();
            assert_eq!(theirs.tensors().len(), ours.tensors().len());
            for t in ours.tensors() {
                let a = ours.view(t).unwrap();
                let b = theirs.view(&t.info.name).unwrap();
                assert_eq!(a.shape(), b.shape(), "{}", t.info.name);
                assert_eq!(a.dtype(), b.dtype(), "{}", t.info.name);
                assert!(
                    a.data() == b.data(),
                    "{dtype} {shard} {}: torch sees other values",
                    t.info.name
                );
            }
        }
    }
}

#[test]
fn inspect_detects_released_shapes() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("7b");
    let o = run([
        "synth",
        "-o",
        m.to_str().unwrap(),
        "--shape",
        "7B",
        "--layers",
        "1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run([OsStr::new("inspect"), m.as_os_str(), OsStr::new("--json")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["size"], "custom (7B-shaped, 1 of 32 layers)");
    assert_eq!(v["params"]["hidden_dim"], 11008);
    assert_eq!(v["params"]["vocab_size"], 32000);
    assert_eq!(v["tokenizer"]["vocab_size"], 32000);
    assert_eq!(v["shards"], 1);
    // Every torch-made fixture inspects cleanly, with its real shard count.
    for (dir, shards) in [
        ("tiny-mp1", 1),
        ("tiny-mp2", 2),
        ("tiny-mp4", 4),
        ("tiny-bf16", 1),
        ("tiny-f32", 1),
    ] {
        let p = fixture("torch").join(dir);
        let o = run([
            OsStr::new("inspect"),
            p.as_os_str(),
            OsStr::new("--json"),
            OsStr::new("--tensors"),
        ]);
        assert_eq!(code(&o), 0, "{dir}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["shards"], shards, "{dir}");
        assert_eq!(v["params"]["dim"], 64, "{dir}");
        assert!(v["params_error"].is_null(), "{dir}: {}", v["params_error"]);
    }
    let o = run([
        OsStr::new("inspect"),
        fixture("torch/views/views.pth").as_os_str(),
        OsStr::new("--tensors"),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}
