//! Synthetic Meta-layout checkpoints: deterministic random weights with the real tensor
//! shapes and model-parallel sharding of a LLaMA size (or a tiny model), written by our own
//! `.pth` writer, plus `params.json` and a SentencePiece `tokenizer.model`.
//!
//! Every value is a pure function of (seed, tensor, global element index), so a model
//! written with `--mp 8` merges to exactly the model written with `--mp 1`.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::cast;
use crate::dtype::DType;
use crate::export::{commit_output, create_output, io_at, ExportError};
use crate::llama::{KnownSize, MetaParams, ModelParams, Role, TensorName};
use crate::merge;
use crate::pth::PthWriter;
use crate::sentencepiece::SpModel;
use crate::tensor::TensorInfo;

/// Which model shape to synthesize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthShape {
    /// dim 256, 4 heads, 2 layers, FFN 768, vocab 512: every row a multiple of 256.
    Tiny,
    /// The released shapes (vocab 32000).
    Known(KnownSize),
}

impl SynthShape {
    /// Parse `tiny`, `7B`, `13B`, `30B`, `65B`.
    pub fn from_name(s: &str) -> Option<SynthShape> {
        if s.eq_ignore_ascii_case("tiny") {
            return Some(SynthShape::Tiny);
        }
        KnownSize::from_name(s).map(SynthShape::Known)
    }
}

/// What to write.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    /// The shape.
    pub shape: SynthShape,
    /// Number of layers (default: the size's own).
    pub layers: Option<u64>,
    /// Model-parallel shards (default: the release's count for the size, 1 for tiny).
    pub mp: Option<usize>,
    /// F16, BF16 or F32.
    pub dtype: DType,
    /// The seed.
    pub seed: u64,
    /// Grouped-query attention (Llama 2): key/value heads, dividing the head count
    /// (`n_kv_heads` in params.json; default: one per query head).
    pub kv_heads: Option<u64>,
    /// Llama 2's `ffn_dim_multiplier` (params.json), applied before rounding the FFN
    /// hidden size up to `multiple_of`.
    pub ffn_dim_multiplier: Option<f64>,
}

/// The `params.json` a spec describes (multiple_of 256 like the release).
pub fn synth_meta_params(spec: &SynthSpec) -> MetaParams {
    let (dim, heads, layers, eps) = match spec.shape {
        SynthShape::Tiny => (256, 4, 2, 1e-6),
        SynthShape::Known(k) => {
            let (d, h, l, _) = k.shape();
            (d, h, l, k.norm_eps())
        }
    };
    MetaParams {
        dim,
        n_layers: spec.layers.unwrap_or(layers),
        n_heads: heads,
        n_kv_heads: spec.kv_heads,
        vocab_size: -1,
        multiple_of: 256,
        ffn_dim_multiplier: spec.ffn_dim_multiplier,
        norm_eps: eps,
        rope_theta: None,
        extra: Default::default(),
    }
}

/// The parameters a spec describes.
pub fn synth_params(spec: &SynthSpec) -> ModelParams {
    let m = synth_meta_params(spec);
    let vocab = match spec.shape {
        SynthShape::Tiny => 512,
        SynthShape::Known(_) => 32000,
    };
    let mut p = ModelParams::from_meta(&m, vocab, m.hidden_dim());
    p.context_length = Some(if m.n_kv_heads.is_some() { 4096 } else { 2048 });
    p
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn name_key(seed: u64, name: &str) -> u64 {
    name.bytes()
        .fold(splitmix(seed), |h, b| splitmix(h ^ b as u64))
}

/// Value of element `index` of tensor `t` (uniform, scaled to keep activations sane).
fn value(key: u64, t: TensorName, p: &ModelParams, index: u64) -> f32 {
    let u = (splitmix(key ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93)) >> 40) as f32
        / (1u64 << 24) as f32; // [0, 1)
    let centered = 2.0 * u - 1.0;
    match t.role {
        Role::AttnNorm | Role::FfnNorm | Role::Norm => 1.0 + 0.1 * centered,
        Role::RopeFreqs => {
            1.0 / (p.rope_theta as f32).powf((2 * index) as f32 / p.head_dim() as f32)
        }
        Role::TokEmbeddings => centered,
        Role::W2 => centered * 1.7 / (p.hidden_dim as f32).sqrt(),
        _ => centered * 1.7 / (p.dim as f32).sqrt(),
    }
}

/// Write the checkpoint into `dir` (created if needed). Returns the files written.
pub fn synth(dir: &Path, spec: &SynthSpec) -> Result<Vec<PathBuf>, ExportError> {
    let p = synth_params(spec);
    let mp = spec.mp.unwrap_or(match spec.shape {
        SynthShape::Tiny => 1,
        SynthShape::Known(k) => k.shards(),
    });
    if !spec.dtype.is_float() || spec.dtype == DType::F64 {
        return Err(ExportError::SynthDType(spec.dtype));
    }
    if p.n_kv_heads == 0 || !p.n_heads.is_multiple_of(p.n_kv_heads) {
        return Err(ExportError::SynthKvHeads {
            kv_heads: p.n_kv_heads,
            heads: p.n_heads,
        });
    }
    if spec
        .ffn_dim_multiplier
        .is_some_and(|m| !(m.is_finite() && m > 0.0 && m <= 16.0))
    {
        return Err(ExportError::SynthFfnMultiplier);
    }
    for (what, n) in [
        ("n_heads", p.n_heads),
        ("n_kv_heads", p.n_kv_heads),
        ("dim", p.dim),
        ("FFN hidden size", p.hidden_dim),
        ("vocab", p.vocab_size),
    ] {
        if mp == 0 || n % mp as u64 != 0 {
            return Err(ExportError::SynthShards { mp, what, n });
        }
    }
    std::fs::create_dir_all(dir).map_err(io_at(dir))?;
    let mut files = Vec::new();
    let mut names = TensorName::all(p.n_layers);
    names.insert(3, TensorName::global(Role::RopeFreqs));
    for m in 0..mp {
        let stem = format!("consolidated.{m:02}");
        let path = dir.join(format!("{stem}.pth"));
        let mut plan = Vec::new();
        for &t in &names {
            let full = t.expected_shape(&p);
            let mut shape = full.clone();
            let range = match t.split_axis() {
                Some(a) => {
                    let r = merge::shard_range(&t.meta(), a, full[a], m, mp)?;
                    shape[a] = r.end - r.start;
                    Some((a, r))
                }
                None => None,
            };
            let dtype = if t.role == Role::RopeFreqs {
                DType::F32
            } else {
                spec.dtype
            };
            plan.push((
                t,
                full,
                range,
                TensorInfo {
                    name: t.meta(),
                    dtype,
                    shape,
                },
            ));
        }
        let out = create_output(&path)?;
        let infos = plan.iter().map(|x| x.3.clone()).collect();
        let mut w = PthWriter::new(out, &stem, infos)?;
        let mut bytes = Vec::new();
        for (t, full, range, info) in &plan {
            let key = name_key(spec.seed, &t.meta());
            let cols = full.last().copied().unwrap_or(1);
            let rows = info.shape.first().copied().unwrap_or(1);
            let local_cols = info.shape.last().copied().unwrap_or(1);
            let (row0, col0) = match range {
                Some((0, r)) if full.len() > 1 => (r.start, 0),
                Some((_, r)) if full.len() > 1 => (0, r.start),
                Some((_, r)) => (0, r.start),
                None => (0, 0),
            };
            let rows_in = if info.shape.len() > 1 { rows } else { 1 };
            let p = &p;
            let vals: Vec<f32> = (0..rows_in)
                .into_par_iter()
                .flat_map_iter(move |r| {
                    (0..local_cols).map(move |c| {
                        let gi = if full.len() > 1 {
                            (row0 + r) * cols + col0 + c
                        } else {
                            col0 + c
                        };
                        value(key, *t, p, gi)
                    })
                })
                .collect();
            bytes.clear();
            cast::from_f32_into(info.dtype, &vals, &mut bytes)?;
            w.write_tensor(&info.name, &bytes)?;
        }
        files.push(commit_output(w.finish()?, &path)?);
    }
    let params_path = dir.join("params.json");
    std::fs::write(&params_path, synth_meta_params(spec).to_json()).map_err(io_at(&params_path))?;
    files.push(params_path);
    let tok = dir.join("tokenizer.model");
    std::fs::write(&tok, SpModel::synthetic(p.vocab_size as usize).to_bytes())
        .map_err(io_at(&tok))?;
    files.push(tok);
    Ok(files)
}
