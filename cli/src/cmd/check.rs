//! `llama-tool check`: run two checkpoints on the same tokens (one model in memory at a
//! time) and compare their next-token distributions the way llama.cpp's
//! `llama-perplexity --kl-divergence` does, against thresholds chosen by the candidate's
//! weight type. Exit 0 pass, 1 fail, 2 error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use llama_formats::DType;
use llama_infer::checkpoint_source::main_weight_dtype;
use llama_infer::compare::{Comparator, Comparison};

use super::logits::{open, resolve_tokens, run_model, tokenizer_of, TokenInput};

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

KLD is KL(reference || candidate) of the softmax at each position, in nats; llama.cpp's
perplexity README reports 0.00037 (q8_0), 0.0021 (q6_k), 0.0127 (q4_k_m), 0.109 (q2_k) for
LLaMA-2-7B. With --corpus the text is cut into --ctx-token chunks that each start with BOS
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
    pub input: CheckInput,
    /// Fail when the mean KL divergence exceeds X (nats).
    #[arg(long = "max-kld", value_name = "X")]
    pub max_kld: Option<f64>,
    /// Fail when top-1 agreement is below P percent (0-100).
    #[arg(long = "min-top1", value_name = "P")]
    pub min_top1: Option<f64>,
    /// Fail when any logit differs by more than D.
    #[arg(long = "max-abs", value_name = "D")]
    pub max_abs: Option<f64>,
    /// Tokens per chunk for --corpus (each chunk starts with BOS).
    #[arg(long, default_value_t = 512)]
    pub ctx: usize,
    /// At most this many corpus tokens are evaluated.
    #[arg(long = "max-tokens", default_value_t = 2048)]
    pub max_tokens: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// cpu, or cuda / cuda:N in a build with `--features cuda`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Device for the candidate (default: --device); `check M M --cand-device cuda`
    /// compares CPU and CUDA logits of one model.
    #[arg(long = "cand-device")]
    pub cand_device: Option<String>,
}

/// Tokens for `check`: the `logits` inputs plus a corpus file.
#[derive(clap::Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct CheckInput {
    /// Text to tokenize with the reference's tokenizer.model (BOS added).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Token ids, comma- or space-separated; used as given.
    #[arg(long)]
    pub tokens: Option<String>,
    /// A file of token ids.
    #[arg(long = "tokens-file")]
    pub tokens_file: Option<PathBuf>,
    /// A text file: tokenized, cut into --ctx chunks, perplexity reported.
    #[arg(long)]
    pub corpus: Option<PathBuf>,
}

/// The limits a run is judged by.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Thresholds {
    /// Why these defaults (the candidate's class).
    pub class: String,
    /// Mean KLD limit.
    pub max_kld: Option<f64>,
    /// Top-1 agreement floor, percent.
    pub min_top1: Option<f64>,
    /// Max |logit difference|.
    pub max_abs: Option<f64>,
}

fn float_rank(d: DType) -> Option<u8> {
    match d {
        DType::F64 => Some(3),
        DType::F32 => Some(2),
        DType::F16 | DType::BF16 => Some(1),
        _ => None,
    }
}

/// Default thresholds for a candidate whose main weight type is `cand`, made from `reference`.
pub fn default_thresholds(reference: DType, cand: DType) -> Thresholds {
    let t = |class: &str, kld: f64, top1: Option<f64>| Thresholds {
        class: class.into(),
        max_kld: Some(kld),
        min_top1: top1,
        max_abs: None,
    };
    match (float_rank(reference), float_rank(cand)) {
        (Some(r), Some(c)) if cand == reference || c > r => t(
            &format!("lossless ({reference} -> {cand})"),
            1e-6,
            Some(100.0),
        ),
        (_, Some(_)) if cand == DType::BF16 => t(&format!("{reference} -> bf16"), 1e-3, None),
        (_, Some(_)) => t(&format!("{reference} -> {cand}"), 1e-4, None),
        _ => {
            let kld = match cand {
                DType::Q8_0 | DType::Q8_1 | DType::Q8_K => 0.001,
                DType::Q6_K => 0.005,
                DType::Q5_K | DType::Q5_0 | DType::Q5_1 => 0.01,
                DType::Q4_K => 0.02,
                DType::Q4_0 | DType::Q4_1 => 0.03,
                DType::Q3_K => 0.06,
                _ => 0.15,
            };
            t(&format!("quantized {cand}"), kld, None)
        }
    }
}

/// Which limits a comparison breaks (empty: pass).
pub fn failures(c: &Comparison, th: &Thresholds) -> Vec<String> {
    let mut f = Vec::new();
    if c.non_finite > 0 {
        f.push(format!("{} logits are NaN or infinite", c.non_finite));
    }
    if let Some(x) = th.max_kld {
        if c.kld_mean.is_nan() || c.kld_mean > x {
            f.push(format!("mean KLD {:.6} > {x}", c.kld_mean));
        }
    }
    if let Some(p) = th.min_top1 {
        if c.top1_agreement * 100.0 < p {
            f.push(format!(
                "top-1 agreement {:.3}% < {p}%",
                c.top1_agreement * 100.0
            ));
        }
    }
    if let Some(d) = th.max_abs {
        if c.max_abs_diff.is_nan() || c.max_abs_diff > d {
            f.push(format!("max |logit diff| {:.6} > {d}", c.max_abs_diff));
        }
    }
    f
}

/// The token sequences to evaluate.
fn sequences(
    a: &Args,
    ck: &llama_formats::checkpoint::Checkpoint,
) -> anyhow::Result<Vec<Vec<u32>>> {
    if let Some(path) = &a.input.corpus {
        if a.ctx < 2 {
            bail!("--ctx must be at least 2");
        }
        let limit = super::logits::context_limit(ck)?;
        if a.ctx > limit {
            bail!(
                "--ctx {} exceeds the model's context length of {limit}",
                a.ctx
            );
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let tok = tokenizer_of(ck)?;
        let bos = tok.bos_id().unwrap_or(1);
        let ids = tok.encode(&text, false);
        let seqs: Vec<Vec<u32>> = ids
            .chunks(a.ctx - 1)
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
    let input = TokenInput {
        prompt: a.input.prompt.clone(),
        tokens: a.input.tokens.clone(),
        tokens_file: a.input.tokens_file.clone(),
    };
    Ok(vec![resolve_tokens(&input, ck)?])
}

/// Run the command.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let device = llama_infer::device(&a.device)?;
    let (seqs, ref_logits, ref_kind, ref_type) = {
        let ck = open(&a.reference)?;
        let seqs = match sequences(&a, &ck) {
            Ok(s) => s,
            // The reference may lack a tokenizer; the candidate may have one.
            Err(e) if a.input.prompt.is_some() || a.input.corpus.is_some() => {
                sequences(&a, &open(&a.candidate)?).map_err(|_| e)?
            }
            Err(e) => return Err(e),
        };
        let views: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
        let logits = run_model(&ck, &views, &device, "reference", a.json)?;
        (seqs, logits, ck.kind().name(), main_weight_dtype(&ck)?)
    };
    let cand_device = match &a.cand_device {
        Some(d) => llama_infer::device(d)?,
        None => device.clone(),
    };
    let ck = open(&a.candidate)?;
    let cand_kind = ck.kind().name();
    let cand_type = main_weight_dtype(&ck)?;
    let views: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    let cand_logits = run_model(&ck, &views, &cand_device, "candidate", a.json)?;
    drop(ck);
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
    let fails = failures(&m, &th);
    let pass = fails.is_empty();
    if a.json {
        let v = serde_json::json!({
            "reference": {"path": a.reference, "kind": ref_kind, "weights": ref_type.name()},
            "candidate": {"path": a.candidate, "kind": cand_kind, "weights": cand_type.name()},
            "sequences": seqs.len(), "tokens": n_tokens,
            "metrics": m, "thresholds": th, "pass": pass, "failures": fails,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "reference: {} ({ref_kind}, {ref_type})",
            a.reference.display()
        );
        println!(
            "candidate: {} ({cand_kind}, {cand_type})",
            a.candidate.display()
        );
        println!(
            "evaluated: {n_tokens} tokens in {} sequence(s), vocab {vocab}",
            seqs.len()
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
        println!(
            "  Cosine mean/min: {:.8} / {:.8}",
            m.cosine_mean, m.cosine_min
        );
        if let (Some(r), Some(c)) = (m.ppl_reference, m.ppl_candidate) {
            println!("  Perplexity reference/candidate: {r:.4} / {c:.4}");
        }
        let limits = [
            th.max_kld.map(|x| format!("mean KLD <= {x}")),
            th.min_top1.map(|p| format!("top-1 >= {p}%")),
            th.max_abs.map(|d| format!("max |Δlogit| <= {d}")),
        ];
        let limits: Vec<String> = limits.into_iter().flatten().collect();
        println!("thresholds ({}): {}", th.class, limits.join(", "));
        if pass {
            println!("PASS");
        } else {
            println!("FAIL: {}", fails.join("; "));
        }
    }
    Ok(if pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_FAIL)
    })
}
