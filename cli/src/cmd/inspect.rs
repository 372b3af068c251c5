//! `llama-tool inspect`: what a checkpoint holds: format, parameter count, detected size,
//! shards, parameters/metadata, tokenizer summary and (with `--tensors`) every tensor.

use std::path::PathBuf;
use std::process::ExitCode;

use llama_formats::checkpoint::{Checkpoint, Kind};
use llama_formats::gguf::GgufValue;
use llama_formats::sentencepiece::SpModel;
use llama_formats::text::{shown, shown_max};
use serde_json::{json, Value};

/// Arguments of `llama-tool inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// A Meta folder, a Hugging Face folder, a .gguf / .safetensors / .pth file, or a model
    /// signature (`model.sig`: its signed file list, shown without verifying).
    pub path: PathBuf,
    /// List every tensor (name, dtype, shape, bytes).
    #[arg(long)]
    pub tensors: bool,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

fn short_value(v: &GgufValue) -> Value {
    match v {
        GgufValue::Array(a) => json!(format!("[{} x {}]", a.len(), a.elem_type())),
        GgufValue::String(s) => json!(s),
        GgufValue::Bool(b) => json!(b),
        GgufValue::F32(x) => json!(x.to_string().parse::<f64>().unwrap_or(*x as f64)),
        GgufValue::F64(x) => json!(x),
        other => other
            .as_i64()
            .map(|i| json!(i))
            .or_else(|| other.as_u64().map(|u| json!(u)))
            .unwrap_or(Value::Null),
    }
}

fn tokenizer_summary(ck: &Checkpoint) -> Value {
    if let Some(g) = ck.gguf() {
        let n = g
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.as_array())
            .map(|a| a.len());
        let id = |k: &str| g.get(k).and_then(|v| v.as_u64());
        return match n {
            Some(n) => {
                json!({"source": "GGUF metadata", "model": g.get("tokenizer.ggml.model").and_then(|v| v.as_str()),
                "vocab_size": n, "bos_id": id("tokenizer.ggml.bos_token_id"), "eos_id": id("tokenizer.ggml.eos_token_id"),
                "unk_id": id("tokenizer.ggml.unknown_token_id")})
            }
            None => Value::Null,
        };
    }
    match ck.tokenizer_path() {
        Some(p) => match SpModel::read(p) {
            Ok(sp) => {
                json!({"source": p, "vocab_size": sp.pieces.len(), "bos_id": sp.bos_id, "eos_id": sp.eos_id, "unk_id": sp.unk_id})
            }
            Err(e) => json!({"source": p, "error": e.to_string()}),
        },
        None => Value::Null,
    }
}

/// Run the command.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if super::inspect_signature::is_signature(&a.path) {
        return super::inspect_signature::run(&a.path, a.json);
    }
    let ck = Checkpoint::open(&a.path)?;
    let raw = ck.raw_tensors();
    let params = ck.params();
    let (parameters, size) = match &params {
        Ok(p) => {
            let n: u64 = ck
                .llama_tensors()
                .into_iter()
                .filter(|t| t.role != llama_formats::llama::Role::RopeFreqs)
                .filter_map(|t| ck.tensor_info(t).ok())
                .map(|(_, s)| s.iter().product::<u64>())
                .sum();
            (n, p.size_label())
        }
        Err(_) => (
            raw.iter().filter_map(|t| t.info.n_elements()).sum(),
            "unknown".to_string(),
        ),
    };
    let mut dtypes = std::collections::BTreeMap::<String, usize>::new();
    for t in &raw {
        *dtypes.entry(t.info.dtype.name().to_string()).or_default() += 1;
    }
    let metadata: Value = match (ck.kind(), ck.gguf()) {
        (Kind::Gguf, Some(g)) => Value::Object(
            g.metadata()
                .iter()
                .map(|(k, v)| (k.clone(), short_value(v)))
                .collect(),
        ),
        _ => ck
            .meta_params()
            .map(|m| serde_json::to_value(m).unwrap_or(Value::Null))
            .or_else(|| ck.hf_config().cloned())
            .unwrap_or(Value::Null),
    };
    let tokenizer = tokenizer_summary(&ck);
    let tensor_rows: Vec<Value> = raw
        .iter()
        .map(|t| json!({"name": t.info.name, "dtype": t.info.dtype.name(), "shape": t.info.shape, "bytes": t.info.n_bytes(), "shard": t.shard}))
        .collect();
    if a.json {
        let mut doc = json!({
            "ok": true,
            "path": ck.path(),
            "format": ck.kind(),
            "format_name": ck.kind().name(),
            "shards": ck.shard_count(),
            "size": size,
            "parameters": parameters,
            "params": params.as_ref().ok(),
            "params_error": params.as_ref().err().map(|e| e.to_string()),
            "metadata": metadata,
            "tokenizer": tokenizer,
            "tensor_count": raw.len(),
            "dtypes": dtypes,
            "extra_tensors": ck.extra_tensors(),
        });
        if a.tensors {
            doc["tensors"] = Value::Array(tensor_rows);
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    // Everything below that came from the file goes through `shown`: control characters
    // escaped (no ANSI sequences reach the terminal), long values cut with an ellipsis.
    println!("path:        {}", shown(&ck.path().display().to_string()));
    println!("format:      {}", ck.kind().name());
    println!("shards:      {}", ck.shard_count());
    println!("size:        {size}");
    println!(
        "parameters:  {parameters} ({:.2}B)",
        parameters as f64 / 1e9
    );
    match &params {
        Ok(p) => println!(
            "params:      dim {}, layers {}, heads {}, kv heads {}, ffn {}, vocab {}, norm_eps {}, rope_theta {}",
            p.dim, p.n_layers, p.n_heads, p.n_kv_heads, p.hidden_dim, p.vocab_size, p.norm_eps, p.rope_theta
        ),
        Err(e) => println!("params:      unavailable ({})", shown_max(&e.to_string(), 2000)),
    }
    if let Value::Object(m) = &metadata {
        for (k, v) in m {
            let v = match v {
                Value::String(s) => format!("\"{}\"", shown(s)),
                other => shown(&other.to_string()),
            };
            println!("  {}: {v}", shown(k));
        }
    }
    match &tokenizer {
        Value::Null => println!("tokenizer:   none found"),
        t => println!(
            "tokenizer:   {} pieces, bos {}, eos {}, unk {} ({})",
            t["vocab_size"],
            t["bos_id"],
            t["eos_id"],
            t["unk_id"],
            shown(t["source"].as_str().unwrap_or(""))
        ),
    }
    let types: Vec<String> = dtypes.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("tensors:     {} ({})", raw.len(), types.join(", "));
    if !ck.extra_tensors().is_empty() {
        println!(
            "extra:       {} non-LLaMA tensors: {}",
            ck.extra_tensors().len(),
            shown_max(
                &ck.extra_tensors()
                    .iter()
                    .map(|n| shown(n))
                    .collect::<Vec<_>>()
                    .join(", "),
                2000
            )
        );
    }
    if a.tensors {
        let w = raw
            .iter()
            .map(|t| shown(&t.info.name).chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        println!(
            "{:w$}  {:5}  {:6}  {:>14}  {:>22}",
            "name", "shard", "dtype", "bytes", "shape"
        );
        for t in &raw {
            let shard = t.shard.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
            let shape = format!("{:?}", t.info.shape);
            println!(
                "{:w$}  {:5}  {:6}  {:>14}  {:>22}",
                shown(&t.info.name),
                shard,
                t.info.dtype.name(),
                t.info.n_bytes().unwrap_or(0),
                shape
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
