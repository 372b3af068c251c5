//! `llama-tool inspect`: what a checkpoint holds: format, parameter count, detected size,
//! shards, parameters/metadata, tokenizer summary and (with `--tensors`) every tensor.

use std::path::PathBuf;
use std::process::ExitCode;

use llama_codecs::text::{shown, shown_max};
use llama_formats::checkpoint::Checkpoint;
use llama_formats::inspect::{inspect, InspectReport};
use serde_json::Value;

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

/// `{"ok": true, ...report}`: the JSON document of `inspect --json`.
#[derive(serde::Serialize)]
struct JsonDoc<'a> {
    ok: bool,
    #[serde(flatten)]
    report: &'a InspectReport,
}

/// Run the command.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if super::inspect_signature::is_signature(&a.path) {
        return super::inspect_signature::run(&a.path, a.json);
    }
    let ck = Checkpoint::open(&a.path)?;
    let r = inspect(&ck, a.tensors);
    if a.json {
        // Through a JSON value: keys in sorted order, as before the report was typed.
        let doc = serde_json::to_value(JsonDoc {
            ok: true,
            report: &r,
        })?;
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_text(&r)?;
    Ok(ExitCode::SUCCESS)
}

fn print_text(r: &InspectReport) -> anyhow::Result<()> {
    // Everything below that came from the file goes through `shown`: control characters
    // escaped (no ANSI sequences reach the terminal), long values cut with an ellipsis.
    println!("path:        {}", shown(&r.path.display().to_string()));
    println!("format:      {}", r.format_name);
    println!("shards:      {}", r.shards);
    println!("size:        {}", r.size);
    println!(
        "parameters:  {} ({:.2}B)",
        r.parameters,
        r.parameters as f64 / 1e9
    );
    match (&r.params, &r.params_error) {
        (Some(p), _) => println!(
            "params:      dim {}, layers {}, heads {}, kv heads {}, ffn {}, vocab {}, norm_eps {}, rope_theta {}",
            p.dim, p.n_layers, p.n_heads, p.n_kv_heads, p.hidden_dim, p.vocab_size, p.norm_eps, p.rope_theta
        ),
        (None, e) => println!(
            "params:      unavailable ({})",
            shown_max(e.as_deref().unwrap_or("unknown"), 2000)
        ),
    }
    if let Value::Object(m) = serde_json::to_value(&r.metadata)? {
        for (k, v) in &m {
            let v = match v {
                Value::String(s) => format!("\"{}\"", shown(s)),
                other => shown(&other.to_string()),
            };
            println!("  {}: {v}", shown(k));
        }
    }
    match serde_json::to_value(&r.tokenizer)? {
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
    let types: Vec<String> = r.dtypes.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("tensors:     {} ({})", r.tensor_count, types.join(", "));
    if !r.extra_tensors.is_empty() {
        println!(
            "extra:       {} non-LLaMA tensors: {}",
            r.extra_tensors.len(),
            shown_max(
                &r.extra_tensors
                    .iter()
                    .map(|n| shown(n))
                    .collect::<Vec<_>>()
                    .join(", "),
                2000
            )
        );
    }
    if let Some(rows) = &r.tensors {
        let w = rows
            .iter()
            .map(|t| shown(&t.name).chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        println!(
            "{:w$}  {:5}  {:6}  {:>14}  {:>22}",
            "name", "shard", "dtype", "bytes", "shape"
        );
        for t in rows {
            let shard = t.shard.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
            let shape = format!("{:?}", t.shape);
            println!(
                "{:w$}  {:5}  {:6}  {:>14}  {:>22}",
                shown(&t.name),
                shard,
                t.dtype,
                t.bytes.unwrap_or(0),
                shape
            );
        }
    }
    Ok(())
}
