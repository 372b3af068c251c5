//! `llama-tool check`: run two checkpoints on the same tokens (one model in memory at a
//! time) and compare their next-token distributions the way llama.cpp's
//! `llama-perplexity --kl-divergence` does, against thresholds chosen by the candidate's
//! weight type. Exit 0 pass, 1 fail, 2 error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use llama_formats::checkpoint::Checkpoint;
use llama_formats::llama::ModelParams;
use llama_infer::compare::{Comparator, Comparison};
use llama_infer::layers::LayerDivergence;
use llama_infer::main_weight_dtype;
use llama_infer::policy::{
    compare_params, default_thresholds, first_bad_layer, gates, Gate, ParamRow, Thresholds,
};

use crate::args::ReportArgs;

use super::logits::{open, resolve_tokens, run_model, tokenizer_of};
use crate::args::TokenInput;

const AFTER_HELP: &str = "\
Default thresholds, by the type that holds most of the candidate's layer weights (override
with --max-kld / --min-top1 / --max-abs; every check also fails on NaN or infinite logits):

  lossless (same float type as the reference, or wider)  top-1 agreement 100%, mean KLD <= 1e-6
  f16 from f32/bf16                                      mean KLD <= 1e-4
  bf16 from f32/f16                                      mean KLD <= 1e-3
  q8_0                                                   mean KLD <= 0.001
  q6_k                                                   mean KLD <= 0.005
  q5_k (q5_k_m/s), q5_0, q5_1                            mean KLD <= 0.01
  q4_k (q4_k_m/s)                                        mean KLD <= 0.02
  q4_0, q4_1                                             mean KLD <= 0.03
  q3_k (q3_k_s/m/l)                                      mean KLD <= 0.06
  q2_k                                                   mean KLD <= 0.15

Lossless pairs must also compute (near-)identical logits: max |Δlogit| <= 1e-4 of the
reference's logit range (skipped when --cand-device differs from --device). Both sides'
hyper-parameters (dim, layers, heads, kv heads, FFN width, vocab, norm_eps, rope_theta,
context length when both know it) are shown side by side; any that differs fails the check
whatever the logits say. --per-layer holds each layer's hidden-state relative RMS difference
to 1e-4 (lossless), 0.02 (f16 from f32), 0.05 (bf16) or 0.5 (quantized).

KLD is KL(reference || candidate) of the softmax at each position, in nats; llama.cpp's
perplexity README reports 0.00037 (q8_0), 0.0021 (q6_k), 0.0127 (q4_k_m), 0.109 (q2_k) for
LLaMA-2-7B. With --corpus the text is cut into --chunk-token chunks that each start with BOS
(as llama-perplexity does) and each model's perplexity is reported.";

/// Arguments of `llama-tool check`.
#[derive(clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct Args {
    /// The reference checkpoint (usually the original release).
    pub reference: PathBuf,
    /// The candidate checkpoint (a conversion or quantization of it).
    pub candidate: PathBuf,
    #[command(flatten)]
    pub input: TokenInput,
    /// A text file: tokenized, cut into --chunk chunks, perplexity reported.
    #[arg(long, group = "input")]
    pub corpus: Option<PathBuf>,
    /// Fail when the mean KL divergence exceeds X (nats).
    #[arg(long = "max-kld", value_name = "X")]
    pub max_kld: Option<f64>,
    /// Fail when top-1 agreement is below P percent (0-100).
    #[arg(long = "min-top1", value_name = "P")]
    pub min_top1: Option<f64>,
    /// Fail when any logit differs by more than D.
    #[arg(long = "max-abs", value_name = "D")]
    pub max_abs: Option<f64>,
    /// Tokens per chunk for --corpus (each chunk starts with BOS). Not the context length
    /// written into a GGUF (`convert --ctx-len`).
    #[arg(
        long = "chunk",
        alias = "ctx",
        value_name = "TOKENS",
        default_value_t = 512
    )]
    pub chunk: usize,
    /// At most this many corpus tokens are evaluated.
    #[arg(long = "max-tokens", default_value_t = 2048)]
    pub max_tokens: usize,
    /// cpu, or cuda / cuda:N in a build with `--features cuda`.
    #[arg(long, default_value = "cpu", value_parser = crate::args::parse_device)]
    pub device: String,
    /// Device for the candidate (default: --device); `check M M --cand-device cuda`
    /// compares CPU and CUDA logits of one model.
    #[arg(long = "cand-device", value_parser = crate::args::parse_device)]
    pub cand_device: Option<String>,
    /// Compare the hidden states after every layer (cosine, relative RMS) and name the
    /// first layer that diverges; both models run in lockstep, one layer of each in memory.
    #[arg(long = "per-layer")]
    pub per_layer: bool,
    #[command(flatten)]
    pub ci: ReportArgs,
    /// Also write a self-contained HTML report (summary, KLD plots, per-layer plot) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// The token sequences to evaluate.
fn sequences(
    a: &Args,
    ck: &llama_formats::checkpoint::Checkpoint,
) -> anyhow::Result<Vec<Vec<u32>>> {
    if let Some(path) = &a.corpus {
        if a.chunk < 2 {
            bail!("--chunk must be at least 2");
        }
        let limit = super::logits::context_limit(ck)?;
        if a.chunk > limit {
            bail!(
                "--chunk {} exceeds the model's context length of {limit}",
                a.chunk
            );
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let tok = tokenizer_of(ck)?;
        let bos = tok.bos_id().unwrap_or(1);
        let ids = tok.encode(&text, false);
        let seqs: Vec<Vec<u32>> = ids
            .chunks(a.chunk - 1)
            .scan(0usize, |used, c| {
                (*used < a.max_tokens).then(|| {
                    *used += c.len() + 1;
                    std::iter::once(bos).chain(c.iter().copied()).collect()
                })
            })
            .collect();
        if seqs.is_empty() {
            bail!("{}: no tokens in the corpus", path.display());
        }
        return Ok(seqs);
    }
    Ok(vec![resolve_tokens(&a.input, ck)?])
}

/// Everything one `check` run found: what `--json`, `--junit` and `--report` present.
#[derive(serde::Serialize)]
pub struct CheckResult {
    /// Whether every check passed (the `ok` of every command's --json; same as `pass`).
    pub ok: bool,
    /// The reference: path as given, kind, main weight type.
    pub reference: Side,
    /// The candidate.
    pub candidate: Side,
    /// Sequences evaluated.
    pub sequences: usize,
    /// Tokens evaluated.
    pub tokens: usize,
    /// The logits comparison.
    pub metrics: Comparison,
    /// The limits applied.
    pub thresholds: Thresholds,
    /// Both sides' hyper-parameters.
    pub hyper_parameters: Vec<ParamRow>,
    /// Every check, passed or failed.
    pub checks: Vec<Gate>,
    /// With --per-layer: the divergence after each layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerDivergence>>,
    /// With --per-layer: the first layer over the limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_layer: Option<usize>,
    /// KL divergence of every position, in order (not in --json; plotted by --report).
    #[serde(skip)]
    pub kld_per_position: Vec<f64>,
    /// Whether every check passed.
    pub pass: bool,
    /// The failed checks' details.
    pub failures: Vec<String>,
}

/// One side of a check.
#[derive(serde::Serialize)]
pub struct Side {
    /// Path as given.
    pub path: PathBuf,
    /// Checkpoint kind.
    pub kind: &'static str,
    /// Main weight type.
    pub weights: &'static str,
}

/// The hyper-parameters of a checkpoint, with its path in the error.
fn params_of(ck: &Checkpoint) -> anyhow::Result<ModelParams> {
    ck.params()
        .with_context(|| format!("{}: read the model's hyper-parameters", ck.path().display()))
}

/// Run the command.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let r = match evaluate(&a) {
        Ok(r) => r,
        Err(e) => {
            crate::ci::write_error(&a.ci, "check", &e);
            return Err(e);
        }
    };
    if a.ci.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print_table(&r);
    }
    if let Some(path) = &a.ci.junit {
        crate::ci::write_junit(path, a.ci.force, &crate::ci::check_suite(&r))?;
    }
    crate::ci::annotate_check(&r, a.ci.json);
    if let Some(path) = &a.report {
        crate::report_html::write(path, a.ci.force, &r)?;
        if !a.ci.json {
            println!("report: {}", path.display());
        }
    }
    Ok(if r.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_FAIL)
    })
}

/// Run both models and judge the candidate.
fn evaluate(a: &Args) -> anyhow::Result<CheckResult> {
    a.ci.check_outputs()?;
    if let Some(path) = &a.report {
        crate::args::check_file_output(path, a.ci.force)?;
    }
    let device = llama_infer::device(&a.device)?;
    let cand_device = match &a.cand_device {
        Some(d) => llama_infer::device(d)?,
        None => device,
    };
    let quiet = a.ci.json;
    let ref_ck = open(&a.reference)?;
    let seqs = match sequences(a, &ref_ck) {
        Ok(s) => s,
        // The reference may lack a tokenizer; the candidate may have one.
        Err(e) if a.input.prompt.is_some() || a.corpus.is_some() => {
            sequences(a, &open(&a.candidate)?).map_err(|_| e)?
        }
        Err(e) => return Err(e),
    };
    let views: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    let ref_params = params_of(&ref_ck)?;
    let ref_side = Side {
        path: a.reference.clone(),
        kind: ref_ck.kind().name(),
        weights: main_weight_dtype(&ref_ck)?.name(),
    };
    let ref_type = main_weight_dtype(&ref_ck)?;
    let (ref_logits, cand_logits, cand_side, cand_type, cand_params, layers) = if a.per_layer {
        let cand_ck = open(&a.candidate)?;
        let cand_params = params_of(&cand_ck)?;
        let cand_type = main_weight_dtype(&cand_ck)?;
        let bar = layer_bar("reference + candidate", quiet);
        let l = llama_infer::layers::run_lockstep(
            &ref_ck,
            &cand_ck,
            &views,
            &device,
            &cand_device,
            &mut |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            },
        )
        .context("per-layer forward pass")?;
        bar.finish_and_clear();
        let side = Side {
            path: a.candidate.clone(),
            kind: cand_ck.kind().name(),
            weights: cand_type.name(),
        };
        (
            l.reference,
            l.candidate,
            side,
            cand_type,
            cand_params,
            Some(l.layers),
        )
    } else {
        let ref_logits = run_model(&ref_ck, &views, &device, "reference", quiet)?;
        drop(ref_ck);
        let cand_ck = open(&a.candidate)?;
        let cand_params = params_of(&cand_ck)?;
        let cand_type = main_weight_dtype(&cand_ck)?;
        let cand_logits = run_model(&cand_ck, &views, &cand_device, "candidate", quiet)?;
        let side = Side {
            path: a.candidate.clone(),
            kind: cand_ck.kind().name(),
            weights: cand_type.name(),
        };
        (ref_logits, cand_logits, side, cand_type, cand_params, None)
    };
    let n_tokens: usize = seqs.iter().map(Vec::len).sum();
    let vocab = ref_logits[0].len() / seqs[0].len();
    if cand_logits[0].len() != ref_logits[0].len() {
        bail!(
            "the models' vocabularies differ: reference {vocab}, candidate {}",
            cand_logits[0].len() / seqs[0].len()
        );
    }
    let mut cmp = Comparator::new(vocab);
    for ((r, c), s) in ref_logits.iter().zip(&cand_logits).zip(&seqs) {
        cmp.add(r, c, Some(s))?;
    }
    let m = cmp.finish()?;
    let mut th = default_thresholds(ref_type, cand_type);
    if a.max_kld.is_some() {
        th.max_kld = a.max_kld;
    }
    if a.min_top1.is_some() {
        th.min_top1 = a.min_top1;
    }
    if a.max_abs.is_some() {
        th.max_abs = a.max_abs;
    }
    if a.cand_device.as_deref().is_some_and(|d| d != a.device) {
        // Two devices' kernels round differently: identical logits are not expected.
        th.max_abs_of_range = None;
    }
    let rows = compare_params(&ref_params, &cand_params);
    let checks = gates(&m, &th, Some(&rows), layers.as_deref());
    let failures: Vec<String> = checks
        .iter()
        .filter(|g| !g.pass)
        .map(|g| g.detail.clone())
        .collect();
    Ok(CheckResult {
        reference: ref_side,
        candidate: cand_side,
        sequences: seqs.len(),
        tokens: n_tokens,
        thresholds: th.clone(),
        hyper_parameters: rows,
        checks,
        first_bad_layer: layers.as_deref().and_then(|l| first_bad_layer(l, &th)),
        layers,
        kld_per_position: cmp.klds().to_vec(),
        ok: failures.is_empty(),
        pass: failures.is_empty(),
        failures,
        metrics: m,
    })
}

fn layer_bar(label: &str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(0);
    b.set_style(
        ProgressStyle::with_template("{msg:20} [{bar:40}] layer {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    b.set_message(label.to_string());
    b
}

fn print_table(r: &CheckResult) {
    let m = &r.metrics;
    let th = &r.thresholds;
    println!(
        "reference: {} ({}, {})",
        r.reference.path.display(),
        r.reference.kind,
        r.reference.weights
    );
    println!(
        "candidate: {} ({}, {})",
        r.candidate.path.display(),
        r.candidate.kind,
        r.candidate.weights
    );
    println!(
        "  {:<16} {:>12} {:>12}",
        "hyper-parameter", "reference", "candidate"
    );
    for p in &r.hyper_parameters {
        println!(
            "  {:<16} {:>12} {:>12}{}",
            p.name,
            ParamRow::cell(p.reference),
            ParamRow::cell(p.candidate),
            if p.differs { "  <- differs" } else { "" }
        );
    }
    println!(
        "evaluated: {} tokens in {} sequence(s), vocab {}",
        r.tokens, r.sequences, m.vocab
    );
    println!("  Mean    KLD: {:>12.6}", m.kld_mean);
    println!("  Maximum KLD: {:>12.6}", m.kld_max);
    println!("  99.0%   KLD: {:>12.6}", m.kld_p99);
    println!("  95.0%   KLD: {:>12.6}", m.kld_p95);
    println!("  90.0%   KLD: {:>12.6}", m.kld_p90);
    println!("  Median  KLD: {:>12.6}", m.kld_p50);
    println!("  Same top p:  {:>11.3} %", m.top1_agreement * 100.0);
    println!("  Max |Δlogit|: {:>11.6}", m.max_abs_diff);
    println!("  RMS  Δlogit: {:>12.6}", m.rms_diff);
    println!("  Logit range: {:>12.6}", m.logit_range);
    println!(
        "  Cosine mean/min: {:.8} / {:.8}",
        m.cosine_mean, m.cosine_min
    );
    if let (Some(rp), Some(cp)) = (m.ppl_reference, m.ppl_candidate) {
        println!("  Perplexity reference/candidate: {rp:.4} / {cp:.4}");
    }
    if let Some(layers) = &r.layers {
        println!(
            "  {:>5} {:>12} {:>12} {:>12}",
            "layer", "cosine min", "rel RMS", "max |Δh|"
        );
        for l in layers {
            println!(
                "  {:>5} {:>12.8} {:>12.3e} {:>12.3e}{}",
                l.layer,
                l.cosine_min,
                l.rel_rms,
                l.max_abs,
                if r.first_bad_layer == Some(l.layer) {
                    "  <- first bad layer"
                } else {
                    ""
                }
            );
        }
    }
    let limits = [
        th.max_kld.map(|x| format!("mean KLD <= {x}")),
        th.min_top1.map(|p| format!("top-1 >= {p}%")),
        th.max_abs.map(|d| format!("max |Δlogit| <= {d}")),
        th.max_abs_of_range
            .map(|f| format!("max |Δlogit| <= {f} of the logit range")),
        r.layers
            .as_ref()
            .map(|_| format!("layer rel RMS <= {}", th.max_layer_rel_rms)),
    ];
    let limits: Vec<String> = limits.into_iter().flatten().collect();
    println!("thresholds ({}): {}", th.class, limits.join(", "));
    if r.pass {
        println!("PASS");
    } else {
        println!("FAIL: {}", r.failures.join("; "));
    }
}
