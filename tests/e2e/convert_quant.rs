//! `convert --q4` / `--q8` / `--outtype TYPE` straight from Meta shards produce, tensor for
//! tensor, what llama.cpp's own quantizer makes of the f16 GGUF export (and what our
//! `quantize` makes of it), without an f16 intermediate.

use std::ffi::OsStr;
use std::path::Path;

use llama_codecs::gguf::GgufFile;

use crate::common::*;

fn ok(o: std::process::Output) {
    assert_eq!(code(&o), 0, "failed:\n{}\n{}", stdout(&o), stderr(&o));
}

/// Every tensor's name, type, shape and bytes agree, and the file types.
fn same_tensors(a: &Path, b: &Path) {
    let (fa, fb) = (GgufFile::open(a).unwrap(), GgufFile::open(b).unwrap());
    assert_eq!(fa.tensors().len(), fb.tensors().len());
    for ta in fa.tensors() {
        let tb = fb
            .get_tensor(&ta.info.name)
            .unwrap_or_else(|| panic!("{} missing", ta.info.name));
        assert_eq!(ta.info, tb.info, "{}", ta.info.name);
        assert!(
            fa.view(ta).unwrap().data() == fb.view(tb).unwrap().data(),
            "{}: bytes differ",
            ta.info.name
        );
    }
    let ft = |f: &GgufFile| f.get("general.file_type").and_then(|v| v.as_u64());
    assert_eq!(ft(&fa), ft(&fb));
    let qv = |f: &GgufFile| {
        f.get("general.quantization_version")
            .and_then(|v| v.as_u64())
    };
    assert_eq!(qv(&fa), qv(&fb));
}

#[test]
fn convert_quantized_equals_quantizing_the_f16_export() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    ok(run([
        "synth",
        "-o",
        m.to_str().unwrap(),
        "--mp",
        "2",
        "--layers",
        "8",
        "--seed",
        "4",
    ]));
    let f16 = t.path().join("f16.gguf");
    ok(run([
        OsStr::new("convert"),
        m.as_os_str(),
        OsStr::new("-o"),
        f16.as_os_str(),
        OsStr::new("--no-manifest"),
    ]));
    let py = python();
    require_llama_cpp(&py);
    for (flag, preset) in [
        ("--q4", "Q4_K_M"),
        ("--q8", "Q8_0"),
        ("q3_k_m", "Q3_K_M"),
        ("q5_0", "Q5_0"),
    ] {
        let direct = t.path().join(format!("direct-{preset}.gguf"));
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("convert"),
            m.as_os_str(),
            OsStr::new("-o"),
            direct.as_os_str(),
            OsStr::new("--no-manifest"),
        ];
        if flag.starts_with("--") {
            args.push(OsStr::new(flag));
        } else {
            args.extend([OsStr::new("--outtype"), OsStr::new(flag)]);
        }
        ok(run(&args));
        let two_step = t.path().join(format!("two-step-{preset}.gguf"));
        ok(run([
            OsStr::new("quantize"),
            f16.as_os_str(),
            two_step.as_os_str(),
            OsStr::new(preset),
        ]));
        same_tensors(&direct, &two_step);
        {
            let py = &py;
            let outdir = t.path().join(format!("llama-{preset}"));
            std::fs::create_dir(&outdir).unwrap();
            let script = repo_root().join("tests/interop/llama_quantize.py");
            run_python(
                py,
                &script,
                &[
                    OsStr::new("quantize"),
                    f16.as_os_str(),
                    outdir.as_os_str(),
                    OsStr::new("--threads"),
                    OsStr::new("2"),
                    OsStr::new(preset),
                ],
            );
            run_python(
                py,
                &script,
                &[
                    OsStr::new("compare"),
                    direct.as_os_str(),
                    outdir.join(format!("{preset}.gguf")).as_os_str(),
                ],
            );
        }
    }
}
