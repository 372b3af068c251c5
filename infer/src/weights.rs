//! What the forward pass needs from a checkpoint: the model's hyper-parameters
//! ([`LlamaConfig`]) and each tensor by its Meta name ([`WeightSource`]), in Meta's
//! orientation (`[out, in]`, interleaved rotary layout for `wq`/`wk`, as in
//! facebookresearch/llama `model.py`). Readers of every checkpoint kind implement the trait;
//! this module turns the bytes into candle tensors: float types are widened to f32,
//! ggml block-quantized types become candle `QMatMul`s over the raw blocks.

use std::borrow::Cow;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{Device, Module, Tensor};
use llama_formats::DType;

/// Errors of the inference crate.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The weight source failed (file unreadable, tensor missing, ...).
    #[error(transparent)]
    Source(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The checkpoint has no tensor of this Meta name.
    #[error("tensor `{0}` is missing from the checkpoint")]
    MissingTensor(String),
    /// A tensor's shape disagrees with the model's hyper-parameters.
    #[error(
        "tensor `{name}` has shape {got:?}, expected {expected:?} from the model's parameters"
    )]
    BadShape {
        /// Meta name.
        name: String,
        /// Shape found.
        got: Vec<u64>,
        /// Shape the config implies.
        expected: Vec<u64>,
    },
    /// A tensor's byte count disagrees with its dtype and shape.
    #[error("tensor `{name}` holds {got} bytes, but {dtype} {shape:?} needs {expected}")]
    BadSize {
        /// Meta name.
        name: String,
        /// Its dtype.
        dtype: DType,
        /// Its shape.
        shape: Vec<u64>,
        /// Bytes present.
        got: usize,
        /// Bytes needed.
        expected: u64,
    },
    /// A dtype the forward pass cannot compute with.
    #[error("tensor `{name}` has dtype {dtype}, which the forward pass does not support")]
    UnsupportedDType {
        /// Meta name.
        name: String,
        /// Its dtype.
        dtype: DType,
    },
    /// The hyper-parameters are inconsistent.
    #[error("invalid model parameters: {0}")]
    Config(String),
    /// A token id outside the vocabulary.
    #[error("token id {token} at position {position} is outside the vocabulary of {vocab}")]
    TokenOutOfRange {
        /// The id.
        token: u32,
        /// Its position in the sequence.
        position: usize,
        /// Vocabulary size.
        vocab: usize,
    },
    /// No tokens to evaluate.
    #[error("no tokens to evaluate")]
    NoTokens,
    /// `--device cuda` in a build without the `cuda` feature.
    #[error("this llama-tool was built without CUDA support; rebuild with `cargo build --release -p llama-tool --features cuda` (needs a CUDA toolkit; see docs/CUDA.md) or use --device cpu")]
    CudaNotBuilt,
    /// A device name other than `cpu`, `cuda`, `cuda:N`.
    #[error("unknown device `{0}` (expected cpu, cuda or cuda:N)")]
    UnknownDevice(String),
    /// candle failed.
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

impl InferError {
    /// Wrap any error of a weight source.
    pub fn source<E: std::error::Error + Send + Sync + 'static>(e: E) -> Self {
        InferError::Source(Box::new(e))
    }
}

/// LLaMA hyper-parameters, as Meta's `params.json` names them (plus what the tensors imply).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LlamaConfig {
    /// Model width.
    pub dim: usize,
    /// Transformer blocks.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (= n_heads without grouped-query attention).
    pub n_kv_heads: usize,
    /// Vocabulary size (rows of `tok_embeddings` / `output`).
    pub vocab_size: usize,
    /// Feed-forward width (rows of `w1`).
    pub hidden_dim: usize,
    /// RMSNorm epsilon.
    pub norm_eps: f64,
    /// Rotary base (10000 unless params.json says otherwise).
    pub rope_theta: f64,
}

impl LlamaConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.dim / self.n_heads.max(1)
    }

    /// Check the parameters fit together.
    pub fn validate(&self) -> Result<(), InferError> {
        let bad = |m: String| Err(InferError::Config(m));
        if self.dim == 0
            || self.n_layers == 0
            || self.n_heads == 0
            || self.vocab_size == 0
            || self.hidden_dim == 0
        {
            return bad(format!("zero-sized parameter in {self:?}"));
        }
        if !self.dim.is_multiple_of(self.n_heads) || !self.head_dim().is_multiple_of(2) {
            return bad(format!(
                "dim {} is not n_heads {} times an even head size",
                self.dim, self.n_heads
            ));
        }
        if self.n_kv_heads == 0 || !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return bad(format!(
                "n_heads {} is not a multiple of n_kv_heads {}",
                self.n_heads, self.n_kv_heads
            ));
        }
        let eps_ok = self.norm_eps > 0.0 && self.norm_eps < 1.0;
        if !eps_ok || self.rope_theta.is_nan() || self.rope_theta <= 1.0 {
            return bad(format!(
                "norm_eps {} / rope_theta {} out of range",
                self.norm_eps, self.rope_theta
            ));
        }
        Ok(())
    }

    /// The shape each Meta-named tensor must have (numpy order).
    pub fn expected_shape(&self, name: &str) -> Option<Vec<u64>> {
        let (d, h, v) = (
            self.dim as u64,
            self.hidden_dim as u64,
            self.vocab_size as u64,
        );
        let kv = (self.head_dim() * self.n_kv_heads) as u64;
        if name == "tok_embeddings.weight" || name == "output.weight" {
            return Some(vec![v, d]);
        }
        if name == "norm.weight" {
            return Some(vec![d]);
        }
        let rest = name.strip_prefix("layers.")?;
        let (_, leaf) = rest.split_once('.')?;
        Some(match leaf {
            "attention.wq.weight" | "attention.wo.weight" => vec![d, d],
            "attention.wk.weight" | "attention.wv.weight" => vec![kv, d],
            "feed_forward.w1.weight" | "feed_forward.w3.weight" => vec![h, d],
            "feed_forward.w2.weight" => vec![d, h],
            "attention_norm.weight" | "ffn_norm.weight" => vec![d],
            _ => return None,
        })
    }
}

/// One tensor's bytes, little-endian, contiguous, in numpy order and Meta orientation.
#[derive(Debug, Clone)]
pub struct WeightTensor<'a> {
    /// Element type (float or ggml block-quantized).
    pub dtype: DType,
    /// Shape, outermost first (`[out, in]` for linear layers).
    pub shape: Vec<u64>,
    /// The bytes (borrowed from a memory map where possible).
    pub data: Cow<'a, [u8]>,
}

/// A checkpoint as the forward pass sees it.
pub trait WeightSource {
    /// The model's hyper-parameters.
    fn config(&self) -> Result<LlamaConfig, InferError>;
    /// A tensor by Meta name (`tok_embeddings.weight`, `layers.0.attention.wq.weight`, ...,
    /// `norm.weight`, `output.weight`); q/k in Meta's interleaved rotary layout.
    fn tensor(&self, meta_name: &str) -> Result<WeightTensor<'_>, InferError>;
}

/// A linear layer's weight ready for `x @ W^T`.
pub(crate) enum Linear {
    /// f32 `[out, in]`.
    Dense(Tensor),
    /// ggml blocks.
    Quant(QMatMul),
}

impl Linear {
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Linear::Dense(w) => x.matmul(&w.t()?),
            Linear::Quant(q) => q.forward(x),
        }
    }
}

fn ggml_dtype(d: DType) -> Option<GgmlDType> {
    Some(match d {
        DType::F32 => GgmlDType::F32,
        DType::F16 => GgmlDType::F16,
        DType::BF16 => GgmlDType::BF16,
        DType::Q4_0 => GgmlDType::Q4_0,
        DType::Q4_1 => GgmlDType::Q4_1,
        DType::Q5_0 => GgmlDType::Q5_0,
        DType::Q5_1 => GgmlDType::Q5_1,
        DType::Q8_0 => GgmlDType::Q8_0,
        DType::Q8_1 => GgmlDType::Q8_1,
        DType::Q2_K => GgmlDType::Q2K,
        DType::Q3_K => GgmlDType::Q3K,
        DType::Q4_K => GgmlDType::Q4K,
        DType::Q5_K => GgmlDType::Q5K,
        DType::Q6_K => GgmlDType::Q6K,
        DType::Q8_K => GgmlDType::Q8K,
        _ => return None,
    })
}

/// Fetch a tensor and check its shape against the config and its size against its dtype.
pub(crate) fn fetch<'s>(
    src: &'s dyn WeightSource,
    cfg: &LlamaConfig,
    name: &str,
) -> Result<WeightTensor<'s>, InferError> {
    let t = src.tensor(name)?;
    if let Some(expected) = cfg.expected_shape(name) {
        if t.shape != expected {
            return Err(InferError::BadShape {
                name: name.to_string(),
                got: t.shape.clone(),
                expected,
            });
        }
    }
    let n = t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
    let need = n.and_then(|n| t.dtype.bytes_for(n));
    if need != Some(t.data.len() as u64) {
        return Err(InferError::BadSize {
            name: name.to_string(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            got: t.data.len(),
            expected: need.unwrap_or(u64::MAX),
        });
    }
    Ok(t)
}

/// A float tensor as f32 on `device`, any shape.
pub(crate) fn to_f32_tensor(
    name: &str,
    t: &WeightTensor<'_>,
    device: &Device,
) -> Result<Tensor, InferError> {
    let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
    if t.dtype.is_float() {
        let v = float_to_f32(t.dtype, &t.data).map_err(InferError::source)?;
        return Ok(Tensor::from_vec(v, shape, device)?);
    }
    Ok(qtensor(name, t, device)?.dequantize(device)?)
}

/// Widen little-endian F16/BF16/F32 bytes to f32 on all cores (half's SIMD conversion for
/// aligned 16-bit chunks); F64 and anything odd go through `llama_formats::cast`.
fn float_to_f32(dtype: DType, bytes: &[u8]) -> Result<Vec<f32>, llama_formats::cast::CastError> {
    use half::slice::HalfFloatSliceExt;
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 16;
    if cfg!(target_endian = "big")
        || !matches!(dtype, DType::F16 | DType::BF16 | DType::F32)
        || !bytes.len().is_multiple_of(dtype.block_bytes())
    {
        return llama_formats::cast::to_f32(dtype, bytes);
    }
    let es = dtype.block_bytes();
    let mut out = vec![0f32; bytes.len() / es];
    out.par_chunks_mut(CHUNK)
        .zip(bytes.par_chunks(CHUNK * es))
        .for_each(|(o, b)| match dtype {
            DType::F16 => match bytemuck::try_cast_slice::<u8, half::f16>(b) {
                Ok(h) => h.convert_to_f32_slice(o),
                Err(_) => o
                    .iter_mut()
                    .zip(b.chunks_exact(2))
                    .for_each(|(x, c)| *x = half::f16::from_le_bytes([c[0], c[1]]).to_f32()),
            },
            DType::BF16 => match bytemuck::try_cast_slice::<u8, half::bf16>(b) {
                Ok(h) => h.convert_to_f32_slice(o),
                Err(_) => o
                    .iter_mut()
                    .zip(b.chunks_exact(2))
                    .for_each(|(x, c)| *x = half::bf16::from_le_bytes([c[0], c[1]]).to_f32()),
            },
            _ => o
                .iter_mut()
                .zip(b.chunks_exact(4))
                .for_each(|(x, c)| *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        });
    Ok(out)
}

/// Raw ggml blocks as a candle QTensor (shape `[rows, cols]`, numpy order).
fn qtensor(name: &str, t: &WeightTensor<'_>, device: &Device) -> Result<QTensor, InferError> {
    let unsupported = || InferError::UnsupportedDType {
        name: name.to_string(),
        dtype: t.dtype,
    };
    let g = ggml_dtype(t.dtype).ok_or_else(unsupported)?;
    let inner = t.shape.last().copied().unwrap_or(0);
    if t.dtype.is_quantized() && inner % t.dtype.block_size() as u64 != 0 {
        return Err(unsupported());
    }
    // candle reinterprets the bytes as block structs: give it an 8-byte-aligned copy.
    let len = t.data.len();
    let mut words = vec![0u64; len.div_ceil(8)];
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    bytes[..len].copy_from_slice(&t.data);
    let storage = QStorage::from_data(Cow::Borrowed(&bytes[..len]), device, g)?;
    let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
    Ok(QTensor::new(storage, shape)?)
}

/// Load a 2-D linear weight `[out, in]`.
pub(crate) fn linear(
    src: &dyn WeightSource,
    cfg: &LlamaConfig,
    name: &str,
    device: &Device,
) -> Result<Linear, InferError> {
    let t = fetch(src, cfg, name)?;
    linear_from(name, t, device)
}

/// [`linear`] from a fetched tensor.
pub(crate) fn linear_from(
    name: &str,
    t: WeightTensor<'_>,
    device: &Device,
) -> Result<Linear, InferError> {
    if t.shape.len() != 2 {
        return Err(InferError::BadShape {
            name: name.into(),
            got: t.shape.clone(),
            expected: vec![0, 0],
        });
    }
    if t.dtype.is_quantized() {
        return Ok(Linear::Quant(QMatMul::from_qtensor(qtensor(
            name, &t, device,
        )?)?));
    }
    if !t.dtype.is_float() {
        return Err(InferError::UnsupportedDType {
            name: name.into(),
            dtype: t.dtype,
        });
    }
    Ok(Linear::Dense(to_f32_tensor(name, &t, device)?))
}

/// Load a 1-D norm weight as f32.
pub(crate) fn vector(
    src: &dyn WeightSource,
    cfg: &LlamaConfig,
    name: &str,
    device: &Device,
) -> Result<Tensor, InferError> {
    let t = fetch(src, cfg, name)?;
    to_f32_tensor(name, &t, device)
}

/// Rows `ids` of a 2-D tensor (the token embeddings) as f32 `[ids.len(), cols]`, decoding
/// only those rows.
pub(crate) fn rows(
    name: &str,
    t: &WeightTensor<'_>,
    ids: &[u32],
    device: &Device,
) -> Result<Tensor, InferError> {
    let (n_rows, cols) = match t.shape[..] {
        [r, c] => (r, c as usize),
        _ => {
            return Err(InferError::BadShape {
                name: name.into(),
                got: t.shape.clone(),
                expected: vec![0, 0],
            })
        }
    };
    let row_bytes = t
        .dtype
        .bytes_for(cols as u64)
        .ok_or_else(|| InferError::UnsupportedDType {
            name: name.into(),
            dtype: t.dtype,
        })? as usize;
    let mut out = Vec::with_capacity(ids.len() * cols);
    for (position, &id) in ids.iter().enumerate() {
        if u64::from(id) >= n_rows {
            return Err(InferError::TokenOutOfRange {
                token: id,
                position,
                vocab: n_rows as usize,
            });
        }
        let start = id as usize * row_bytes;
        let bytes = t
            .data
            .get(start..start + row_bytes)
            .ok_or_else(|| InferError::BadSize {
                name: name.into(),
                dtype: t.dtype,
                shape: t.shape.clone(),
                got: t.data.len(),
                expected: n_rows * row_bytes as u64,
            })?;
        let row = WeightTensor {
            dtype: t.dtype,
            shape: vec![1, cols as u64],
            data: Cow::Borrowed(bytes),
        };
        if t.dtype.is_float() {
            out.extend(llama_formats::cast::to_f32(t.dtype, bytes).map_err(InferError::source)?);
        } else {
            let q = qtensor(name, &row, &Device::Cpu)?.dequantize(&Device::Cpu)?;
            out.extend(q.flatten_all()?.to_vec1::<f32>()?);
        }
    }
    Ok(Tensor::from_vec(out, (ids.len(), cols), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_widening_equals_the_scalar_cast_aligned_or_not() {
        let bits: Vec<u8> = (0..200_003u32)
            .flat_map(|i| (i.wrapping_mul(2654435761) as u16).to_le_bytes())
            .collect();
        for dtype in [DType::F16, DType::BF16] {
            for start in [0usize, 1] {
                let b = &bits[start..start + 2 * 150_000];
                let want = llama_formats::cast::to_f32(dtype, b).unwrap();
                let got = float_to_f32(dtype, b).unwrap();
                assert_eq!(want.len(), got.len());
                assert!(want
                    .iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())));
            }
        }
    }
}
