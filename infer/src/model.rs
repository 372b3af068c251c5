//! The LLaMA forward pass, following the math of Meta's `model.py`
//! (<https://github.com/facebookresearch/llama/blob/llama_v1/llama/model.py>): RMSNorm,
//! rotary embeddings on interleaved pairs `(x[2i], x[2i+1])`, causal attention with grouped
//! key/value heads (`repeat_kv`), SwiGLU feed-forward `w2(silu(w1 x) * w3 x)`; all in f32.
//!
//! The pass runs layer by layer over every sequence at once: one layer's weights are loaded,
//! applied to all hidden states and dropped before the next is loaded, so a model is never
//! held whole in memory (peak: one layer in f32 plus activations).

use candle_core::{Device, Tensor, D};

use crate::weights::{fetch, linear, rows, vector, InferError, Linear, LlamaConfig, WeightSource};

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
    cfg: LlamaConfig,
    device: Device,
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
        let cfg = source.config()?;
        cfg.validate()?;
        if seqs.is_empty() || seqs.iter().any(|s| s.is_empty()) {
            return Err(InferError::NoTokens);
        }
        let hidden = {
            let name = "tok_embeddings.weight";
            let emb = fetch(source, &cfg, name)?;
            seqs.iter()
                .map(|s| rows(name, &emb, s, device))
                .collect::<Result<Vec<_>, _>>()?
        };
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
        self.cfg.n_layers
    }

    /// Blocks applied so far.
    pub fn layers_done(&self) -> usize {
        self.done
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    /// Apply the next block to every sequence; false once every block was applied.
    pub fn step(&mut self) -> Result<bool, InferError> {
        if self.done >= self.cfg.n_layers {
            return Ok(false);
        }
        let layer = Layer::load(self.source, &self.cfg, self.done, &self.device)?;
        for h in self.hidden.iter_mut() {
            *h = layer.forward(h, &self.cfg, &self.rope)?;
        }
        self.done += 1;
        Ok(true)
    }

    /// The residual stream of each sequence after the blocks applied so far, row-major
    /// `[tokens, dim]` in f32.
    pub fn hidden(&self) -> Result<Vec<Vec<f32>>, InferError> {
        self.hidden
            .iter()
            .map(|h| Ok(h.flatten_all()?.to_vec1::<f32>()?))
            .collect()
    }

    /// Apply the remaining blocks, the final norm and the output projection: the logits of
    /// each sequence, row-major `[tokens, vocab]`.
    pub fn finish(mut self) -> Result<Vec<Vec<f32>>, InferError> {
        while self.step()? {}
        let (source, cfg, device) = (self.source, &self.cfg, &self.device);
        let norm = vector(source, cfg, "norm.weight", device)?;
        let output = linear(source, cfg, "output.weight", device)?;
        let mut out = Vec::with_capacity(self.hidden.len());
        for h in self.hidden {
            let x = rms_norm(&h, &norm, cfg.norm_eps)?;
            let l = output.forward(&x)?;
            out.push(l.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }
}

/// Rotary tables: cos and sin of `pos * theta^(-2i/head_dim)`, computed in f64.
struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    fn new(cfg: &LlamaConfig, max_len: usize, device: &Device) -> Result<Rope, InferError> {
        let hd = cfg.head_dim();
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
            cos: Tensor::from_vec(cos, (max_len, 1, half, 1), device)?,
            sin: Tensor::from_vec(sin, (max_len, 1, half, 1), device)?,
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
fn causal_mask(t: usize, device: &Device) -> candle_core::Result<Tensor> {
    let m: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(m, (t, t), device)
}

struct Layer {
    attention_norm: Tensor,
    ffn_norm: Tensor,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    w1: Linear,
    w2: Linear,
    w3: Linear,
}

impl Layer {
    fn load(
        src: &dyn WeightSource,
        cfg: &LlamaConfig,
        l: usize,
        device: &Device,
    ) -> Result<Layer, InferError> {
        let n = |leaf: &str| format!("layers.{l}.{leaf}");
        Ok(Layer {
            attention_norm: vector(src, cfg, &n("attention_norm.weight"), device)?,
            ffn_norm: vector(src, cfg, &n("ffn_norm.weight"), device)?,
            wq: linear(src, cfg, &n("attention.wq.weight"), device)?,
            wk: linear(src, cfg, &n("attention.wk.weight"), device)?,
            wv: linear(src, cfg, &n("attention.wv.weight"), device)?,
            wo: linear(src, cfg, &n("attention.wo.weight"), device)?,
            w1: linear(src, cfg, &n("feed_forward.w1.weight"), device)?,
            w2: linear(src, cfg, &n("feed_forward.w2.weight"), device)?,
            w3: linear(src, cfg, &n("feed_forward.w3.weight"), device)?,
        })
    }

    fn forward(&self, h: &Tensor, cfg: &LlamaConfig, rope: &Rope) -> Result<Tensor, InferError> {
        let (t, _) = h.dims2()?;
        let (nh, nkv, hd) = (cfg.n_heads, cfg.n_kv_heads, cfg.head_dim());
        let n_rep = nh / nkv;
        let x = rms_norm(h, &self.attention_norm, cfg.norm_eps)?;
        let q = rope.apply(&self.wq.forward(&x)?.reshape((t, nh, hd))?)?;
        let k = rope.apply(&self.wk.forward(&x)?.reshape((t, nkv, hd))?)?;
        let v = self.wv.forward(&x)?.reshape((t, nkv, hd))?;
        // [heads, T, hd]; the n_rep query heads of one kv head are consecutive (repeat_kv).
        let q = q
            .transpose(0, 1)?
            .contiguous()?
            .reshape((nkv, n_rep * t, hd))?;
        let k = k.transpose(0, 1)?.contiguous()?;
        let v = v.transpose(0, 1)?.contiguous()?;
        let mask = causal_mask(t, h.device())?;
        let scale = 1.0 / (hd as f64).sqrt();
        let mut groups = Vec::with_capacity(nkv);
        for g in 0..nkv {
            let (qg, kg, vg) = (q.get(g)?, k.get(g)?, v.get(g)?);
            let s = (qg.matmul(&kg.t()?)? * scale)?.reshape((n_rep, t, t))?;
            let p = softmax_last(&s.broadcast_add(&mask)?)?.reshape((n_rep * t, t))?;
            groups.push(p.matmul(&vg)?);
        }
        let o = Tensor::stack(&groups, 0)?
            .reshape((nh, t, hd))?
            .transpose(0, 1)?
            .reshape((t, nh * hd))?;
        let h = (h + self.wo.forward(&o)?)?;
        let x = rms_norm(&h, &self.ffn_norm, cfg.norm_eps)?;
        let ff = self
            .w2
            .forward(&(self.w1.forward(&x)?.silu()? * self.w3.forward(&x)?)?)?;
        Ok((h + ff)?)
    }
}
