//! `llama-tool synth`: write a synthetic Meta-layout checkpoint (deterministic random
//! weights, real shapes and sharding) with params.json, tokenizer.model and checklist.chk.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use llama_formats::atomic::AtomicDir;
use llama_formats::llama::KnownSize;
use llama_formats::synth::{synth, synth_params, SynthShape, SynthSpec};
use llama_manifests::side_files;

use crate::args::{check_output, Choice, FloatType};

/// A model shape to synthesize.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// dim 256, 4 heads, 2 layers: every row a multiple of 256.
    Tiny,
    /// LLaMA 7B.
    #[value(name = "7B")]
    B7,
    /// LLaMA 13B.
    #[value(name = "13B")]
    B13,
    /// LLaMA 30B.
    #[value(name = "30B")]
    B30,
    /// LLaMA 65B.
    #[value(name = "65B")]
    B65,
}

impl Shape {
    fn shape(self) -> SynthShape {
        match self {
            Shape::Tiny => SynthShape::Tiny,
            Shape::B7 => SynthShape::Known(KnownSize::B7),
            Shape::B13 => SynthShape::Known(KnownSize::B13),
            Shape::B30 => SynthShape::Known(KnownSize::B30),
            Shape::B65 => SynthShape::Known(KnownSize::B65),
        }
    }
}

/// Arguments of `llama-tool synth`.
#[derive(clap::Args)]
pub struct Args {
    /// Output folder (created; must be empty or absent unless --force).
    #[arg(short = 'o', long = "output", alias = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an existing non-empty output folder (once the new one is complete).
    #[arg(long)]
    pub force: bool,
    /// Model shape (case-insensitive).
    #[arg(long, default_value = "tiny", value_parser = Choice::<Shape>::new())]
    pub shape: Shape,
    /// Number of layers (default: the shape's own).
    #[arg(long)]
    pub layers: Option<u64>,
    /// Model-parallel shard count (default: the release's, 1 for tiny).
    #[arg(long)]
    pub mp: Option<usize>,
    /// Weight type (case-insensitive).
    #[arg(long, default_value = "f16", value_parser = Choice::<FloatType>::new())]
    pub dtype: FloatType,
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
    let shape = a.shape.shape();
    let dtype = a.dtype.dtype();
    check_output(&a.out, a.force)?;
    let spec = SynthSpec {
        shape,
        layers: a.layers,
        mp: a.mp,
        dtype,
        seed: a.seed,
        kv_heads: a.kv_heads,
        ffn_dim_multiplier: a.ffn_dim_multiplier,
    };
    // Written under a temporary name, put in place when complete (an old output replaced
    // with --force only then).
    let dir = AtomicDir::create(&a.out, a.force)?;
    let files =
        synth(dir.path(), &spec).with_context(|| format!("synth into {}", a.out.display()))?;
    // checklist.chk over the shards and params.json, as the release has it.
    side_files::write_checklist(dir.path(), &files, &side_files::Known::new())?;
    let files: Vec<PathBuf> = files.iter().map(|f| dir.final_path(f)).collect();
    dir.commit()?;
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
