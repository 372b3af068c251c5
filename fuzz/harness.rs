//! What each fuzz target does with one input: the same functions run under libFuzzer
//! (`fuzz/fuzz_targets/*.rs`, nightly, `scripts/fuzz.sh`) and in the stable replay test
//! (`manifests/tests/fuzz_replay.rs`) over the committed seeds and regression inputs.
//!
//! A target passes when the parser returns (Ok or Err) without panicking; the budgets
//! (allocation cap, time limit) are enforced by libFuzzer's `-malloc_limit_mb`,
//! `-rss_limit_mb` and `-timeout` flags. Parsers that read files get the input through a
//! scratch file in /dev/shm (or the temp folder).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};

/// Every target, by the name `scripts/fuzz.sh` and the corpus folders use.
pub const TARGETS: &[&str] = &[
    "pickle",
    "torch_zip",
    "gguf",
    "gguf_structured",
    "safetensors",
    "sentencepiece",
    "md5_checklist",
    "sha256sums",
    "b3sum",
    "json_manifest",
    "params_json",
    "config_json",
    "torrent",
];

/// Run target `name` on `data`.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "pickle" => pickle(data),
        "torch_zip" => torch_zip(data),
        "gguf" => gguf(data),
        "gguf_structured" => gguf_structured(data),
        "safetensors" => safetensors(data),
        "sentencepiece" => sentencepiece(data),
        "md5_checklist" => checklist(data, "checklist.chk"),
        "sha256sums" => checklist(data, "SHA256SUMS"),
        "b3sum" => checklist(data, "B3SUMS"),
        "json_manifest" => json_manifest(data),
        "params_json" => params_json(data),
        "config_json" => config_json(data),
        "torrent" => torrent(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

/// A scratch file for this process and target, holding `data`.
fn scratch(target: &str, ext: &str, data: &[u8]) -> PathBuf {
    let dir = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let tid = format!("{:?}", std::thread::current().id())
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>();
    let p = dir.join(format!(
        "llama-fuzz-{}-{tid}-{target}.{ext}",
        std::process::id()
    ));
    std::fs::write(&p, data).expect("write the scratch file");
    p
}

/// The pickle machine on raw `data.pkl` bytes.
pub fn pickle(data: &[u8]) {
    let _ = llama_codecs::pth::pickle::load_state_dict(data);
}

/// The torch zip reader (central directory, records, pickle, views), then every view.
pub fn torch_zip(data: &[u8]) {
    let p = scratch("torch_zip", "pth", data);
    if let Ok(f) = llama_codecs::pth::PthFile::open(&p) {
        for t in f.tensors() {
            if let Ok(v) = f.view(t) {
                // Bounded by the view checks: never more than the storage's bytes.
                let _ = v.data().len();
            }
        }
    }
    let _ = std::fs::remove_file(&p);
}

/// The GGUF parser on raw bytes, then every tensor's view.
pub fn gguf(data: &[u8]) {
    let p = scratch("gguf", "gguf", data);
    if let Ok(g) = llama_codecs::gguf::GgufFile::open(&p) {
        for t in g.tensors() {
            let _ = g.view(t).map(|v| v.n_bytes());
        }
        let _ = llama_formats::gguf_llama::params_from_gguf(&g);
        let _ = llama_formats::gguf_llama::sp_model_from_gguf(&g);
    }
    let _ = std::fs::remove_file(&p);
}

/// A metadata value for the structure-aware GGUF target.
#[derive(Debug, Arbitrary)]
pub enum Val {
    U8(u8),
    I32(i32),
    U32(u32),
    F32(f32),
    Bool(u8),
    Str(String),
    U64(u64),
    ArrU32(Vec<u32>),
    ArrStr(Vec<String>),
    Raw { type_id: u32, bytes: Vec<u8> },
}

/// One tensor info for the structure-aware GGUF target.
#[derive(Debug, Arbitrary)]
pub struct Tensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: u8,
    pub offset: u64,
}

/// A well-framed GGUF file with arbitrary contents.
#[derive(Debug, Arbitrary)]
pub struct GgufSpec {
    pub version: u8,
    pub kvs: Vec<(String, Val)>,
    pub tensors: Vec<Tensor>,
    pub data: Vec<u8>,
    pub llama: bool,
}

fn put_str(v: &mut Vec<u8>, s: &str) {
    v.extend((s.len() as u64).to_le_bytes());
    v.extend(s.as_bytes());
}

/// Serialize a [`GgufSpec`] as GGUF bytes.
pub fn gguf_bytes(spec: &GgufSpec) -> Vec<u8> {
    let mut kvs: Vec<(String, &Val)> = spec.kvs.iter().map(|(k, v)| (k.clone(), v)).collect();
    let arch = Val::Str("llama".into());
    if spec.llama {
        kvs.insert(0, ("general.architecture".into(), &arch));
    }
    let mut v = b"GGUF".to_vec();
    v.extend(u32::from(2 + spec.version % 2).to_le_bytes());
    v.extend((spec.tensors.len() as u64).to_le_bytes());
    v.extend((kvs.len() as u64).to_le_bytes());
    for (k, val) in &kvs {
        put_str(&mut v, k);
        match val {
            Val::U8(x) => {
                v.extend(0u32.to_le_bytes());
                v.push(*x);
            }
            Val::I32(x) => {
                v.extend(5u32.to_le_bytes());
                v.extend(x.to_le_bytes());
            }
            Val::U32(x) => {
                v.extend(4u32.to_le_bytes());
                v.extend(x.to_le_bytes());
            }
            Val::F32(x) => {
                v.extend(6u32.to_le_bytes());
                v.extend(x.to_le_bytes());
            }
            Val::Bool(x) => {
                v.extend(7u32.to_le_bytes());
                v.push(*x % 3);
            }
            Val::Str(s) => {
                v.extend(8u32.to_le_bytes());
                put_str(&mut v, s);
            }
            Val::U64(x) => {
                v.extend(10u32.to_le_bytes());
                v.extend(x.to_le_bytes());
            }
            Val::ArrU32(xs) => {
                v.extend(9u32.to_le_bytes());
                v.extend(4u32.to_le_bytes());
                v.extend((xs.len() as u64).to_le_bytes());
                xs.iter().for_each(|x| v.extend(x.to_le_bytes()));
            }
            Val::ArrStr(xs) => {
                v.extend(9u32.to_le_bytes());
                v.extend(8u32.to_le_bytes());
                v.extend((xs.len() as u64).to_le_bytes());
                xs.iter().for_each(|x| put_str(&mut v, x));
            }
            Val::Raw { type_id, bytes } => {
                v.extend(type_id.to_le_bytes());
                v.extend(bytes);
            }
        }
    }
    for t in &spec.tensors {
        put_str(&mut v, &t.name);
        v.extend((t.dims.len() as u32).to_le_bytes());
        t.dims.iter().for_each(|d| v.extend(d.to_le_bytes()));
        v.extend(u32::from(t.ggml_type % 32).to_le_bytes());
        v.extend(t.offset.to_le_bytes());
    }
    let pad = v.len().next_multiple_of(32) - v.len();
    v.extend(std::iter::repeat_n(0u8, pad));
    v.extend(&spec.data);
    v
}

/// The GGUF parser on well-framed files built from arbitrary structure.
pub fn gguf_structured(data: &[u8]) {
    let Ok(spec) = GgufSpec::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    gguf(&gguf_bytes(&spec));
}

/// The safetensors header path (and a checkpoint's view of the file).
pub fn safetensors(data: &[u8]) {
    let p = scratch("safetensors", "safetensors", data);
    if let Ok(f) = llama_codecs::safetensors::SafetensorsFile::open(&p) {
        for t in f.tensors().to_vec() {
            let _ = f.view(&t.name).map(|v| v.n_bytes());
        }
    }
    let _ = std::fs::remove_file(&p);
}

/// The SentencePiece protobuf reader and its validation.
pub fn sentencepiece(data: &[u8]) {
    if let Ok(m) = llama_codecs::sentencepiece::SpModel::from_bytes(data) {
        let _ = m.validate();
    }
}

/// A checksum list parsed as `file_name` would be (md5 checklist, SHA256SUMS with GNU and
/// BSD lines, b3sum).
pub fn checklist(data: &[u8], file_name: &str) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let algo = llama_manifests::checksums::list_kind(file_name).flatten();
    let _ = llama_manifests::checksums::parse(text, Path::new(file_name), algo);
}

/// The llama-tool JSON manifest.
pub fn json_manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = llama_manifests::json::Manifest::parse(text, Path::new("manifest.json")) {
        let _ = m.to_json();
    }
}

/// `params.json` validation (read through the capped, regular-file-only reader).
pub fn params_json(data: &[u8]) {
    let p = scratch("params_json", "json", data);
    if let Ok(m) = llama_formats::llama::MetaParams::read(&p) {
        let _ = m.hidden_dim();
        let _ = m.to_json();
    }
    let _ = std::fs::remove_file(&p);
}

/// `config.json` validation.
pub fn config_json(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(p) = llama_formats::llama::ModelParams::from_hf_config(Path::new("config.json"), &v) {
        let _ = p.check(Path::new("config.json"));
        let _ = p.size_label();
    }
}

/// A `.torrent` (bencode, v1/v2/hybrid metainfo, padding files, piece layers), then what
/// `verify --torrent` and `download --models` derive from it without touching a disk; a UTF-8
/// input is also tried as a magnet link.
pub fn torrent(data: &[u8]) {
    use llama_manifests::torrent::{check, magnet::Magnet, metainfo::Metainfo, models};
    if let Ok(m) = Metainfo::parse(data, "fuzz.torrent") {
        let root = check::content_root(&m, Path::new("/nonexistent"));
        for f in &m.files {
            let _ = m.file_path(&root, f);
        }
        let _ = (
            m.total_length(),
            m.content_length(),
            check::bytes_to_hash(&m),
        );
        let _ = m.magnet();
        let _ = models::select(&m, &["7B".to_string()]);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(mg) = Magnet::parse(text) {
            let _ = mg.matches(None, None);
        }
    }
}
