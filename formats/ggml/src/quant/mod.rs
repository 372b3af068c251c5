//! ggml block quantization, byte-identical to llama.cpp's reference path.
//!
//! Quantizers and dequantizers for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the k-quants Q2_K, Q3_K,
//! Q4_K, Q5_K, Q6_K with the block layouts of ggml's `ggml-common.h` and the rounding of
//! `ggml-quants.c`'s `quantize_row_*_ref` functions, which `ggml_quantize_chunk` (and so
//! `llama-quantize`) uses when no importance matrix is given
//! (<https://github.com/ggml-org/llama.cpp/blob/master/ggml/src/ggml-quants.c>). Every float
//! operation is done in the same order as there, so the bytes are the same; blocks are
//! independent, so they are quantized in parallel with rayon.
//!
//! [`preset`] holds llama.cpp's per-tensor type choices (`Q4_K_M` and friends) and the one
//! quantization plan ([`plan_types`]) that `quantize` and `convert --outtype` share;
//! [`quantize_gguf`] quantizes a whole float GGUF through the export loop
//! ([`crate::export::pipeline`]), whose encoder calls [`quantize_raw_into`].

mod kdequant;
mod kquants;
mod legacy;
pub mod preset;
mod qkx2;
#[cfg(target_arch = "x86_64")]
mod x86;

use rayon::prelude::*;

use crate::cast::{self, CastError};
use crate::dtype::DType;

pub use preset::{plan_types, ModelHints, Preset};

/// Why quantization or dequantization was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QuantError {
    /// The target type has no quantizer here.
    #[error("cannot quantize to {0}: supported are Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K F16 BF16 F32")]
    Unsupported(DType),
    /// The row length is not a whole number of blocks.
    #[error("row length {n_per_row} is not a multiple of {dtype}'s block size {block}")]
    RowNotBlocks {
        /// The target type.
        dtype: DType,
        /// The row length.
        n_per_row: usize,
        /// The type's block size.
        block: usize,
    },
    /// The value count is not a whole number of rows.
    #[error("{len} values is not a whole number of rows of {n_per_row}")]
    Ragged {
        /// The value count.
        len: usize,
        /// The row length.
        n_per_row: usize,
    },
    /// A NaN or infinity in the input.
    #[error("non-finite value {value} at row {row}, column {col}: refusing to quantize NaN/inf")]
    NonFinite {
        /// Row of the value.
        row: usize,
        /// Column of the value.
        col: usize,
        /// The value.
        value: f32,
    },
    /// The byte count does not match the element count.
    #[error("{dtype} data of {got} bytes does not hold {n} values (expected {expected} bytes)")]
    WrongSize {
        /// The quantized type.
        dtype: DType,
        /// The element count.
        n: usize,
        /// Bytes that many elements take.
        expected: u64,
        /// Bytes given.
        got: usize,
    },
    /// A float conversion failed.
    #[error(transparent)]
    Cast(#[from] CastError),
}

/// Blocks per parallel work item: big enough to amortise scheduling, small enough to balance.
const BLOCKS_PER_TASK: usize = 64;

/// Quantize `src` (rows of `n_per_row` values) to `dtype`; see [`quantize_into`].
pub fn quantize(dtype: DType, src: &[f32], n_per_row: usize) -> Result<Vec<u8>, QuantError> {
    let mut out = Vec::new();
    quantize_into(dtype, src, n_per_row, &mut out)?;
    Ok(out)
}

/// Quantize `src` (rows of `n_per_row` values) to `dtype`, replacing the contents of `out`.
/// F32, F16 and BF16 are converted as ggml converts them. NaN and infinities are refused.
pub fn quantize_into(
    dtype: DType,
    src: &[f32],
    n_per_row: usize,
    out: &mut Vec<u8>,
) -> Result<(), QuantError> {
    run(dtype, Source::F32(src), src.len(), n_per_row, out)
}

/// Like [`quantize_into`] from little-endian F32/F16/BF16 bytes (a tensor straight from a
/// memory map), converting each block to f32 on the worker that quantizes it.
pub fn quantize_raw_into(
    src_dtype: DType,
    src: &[u8],
    dtype: DType,
    n_per_row: usize,
    out: &mut Vec<u8>,
) -> Result<(), QuantError> {
    let es = src_dtype.block_bytes();
    if !matches!(src_dtype, DType::F32 | DType::F16 | DType::BF16) {
        return Err(CastError::Unsupported {
            from: src_dtype,
            to: DType::F32,
        }
        .into());
    }
    if !src.len().is_multiple_of(es) {
        return Err(CastError::Ragged {
            dtype: src_dtype,
            len: src.len(),
        }
        .into());
    }
    run(
        dtype,
        Source::Raw(src_dtype, src),
        src.len() / es,
        n_per_row,
        out,
    )
}

/// Where the values come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    F32(&'a [f32]),
    Raw(DType, &'a [u8]),
}

impl Source<'_> {
    /// Values `start..start + len`, decoded into `buf` when they are not f32 already.
    fn values<'b>(&'b self, start: usize, len: usize, buf: &'b mut Vec<f32>) -> &'b [f32] {
        match *self {
            Source::F32(v) => &v[start..start + len],
            Source::Raw(dt, bytes) => {
                let es = dt.block_bytes();
                let b = &bytes[start * es..(start + len) * es];
                buf.clear();
                buf.resize(len, 0.0);
                decode(dt, b, buf);
                buf
            }
        }
    }
}

/// Little-endian F32/F16/BF16 bytes to f32 (exact), SIMD where the CPU has it.
fn decode(dt: DType, b: &[u8], out: &mut [f32]) {
    use half::slice::HalfFloatSliceExt;
    match dt {
        DType::F16 => match bytemuck::try_cast_slice::<u8, half::f16>(b) {
            Ok(h) => h.convert_to_f32_slice(out),
            Err(_) => {
                for (o, c) in out.iter_mut().zip(b.chunks_exact(2)) {
                    *o = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
        },
        DType::BF16 => {
            for (o, c) in out.iter_mut().zip(b.chunks_exact(2)) {
                *o = f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16);
            }
        }
        _ => {
            for (o, c) in out.iter_mut().zip(b.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
    }
}

fn run(
    dtype: DType,
    src: Source<'_>,
    n: usize,
    n_per_row: usize,
    out: &mut Vec<u8>,
) -> Result<(), QuantError> {
    let block = dtype.block_size();
    let kernel = kernel_for(dtype).ok_or(QuantError::Unsupported(dtype))?;
    if n_per_row == 0 || !n_per_row.is_multiple_of(block) {
        return Err(QuantError::RowNotBlocks {
            dtype,
            n_per_row,
            block,
        });
    }
    if !n.is_multiple_of(n_per_row) {
        return Err(QuantError::Ragged { len: n, n_per_row });
    }
    let bb = dtype.block_bytes();
    out.clear();
    out.resize(n / block * bb, 0);
    let per_task = BLOCKS_PER_TASK * block;
    out.par_chunks_mut(BLOCKS_PER_TASK * bb)
        .enumerate()
        .try_for_each_init(Vec::new, |buf, (t, y)| {
            let start = t * per_task;
            let x = src.values(start, per_task.min(n - start), buf);
            if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                let at = start + i;
                return Err(QuantError::NonFinite {
                    row: at / n_per_row,
                    col: at % n_per_row,
                    value: x[i],
                });
            }
            kernel(x, y);
            Ok(())
        })
}

/// A function quantizing whole blocks: `x.len() / block_size` blocks into `y`.
type Kernel = fn(&[f32], &mut [u8]);

fn kernel_for(dtype: DType) -> Option<Kernel> {
    Some(match dtype {
        DType::Q4_0 => legacy::quantize_q4_0,
        DType::Q4_1 => legacy::quantize_q4_1,
        DType::Q5_0 => legacy::quantize_q5_0,
        DType::Q5_1 => legacy::quantize_q5_1,
        DType::Q8_0 => legacy::quantize_q8_0,
        DType::Q2_K => kquants::quantize_q2_k,
        DType::Q3_K => kquants::quantize_q3_k,
        DType::Q4_K => kquants::quantize_q4_k,
        DType::Q5_K => kquants::quantize_q5_k,
        DType::Q6_K => kquants::quantize_q6_k,
        DType::F32 => |x, y| {
            for (v, o) in x.iter().zip(y.chunks_exact_mut(4)) {
                o.copy_from_slice(&v.to_le_bytes());
            }
        },
        DType::F16 => |x, y| {
            for (v, o) in x.iter().zip(y.chunks_exact_mut(2)) {
                o.copy_from_slice(&fp32_to_fp16(*v).to_le_bytes());
            }
        },
        DType::BF16 => |x, y| {
            for (v, o) in x.iter().zip(y.chunks_exact_mut(2)) {
                o.copy_from_slice(&half::bf16::from_f32(*v).to_le_bytes());
            }
        },
        _ => return None,
    })
}

/// Dequantize `n` values of `dtype` from `src` (F32/F16/BF16 are decoded as floats).
pub fn dequantize(dtype: DType, src: &[u8], n: usize) -> Result<Vec<f32>, QuantError> {
    let expected = dtype
        .bytes_for(n as u64)
        .filter(|&e| e == src.len() as u64)
        .ok_or(QuantError::WrongSize {
            dtype,
            n,
            expected: dtype.bytes_for(n as u64).unwrap_or(u64::MAX),
            got: src.len(),
        })?;
    debug_assert_eq!(expected, src.len() as u64);
    if dtype.is_float() {
        return Ok(cast::to_f32(dtype, src)?);
    }
    let f: fn(&[u8], &mut [f32]) = match dtype {
        DType::Q4_0 => legacy::dequantize_q4_0,
        DType::Q4_1 => legacy::dequantize_q4_1,
        DType::Q5_0 => legacy::dequantize_q5_0,
        DType::Q5_1 => legacy::dequantize_q5_1,
        DType::Q8_0 => legacy::dequantize_q8_0,
        DType::Q2_K => kdequant::dequantize_q2_k,
        DType::Q3_K => kdequant::dequantize_q3_k,
        DType::Q4_K => kdequant::dequantize_q4_k,
        DType::Q5_K => kdequant::dequantize_q5_k,
        DType::Q6_K => kdequant::dequantize_q6_k,
        _ => return Err(QuantError::Unsupported(dtype)),
    };
    let (bs, bb) = (dtype.block_size(), dtype.block_bytes());
    let mut out = vec![0f32; n];
    src.par_chunks(BLOCKS_PER_TASK * bb)
        .zip(out.par_chunks_mut(BLOCKS_PER_TASK * bs))
        .for_each(|(x, y)| f(x, y));
    Ok(out)
}

/// ggml's `GGML_FP32_TO_FP16` (`ggml_compute_fp32_to_fp16` in `ggml-impl.h`): round to
/// nearest even, overflow to infinity, NaN to 0x7E00.
#[inline]
pub(crate) fn fp32_to_fp16(f: f32) -> u16 {
    let scale_to_inf = f32::from_bits(0x7780_0000);
    let scale_to_zero = f32::from_bits(0x0880_0000);
    let mut base = (f.abs() * scale_to_inf) * scale_to_zero;
    let w = f.to_bits();
    let shl1_w = w.wrapping_add(w);
    let sign = w & 0x8000_0000;
    let bias = (shl1_w & 0xFF00_0000).max(0x7100_0000);
    base += f32::from_bits((bias >> 1) + 0x0780_0000);
    let bits = base.to_bits();
    let exp_bits = (bits >> 13) & 0x0000_7C00;
    let mantissa_bits = bits & 0x0000_0FFF;
    let nonsign = exp_bits + mantissa_bits;
    ((sign >> 16)
        | if shl1_w > 0xFF00_0000 {
            0x7E00
        } else {
            nonsign
        }) as u16
}

/// ggml's `GGML_FP16_TO_FP32` (exact).
#[inline]
pub(crate) fn fp16_to_fp32(h: u16) -> f32 {
    half::f16::from_bits(h).to_f32()
}

/// Read the little-endian f16 at `b[0..2]` as f32.
#[inline]
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    fp16_to_fp32(u16::from_le_bytes([b[at], b[at + 1]]))
}

#[cfg(test)]
mod tests;
