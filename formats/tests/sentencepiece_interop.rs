//! The synthetic `tokenizer.model` loads in the real `sentencepiece` package and encodes
//! text into the pieces we wrote (needs LLAMA_TOOL_PYTHON; skipped without it outside CI).

use std::path::PathBuf;
use std::process::Command;

use llama_codecs::sentencepiece::SpModel;

#[path = "../../tests/support/interop.rs"]
mod interop;
use interop::python;

#[test]
fn synthetic_model_loads_and_encodes_in_sentencepiece() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/sp_encode.py");
    let texts = dir.path().join("texts.json");
    std::fs::write(
        &texts,
        r#"["Hello world, the quick brown fox.", "tab\tand\nnewline 😀 中文"]"#,
    )
    .unwrap();
    for n in [300usize, 512, 32000] {
        let model = SpModel::synthetic(n);
        let path = dir.path().join(format!("tokenizer-{n}.model"));
        std::fs::write(&path, model.to_bytes()).unwrap();
        let o = Command::new(&py)
            .arg(&script)
            .arg(&path)
            .arg(&texts)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["vocab"], n);
        assert_eq!(v["bos"], 1);
        assert_eq!(v["eos"], 2);
        assert_eq!(v["unk"], 0);
        let decoded: Vec<String> = serde_json::from_value(v["decoded"].clone()).unwrap();
        assert_eq!(decoded[0], "Hello world, the quick brown fox.");
        assert_eq!(decoded[1], "tab\tand\nnewline 😀 中文");
        let ids: Vec<Vec<u32>> = serde_json::from_value(v["ids"].clone()).unwrap();
        // The tab, the newline and the emoji have no piece: byte fallback.
        assert!(
            ids[1].contains(&(3 + 0x09))
                && ids[1].contains(&(3 + 0x0A))
                && ids[1].contains(&(3 + 0xF0))
        );
        if n == 32000 {
            let pieces: Vec<String> = serde_json::from_value(v["pieces"][0].clone()).unwrap();
            assert!(pieces.contains(&"\u{2581}world".to_string()), "{pieces:?}");
        }
    }
}
