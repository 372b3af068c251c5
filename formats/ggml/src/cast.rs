//! Conversions between the float element types (F32, F16, BF16, F64), little-endian bytes
//! in and out. Rounding is round-to-nearest-even, as torch and numpy do (`half`'s
//! `from_f32`). Quantized types are converted by `crate::quant`, not here.

use half::{bf16, f16};

use crate::dtype::DType;

/// Why a cast was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CastError {
    /// Only F64/F32/F16/BF16 convert here.
    #[error("cannot convert {from} to {to} (only float types convert)")]
    Unsupported {
        /// The source type.
        from: DType,
        /// The wanted type.
        to: DType,
    },
    /// The byte count is not a whole number of elements.
    #[error("{len} bytes is not a whole number of {dtype} elements")]
    Ragged {
        /// The element type.
        dtype: DType,
        /// The byte count given.
        len: usize,
    },
}

/// Decode little-endian float bytes of `dtype` into `out` (cleared first).
pub fn to_f32_into(dtype: DType, bytes: &[u8], out: &mut Vec<f32>) -> Result<(), CastError> {
    let es = dtype.block_bytes();
    if !dtype.is_float() {
        return Err(CastError::Unsupported {
            from: dtype,
            to: DType::F32,
        });
    }
    if !bytes.len().is_multiple_of(es) {
        return Err(CastError::Ragged {
            dtype,
            len: bytes.len(),
        });
    }
    out.clear();
    out.reserve(bytes.len() / es);
    match dtype {
        DType::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        DType::F16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        DType::BF16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        DType::F64 => {
            out.extend(bytes.chunks_exact(8).map(|c| {
                f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
            }))
        }
        _ => unreachable!("is_float checked above"),
    }
    Ok(())
}

/// Decode little-endian float bytes of `dtype` into a new vector.
pub fn to_f32(dtype: DType, bytes: &[u8]) -> Result<Vec<f32>, CastError> {
    let mut out = Vec::new();
    to_f32_into(dtype, bytes, &mut out)?;
    Ok(out)
}

/// Encode f32 values as little-endian bytes of `dtype`, appended to `out`.
pub fn from_f32_into(dtype: DType, values: &[f32], out: &mut Vec<u8>) -> Result<(), CastError> {
    match dtype {
        DType::F32 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DType::F16 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&f16::from_f32(*v).to_le_bytes())),
        DType::BF16 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&bf16::from_f32(*v).to_le_bytes())),
        DType::F64 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&(*v as f64).to_le_bytes())),
        _ => {
            return Err(CastError::Unsupported {
                from: DType::F32,
                to: dtype,
            })
        }
    }
    Ok(())
}

/// Convert float bytes from one float dtype to another. Same dtype returns a copy.
/// F16 -> BF16 and the like go through f32, which is exact for widening steps.
pub fn convert(from: DType, to: DType, bytes: &[u8]) -> Result<Vec<u8>, CastError> {
    if !from.is_float() || !to.is_float() {
        return Err(CastError::Unsupported { from, to });
    }
    if from == to {
        return Ok(bytes.to_vec());
    }
    let tmp = to_f32(from, bytes)?;
    let mut out = Vec::with_capacity(tmp.len() * to.block_bytes());
    from_f32_into(to, &tmp, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_round_trip_is_exact() {
        let vals = [0.0f32, -1.5, 65504.0, 6.1035156e-5, 1.0e-7];
        let mut b = Vec::new();
        from_f32_into(DType::F16, &vals, &mut b).unwrap();
        let back = to_f32(DType::F16, &b).unwrap();
        let again = convert(
            DType::F32,
            DType::F16,
            &convert(DType::F16, DType::F32, &b).unwrap(),
        )
        .unwrap();
        assert_eq!(again, b);
        assert_eq!(back[1], -1.5);
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1.0078125: ties to even -> 1.0.
        let mut b = Vec::new();
        from_f32_into(DType::BF16, &[1.0 + 1.0 / 256.0], &mut b).unwrap();
        assert_eq!(to_f32(DType::BF16, &b).unwrap(), vec![1.0]);
    }

    #[test]
    fn non_float_is_refused() {
        assert!(convert(DType::Q4_0, DType::F32, &[]).is_err());
        assert_eq!(
            to_f32(DType::F32, &[0, 0, 0]).unwrap_err(),
            CastError::Ragged {
                dtype: DType::F32,
                len: 3
            }
        );
    }
}
