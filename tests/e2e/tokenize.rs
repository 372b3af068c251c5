//! `tokenize` / `detokenize` end to end: the same ids as the real `sentencepiece` package and
//! as llama.cpp's own tokenizer (llama-cpp-python, `vocab_only=True`) on a varied corpus,
//! from every vocabulary source: a Meta folder, its `tokenizer.model`, our GGUF export and
//! vocabulary-only GGUFs (tokenizer metadata, no tensors) made by llama.cpp's converter and
//! by `convert --vocab-only`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::common::*;

/// What breaks tokenizers: whitespace runs, tabs and newlines, CJK, emoji and other
/// byte-fallback text, accents, very long words, look-alike specials.
fn corpus() -> Vec<String> {
    let mut v: Vec<String> = [
        "Hello world",
        "the quick brown fox jumps over the lazy dog",
        " leading space",
        "trailing space ",
        "  two leading and three trailing   ",
        "    four spaces    then four more",
        "tab\tseparated\tvalues\t",
        "line one\nline two\n\nline four\r\nwindows\n",
        "\n\n\n",
        " ",
        "naïve café über Straße façade",
        "combining e\u{301} and a\u{308}",
        "中文 日本語 한국어",
        "中文没有空格的句子很长很长",
        "Привет, мир! Ωμέγα and العربية mixed",
        "emoji 😀🚀 and 👩‍👩‍👧 family and 🇫🇷 flag",
        "rare script: ঋঌ ᚠᚢᚦ ꦲꦤꦕꦫꦏ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
        "math ½ → ∑ ∫ √2 ≈ 1.414",
        "<s> literal specials </s> <unk> <0x41>",
        "zero\u{200b}width\u{feff}bom",
        "Numbers: 0 1 12 123 1234 12345 3.14159 -42 1e-6",
        "!!!???...,,,;;;:::---___***",
        "▁ already escaped ▁▁ spaces",
        "model token weight layer tensor llama quantize convert check",
        "a",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("supercalifragilisticexpialidocious".repeat(40));
    v.push("x".repeat(5000));
    v.push(format!(
        "{} {}",
        "Donaudampfschifffahrt".repeat(20),
        "😀".repeat(50)
    ));
    v
}

fn ok(o: std::process::Output) -> std::process::Output {
    assert_eq!(code(&o), 0, "failed:\n{}\n{}", stdout(&o), stderr(&o));
    o
}

/// The reference ids and decoded texts of `texts` by `tokenize_ref.py MODE MODEL`.
fn reference(py: &Path, mode: &str, model: &Path, texts: &Path) -> (Vec<Vec<u32>>, Vec<String>) {
    let out = run_python(
        py,
        &repo_root().join("tests/interop/tokenize_ref.py"),
        &[OsStr::new(mode), model.as_os_str(), texts.as_os_str()],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    (
        serde_json::from_value(v["ids"].clone()).unwrap(),
        serde_json::from_value(v["decoded"].clone()).unwrap(),
    )
}

/// `llama-tool tokenize SRC --file TEXT --json` -> ids.
fn ours(src: &Path, text_file: &Path) -> (Vec<u32>, serde_json::Value) {
    let o = ok(run([
        OsStr::new("tokenize"),
        src.as_os_str(),
        OsStr::new("--file"),
        text_file.as_os_str(),
        OsStr::new("--json"),
    ]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    (serde_json::from_value(v["ids"].clone()).unwrap(), v)
}

fn detok(src: &Path, ids: &[u32]) -> String {
    let list: Vec<String> = ids.iter().map(u32::to_string).collect();
    let o = ok(run([
        OsStr::new("detokenize"),
        src.as_os_str(),
        OsStr::new("--ids"),
        OsStr::new(&list.join(",")),
        OsStr::new("--json"),
    ]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["text"].as_str().unwrap().to_string()
}

/// A Meta folder whose tokenizer.model is a real trained SentencePiece BPE model (512
/// pieces, byte fallback), its GGUF export, and llama.cpp's vocabulary-only GGUF of its HF
/// export. Returns (meta folder, tokenizer.model, our GGUF, vocab-only GGUF).
fn sources(py: &Path, dir: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let meta = dir.join("tiny");
    ok(run([
        OsStr::new("synth"),
        OsStr::new("-o"),
        meta.as_os_str(),
        OsStr::new("--seed"),
        OsStr::new("2"),
    ]));
    let prefix = dir.join("trained");
    run_python(
        py,
        &repo_root().join("tests/interop/sp_train.py"),
        &[prefix.as_os_str(), OsStr::new("512")],
    );
    let model = meta.join("tokenizer.model");
    std::fs::copy(prefix.with_extension("model"), &model).unwrap();
    let gguf = dir.join("tiny.gguf");
    ok(run([
        OsStr::new("convert"),
        meta.as_os_str(),
        OsStr::new("-o"),
        gguf.as_os_str(),
        OsStr::new("--no-manifest"),
    ]));
    let hf = dir.join("hf");
    ok(run([
        OsStr::new("convert"),
        meta.as_os_str(),
        OsStr::new("--to"),
        OsStr::new("safetensors"),
        OsStr::new("-o"),
        hf.as_os_str(),
        OsStr::new("--no-manifest"),
    ]));
    let vocab = dir.join("vocab-only.gguf");
    crate::gguf_parity::run_converter(py, &hf, &vocab, &["--vocab-only"]);
    let g = llama_codecs::gguf::GgufFile::open(&vocab).unwrap();
    assert!(
        g.tensors().is_empty(),
        "a vocabulary-only GGUF has no tensors"
    );
    (meta, model, gguf, vocab)
}

/// Our own vocabulary-only GGUF (`convert --vocab-only`) of `meta`.
fn our_vocab_only(meta: &Path, out: &Path) {
    ok(run([
        OsStr::new("convert"),
        meta.as_os_str(),
        OsStr::new("--vocab-only"),
        OsStr::new("-o"),
        out.as_os_str(),
        OsStr::new("--no-manifest"),
    ]));
}

#[test]
fn tokenize_matches_sentencepiece_and_llama_cpp_from_every_source() {
    let py = python();
    require_llama_cpp(&py);
    let t = tempfile::tempdir().unwrap();
    let (meta, model, gguf, vocab) = sources(&py, t.path());
    let ours_vocab = t.path().join("ours-vocab-only.gguf");
    our_vocab_only(&meta, &ours_vocab);
    let texts = corpus();
    let tf = t.path().join("texts.json");
    std::fs::write(&tf, serde_json::to_string(&texts).unwrap()).unwrap();
    let (sp_ids, sp_text) = reference(&py, "sp", &model, &tf);
    let (lc_ids, _) = reference(&py, "llama", &gguf, &tf);
    let (lc_vocab_ids, _) = reference(&py, "llama", &vocab, &tf);
    let (lc_ours_vocab_ids, _) = reference(&py, "llama", &ours_vocab, &tf);
    let mut bad = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let f = t.path().join(format!("text-{i}.txt"));
        std::fs::write(&f, text).unwrap();
        for src in [&meta, &model, &gguf, &vocab, &ours_vocab] {
            let (got, _) = ours(src, &f);
            if got != sp_ids[i] {
                bad.push(format!(
                    "{text:?} from {}:\n  ours {got:?}\n  sentencepiece {:?}",
                    src.display(),
                    sp_ids[i]
                ));
            }
        }
        for (name, theirs) in [
            ("our GGUF", &lc_ids[i]),
            ("llama.cpp's vocab-only GGUF", &lc_vocab_ids[i]),
            ("our vocab-only GGUF", &lc_ours_vocab_ids[i]),
        ] {
            if theirs != &sp_ids[i] {
                bad.push(format!(
                    "{text:?}: llama.cpp on {name} {theirs:?}\n  sentencepiece {:?}",
                    sp_ids[i]
                ));
            }
        }
        for src in [&model, &vocab] {
            let back = detok(src, &sp_ids[i]);
            if back != sp_text[i] {
                bad.push(format!(
                    "detokenize from {}: {back:?} vs sentencepiece {:?}",
                    src.display(),
                    sp_text[i]
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn tokenize_output_modes_and_inputs() {
    let t = tempfile::tempdir().unwrap();
    let meta = t.path().join("m");
    ok(run([
        OsStr::new("synth"),
        OsStr::new("-o"),
        meta.as_os_str(),
    ]));
    let m = meta.as_os_str();
    // --ids: one comma-separated line; --no-bos drops <s>.
    let with_bos = stdout(&ok(run([
        OsStr::new("tokenize"),
        m,
        OsStr::new("--text"),
        OsStr::new("the world"),
        OsStr::new("--ids"),
    ])));
    let no_bos = stdout(&ok(run([
        OsStr::new("tokenize"),
        m,
        OsStr::new("--text"),
        OsStr::new("the world"),
        OsStr::new("--ids"),
        OsStr::new("--no-bos"),
    ])));
    assert!(with_bos.starts_with("1,"), "{with_bos}");
    assert_eq!(with_bos.trim().strip_prefix("1,"), Some(no_bos.trim()));
    // --pieces: the pieces on one line.
    let pieces = stdout(&ok(run([
        OsStr::new("tokenize"),
        m,
        OsStr::new("--text"),
        OsStr::new("the world"),
        OsStr::new("--pieces"),
    ])));
    assert_eq!(pieces.trim(), "<s> \u{2581}the \u{2581}w or l d");
    // Standard input, and the default table.
    let mut child = std::process::Command::new(bin())
        .args([OsStr::new("tokenize"), m])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"the world").unwrap();
    let o = ok(child.wait_with_output().unwrap());
    assert!(stdout(&o).contains("-> '\u{2581}the'"), "{}", stdout(&o));
    assert!(stderr(&o).contains("6 tokens"), "{}", stderr(&o));
    // detokenize takes what tokenize --ids prints (also from stdin).
    let text = stdout(&ok(run([
        OsStr::new("detokenize"),
        m,
        OsStr::new("--ids"),
        OsStr::new(with_bos.trim()),
    ])));
    assert_eq!(text, "the world\n");
}

#[test]
fn tokenize_bad_input_is_a_one_line_error() {
    let t = tempfile::tempdir().unwrap();
    let meta = t.path().join("m");
    ok(run([
        OsStr::new("synth"),
        OsStr::new("-o"),
        meta.as_os_str(),
    ]));
    let bad_utf8 = t.path().join("bad.txt");
    std::fs::write(&bad_utf8, b"ok \xff\xfe").unwrap();
    let empty = t.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let garbage = t.path().join("garbage.model");
    std::fs::write(&garbage, b"\x0a\xff\xff\xff\xff").unwrap();
    let cases: Vec<(Vec<&OsStr>, &str)> = vec![
        (
            vec![
                OsStr::new("tokenize"),
                meta.as_os_str(),
                OsStr::new("--file"),
                bad_utf8.as_os_str(),
            ],
            "not UTF-8",
        ),
        (
            vec![
                OsStr::new("tokenize"),
                empty.as_os_str(),
                OsStr::new("--text"),
                OsStr::new("x"),
            ],
            "no tokenizer.model",
        ),
        (
            vec![
                OsStr::new("tokenize"),
                garbage.as_os_str(),
                OsStr::new("--text"),
                OsStr::new("x"),
            ],
            "garbage.model",
        ),
        (
            vec![
                OsStr::new("detokenize"),
                meta.as_os_str(),
                OsStr::new("--ids"),
                OsStr::new("1,999999"),
            ],
            "out of range",
        ),
        (
            vec![
                OsStr::new("detokenize"),
                meta.as_os_str(),
                OsStr::new("--ids"),
                OsStr::new("1,-3"),
            ],
            "not a non-negative integer",
        ),
    ];
    for (args, want) in cases {
        let o = run(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}
