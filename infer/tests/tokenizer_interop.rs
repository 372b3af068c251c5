//! Our SentencePiece BPE encoder against the real `sentencepiece` package, token for token,
//! on a varied corpus: the synthetic LLaMA-like models and small real models trained by
//! `SentencePieceTrainer` (byte fallback, identity normalizer; one with
//! `remove_extra_whitespaces` and user-defined symbols). Needs LLAMA_TOOL_PYTHON (skipped
//! without it outside CI).

use std::path::{Path, PathBuf};
use std::process::Command;

use llama_codecs::sentencepiece::SpModel;
use llama_infer::tokenizer::Tokenizer;

#[path = "../../tests/support/interop.rs"]
mod interop;
use interop::python;

fn interop(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/interop")
        .join(script)
}

/// Texts covering what LLaMA prompts hold and what breaks tokenizers.
fn corpus() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        " ",
        "   ",
        "Hello world",
        "Hello  world",
        " leading space",
        "trailing space ",
        "  two leading and three trailing   ",
        "the quick brown fox jumps over the lazy dog",
        "The model was quantized, converted and checked.",
        "Numbers: 0 1 12 123 1234 12345 3.14159 -42 1e-6 2023-11-27",
        "tab\tseparated\tvalues",
        "line one\nline two\n\nline four\r\nwindows",
        "\n\n\n",
        "naïve café über Straße",
        "中文 日本語 한국어",
        "中文没有空格的句子很长很长",
        "Привет, мир!",
        "Ωμέγα and العربية mixed",
        "emoji 😀🚀 and 👩‍👩‍👧 family and 🇫🇷 flag",
        "rare script: ঋঌ ᚠᚢᚦ ꦲꦤꦕꦫꦏ",
        "math ½ → ∑ ∫ √2 ≈ 1.414",
        "<s> literal specials </s> <unk> <0x41>",
        "<tool>llama llama</tool> user-defined",
        "    four spaces    then four more",
        "combining e\u{301} and a\u{308}",
        "zero\u{200b}width\u{feff}bom",
        "\u{0}nul and \u{7f} del \u{1b}[31m escape",
        "llamallamallama",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz",
        "!!!???...,,,;;;:::---___***",
        "a",
        "▁ already escaped ▁▁ spaces",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Deterministic pseudo-random mixtures of the pieces above.
    let parts: Vec<String> = v.clone();
    let mut state = 0x9e3779b97f4a7c15u64;
    for _ in 0..60 {
        let mut s = String::new();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            s.push_str(&parts[(state % parts.len() as u64) as usize]);
            s.push(if state & 1 == 0 { ' ' } else { '\n' });
        }
        v.push(s);
    }
    v
}

/// Encode the corpus with sentencepiece; returns (ids, decoded texts).
fn reference(py: &Path, model: &Path, texts: &Path) -> (Vec<Vec<u32>>, Vec<String>) {
    let o = Command::new(py)
        .arg(interop("sp_encode.py"))
        .arg(model)
        .arg(texts)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "sp_encode.py: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    (
        serde_json::from_value(v["ids"].clone()).unwrap(),
        serde_json::from_value(v["decoded"].clone()).unwrap(),
    )
}

fn check_model(py: &Path, model: &Path, dir: &Path) {
    let texts = corpus();
    let tf = dir.join("texts.json");
    std::fs::write(&tf, serde_json::to_string(&texts).unwrap()).unwrap();
    let (want, decoded) = reference(py, model, &tf);
    let tok = Tokenizer::open(model).unwrap();
    let mut mismatches = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let got = tok.encode(t, false);
        if got != want[i] {
            mismatches.push(format!("{t:?}\n  ours {got:?}\n  sp   {:?}", want[i]));
        }
        assert_eq!(tok.encode(t, true)[1..], got[..], "BOS must only prepend");
        assert_eq!(tok.decode(&want[i]), decoded[i], "decode of {t:?}");
    }
    assert!(
        mismatches.is_empty(),
        "{}: {} of {} texts differ:\n{}",
        model.display(),
        mismatches.len(),
        texts.len(),
        mismatches.join("\n")
    );
}

#[test]
fn encoder_matches_sentencepiece_on_synthetic_models() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    for n in [300usize, 512, 32000] {
        let path = dir.path().join(format!("synthetic-{n}.model"));
        std::fs::write(&path, SpModel::synthetic(n).to_bytes()).unwrap();
        check_model(&py, &path, dir.path());
    }
}

#[test]
fn encoder_matches_sentencepiece_on_trained_models() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    for (name, vocab, flags) in [
        ("plain", "1000", vec![]),
        (
            "udf",
            "800",
            vec!["--user-defined", "--remove-extra-whitespaces"],
        ),
    ] {
        let prefix = dir.path().join(name);
        let o = Command::new(&py)
            .arg(interop("sp_train.py"))
            .arg(&prefix)
            .arg(vocab)
            .args(&flags)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "sp_train.py: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let model = prefix.with_extension("model");
        check_model(&py, &model, dir.path());
        // Our writer's output of the real model encodes identically too.
        let re = dir.path().join(format!("{name}-rewritten.model"));
        let parsed = SpModel::read(&model).unwrap();
        std::fs::write(&re, parsed.to_bytes()).unwrap();
        assert_eq!(SpModel::read(&re).unwrap(), parsed);
        check_model(&py, &re, dir.path());
    }
}

#[test]
fn decoder_matches_sentencepiece_on_odd_id_sequences() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let model = SpModel::synthetic(32000);
    let path = dir.path().join("tokenizer.model");
    std::fs::write(&path, model.to_bytes()).unwrap();
    let id = |p: &str| model.piece_id(p).unwrap();
    let b = |x: u32| 3 + x;
    let seqs: Vec<Vec<u32>> = vec![
        vec![b(0xF0), b(0x9F)],                                      // truncated UTF-8
        vec![b(0xF0), b(0x9F), b(0x98), b(0x80), id("\u{2581}the")], // a whole emoji, then a word
        vec![b(0xFF), b(0x41), b(0xC3)],                             // invalid, valid, truncated
        vec![1, id("\u{2581}\u{2581}"), id("\u{2581}the"), 2],       // specials and leading spaces
        vec![id("\u{2581}"), id("\u{2581}"), id("a")],
        vec![0, id("\u{2581}the"), 0], // <unk>
        vec![b(0x0A), id("\u{2581}world")],
        vec![2, 1],
        vec![],
    ];
    let texts = dir.path().join("texts.json");
    std::fs::write(&texts, "[]").unwrap();
    let ids = dir.path().join("ids.json");
    std::fs::write(&ids, serde_json::to_string(&seqs).unwrap()).unwrap();
    let o = Command::new(&py)
        .arg(interop("sp_encode.py"))
        .arg(&path)
        .arg(&texts)
        .arg(&ids)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let want: Vec<String> = serde_json::from_value(v["decoded_ids"].clone()).unwrap();
    let tok = Tokenizer::new(model.clone()).unwrap();
    for (s, w) in seqs.iter().zip(&want) {
        assert_eq!(&tok.decode(s), w, "decode {s:?}");
    }
}
