//! `llama-tool convert` and `llama-tool reshard`: Meta / HF / GGUF checkpoints to GGUF,
//! a Hugging Face safetensors folder or Meta `.pth` shards, streaming in bounded memory.
//! Outputs appear under their final name only when complete; a sha256 manifest of what was
//! written is produced beside them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use clap::ValueEnum;
use llama_formats::atomic;
use llama_formats::checkpoint::Checkpoint;
use llama_formats::convert::{self, ConvertError, OutputFormat};
use llama_formats::export::piped::{commit_piped, PipedOutput, TapFactory};
use llama_formats::export::{self, ExportSummary, Progress};
use llama_ggml::quant::Preset;
use llama_manifests::side_files;
use llama_manifests::write::DigestTaps;

use crate::args::{check_output, Choice, QuantType, WriteArgs};
use crate::progress::bytes_bar;

/// Output format (llama-formats' [`OutputFormat`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// A single GGUF file (llama.cpp, ollama).
    Gguf,
    /// A Hugging Face folder (transformers, candle, vLLM).
    Safetensors,
    /// Meta's layout: consolidated.NN.pth shards + params.json.
    Pth,
}

impl Target {
    fn format(self) -> OutputFormat {
        match self {
            Target::Gguf => OutputFormat::Gguf,
            Target::Safetensors => OutputFormat::Safetensors,
            Target::Pth => OutputFormat::Pth,
        }
    }
}

/// Arguments of `llama-tool convert`.
#[derive(clap::Args)]
pub struct Args {
    /// Input: Meta folder, Hugging Face folder, or GGUF file with float tensors.
    pub input: PathBuf,
    /// Output format (default: gguf when -o ends in .gguf).
    #[arg(long, value_parser = Choice::<Target>::new())]
    pub to: Option<Target>,
    #[command(flatten)]
    pub write: WriteArgs,
    /// Output type (case-insensitive): F32, F16, BF16, or a llama.cpp quantization
    /// type/preset for GGUF. Default: the source's float type (F16 for GGUF).
    #[arg(long, value_name = "TYPE", value_parser = Choice::<QuantType>::new())]
    pub outtype: Option<QuantType>,
    /// Same as --outtype q4_k_m.
    #[arg(long, conflicts_with_all = ["outtype", "q8"])]
    pub q4: bool,
    /// Same as --outtype q8_0.
    #[arg(long, conflicts_with = "outtype")]
    pub q8: bool,
    /// Model-parallel shard count for --to pth (default 1).
    #[arg(long)]
    pub mp: Option<usize>,
    /// Context length written into the output's metadata (GGUF `llama.context_length`,
    /// HF `max_position_embeddings`); default: the source's own, else the model family's
    /// (2048 for LLaMA 1, 4096 for Llama 2, 16384 for Code Llama). Not `check --chunk`.
    #[arg(long = "ctx-len", alias = "ctx", value_name = "TOKENS")]
    pub ctx_len: Option<u64>,
    /// `general.name` for GGUF (default: from the input's folder or file name, as llama.cpp's
    /// converter derives it: `tiny` -> `Tiny`, `Llama-2-7b-hf` -> `Llama 2 7b Hf`).
    #[arg(long)]
    pub name: Option<String>,
    /// Largest safetensors file before splitting, e.g. 5GB, 500MB, 2GiB.
    #[arg(long, default_value = "5GB")]
    pub max_shard_size: String,
    /// GGUF with the metadata and vocabulary only, no tensors (as llama.cpp's
    /// `convert_hf_to_gguf.py --vocab-only`); `tokenize` and llama.cpp read it.
    #[arg(long)]
    pub vocab_only: bool,
    /// Worker threads for quantization (default: all cores).
    #[arg(short = 'j', long = "jobs", alias = "threads", value_name = "N")]
    pub jobs: Option<usize>,
    /// Convert even when tokenizer.model has more pieces than the model has embedding rows
    /// (ids past the last row cannot be embedded; GGUF output drops those pieces).
    #[arg(long)]
    pub allow_vocab_mismatch: bool,
}

/// Arguments of `llama-tool reshard`.
#[derive(clap::Args)]
pub struct ReshardArgs {
    /// Input checkpoint (Meta folder, or anything convert reads).
    pub input: PathBuf,
    /// Model-parallel shard count.
    #[arg(long)]
    pub mp: usize,
    #[command(flatten)]
    pub write: WriteArgs,
}

/// Parse "5GB", "500MB", "2GiB", "1000".
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| anyhow!("bad size `{s}`"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => bail!("bad size unit in `{s}` (use B, KB, MB, GB, KiB, MiB, GiB)"),
    };
    Ok((n * mult) as u64)
}

struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn advance(&self, bytes: u64, tensor: &str) {
        self.0.inc(bytes);
        self.0.set_message(tensor.to_string());
    }
}

/// The `--outtype` (or `--q4` / `--q8`) asked for, refused when `format` cannot hold it.
fn pick_outtype(a: &Args, format: OutputFormat) -> anyhow::Result<Option<Preset>> {
    let preset = if a.q4 {
        Preset::Q4_K_M
    } else if a.q8 {
        Preset::Q8_0
    } else {
        match a.outtype {
            Some(t) => t.preset(),
            None => return Ok(None),
        }
    };
    if let Err(ConvertError::QuantizedNeedsGguf { preset }) = convert::check_outtype(format, preset)
    {
        bail!("--outtype {preset} is only available with --to gguf (safetensors and pth hold float tensors)");
    }
    Ok(Some(preset))
}

/// A library refusal with the flag that overrides it.
fn with_flag(e: ConvertError) -> anyhow::Error {
    let flag = match &e {
        ConvertError::ExtraTensors { .. } => "--allow-extra to pass them through unchanged",
        ConvertError::VocabTooLarge { .. } => "--allow-vocab-mismatch to convert anyway",
        _ => return e.into(),
    };
    anyhow!("{e}; pass {flag}")
}

/// Run `convert`.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let target = match a.to.map(Target::format) {
        Some(t) => t,
        None => OutputFormat::from_name(&a.write.output)
            .ok_or_else(|| anyhow!("say --to gguf|safetensors|pth (or give -o a .gguf name)"))?,
    };
    if let Some(n) = a.jobs {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .ok();
    }
    let preset = pick_outtype(&a, target)?;
    if a.mp.is_some() && target != OutputFormat::Pth {
        bail!("--mp applies to --to pth only");
    }
    if a.vocab_only && target != OutputFormat::Gguf {
        bail!("--vocab-only applies to --to gguf only");
    }
    check_output(&a.write.output, a.write.force)?;
    let started = Instant::now();
    let ck = Checkpoint::open(&a.input)?;
    convert::check_extra(&ck, a.write.allow_extra).map_err(with_flag)?;
    let params = ck.params()?;
    if !a.allow_vocab_mismatch {
        convert::check_vocab_fits(&ck, params.vocab_size).map_err(with_flag)?;
    }
    let ctx = a.ctx_len.unwrap_or_else(|| params.default_context_length());
    let bar = Bar(bytes_bar(
        convert::source_bytes(&ck),
        "converting",
        a.write.json,
    ));
    // The digests the side files need are computed from the bytes as they are written.
    let algos = side_files::export_digests(!a.write.no_manifest, target == OutputFormat::Pth);
    let digest_taps = DigestTaps::new(&algos);
    let taps: Option<&dyn TapFactory> = (!algos.is_empty()).then_some(&digest_taps as _);
    let summary = match target {
        OutputFormat::Gguf => {
            let tokenizer = ck.tokenizer()?;
            if tokenizer.is_none() && !a.vocab_only {
                eprintln!("llama-tool: warning: no tokenizer.model found beside {}; the GGUF will have no vocabulary", a.input.display());
            }
            let preset = preset.unwrap_or(Preset::F16);
            let opts = export::gguf::GgufOptions {
                name: a.name.clone(),
                model_ids: convert::model_ids(&ck, &a.input),
                context_length: ctx,
                preset,
                tokenizer: tokenizer.as_ref(),
                allow_extra: a.write.allow_extra,
                vocab_only: a.vocab_only,
            };
            let file = atomic::create_file_output(&a.write.output)?;
            let tap = taps.and_then(|t| t.tap(&a.write.output));
            let out = PipedOutput::new(file, tap)
                .with_context(|| format!("create {}", a.write.output.display()))?;
            let (out, mut s) = export::gguf::write_gguf(&ck, out, &opts, &bar)?;
            commit_piped(out, &mut s)?;
            s
        }
        OutputFormat::Safetensors => {
            let opts = export::hf::HfOptions {
                dtype: convert::float_dtype(preset),
                max_shard_size: parse_size(&a.max_shard_size)?,
                context_length: ctx,
                allow_extra: a.write.allow_extra,
            };
            convert::write_folder(&a.write.output, a.write.force, |dir| {
                anyhow::Ok(export::hf::write_hf_tapped(&ck, dir, &opts, &bar, taps)?)
            })?
        }
        OutputFormat::Pth => {
            let opts = export::meta::MetaOptions {
                mp: a.mp.unwrap_or(1),
                dtype: convert::float_dtype(preset),
                allow_extra: a.write.allow_extra,
            };
            export::meta::check_mp(&ck, opts.mp)?;
            convert::write_folder(&a.write.output, a.write.force, |dir| {
                let mut s = export::meta::write_meta_tapped(&ck, dir, &opts, &bar, taps)?;
                side_files::finish_meta_folder(&ck, dir, &mut s)?;
                anyhow::Ok(s)
            })?
        }
    };
    bar.0.finish_and_clear();
    let manifest = if a.write.no_manifest {
        None
    } else {
        Some(side_files::write_output_manifest(
            &a.write.output,
            &summary.files,
            &summary.digests,
        )?)
    };
    report(
        &a.write.output,
        &summary,
        manifest.as_deref(),
        started,
        a.write.json,
    )
}

fn report(
    out: &Path,
    s: &ExportSummary,
    manifest: Option<&Path>,
    started: Instant,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let secs = started.elapsed().as_secs_f64();
    let file_bytes: u64 = s
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bpw = if s.parameters > 0 {
        s.tensor_bytes as f64 * 8.0 / s.parameters as f64
    } else {
        0.0
    };
    if json {
        let v = serde_json::json!({
            "ok": true, "out": out, "files": s.files, "manifest": manifest, "tensors": s.tensors, "parameters": s.parameters,
            "tensor_bytes": s.tensor_bytes, "output_bytes": file_bytes, "bits_per_weight": bpw, "types": s.types, "seconds": secs,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let types: Vec<String> = s.types.iter().map(|(k, v)| format!("{k} x{v}")).collect();
        println!(
            "wrote {} ({} tensors, {} params, {:.2} GB, {:.2} bits/weight; {}) in {:.1}s",
            out.display(),
            s.tensors,
            s.parameters,
            file_bytes as f64 / 1e9,
            bpw,
            types.join(", "),
            secs
        );
        if let Some(m) = manifest {
            println!(
                "manifest: {} (check with `llama-tool verify {}`)",
                m.display(),
                m.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Run `reshard` (convert --to pth --mp M).
pub fn run_reshard(a: ReshardArgs) -> anyhow::Result<ExitCode> {
    run(Args {
        input: a.input,
        to: Some(Target::Pth),
        write: a.write,
        outtype: None,
        q4: false,
        q8: false,
        mp: Some(a.mp),
        ctx_len: None,
        name: None,
        max_shard_size: "5GB".into(),
        vocab_only: false,
        jobs: None,
        allow_vocab_mismatch: false,
    })
}
