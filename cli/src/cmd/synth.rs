//! `llama-tool synth`: write a synthetic Meta-layout checkpoint (deterministic random
//! weights, real shapes and sharding) with params.json, tokenizer.model and checklist.chk.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use llama_formats::synth::{synth, synth_params, SynthShape, SynthSpec};
use llama_formats::DType;

/// Arguments of `llama-tool synth`.
#[derive(clap::Args)]
pub struct Args {
    /// Output folder (created; must be empty or absent).
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    /// Model shape: tiny, 7B, 13B, 30B or 65B.
    #[arg(long, default_value = "tiny")]
    pub shape: String,
    /// Number of layers (default: the shape's own).
    #[arg(long)]
    pub layers: Option<u64>,
    /// Model-parallel shard count (default: the release's, 1 for tiny).
    #[arg(long)]
    pub mp: Option<usize>,
    /// Weight type: f16, bf16 or f32.
    #[arg(long, default_value = "f16")]
    pub dtype: String,
    /// Key/value heads for grouped-query attention (Llama 2 `n_kv_heads`; must divide the
    /// head count). Default: one per query head.
    #[arg(long)]
    pub kv_heads: Option<u64>,
    /// Llama 2 `ffn_dim_multiplier` (FFN hidden = int(mult * int(8 * dim / 3)), rounded up
    /// to multiple_of 256).
    #[arg(long)]
    pub ffn_dim_multiplier: Option<f64>,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
}

/// Run the command.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let shape = SynthShape::from_name(&a.shape)
        .ok_or_else(|| anyhow!("unknown --shape `{}` (tiny, 7B, 13B, 30B, 65B)", a.shape))?;
    let dtype = DType::from_name(&a.dtype)
        .filter(|d| matches!(d, DType::F16 | DType::BF16 | DType::F32))
        .ok_or_else(|| anyhow!("unknown --dtype `{}` (f16, bf16, f32)", a.dtype))?;
    if a.out.exists()
        && std::fs::read_dir(&a.out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        anyhow::bail!("{}: output folder exists and is not empty", a.out.display());
    }
    let spec = SynthSpec {
        shape,
        layers: a.layers,
        mp: a.mp,
        dtype,
        seed: a.seed,
        kv_heads: a.kv_heads,
        ffn_dim_multiplier: a.ffn_dim_multiplier,
    };
    let files = synth(&a.out, &spec).with_context(|| format!("synth into {}", a.out.display()))?;
    // checklist.chk over the shards and params.json, as the release has it.
    let listed: Vec<PathBuf> = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "tokenizer.model"))
        .cloned()
        .collect();
    crate::written::write_checklist(&a.out, &listed)?;
    let p = synth_params(&spec);
    if a.json {
        let v = serde_json::json!({"ok": true, "out": a.out, "params": p, "files": files, "dtype": dtype.name()});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "wrote {} ({} layers, dim {}, {} shard(s), {}) to {}",
            p.size_label(),
            p.n_layers,
            p.dim,
            files
                .iter()
                .filter(|f| f.extension().is_some_and(|e| e == "pth"))
                .count(),
            dtype,
            a.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
