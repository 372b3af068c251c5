//! Our forward pass against the float64 torch reference of Meta's `model.py` math
//! (`tests/fixtures/infer/gen_reference.py`; expected logits committed as `.npy`). The
//! weights are regenerated here with the generator's splitmix64 scheme, written as a
//! Hugging Face checkpoint (`config.json` + safetensors, q/k permuted to HF's rotary layout)
//! in f32/bf16/f16, and read back through llama-formats' `Checkpoint`, which un-permutes
//! q/k to Meta's layout.

use std::path::{Path, PathBuf};

#[path = "../../tests/support/interop.rs"]
mod interop;

use llama_formats::checkpoint::Checkpoint;
use llama_formats::llama::naming::Layout;
use llama_formats::llama::permute::permute_rows;
use llama_formats::llama::{Role, TensorName};
use llama_infer::{logits, npy, Device};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/infer")
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xCBF29CE484222325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001B3);
    }
    h
}

fn splitmix64(state: u64, i: u64) -> u64 {
    let mut z = state.wrapping_add(i.wrapping_mul(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
    z ^ (z >> 31)
}

/// Same values as `weight()` in gen_reference.py.
fn weight(seed: u64, name: &str, n: usize, kind: &str) -> Vec<f32> {
    let mut key = seed.to_le_bytes().to_vec();
    key.extend_from_slice(name.as_bytes());
    let state = fnv1a(&key);
    (1..=n as u64)
        .map(|i| {
            let x = (splitmix64(state, i) >> 40) as f64 / (1u64 << 24) as f64;
            let v = match kind {
                "norm" => 1.0 + (x * 2.0 - 1.0) * 0.25,
                "embed" => x * 2.0 - 1.0,
                _ => (x * 2.0 - 1.0) * 0.125,
            };
            v as f32
        })
        .collect()
}

struct Variant {
    cfg: serde_json::Value,
    tokens: Vec<u32>,
    expected: Vec<f32>,
    vocab: usize,
}

fn load_variant(name: &str) -> Variant {
    let cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join(format!("{name}.json"))).unwrap(),
    )
    .unwrap();
    let tokens: Vec<u32> = serde_json::from_value(cfg["tokens"].clone()).unwrap();
    let (shape, expected) = npy::read_f32(&fixtures().join(format!("{name}.logits.npy"))).unwrap();
    assert_eq!(shape[0], tokens.len());
    Variant {
        vocab: shape[1],
        cfg,
        tokens,
        expected,
    }
}

/// Write the variant's weights as a Hugging Face folder (`model.safetensors` with HF names
/// and q/k in HF's rotary layout, plus `config.json`) into `dir`.
fn write_checkpoint(v: &Variant, dir: &Path) {
    let c = &v.cfg;
    let u = |k: &str| c[k].as_u64().unwrap() as usize;
    let (d, nh, nkv, hidden, vocab, seed) = (
        u("dim"),
        u("n_heads"),
        u("n_kv_heads"),
        u("hidden_dim"),
        u("vocab_size"),
        c["seed"].as_u64().unwrap(),
    );
    let kv = d / nh * nkv;
    let mut tensors: Vec<(String, Vec<usize>, &str)> =
        vec![("tok_embeddings.weight".into(), vec![vocab, d], "embed")];
    for i in 0..u("n_layers") {
        let p = format!("layers.{i}.");
        for (n, shape) in [
            ("attention.wq.weight", vec![d, d]),
            ("attention.wk.weight", vec![kv, d]),
            ("attention.wv.weight", vec![kv, d]),
            ("attention.wo.weight", vec![d, d]),
            ("feed_forward.w1.weight", vec![hidden, d]),
            ("feed_forward.w2.weight", vec![d, hidden]),
            ("feed_forward.w3.weight", vec![hidden, d]),
        ] {
            tensors.push((format!("{p}{n}"), shape, "linear"));
        }
        tensors.push((format!("{p}attention_norm.weight"), vec![d], "norm"));
        tensors.push((format!("{p}ffn_norm.weight"), vec![d], "norm"));
    }
    tensors.push(("norm.weight".into(), vec![d], "norm"));
    tensors.push(("output.weight".into(), vec![vocab, d], "linear"));
    let kind = c["weights"].as_str().unwrap();
    let mut blobs = Vec::new();
    for (name, shape, k) in &tensors {
        let vals = weight(seed, name, shape.iter().product(), k);
        let t = TensorName::parse(name, Layout::Meta).unwrap();
        let heads = match t.role {
            Role::Wq => Some(nh),
            Role::Wk => Some(nkv),
            _ => None,
        };
        let (dt, bytes): (safetensors::Dtype, Vec<u8>) = match kind {
            "f32" => (
                safetensors::Dtype::F32,
                vals.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            "bf16" => (
                safetensors::Dtype::BF16,
                vals.iter()
                    .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
                    .collect(),
            ),
            "f16" => (
                safetensors::Dtype::F16,
                vals.iter()
                    .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                    .collect(),
            ),
            other => panic!("unknown weights kind {other}"),
        };
        let bytes = match heads {
            Some(h) => permute_rows(&bytes, shape[0], h, true).unwrap(),
            None => bytes,
        };
        blobs.push((t.to_layout(Layout::Hf).unwrap(), dt, shape.clone(), bytes));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = blobs
        .iter()
        .map(|(n, dt, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*dt, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let bytes = safetensors::serialize(views, None).unwrap();
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": d, "num_hidden_layers": u("n_layers"), "num_attention_heads": nh,
        "num_key_value_heads": nkv, "intermediate_size": hidden, "vocab_size": vocab,
        "rms_norm_eps": c["norm_eps"], "rope_theta": c["rope_theta"]
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

/// max |ours - ref| / max |ref|.
fn rel_err(ours: &[f32], reference: &[f32]) -> f64 {
    let scale = reference.iter().fold(0f64, |m, &x| m.max((x as f64).abs()));
    let err = ours
        .iter()
        .zip(reference)
        .fold(0f64, |m, (&a, &b)| m.max((a as f64 - b as f64).abs()));
    err / scale
}

fn check_variant(name: &str) {
    let v = load_variant(name);
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(&v, dir.path());
    let src = Checkpoint::open(dir.path()).unwrap();
    let ours = logits(&src, &v.tokens, &Device::Cpu).unwrap();
    assert_eq!(ours.len(), v.tokens.len() * v.vocab);
    let e = rel_err(&ours, &v.expected);
    eprintln!("{name}: relative error {e:e}");
    assert!(e < 1e-4, "{name}: relative error {e} >= 1e-4");
}

#[test]
fn forward_matches_torch_reference_mha_f32() {
    check_variant("mha");
}

#[test]
fn forward_matches_torch_reference_grouped_kv_heads_and_rope_theta() {
    check_variant("gqa");
}

#[test]
fn forward_matches_torch_reference_bf16_weights() {
    check_variant("gqa_bf16");
}

#[test]
fn forward_matches_torch_reference_f16_weights() {
    check_variant("mha_f16");
}

#[test]
fn swapped_layers_change_the_logits() {
    // The comparison must be able to catch a broken conversion: rename layers 0 and 1.
    let v = load_variant("mha");
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(&v, dir.path());
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n])
        .unwrap()
        .replace("layers.0.", "layers.X.")
        .replace("layers.1.", "layers.0.")
        .replace("layers.X.", "layers.1.");
    let mut out = bytes[..8].to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(&path, out).unwrap();
    let src = Checkpoint::open(dir.path()).unwrap();
    let ours = logits(&src, &v.tokens, &Device::Cpu).unwrap();
    assert!(rel_err(&ours, &v.expected) > 1e-2);
}

#[test]
fn committed_fixtures_are_what_the_generator_writes() {
    let py = interop::python();
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(py)
        .arg(fixtures().join("gen_reference.py"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for name in ["mha", "gqa", "gqa_bf16", "mha_f16"] {
        for ext in ["logits.npy", "json"] {
            let f = format!("{name}.{ext}");
            let fresh = std::fs::read(dir.path().join(&f)).unwrap();
            let committed = std::fs::read(fixtures().join(&f)).unwrap();
            if ext == "json" {
                assert_eq!(fresh, committed, "{f} differs from the generator's output");
            } else {
                // Same torch math may round the last bit differently across CPUs.
                let (_, a) = npy::decode_f32(Path::new(&f), &fresh).unwrap();
                let (_, b) = npy::decode_f32(Path::new(&f), &committed).unwrap();
                assert!(
                    rel_err(&a, &b) < 1e-6,
                    "{f} differs from the generator's output"
                );
            }
        }
    }
}
