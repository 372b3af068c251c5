//! `llama-tool manifest`: our lists pass `md5sum -c` / `sha256sum -c`; our JSON manifest
//! verifies chunk by chunk and catches damage.

use std::fs;

use crate::common::{code, run, stderr, stdout};
use crate::verify::{coreutils, release_folder};

#[test]
fn our_checklist_and_sha256sums_pass_coreutils() {
    let (_t, root) = release_folder();
    let m = root.join("13B");
    fs::remove_file(m.join("checklist.chk")).unwrap();
    let chk = m.join("checklist.chk");
    let o = run([
        "manifest".as_ref(),
        m.as_os_str(),
        "--format".as_ref(),
        "chk".as_ref(),
        "-o".as_ref(),
        chk.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (c, out) = coreutils(&m, "md5sum", &["-c", "checklist.chk"]);
    assert_eq!(c, 0, "{out}");
    assert_eq!(out.matches(": OK").count(), 3, "{out}");
    let o = run([
        "manifest".as_ref(),
        m.as_os_str(),
        "--format".as_ref(),
        "sha256sums".as_ref(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    fs::write(m.join("SHA256SUMS"), stdout(&o)).unwrap();
    let (c, out) = coreutils(&m, "sha256sum", &["--strict", "-c", "SHA256SUMS"]);
    assert_eq!(c, 0, "{out}");
    assert_eq!(out.matches(": OK").count(), 3, "{out}");
    // And the whole tree verifies with both lists in place.
    assert_eq!(code(&run(["verify".as_ref(), root.as_os_str()])), 0);
}

#[test]
fn json_manifest_verifies_by_chunks_and_catches_damage() {
    let (_t, root) = release_folder();
    for f in ["13B/checklist.chk", "tokenizer_checklist.chk"] {
        fs::remove_file(root.join(f)).unwrap();
    }
    let out = root.join("llama.manifest.json");
    let o = run([
        "manifest".as_ref(),
        root.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        "--chunk-size".as_ref(),
        "65536".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["format"], "llama-tool-manifest");
    let shard = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "13B/consolidated.01.pth")
        .unwrap();
    assert_eq!(shard["size"], 650_001);
    assert_eq!(shard["chunks"].as_array().unwrap().len(), 10);
    let (_, md5) = coreutils(&root.join("13B"), "md5sum", &["consolidated.01.pth"]);
    assert_eq!(shard["md5"].as_str().unwrap(), &md5[..32]);
    assert_eq!(code(&run(["verify".as_ref(), root.as_os_str()])), 0);

    let p = root.join("13B/consolidated.01.pth");
    let mut b = fs::read(&p).unwrap();
    b[5 * 65536 + 7] ^= 0x80;
    fs::write(&p, &b).unwrap();
    let o = run(["verify".as_ref(), root.as_os_str()]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("chunk 5"), "{}", stdout(&o));
    b.truncate(1000);
    fs::write(&p, &b).unwrap();
    let o = run(["verify".as_ref(), root.as_os_str(), "--json".as_ref()]);
    assert_eq!(code(&o), 1);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["summary"]["size"], 1);
}

#[test]
fn garbage_json_manifest_is_exit_2_with_line() {
    let (_t, root) = release_folder();
    fs::write(
        root.join("bad.manifest.json"),
        "{\n  \"format\": \"llama-tool-manifest\",\n  \"version\": 1,\n  oops\n}\n",
    )
    .unwrap();
    let o = run(["verify".as_ref(), root.as_os_str()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("line 4"), "{}", stderr(&o));
}

#[test]
fn tensor_hashes_match_across_formats_and_catch_quantization() {
    let t = tempfile::tempdir().unwrap();
    let ck = t.path().join("ck");
    let s = |v: &[&std::ffi::OsStr]| run(v);
    let o = s(&[
        "synth".as_ref(),
        "-o".as_ref(),
        ck.as_os_str(),
        "--shape".as_ref(),
        "tiny".as_ref(),
        "--mp".as_ref(),
        "2".as_ref(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = ck.join("llama.manifest.json");
    let o = s(&[
        "manifest".as_ref(),
        ck.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        "--tensors".as_ref(),
        "-o".as_ref(),
        m.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&m).unwrap()).unwrap();
    let set = &v["tensor_sets"][0];
    assert_eq!(set["scheme"], "llama-tool-tensor-v1");
    assert!(set["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "layers.1.feed_forward.w2.weight"));
    // torch, merging the shards itself, computes the same identities.
    {
        let py = crate::common::python();
        let script = crate::common::repo_root().join("tests/interop/tensor_hash.py");
        let theirs: serde_json::Value =
            serde_json::from_str(&crate::common::run_python(&py, &script, &[ck.as_os_str()]))
                .unwrap();
        let ours = set["tensors"].as_array().unwrap();
        assert_eq!(theirs.as_object().unwrap().len(), ours.len());
        for t in ours {
            let name = t["name"].as_str().unwrap();
            assert_eq!(theirs[name]["shape"], t["shape"], "{name}");
            assert_eq!(
                theirs[name]["sha256"], t["sha256"],
                "{name}: torch disagrees"
            );
        }
    }
    // The folder verifies, tensor hashes included.
    let o = s(&["verify".as_ref(), ck.as_os_str()]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("OK        tensors of"),
        "{}",
        stdout(&o)
    );
    // f16 and f32 GGUF exports and an HF folder hold exactly the same tensors.
    for (out, extra) in [
        ("m16.gguf", &["--outtype", "f16"][..]),
        ("m32.gguf", &["--outtype", "f32"][..]),
        ("hf", &["--to", "safetensors"][..]),
    ] {
        let dest = t.path().join(out);
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "convert".as_ref(),
            ck.as_os_str(),
            "-o".as_ref(),
            dest.as_os_str(),
        ];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        let o = s(&args);
        assert_eq!(code(&o), 0, "convert {out}: {}", stderr(&o));
        let o = s(&[
            "verify".as_ref(),
            "--tensors".as_ref(),
            m.as_os_str(),
            dest.as_os_str(),
        ]);
        assert_eq!(code(&o), 0, "{out}: {}{}", stdout(&o), stderr(&o));
    }
    // A Q8_0 export does not.
    let q8 = t.path().join("q8.gguf");
    assert_eq!(
        code(&s(&[
            "convert".as_ref(),
            ck.as_os_str(),
            "-o".as_ref(),
            q8.as_os_str(),
            "--q8".as_ref()
        ])),
        0
    );
    let o = s(&[
        "verify".as_ref(),
        "--tensors".as_ref(),
        ck.as_os_str(),
        q8.as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(code(&o), 1);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        v["files"][0]["digest"]
            .as_str()
            .unwrap()
            .contains("VALUES differ"),
        "{v}"
    );
}
