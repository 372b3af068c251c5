//! The LLaMA forward pass, following the math of Meta's `model.py`
//! (<https://github.com/facebookresearch/llama/blob/llama_v1/llama/model.py>): RMSNorm,
//! rotary embeddings on interleaved pairs `(x[2i], x[2i+1])`, causal attention with grouped
//! key/value heads (`repeat_kv`), SwiGLU feed-forward `w2(silu(w1 x) * w3 x)`; all in f32.
//!
//! The pass runs weight by weight over every sequence at once: each weight matrix is
//! streamed from the checkpoint, applied to all hidden states (the sequences' rows stacked
//! into one matrix) and dropped before the next is read, so a model is never held whole in
//! memory. On the CPU, float weights are multiplied straight from the reader's blocks
//! ([`crate::dense`]: widened a few rows at a time into a reused per-thread buffer), and
//! quantized weights become candle `QMatMul`s per block of rows (one copy of the blocks,
//! never dequantized); on a GPU a float matrix is widened whole and uploaded. Peak memory:
//! one block of a weight plus the activations.

use crate::error::OrCompute;
use candle_core::{Module, Tensor, D};
use llama_formats::llama::{ModelParams, Role, TensorName};

use crate::dense;
use crate::device::Device;
use crate::error::InferError;
use crate::weights::{
    embed, fetch, linear_from, qmatmul, to_f32_tensor, vector, WeightSource, WeightTensor,
};

/// Next-token logits for every position of `tokens`, row-major `[tokens.len(), vocab]`.
pub fn logits(
    source: &dyn WeightSource,
    tokens: &[u32],
    device: &Device,
) -> Result<Vec<f32>, InferError> {
    let mut out = logits_batch(source, &[tokens], device, &mut |_, _| {})?;
    Ok(out.pop().unwrap_or_default())
}

/// Logits for several independent sequences (each starting at position 0), loading each
/// layer once. `on_layer(done, total)` is called after each layer.
pub fn logits_batch(
    source: &dyn WeightSource,
    seqs: &[&[u32]],
    device: &Device,
    on_layer: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Vec<f32>>, InferError> {
    let mut pass = ForwardPass::new(source, seqs, device)?;
    while pass.step()? {
        on_layer(pass.layers_done(), pass.n_layers());
    }
    pass.finish()
}

/// A forward pass driven one layer at a time, so two models can be run in lockstep and
/// their hidden states compared after every layer (`check --per-layer`). Holds one layer's
/// weights at a time (while [`step`](Self::step) runs) plus the hidden states.
pub struct ForwardPass<'a> {
    source: &'a dyn WeightSource,
    cfg: ModelParams,
    device: candle_core::Device,
    hidden: Vec<Tensor>,
    rope: Rope,
    done: usize,
}

impl<'a> ForwardPass<'a> {
    /// Embed `seqs` (each starting at position 0); no layer applied yet.
    pub fn new(
        source: &'a dyn WeightSource,
        seqs: &[&[u32]],
        device: &Device,
    ) -> Result<ForwardPass<'a>, InferError> {
        let cfg = source.params()?;
        if !(cfg.norm_eps > 0.0 && cfg.norm_eps < 1.0) {
            return Err(InferError::NormEps(cfg.norm_eps));
        }
        if !(cfg.rope_theta.is_finite() && cfg.rope_theta > 1.0) {
            return Err(InferError::RopeTheta(cfg.rope_theta));
        }
        if seqs.is_empty() || seqs.iter().any(|s| s.is_empty()) {
            return Err(InferError::NoTokens);
        }
        let device = device.backend()?;
        let device = &device;
        let hidden = embed(source, &cfg, seqs, device)?;
        let max_len = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
        let rope = Rope::new(&cfg, max_len, device)?;
        Ok(ForwardPass {
            source,
            cfg,
            device: device.clone(),
            hidden,
            rope,
            done: 0,
        })
    }

    /// Transformer blocks of the model.
    pub fn n_layers(&self) -> usize {
        self.cfg.n_layers as usize
    }

    /// Blocks applied so far.
    pub(crate) fn layers_done(&self) -> usize {
        self.done
    }

    /// The model's hyper-parameters.
    pub fn params(&self) -> &ModelParams {
        &self.cfg
    }

    /// Apply the next block to every sequence; false once every block was applied.
    pub fn step(&mut self) -> Result<bool, InferError> {
        if self.done >= self.n_layers() {
            return Ok(false);
        }
        layer_forward(
            self.source,
            &self.cfg,
            self.done,
            &self.device,
            &self.rope,
            &mut self.hidden,
        )?;
        self.done += 1;
        Ok(true)
    }

    /// The residual stream of each sequence after the blocks applied so far, row-major
    /// `[tokens, dim]` in f32.
    pub fn hidden(&self) -> Result<Vec<Vec<f32>>, InferError> {
        self.hidden
            .iter()
            .map(|h| h.flatten_all().compute()?.to_vec1::<f32>().compute())
            .collect()
    }

    /// Apply the remaining blocks, the final norm and the output projection: the logits of
    /// each sequence, row-major `[tokens, vocab]`.
    pub fn finish(mut self) -> Result<Vec<Vec<f32>>, InferError> {
        while self.step()? {}
        let norm = vector(
            self.source,
            &self.cfg,
            TensorName::global(Role::Norm),
            &self.device,
        )?;
        let xs = self
            .hidden
            .iter()
            .map(|h| rms_norm(h, &norm, self.cfg.norm_eps))
            .collect::<candle_core::Result<Vec<_>>>()
            .compute()?;
        self.hidden.clear();
        output_logits(self.source, &self.cfg, &self.device, &xs)
    }
}

/// Vocabulary rows of `output.weight` widened per step: bounds the f32 copy of the largest
/// matrix (vocab x dim) to about 64 MiB.
const OUTPUT_ROWS_F32_BYTES: usize = 64 << 20;

/// `x @ output^T` for each sequence, widening a float `output.weight` a slice of rows at a
/// time (each logit is one row's dot product, so slicing the rows changes no result).
fn output_logits(
    source: &dyn WeightSource,
    cfg: &ModelParams,
    device: &candle_core::Device,
    xs: &[Tensor],
) -> Result<Vec<Vec<f32>>, InferError> {
    let name = TensorName::global(Role::Output);
    if device.is_cpu() || !source.info(name)?.0.is_float() {
        return project(source, cfg, name, device, xs)?
            .iter()
            .map(|y| y.flatten_all().compute()?.to_vec1::<f32>().compute())
            .collect();
    }
    let t = fetch(source, cfg, name)?;
    if !t.dtype.is_float() {
        let output = linear_from(name, t, device)?;
        return xs
            .iter()
            .map(|x| {
                output
                    .forward(x)
                    .compute()?
                    .flatten_all()
                    .compute()?
                    .to_vec1::<f32>()
                    .compute()
            })
            .collect();
    }
    let (vocab, dim) = (cfg.vocab_size as usize, cfg.dim as usize);
    let row_bytes = t.data.len() / vocab.max(1);
    let step = (OUTPUT_ROWS_F32_BYTES / (4 * dim.max(1))).clamp(1, vocab.max(1));
    let mut parts: Vec<Vec<Tensor>> = vec![Vec::new(); xs.len()];
    let mut r0 = 0;
    while r0 < vocab {
        let r1 = (r0 + step).min(vocab);
        let slice = WeightTensor {
            dtype: t.dtype,
            shape: vec![(r1 - r0) as u64, dim as u64],
            data: std::borrow::Cow::Borrowed(&t.data[r0 * row_bytes..r1 * row_bytes]),
        };
        let w = to_f32_tensor(name, &slice, device)?;
        for (x, p) in xs.iter().zip(parts.iter_mut()) {
            p.push(x.matmul(&w.t().compute()?).compute()?);
        }
        r0 = r1;
    }
    parts
        .into_iter()
        .map(|p| {
            Tensor::cat(&p, 1)
                .compute()?
                .flatten_all()
                .compute()?
                .to_vec1::<f32>()
                .compute()
        })
        .collect()
}

/// Apply the linear weight `role` of layer `l` to every hidden state, read once and
/// dropped on return.
fn with_linear(
    source: &dyn WeightSource,
    cfg: &ModelParams,
    l: usize,
    role: Role,
    device: &candle_core::Device,
    xs: &[Tensor],
) -> Result<Vec<Tensor>, InferError> {
    project(source, cfg, TensorName::layer(l, role), device, xs)
}

/// `x @ W^T` for every sequence's rows `xs` (each `[T_i, in]`) with the matrix `name`
/// (`[out, in]`), which is streamed once: the sequences are stacked into one `[sum T_i, in]`
/// matrix, multiplied, and the result split again.
fn project(
    source: &dyn WeightSource,
    cfg: &ModelParams,
    name: TensorName,
    device: &candle_core::Device,
    xs: &[Tensor],
) -> Result<Vec<Tensor>, InferError> {
    let (dtype, shape) = crate::weights::checked_info(source, cfg, name)?;
    let lens = xs
        .iter()
        .map(|x| x.dim(0))
        .collect::<Result<Vec<_>, _>>()
        .compute()?;
    let x = match xs {
        [one] => one.clone(),
        _ => Tensor::cat(xs, 0).compute()?,
    };
    let y = if device.is_cpu() && dense::supported(dtype) {
        dense_cpu(source, name, dtype, &shape, &x)?
    } else if dtype.is_quantized() {
        let parts = qmatmul(source, name, dtype, &shape, device)?;
        let ys = parts
            .iter()
            .map(|q| q.forward(&x))
            .collect::<candle_core::Result<Vec<_>>>()
            .compute()?;
        match &ys[..] {
            [one] => one.clone(),
            _ => Tensor::cat(&ys, 1).compute()?,
        }
    } else {
        let t = fetch(source, cfg, name)?;
        linear_from(name, t, device)?.forward(&x).compute()?
    };
    let mut off = 0;
    lens.iter()
        .map(|&n| {
            let part = y.narrow(0, off, n).compute()?;
            off += n;
            Ok(part)
        })
        .collect()
}

/// [`project`] of float weights on the CPU: the weight's blocks of rows, as the source
/// streams them, go straight to [`dense::rows_into`].
fn dense_cpu(
    source: &dyn WeightSource,
    name: TensorName,
    dtype: llama_ggml::DType,
    shape: &[u64],
    x: &Tensor,
) -> Result<Tensor, InferError> {
    let (n_out, k) = (shape[0] as usize, shape[1] as usize);
    let t = x.dim(0).compute()?;
    let xv = x.flatten_all().compute()?.to_vec1::<f32>().compute()?;
    let mut y = vec![0f32; t * n_out];
    let row_bytes = k * dtype.block_bytes();
    let mut row0 = 0usize;
    let bad_size = InferError::bad_size(name, dtype, shape, (n_out * row_bytes) as u64);
    source.stream(name, &mut |b| {
        let rows = b.len() / row_bytes.max(1);
        if row_bytes == 0 || !b.len().is_multiple_of(row_bytes) || row0 + rows > n_out {
            return Err(bad_size(row0 * row_bytes + b.len()));
        }
        dense::rows_into(&xv, k, dtype, b, row0, &mut y, n_out);
        row0 += rows;
        Ok(())
    })?;
    if row0 != n_out {
        return Err(bad_size(row0 * row_bytes));
    }
    Tensor::from_vec(y, (t, n_out), x.device()).compute()
}

/// One transformer block over every sequence, loading one weight at a time.
fn layer_forward(
    source: &dyn WeightSource,
    cfg: &ModelParams,
    l: usize,
    device: &candle_core::Device,
    rope: &Rope,
    hidden: &mut [Tensor],
) -> Result<(), InferError> {
    let n = |role| TensorName::layer(l, role);
    let attention_norm = vector(source, cfg, n(Role::AttnNorm), device)?;
    let xs = hidden
        .iter()
        .map(|h| rms_norm(h, &attention_norm, cfg.norm_eps))
        .collect::<candle_core::Result<Vec<_>>>()
        .compute()?;
    let q = with_linear(source, cfg, l, Role::Wq, device, &xs)?;
    let k = with_linear(source, cfg, l, Role::Wk, device, &xs)?;
    let v = with_linear(source, cfg, l, Role::Wv, device, &xs)?;
    drop(xs);
    let o = q
        .iter()
        .zip(&k)
        .zip(&v)
        .map(|((q, k), v)| attention(q, k, v, cfg, rope))
        .collect::<Result<Vec<_>, InferError>>()?;
    drop((q, k, v));
    let wo = with_linear(source, cfg, l, Role::Wo, device, &o)?;
    for (h, a) in hidden.iter_mut().zip(wo) {
        *h = (&*h + a).compute()?;
    }
    let ffn_norm = vector(source, cfg, n(Role::FfnNorm), device)?;
    let xs = hidden
        .iter()
        .map(|h| rms_norm(h, &ffn_norm, cfg.norm_eps))
        .collect::<candle_core::Result<Vec<_>>>()
        .compute()?;
    let gate = with_linear(source, cfg, l, Role::W1, device, &xs)?
        .into_iter()
        .map(|g| g.silu())
        .collect::<candle_core::Result<Vec<_>>>()
        .compute()?;
    let up = with_linear(source, cfg, l, Role::W3, device, &xs)?;
    drop(xs);
    let prod = gate
        .iter()
        .zip(&up)
        .map(|(g, u)| g * u)
        .collect::<candle_core::Result<Vec<_>>>()
        .compute()?;
    drop((gate, up));
    let ff = with_linear(source, cfg, l, Role::W2, device, &prod)?;
    for (h, f) in hidden.iter_mut().zip(ff) {
        *h = (&*h + f).compute()?;
    }
    Ok(())
}

/// Causal attention of one sequence from its projections `[T, heads * head_dim]`, with
/// grouped key/value heads; returns `[T, dim]` before the output projection.
fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    cfg: &ModelParams,
    rope: &Rope,
) -> Result<Tensor, InferError> {
    let (t, _) = q.dims2().compute()?;
    let (nh, nkv, hd) = (
        cfg.n_heads as usize,
        cfg.n_kv_heads as usize,
        cfg.head_dim() as usize,
    );
    let n_rep = nh / nkv;
    let q = rope.apply(&q.reshape((t, nh, hd)).compute()?).compute()?;
    let k = rope.apply(&k.reshape((t, nkv, hd)).compute()?).compute()?;
    let v = v.reshape((t, nkv, hd)).compute()?;
    // [heads, T, hd]; the n_rep query heads of one kv head are consecutive (repeat_kv).
    let q = q
        .transpose(0, 1)
        .compute()?
        .contiguous()
        .compute()?
        .reshape((nkv, n_rep * t, hd))
        .compute()?;
    let k = k.transpose(0, 1).compute()?.contiguous().compute()?;
    let v = v.transpose(0, 1).compute()?.contiguous().compute()?;
    let mask = causal_mask(t, q.device()).compute()?;
    let scale = 1.0 / (hd as f64).sqrt();
    let mut groups = Vec::with_capacity(nkv);
    for g in 0..nkv {
        let (qg, kg, vg) = (
            q.get(g).compute()?,
            k.get(g).compute()?,
            v.get(g).compute()?,
        );
        let s = (qg.matmul(&kg.t().compute()?).compute()? * scale)
            .compute()?
            .reshape((n_rep, t, t))
            .compute()?;
        let p = softmax_last(&s.broadcast_add(&mask).compute()?)
            .compute()?
            .reshape((n_rep * t, t))
            .compute()?;
        groups.push(p.matmul(&vg).compute()?);
    }
    Tensor::stack(&groups, 0)
        .compute()?
        .reshape((nh, t, hd))
        .compute()?
        .transpose(0, 1)
        .compute()?
        .reshape((t, nh * hd))
        .compute()
}

/// Rotary tables: cos and sin of `pos * theta^(-2i/head_dim)`, computed in f64.
struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    fn new(
        cfg: &ModelParams,
        max_len: usize,
        device: &candle_core::Device,
    ) -> Result<Rope, InferError> {
        let hd = cfg.head_dim() as usize;
        let half = hd / 2;
        let mut cos = Vec::with_capacity(max_len * half);
        let mut sin = Vec::with_capacity(max_len * half);
        for pos in 0..max_len {
            for i in 0..half {
                let freq = 1.0 / cfg.rope_theta.powf((2 * i) as f64 / hd as f64);
                let angle = pos as f64 * freq;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        Ok(Rope {
            cos: Tensor::from_vec(cos, (max_len, 1, half, 1), device).compute()?,
            sin: Tensor::from_vec(sin, (max_len, 1, half, 1), device).compute()?,
        })
    }

    /// Rotate `x` `[T, heads, head_dim]` in the interleaved layout.
    fn apply(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (t, h, hd) = x.dims3()?;
        let x = x.reshape((t, h, hd / 2, 2))?;
        let x0 = x.narrow(3, 0, 1)?;
        let x1 = x.narrow(3, 1, 1)?;
        let cos = self.cos.narrow(0, 0, t)?;
        let sin = self.sin.narrow(0, 0, t)?;
        let r0 = (x0.broadcast_mul(&cos)? - x1.broadcast_mul(&sin)?)?;
        let r1 = (x0.broadcast_mul(&sin)? + x1.broadcast_mul(&cos)?)?;
        Tensor::cat(&[r0, r1], 3)?.reshape((t, h, hd))
    }
}

fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let inv = (ms + eps)?.sqrt()?.recip()?;
    x.broadcast_mul(&inv)?.broadcast_mul(w)
}

fn softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?;
    let e = x.broadcast_sub(&max)?.exp()?;
    let sum = e.sum_keepdim(D::Minus1)?;
    e.broadcast_div(&sum)
}

/// `[T, T]` additive causal mask: 0 on and below the diagonal, -inf above.
fn causal_mask(t: usize, device: &candle_core::Device) -> candle_core::Result<Tensor> {
    let m: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(m, (t, t), device)
}
