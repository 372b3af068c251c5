//! `llama-tool quantize IN.gguf OUT.gguf TYPE`: a float GGUF (F32/F16/BF16) to one of
//! llama.cpp's presets, byte-identical to `llama-quantize` without an importance matrix.
//! The output is written under a temporary name and renamed when complete.
use std::collections::BTreeMap;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use llama_formats::atomic::AtomicFile;
use llama_formats::gguf::GgufFile;
use llama_formats::quant::{quantize_gguf, Preset, QuantReport, ALL_PRESETS};

/// Arguments of `llama-tool quantize`.
#[derive(clap::Args)]
pub struct Args {
    /// Input GGUF with F32, F16 or BF16 tensors.
    pub input: PathBuf,
    /// Output GGUF (written to a temporary name, renamed when complete).
    pub output: PathBuf,
    /// Preset as llama.cpp spells it (case-insensitive): Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K
    /// Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K F16 BF16 F32
    /// (Q3_K, Q4_K, Q5_K mean the _M presets).
    #[arg(value_name = "TYPE")]
    pub preset: String,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let preset = Preset::from_name(&args.preset).with_context(|| {
        let names: Vec<&str> = ALL_PRESETS.iter().map(|p| p.name()).collect();
        format!(
            "unknown quantization type {:?}: expected one of {}",
            args.preset,
            names.join(" ")
        )
    })?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.unwrap_or(0))
        .build()
        .context("starting worker threads")?;
    let src = GgufFile::open(&args.input)?;
    let total = src.file_len();
    let bar = crate::progress::bytes_bar(total, "quantizing", args.json);
    let started = Instant::now();
    let mut out = AtomicFile::create(&args.output)
        .with_context(|| format!("{}: cannot create", args.output.display()))?;
    let (report, w) = pool.install(|| {
        let sink = BufWriter::with_capacity(1 << 22, &mut out);
        quantize_gguf(&src, sink, preset, &mut |_, done| bar.set_position(done))
    })?;
    w.into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("{}: writing", args.output.display()))?;
    let path = out
        .commit()
        .with_context(|| format!("{}: renaming into place", args.output.display()))?;
    bar.finish_and_clear();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    present(
        &args,
        preset,
        &report,
        size,
        started.elapsed().as_secs_f64(),
    );
    Ok(ExitCode::SUCCESS)
}

/// `blk.7.attn_v.weight` -> `attn_v.weight`.
fn kind(name: &str) -> &str {
    match name.strip_prefix("blk.") {
        Some(rest) => rest.split_once('.').map_or(rest, |(_, k)| k),
        None => name,
    }
}

fn present(args: &Args, preset: Preset, r: &QuantReport, size: u64, secs: f64) {
    let mut kinds: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for t in &r.tensors {
        *kinds
            .entry(kind(&t.name))
            .or_default()
            .entry(t.dst.name())
            .or_default() += 1;
    }
    if args.json {
        let v = serde_json::json!({
            "ok": true,
            "input": args.input,
            "output": args.output,
            "preset": preset.name(),
            "file_type": preset.file_type(),
            "types": kinds,
            "tensors": r.tensors.iter().map(|t| serde_json::json!({
                "name": t.name, "shape": t.shape, "from": t.src.name(), "to": t.dst.name(),
            })).collect::<Vec<_>>(),
            "n_elements": r.n_elements,
            "tensor_bytes_in": r.bytes_in,
            "tensor_bytes_out": r.bytes_out,
            "file_bytes": size,
            "bits_per_weight": r.bits_per_weight(),
            "fallbacks": r.n_fallback,
            "seconds": secs,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
        );
        return;
    }
    println!(
        "{} -> {} ({})",
        args.input.display(),
        args.output.display(),
        preset.name()
    );
    for (k, types) in &kinds {
        let list: Vec<String> = types.iter().map(|(t, n)| format!("{t} x{n}")).collect();
        println!("  {k:<28} {}", list.join(", "));
    }
    if r.n_fallback > 0 {
        println!(
            "  {} tensor(s) fell back to another type (row length)",
            r.n_fallback
        );
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "tensors {:.2} MiB -> {:.2} MiB, {:.2} bits per weight; file {:.2} MiB; {:.1} s",
        mib(r.bytes_in),
        mib(r.bytes_out),
        r.bits_per_weight(),
        mib(size),
        secs
    );
}
