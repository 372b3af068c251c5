//! Unit tests of the quantizers: sizes, refusals, f16 rounding and round-trip error bounds.
//! Byte equality with gguf-py and llama.cpp is proven in `tests/e2e/quantize.rs`.

use super::*;

const TYPES: [DType; 10] = [
    DType::Q4_0,
    DType::Q4_1,
    DType::Q5_0,
    DType::Q5_1,
    DType::Q8_0,
    DType::Q2_K,
    DType::Q3_K,
    DType::Q4_K,
    DType::Q5_K,
    DType::Q6_K,
];

/// Deterministic pseudo-normal values (xorshift + Box-Muller-free sum of uniforms).
fn gaussian(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    (0..n)
        .map(|_| (0..4).map(|_| next()).sum::<f32>() - 2.0)
        .collect()
}

#[test]
fn sizes_follow_block_layouts() {
    let x = gaussian(512, 1);
    for t in TYPES {
        let q = quantize(t, &x, 512).unwrap();
        assert_eq!(q.len() as u64, t.bytes_for(512).unwrap(), "{t}");
        assert_eq!(dequantize(t, &q, 512).unwrap().len(), 512);
    }
}

#[test]
fn round_trip_error_within_bounds() {
    // RMS error relative to the data's RMS (unit variance-ish data), per type.
    let bounds = [
        (DType::Q4_0, 0.12),
        (DType::Q4_1, 0.10),
        (DType::Q5_0, 0.06),
        (DType::Q5_1, 0.05),
        (DType::Q8_0, 0.006),
        (DType::Q2_K, 0.45),
        (DType::Q3_K, 0.22),
        (DType::Q4_K, 0.10),
        (DType::Q5_K, 0.05),
        (DType::Q6_K, 0.025),
    ];
    let x = gaussian(256 * 64, 7);
    let rms = (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
    for (t, bound) in bounds {
        let q = quantize(t, &x, 1024).unwrap();
        let y = dequantize(t, &q, x.len()).unwrap();
        let err = (x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            / x.len() as f32)
            .sqrt();
        assert!(
            err / rms < bound,
            "{t}: relative rms error {} >= {bound}",
            err / rms
        );
    }
}

#[test]
fn zeros_round_trip_to_zeros() {
    let x = vec![0f32; 512];
    for t in TYPES {
        let y = dequantize(t, &quantize(t, &x, 512).unwrap(), 512).unwrap();
        assert!(y.iter().all(|v| *v == 0.0), "{t}");
    }
}

#[test]
fn nan_and_inf_are_refused_with_position() {
    let mut x = gaussian(512, 3);
    x[300] = f32::NAN;
    let e = quantize(DType::Q4_K, &x, 256).unwrap_err();
    assert!(
        matches!(
            e,
            QuantError::NonFinite {
                row: 1,
                col: 44,
                ..
            }
        ),
        "{e:?}"
    );
    x[300] = f32::INFINITY;
    assert!(quantize(DType::Q8_0, &x, 256)
        .unwrap_err()
        .to_string()
        .contains("row 1, column 44"));
}

#[test]
fn bad_shapes_are_refused() {
    let x = gaussian(512, 3);
    assert!(matches!(
        quantize(DType::Q4_K, &x, 128),
        Err(QuantError::RowNotBlocks { .. })
    ));
    assert!(matches!(
        quantize(DType::Q8_0, &x[..500], 32),
        Err(QuantError::Ragged { .. })
    ));
    assert!(matches!(
        quantize(DType::Q8_1, &x, 32),
        Err(QuantError::Unsupported(_))
    ));
    assert!(matches!(
        dequantize(DType::Q4_0, &[0; 17], 32),
        Err(QuantError::WrongSize { .. })
    ));
}

#[test]
fn fp16_rounding_matches_half() {
    let mut s = 0x1234_5678u32;
    for _ in 0..200_000 {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        let f = f32::from_bits(s);
        if f.is_nan() {
            continue;
        }
        assert_eq!(fp32_to_fp16(f), half::f16::from_f32(f).to_bits(), "{f:e}");
    }
    assert_eq!(fp32_to_fp16(f32::NAN), 0x7E00);
    assert_eq!(fp32_to_fp16(-0.0), 0x8000);
}

#[test]
fn float_targets_convert_like_ggml() {
    let x = [1.0f32, -2.5, 1.0e-8, 65520.0];
    let q = quantize(DType::F16, &x, 4).unwrap();
    assert_eq!(
        dequantize(DType::F16, &q, 4).unwrap(),
        vec![1.0, -2.5, 0.0, f32::INFINITY]
    );
    assert_eq!(quantize(DType::F32, &x, 4).unwrap().len(), 16);
}
