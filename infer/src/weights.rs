//! What the forward pass needs from a checkpoint: the model's hyper-parameters (the one
//! [`ModelParams`] of llama-formats) and each tensor by its typed [`TensorName`]
//! ([`WeightSource`]), in Meta's orientation (`[out, in]`, interleaved rotary layout for
//! `wq`/`wk`, as in facebookresearch/llama `model.py`). [`Checkpoint`] implements the trait
//! for every layout it opens (Meta shards merged on the fly, Hugging Face q/k un-permuted,
//! GGUF float and quantized blocks). This module turns the bytes into candle tensors: float
//! types are widened to f32, ggml block-quantized types become candle `QMatMul`s over the
//! raw blocks.

use crate::error::OrCompute;
use std::borrow::Cow;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{Module, Tensor};
use llama_formats::checkpoint::Checkpoint;
use llama_formats::llama::{ModelParams, Role, TensorName};
use llama_ggml::DType;

use crate::error::InferError;

/// One tensor's bytes, little-endian, contiguous, in numpy order and Meta orientation.
#[derive(Debug, Clone)]
pub struct WeightTensor<'a> {
    /// Element type (float or ggml block-quantized).
    pub dtype: DType,
    /// Shape, outermost first (`[out, in]` for linear layers).
    pub shape: Vec<u64>,
    /// The bytes (borrowed where the source can lend them).
    pub data: Cow<'a, [u8]>,
}

/// A checkpoint as the forward pass sees it.
pub trait WeightSource {
    /// The model's hyper-parameters, checked against the tensors.
    fn params(&self) -> Result<ModelParams, InferError>;

    /// dtype and shape (numpy order, Meta orientation) of a LLaMA tensor.
    fn info(&self, name: TensorName) -> Result<(DType, Vec<u64>), InferError>;

    /// Feed a LLaMA tensor's bytes to `sink` in blocks of whole rows, in order (row-major,
    /// Meta orientation, q/k in Meta's interleaved rotary layout); the source may drop the
    /// tensor's pages afterwards.
    fn stream(
        &self,
        name: TensorName,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), InferError>,
    ) -> Result<(), InferError>;

    /// A whole LLaMA tensor (see [`stream`](Self::stream)).
    fn tensor(&self, name: TensorName) -> Result<WeightTensor<'_>, InferError> {
        let (dtype, shape) = self.info(name)?;
        let mut data = Vec::new();
        self.stream(name, &mut |b| {
            data.extend_from_slice(b);
            Ok(())
        })?;
        Ok(WeightTensor {
            dtype,
            shape,
            data: Cow::Owned(data),
        })
    }
}

impl WeightSource for Checkpoint {
    fn params(&self) -> Result<ModelParams, InferError> {
        Ok(Checkpoint::params(self)?)
    }

    fn info(&self, name: TensorName) -> Result<(DType, Vec<u64>), InferError> {
        Ok(self.tensor_info(name)?)
    }

    fn stream(
        &self,
        name: TensorName,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), InferError>,
    ) -> Result<(), InferError> {
        let r = Checkpoint::stream(self, name, None, sink);
        self.release(name);
        r
    }
}

/// The dtype that holds most of a checkpoint's 2-D layer weights (by element count): the
/// candidate "type" `check` picks its default thresholds by (Q4_K for a q4_k_m preset).
pub fn main_weight_dtype(source: &Checkpoint) -> Result<DType, InferError> {
    use std::collections::BTreeMap;
    let mut by_type: BTreeMap<DType, u64> = BTreeMap::new();
    for t in source.llama_tensors() {
        if t.layer.is_none() {
            continue;
        }
        let (dtype, shape) = source.tensor_info(t)?;
        if shape.len() == 2 {
            *by_type.entry(dtype).or_default() += shape.iter().product::<u64>();
        }
    }
    by_type
        .into_iter()
        .max_by_key(|&(_, n)| n)
        .map(|(d, _)| d)
        .ok_or(InferError::NoLayerWeights)
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

/// A tensor's dtype and shape, the shape checked against the parameters.
pub(crate) fn checked_info(
    src: &dyn WeightSource,
    p: &ModelParams,
    name: TensorName,
) -> Result<(DType, Vec<u64>), InferError> {
    let (dtype, shape) = src.info(name)?;
    let expected = name.expected_shape(p);
    if shape != expected {
        return Err(InferError::BadShape {
            name,
            got: shape,
            expected,
        });
    }
    Ok((dtype, shape))
}

/// Fetch a tensor and check its shape against the parameters and its size against its dtype.
pub(crate) fn fetch<'s>(
    src: &'s dyn WeightSource,
    p: &ModelParams,
    name: TensorName,
) -> Result<WeightTensor<'s>, InferError> {
    let t = src.tensor(name)?;
    let expected = name.expected_shape(p);
    if t.shape != expected {
        return Err(InferError::BadShape {
            name,
            got: t.shape.clone(),
            expected,
        });
    }
    let n = t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
    let need = n.and_then(|n| t.dtype.bytes_for(n));
    if need != Some(t.data.len() as u64) {
        let bad_size = InferError::bad_size(name, t.dtype, &t.shape, need.unwrap_or(u64::MAX));
        return Err(bad_size(t.data.len()));
    }
    Ok(t)
}

/// A float tensor as f32 on `device`, any shape.
pub(crate) fn to_f32_tensor(
    name: TensorName,
    t: &WeightTensor<'_>,
    device: &candle_core::Device,
) -> Result<Tensor, InferError> {
    let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
    if t.dtype.is_float() {
        let v = float_to_f32(t.dtype, &t.data)?;
        return Tensor::from_vec(v, shape, device).compute();
    }
    qtensor(name, t, device)?.dequantize(device).compute()
}

/// Widen little-endian F16/BF16/F32 bytes to f32 on all cores (half's SIMD conversion for
/// aligned 16-bit chunks); F64 and anything odd go through `llama_ggml::cast`.
fn float_to_f32(dtype: DType, bytes: &[u8]) -> Result<Vec<f32>, llama_ggml::cast::CastError> {
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 16;
    if cfg!(target_endian = "big")
        || !matches!(dtype, DType::F16 | DType::BF16 | DType::F32)
        || !bytes.len().is_multiple_of(dtype.block_bytes())
    {
        return llama_ggml::cast::to_f32(dtype, bytes);
    }
    let es = dtype.block_bytes();
    let mut out = vec![0f32; bytes.len() / es];
    out.par_chunks_mut(CHUNK)
        .zip(bytes.par_chunks(CHUNK * es))
        .for_each(|(o, b)| match dtype {
            DType::F16 => widen_halves::<half::f16>(b, o, |c| half::f16::from_le_bytes(c).to_f32()),
            DType::BF16 => {
                widen_halves::<half::bf16>(b, o, |c| half::bf16::from_le_bytes(c).to_f32())
            }
            _ => o
                .iter_mut()
                .zip(b.chunks_exact(4))
                .for_each(|(x, c)| *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        });
    Ok(out)
}

/// 16-bit floats `b` widened into `o` with half's SIMD conversion when `b` is aligned for
/// `T`, else one value at a time with `one`.
fn widen_halves<T: bytemuck::Pod>(b: &[u8], o: &mut [f32], one: fn([u8; 2]) -> f32)
where
    [T]: half::slice::HalfFloatSliceExt,
{
    use half::slice::HalfFloatSliceExt;
    match bytemuck::try_cast_slice::<u8, T>(b) {
        Ok(h) => h.convert_to_f32_slice(o),
        Err(_) => o
            .iter_mut()
            .zip(b.chunks_exact(2))
            .for_each(|(x, c)| *x = one([c[0], c[1]])),
    }
}

/// Raw ggml blocks as a candle QTensor (shape `[rows, cols]`, numpy order). candle copies
/// the blocks into its own storage; bytes that are not 8-byte aligned (candle reads them as
/// block structs) are first copied to an aligned buffer.
fn qtensor_from(
    name: TensorName,
    dtype: DType,
    shape: &[u64],
    data: &[u8],
    device: &candle_core::Device,
) -> Result<QTensor, InferError> {
    let unsupported = || InferError::UnsupportedDType { name, dtype };
    let g = ggml_dtype(dtype).ok_or_else(unsupported)?;
    let inner = shape.last().copied().unwrap_or(0);
    if dtype.is_quantized() && inner % dtype.block_size() as u64 != 0 {
        return Err(unsupported());
    }
    let len = data.len();
    let mut words = Vec::new();
    let bytes: &[u8] = if (data.as_ptr() as usize).is_multiple_of(8) {
        data
    } else {
        words.resize(len.div_ceil(8), 0u64);
        let b: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
        b[..len].copy_from_slice(data);
        &b[..len]
    };
    let storage = QStorage::from_data(Cow::Borrowed(bytes), device, g).compute()?;
    let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    QTensor::new(storage, shape).compute()
}

fn qtensor(
    name: TensorName,
    t: &WeightTensor<'_>,
    device: &candle_core::Device,
) -> Result<QTensor, InferError> {
    qtensor_from(name, t.dtype, &t.shape, &t.data, device)
}

/// Rows per part of a streamed quantized matrix: a multiple of every tile height of candle's
/// repacked CPU kernels (16).
const QMATMUL_ROWS: usize = 256;

/// A quantized matrix `[out, in]` as candle `QMatMul`s over consecutive runs of rows (their
/// outputs are consecutive column ranges of `x @ W^T`), built straight from the source's
/// blocks (one copy into candle's storage; only a run split across two blocks is gathered).
pub(crate) fn qmatmul(
    src: &dyn WeightSource,
    name: TensorName,
    dtype: DType,
    shape: &[u64],
    device: &candle_core::Device,
) -> Result<Vec<QMatMul>, InferError> {
    let cols = match shape {
        [_, c] => *c,
        _ => {
            return Err(InferError::NotAMatrix {
                name,
                shape: shape.to_vec(),
            })
        }
    };
    let row_bytes = dtype
        .bytes_for(cols)
        .filter(|&b| b > 0)
        .ok_or(InferError::UnsupportedDType { name, dtype })? as usize;
    let mut parts = Vec::new();
    let mut rows_seen = 0u64;
    let bad_size = InferError::bad_size(name, dtype, shape, shape[0] * row_bytes as u64);
    // Parts are whole multiples of QMATMUL_ROWS rows (the source's blocks are cut by
    // bytes): candle's repacked x86 kernels only take row counts that are multiples of
    // their 16-row tiles, and fall back to a slower path otherwise.
    let unit = QMATMUL_ROWS * row_bytes;
    let mut carry: Vec<u8> = Vec::new();
    let emit = |bytes: &[u8], parts: &mut Vec<QMatMul>| -> Result<(), InferError> {
        let rows = (bytes.len() / row_bytes) as u64;
        let q = qtensor_from(name, dtype, &[rows, cols], bytes, device)?;
        parts.push(QMatMul::from_qtensor(q).compute()?);
        Ok(())
    };
    src.stream(name, &mut |b| {
        let rows = (b.len() / row_bytes) as u64;
        if !b.len().is_multiple_of(row_bytes) || rows_seen + rows > shape[0] {
            return Err(bad_size(rows_seen as usize * row_bytes + b.len()));
        }
        rows_seen += rows;
        let mut b = b;
        if !carry.is_empty() {
            let take = (unit - carry.len()).min(b.len());
            carry.extend_from_slice(&b[..take]);
            b = &b[take..];
            if carry.len() == unit {
                emit(&carry, &mut parts)?;
                carry.clear();
            }
        }
        let whole = b.len() / unit * unit;
        if whole > 0 {
            emit(&b[..whole], &mut parts)?;
        }
        carry.extend_from_slice(&b[whole..]);
        Ok(())
    })?;
    if rows_seen != shape[0] {
        return Err(bad_size(rows_seen as usize * row_bytes));
    }
    if !carry.is_empty() {
        emit(&carry, &mut parts)?;
    }
    Ok(parts)
}

/// A fetched 2-D weight `[out, in]` as a [`Linear`].
pub(crate) fn linear_from(
    name: TensorName,
    t: WeightTensor<'_>,
    device: &candle_core::Device,
) -> Result<Linear, InferError> {
    if t.shape.len() != 2 {
        return Err(InferError::NotAMatrix {
            name,
            shape: t.shape.clone(),
        });
    }
    if t.dtype.is_quantized() {
        return Ok(Linear::Quant(
            QMatMul::from_qtensor(qtensor(name, &t, device)?).compute()?,
        ));
    }
    if !t.dtype.is_float() {
        return Err(InferError::UnsupportedDType {
            name,
            dtype: t.dtype,
        });
    }
    Ok(Linear::Dense(to_f32_tensor(name, &t, device)?))
}

/// Load a 1-D norm weight as f32.
pub(crate) fn vector(
    src: &dyn WeightSource,
    p: &ModelParams,
    name: TensorName,
    device: &candle_core::Device,
) -> Result<Tensor, InferError> {
    let t = fetch(src, p, name)?;
    to_f32_tensor(name, &t, device)
}

/// The token embeddings of each sequence, f32 `[len, dim]`: `tok_embeddings` is streamed
/// and only the rows of the sequences' tokens are decoded (the rest is never copied).
pub(crate) fn embed(
    src: &dyn WeightSource,
    p: &ModelParams,
    seqs: &[&[u32]],
    device: &candle_core::Device,
) -> Result<Vec<Tensor>, InferError> {
    let name = TensorName::global(Role::TokEmbeddings);
    let (dtype, shape) = checked_info(src, p, name)?;
    let (n_rows, cols) = (shape[0], shape[1] as usize);
    for s in seqs {
        if let Some((position, &token)) =
            s.iter().enumerate().find(|(_, &t)| u64::from(t) >= n_rows)
        {
            return Err(InferError::TokenOutOfRange {
                token,
                position,
                vocab: n_rows as usize,
            });
        }
    }
    let row_bytes = dtype
        .bytes_for(cols as u64)
        .filter(|&b| b > 0)
        .ok_or(InferError::UnsupportedDType { name, dtype })? as usize;
    let mut out: Vec<Vec<f32>> = seqs.iter().map(|s| vec![0f32; s.len() * cols]).collect();
    let mut row0 = 0u64;
    let bad_size = InferError::bad_size(name, dtype, &shape, n_rows * row_bytes as u64);
    let cpu = candle_core::Device::Cpu;
    let mut wide = Vec::with_capacity(cols);
    src.stream(name, &mut |b| {
        let rows = (b.len() / row_bytes) as u64;
        if !b.len().is_multiple_of(row_bytes) || row0 + rows > n_rows {
            return Err(bad_size(row0 as usize * row_bytes + b.len()));
        }
        for (s, o) in seqs.iter().zip(out.iter_mut()) {
            for (pos, &id) in s.iter().enumerate() {
                let Some(r) = u64::from(id).checked_sub(row0).filter(|&r| r < rows) else {
                    continue;
                };
                let bytes = &b[r as usize * row_bytes..(r as usize + 1) * row_bytes];
                let dst = &mut o[pos * cols..(pos + 1) * cols];
                if dtype.is_float() {
                    llama_ggml::cast::to_f32_into(dtype, bytes, &mut wide)?;
                    dst.copy_from_slice(&wide);
                } else {
                    let q = qtensor_from(name, dtype, &[1, cols as u64], bytes, &cpu)?;
                    let v = q
                        .dequantize(&cpu)
                        .compute()?
                        .flatten_all()
                        .compute()?
                        .to_vec1::<f32>()
                        .compute()?;
                    dst.copy_from_slice(&v);
                }
            }
        }
        row0 += rows;
        Ok(())
    })?;
    if row0 != n_rows {
        return Err(bad_size(row0 as usize * row_bytes));
    }
    seqs.iter()
        .zip(out)
        .map(|(s, v)| Tensor::from_vec(v, (s.len(), cols), device).compute())
        .collect()
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
                let want = llama_ggml::cast::to_f32(dtype, b).unwrap();
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
