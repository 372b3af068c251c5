//! `llama-tool logits`: next-token logits of a model for every position of a prompt,
//! written as a float32 `.npy` `[n_tokens, vocab]`; the top-K next tokens of the last
//! position are printed, decoded. Shared with `check`: token input and model running.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use llama_formats::checkpoint::Checkpoint;
use llama_formats::prompt;
use llama_infer::tokenizer::Tokenizer;
use llama_infer::{npy, Device};

use crate::args::TokenInput;

/// Arguments of `llama-tool logits`.
#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint: Meta folder, Hugging Face folder, .gguf, .pth or .safetensors.
    pub model: PathBuf,
    #[command(flatten)]
    pub input: TokenInput,
    /// Write all logits as float32 .npy of shape [n_tokens, vocab].
    #[arg(short = 'o', long = "output", alias = "out", value_name = "FILE.npy")]
    pub output: Option<PathBuf>,
    /// Replace an existing -o FILE (refused otherwise, exit 2).
    #[arg(long)]
    pub force: bool,
    /// How many next tokens of the last position to show.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// cpu, or cuda / cuda:N in a build with `--features cuda`.
    #[arg(long, default_value = "cpu", value_parser = crate::args::parse_device)]
    pub device: String,
}

/// The tokenizer of a checkpoint (tokenizer.model beside it, or a GGUF's vocabulary).
pub(crate) fn tokenizer_of(ck: &Checkpoint) -> anyhow::Result<Tokenizer> {
    let sp = ck
        .tokenizer()
        .with_context(|| format!("{}: read the tokenizer", ck.path().display()))?
        .ok_or_else(|| anyhow!("{}: no tokenizer.model found (beside it or in its parent folder); pass --tokens instead of --prompt", ck.path().display()))?;
    Tokenizer::new(sp).with_context(|| format!("{}: tokenizer", ck.path().display()))
}

/// Resolve the token ids of `input`, tokenizing a prompt with `ck`'s tokenizer; refused
/// when longer than the model's context length ([`prompt::check_prompt_length`]).
pub(crate) fn resolve_tokens(input: &TokenInput, ck: &Checkpoint) -> anyhow::Result<Vec<u32>> {
    let ids = resolve_tokens_unchecked(input, ck)?;
    prompt::check_prompt_length(ck.path(), ids.len(), context_limit(ck)?)?;
    Ok(ids)
}

/// The most tokens one sequence may have ([`prompt::context_limit`]).
pub(crate) fn context_limit(ck: &Checkpoint) -> anyhow::Result<usize> {
    Ok(prompt::context_limit(&ck.params()?))
}

fn resolve_tokens_unchecked(input: &TokenInput, ck: &Checkpoint) -> anyhow::Result<Vec<u32>> {
    if let Some(p) = &input.prompt {
        let ids = tokenizer_of(ck)?.encode(p, true);
        return Ok(ids);
    }
    if let Some(t) = &input.tokens {
        return Ok(prompt::parse_prompt_ids(t, "--tokens")?);
    }
    if let Some(f) = &input.tokens_file {
        let text = llama_codecs::safe_read::read_capped_string(f, 64 << 20)
            .with_context(|| format!("read {}", f.display()))?;
        return Ok(prompt::parse_prompt_ids(&text, &f.display().to_string())?);
    }
    bail!("give --prompt, --tokens or --tokens-file")
}

/// Open a checkpoint with its path in the error.
pub(crate) fn open(path: &Path) -> anyhow::Result<Checkpoint> {
    Checkpoint::open(path).with_context(|| format!("open {}", path.display()))
}

/// Logits of `seqs` on `ck`, with a per-layer progress bar on a terminal.
pub(crate) fn run_model(
    ck: &Checkpoint,
    seqs: &[&[u32]],
    device: &Device,
    label: &str,
    quiet: bool,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let bar = crate::progress::count_bar(0, label, "layers", quiet);
    let out = llama_infer::logits_batch(ck, seqs, device, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .with_context(|| format!("{}: forward pass", ck.path().display()))?;
    bar.finish_and_clear();
    Ok(out)
}

/// `(id, logit, probability)` of the `k` largest logits of one row.
pub(crate) fn top_k(row: &[f32], k: usize) -> Vec<(u32, f32, f64)> {
    let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let z: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
    let mut idx: Vec<u32> = (0..row.len() as u32).collect();
    idx.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b)));
    idx.truncate(k);
    idx.into_iter()
        .map(|i| {
            (
                i,
                row[i as usize],
                ((row[i as usize] as f64 - max).exp()) / z,
            )
        })
        .collect()
}

/// `▁word` -> ` word`; `<0x0A>`, `<s>` and the like unchanged.
fn display_piece(p: &str) -> String {
    if p.starts_with('<') && p.ends_with('>') && p.len() > 2 {
        return p.to_string();
    }
    p.replace('\u{2581}', " ")
}

/// Run the command.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let device = llama_infer::device(&a.device)?;
    let ck = open(&a.model)?;
    let tokens = resolve_tokens(&a.input, &ck)?;
    let tok = tokenizer_of(&ck).ok();
    let started = std::time::Instant::now();
    let logits = run_model(&ck, &[&tokens], &device, "logits", a.json)?
        .pop()
        .unwrap_or_default();
    let seconds = started.elapsed().as_secs_f64();
    let vocab = logits.len() / tokens.len().max(1);
    if let Some(out) = &a.output {
        let npy = npy::encode_f32(&[tokens.len(), vocab], &logits);
        crate::args::write_file_output(out, a.force, &npy)?;
    }
    let last = &logits[(tokens.len() - 1) * vocab..];
    let top = top_k(last, a.top);
    // A piece as it reads inside text: `▁` is a space; byte/control pieces stay as written.
    let piece = |id: u32| tok.as_ref().and_then(|t| t.piece(id)).map(display_piece);
    if a.json {
        let top: Vec<_> = top
            .iter()
            .map(|&(id, logit, p)| serde_json::json!({"id": id, "piece": tok.as_ref().and_then(|t| t.piece(id)), "text": piece(id), "logit": logit, "prob": p}))
            .collect();
        let v = serde_json::json!({
            "ok": true, "model": a.model, "tokens": tokens, "vocab": vocab, "output": a.output, "top": top,
            "device": a.device, "seconds": seconds, "tokens_per_second": tokens.len() as f64 / seconds,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: {} tokens, vocab {vocab}",
        a.model.display(),
        tokens.len()
    );
    if let Some(out) = &a.output {
        println!(
            "wrote {} (float32 [{}, {vocab}])",
            out.display(),
            tokens.len()
        );
    }
    println!("top {} next tokens after the last position:", top.len());
    println!(
        "{:>4}  {:>7}  {:>10}  {:>8}  text",
        "rank", "id", "logit", "prob"
    );
    for (r, &(id, logit, p)) in top.iter().enumerate() {
        let text = piece(id).map(|s| format!("{s:?}")).unwrap_or_default();
        println!(
            "{:>4}  {id:>7}  {logit:>10.4}  {:>7.3}%  {text}",
            r + 1,
            p * 100.0
        );
    }
    Ok(ExitCode::SUCCESS)
}
