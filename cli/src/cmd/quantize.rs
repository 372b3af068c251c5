//! `llama-tool quantize IN.gguf OUT.gguf TYPE`: a float GGUF (F32/F16/BF16) to one of
//! llama.cpp's presets, byte-identical to `llama-quantize` without an importance matrix.
//! The output is written under a temporary name and renamed when complete.
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use clap::CommandFactory;
use llama_codecs::gguf::GgufFile;
use llama_formats::atomic;
use llama_formats::llama::naming::gguf_tensor_kind;
use llama_formats::quant::{quantize_gguf, QuantReport};
use llama_ggml::quant::Preset;

use crate::args::{Choice, QuantType};

/// Arguments of `llama-tool quantize`: `IN OUT TYPE`, as `llama-quantize` takes them, or
/// `IN TYPE -o OUT`.
#[derive(clap::Args)]
#[command(
    after_help = "The output may also be given as -o OUT; the positional arguments are then IN TYPE."
)]
pub struct Args {
    /// Input GGUF with F32, F16 or BF16 tensors.
    pub input: PathBuf,
    /// Output GGUF (written to a temporary name, renamed when complete).
    #[arg(value_name = "OUTPUT")]
    pub output_pos: Option<OsString>,
    /// Preset as llama.cpp spells it, case-insensitive (Q3_K, Q4_K, Q5_K mean the _M presets).
    #[arg(value_name = "TYPE", value_parser = Choice::<QuantType>::new())]
    pub preset: Option<QuantType>,
    /// Output GGUF, instead of the OUTPUT argument.
    #[arg(short = 'o', long = "output", alias = "out", value_name = "OUTPUT")]
    pub output_flag: Option<PathBuf>,
    /// Replace an existing output (refused otherwise, exit 2).
    #[arg(long)]
    pub force: bool,
    /// Worker threads (default: all cores).
    #[arg(short = 'j', long = "jobs", alias = "threads", value_name = "N")]
    pub jobs: Option<usize>,
    /// Print one JSON document on stdout instead of text; no progress bar.
    #[arg(long)]
    pub json: bool,
}

/// The output path and the type, from `IN OUT TYPE` or `IN TYPE -o OUT`; a usage error
/// (clap's, exit 2) when neither form was given.
fn output_and_type(args: &Args) -> Result<(PathBuf, QuantType), clap::Error> {
    let mut root = crate::Cli::command();
    root.build();
    let cmd = root.find_subcommand("quantize").cloned().unwrap_or(root);
    let usage = |msg: &str| cmd.clone().error(ErrorKind::MissingRequiredArgument, msg);
    match (&args.output_flag, &args.output_pos, args.preset) {
        (None, Some(out), Some(t)) => Ok((PathBuf::from(out), t)),
        (None, _, None) => Err(usage("give IN OUT TYPE (or IN TYPE -o OUT)")),
        (Some(_), Some(_), Some(_)) => Err(cmd.clone().error(
            ErrorKind::ArgumentConflict,
            "the output is given twice: as OUTPUT and with -o",
        )),
        (Some(out), Some(t), None) => {
            let arg = cmd.get_arguments().find(|a| a.get_id() == "preset");
            let t = Choice::<QuantType>::new().parse_ref(&cmd, arg, t)?;
            Ok((out.clone(), t))
        }
        (Some(_), None, _) | (None, None, Some(_)) => Err(usage("give the quantization TYPE")),
    }
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (output, qtype) = output_and_type(&args).unwrap_or_else(|e| e.exit());
    let preset = qtype.preset();
    crate::args::check_output(&output, args.force)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .context("starting worker threads")?;
    let src = GgufFile::open(&args.input)?;
    let total = src.file_len();
    let bar = crate::progress::bytes_bar(total, "quantizing", args.json);
    let started = Instant::now();
    let mut out = atomic::create_file_output(&output)?;
    let (report, w) = pool.install(|| {
        let sink = BufWriter::with_capacity(1 << 22, &mut out);
        quantize_gguf(&src, sink, preset, &mut |_, done| bar.set_position(done))
    })?;
    w.into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("{}: writing", output.display()))?;
    let path = out
        .commit()
        .with_context(|| format!("{}: renaming into place", output.display()))?;
    bar.finish_and_clear();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    present(
        &args,
        &output,
        preset,
        &report,
        size,
        started.elapsed().as_secs_f64(),
    );
    Ok(ExitCode::SUCCESS)
}

fn present(args: &Args, output: &Path, preset: Preset, r: &QuantReport, size: u64, secs: f64) {
    let mut kinds: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for t in &r.tensors {
        *kinds
            .entry(gguf_tensor_kind(&t.name))
            .or_default()
            .entry(t.dst.name())
            .or_default() += 1;
    }
    if args.json {
        let v = serde_json::json!({
            "ok": true,
            "input": args.input,
            "output": output,
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
        output.display(),
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
