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

/// Sub-blocks the SIMD searches must reproduce bit for bit: random data at several scales
/// and the edge cases of the reference's branches.
fn edge_blocks(seed: u64) -> Vec<Vec<f32>> {
    let g = gaussian(256 * 24, seed);
    let mut out: Vec<Vec<f32>> = g.chunks_exact(256).map(|c| c.to_vec()).collect();
    out[0].fill(0.0); // all zero
    out[1].fill(0.37); // constant positive
    out[2].fill(-1.25); // constant negative
    out[3].iter_mut().for_each(|v| *v *= 1e-20); // tiny (below GROUP_MAX_EPS in places)
    out[4].iter_mut().for_each(|v| *v *= 1e18); // huge: squares overflow to infinity
    out[5].iter_mut().for_each(|v| *v = v.abs() + 0.5); // all positive
    out[6].iter_mut().for_each(|v| *v = -v.abs() - 0.5); // all negative
    out[7][100] = 1e4; // one spike
    out[8].iter_mut().step_by(3).for_each(|v| *v = 0.0); // sparse zeros
    out[9][..16].fill(0.0); // one zero sub-block of 16
    out[9][32..64].fill(0.0); // and one of 32
    out[10]
        .iter_mut()
        .for_each(|v| *v = (*v * 4.0).round() / 4.0); // few distinct values
    out[11].iter_mut().for_each(|v| *v *= 1e-8); // small
    out[12][17] = -0.0;
    out[12][..8].fill(-0.0);
    out[13]
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = i as f32); // ramp
    out[14]
        .iter_mut()
        .for_each(|v| *v = f32::MIN_POSITIVE * v.signum()); // smallest normals
    out[15].iter_mut().for_each(|v| *v *= 6e4);
    out
}

/// The SIMD `make_qkx2_quants` (16 lanes on AVX-512, else 8) equals scalar calls, for the
/// parameters of Q4_K, Q5_K and Q2_K, sub-blocks of 32 and 16, 8 to 24 at a time.
#[test]
fn qkx2_lanes_equal_scalar_calls() {
    use super::qkx2::{make_qkx2_quants, make_qkx2_quants_many, Qkx2};
    for seed in 1..4 {
        let blocks = edge_blocks(seed);
        let x: Vec<f32> = blocks.concat();
        let w: Vec<f32> = x.iter().map(|v| 0.3 + v.abs()).collect();
        for p in Qkx2::ALL {
            for n_sub in [8usize, 16, 24, 32, 40, 56] {
                for start in (0..x.len() - 32 * n_sub).step_by(32 * n_sub) {
                    check_qkx2::<32>(p, &x[start..], &w[start..], n_sub);
                    check_qkx2::<16>(p, &x[start..], &w[start..], n_sub);
                }
            }
        }
    }

    fn check_qkx2<const N: usize>(p: &Qkx2, x: &[f32], w: &[f32], n_sub: usize) {
        let mut want_l = vec![0u8; N * n_sub];
        let want: Vec<(u32, u32)> = (0..n_sub)
            .map(|j| {
                let r = N * j..N * j + N;
                let (s, m) = make_qkx2_quants(p, &x[r.clone()], &w[r.clone()], &mut want_l[r]);
                (s.to_bits(), m.to_bits())
            })
            .collect();
        let mut got_l = vec![0u8; N * n_sub];
        let mut got = vec![(0f32, 0f32); n_sub];
        make_qkx2_quants_many::<N>(p, x, w, &mut got_l, &mut got);
        assert_eq!(got_l, want_l, "nmax {} N {N}", p.nmax);
        let got: Vec<(u32, u32)> = got
            .iter()
            .map(|(s, m)| (s.to_bits(), m.to_bits()))
            .collect();
        assert_eq!(got, want, "nmax {} N {N}", p.nmax);
    }
}

/// The explicit-SIMD instruction sets this CPU runs (each one is tested, not only the best).
#[cfg(target_arch = "x86_64")]
fn isas() -> Vec<super::x86::Isa> {
    use super::x86::Isa;
    let mut v = Vec::new();
    if std::arch::is_x86_feature_detected!("avx512f") {
        v.push(Isa::Avx512);
    }
    if std::arch::is_x86_feature_detected!("avx2") {
        v.push(Isa::Avx2);
    }
    v
}

/// Every SIMD `make_qkx2_quants` this CPU runs (AVX-512, AVX2) equals scalar calls.
#[cfg(target_arch = "x86_64")]
#[test]
fn qkx2_each_isa_equals_scalar_calls() {
    use super::qkx2::{make_qkx2_quants, Qkx2};
    let x: Vec<f32> = edge_blocks(4).concat();
    let w: Vec<f32> = x.iter().map(|v| 0.3 + v.abs()).collect();
    for (isa, groups) in isas()
        .into_iter()
        .flat_map(|i| [(i, 1), (i, super::x86::GROUPS)])
    {
        let n = groups * isa.lanes();
        for p in [&Qkx2::Q4_K, &Qkx2::Q2_K] {
            for start in (0..x.len() - 32 * n).step_by(32 * n) {
                let (x, w) = (&x[start..start + 32 * n], &w[start..start + 32 * n]);
                let mut want_l = vec![0u8; 32 * n];
                let want: Vec<(u32, u32)> = (0..n)
                    .map(|j| {
                        let r = 32 * j..32 * j + 32;
                        let (s, m) =
                            make_qkx2_quants(p, &x[r.clone()], &w[r.clone()], &mut want_l[r]);
                        (s.to_bits(), m.to_bits())
                    })
                    .collect();
                let mut got_l = vec![0u8; 32 * n];
                let mut got = vec![(0f32, 0f32); n];
                // SAFETY: the CPU has `isa` (isas() checked).
                unsafe { super::x86::qkx2::<32>(isa, groups, p, x, w, &mut got_l, &mut got) };
                let got: Vec<(u32, u32)> = got
                    .iter()
                    .map(|(s, m)| (s.to_bits(), m.to_bits()))
                    .collect();
                assert_eq!(got_l, want_l, "{isa:?} x{groups}");
                assert_eq!(got, want, "{isa:?} x{groups}");
            }
        }
    }
}

/// Q6_K's SIMD `make_qx_quants` (16 sub-blocks in lanes, each ISA this CPU runs) equals 16
/// scalar calls, on random and edge-case blocks.
#[cfg(target_arch = "x86_64")]
#[test]
fn q6_k_lanes_equal_scalar_calls() {
    for isa in isas() {
        for seed in 1..6 {
            for x in edge_blocks(seed) {
                let mut want_l = [0u8; 256];
                let want: Vec<u32> = (0..16)
                    .map(|ib| {
                        let r = 16 * ib..16 * ib + 16;
                        super::kquants::make_qx_quants(32, &x[r.clone()], &mut want_l[r]).to_bits()
                    })
                    .collect();
                let mut got_l = [0u8; 256];
                let mut got = [0f32; 16];
                // SAFETY: the CPU has `isa` (isas() checked).
                unsafe { super::x86::qx_q6(isa, &x, &mut got_l, &mut got) };
                assert_eq!(got_l, want_l, "{isa:?} seed {seed}");
                let got: Vec<u32> = got.iter().map(|s| s.to_bits()).collect();
                assert_eq!(got, want, "{isa:?} seed {seed}");
            }
        }
    }
}

/// Quantizing many blocks at once (the k-quants take super-blocks in groups) gives the bytes
/// of quantizing each block alone, for odd and even block counts.
#[test]
fn blocks_in_groups_equal_blocks_alone() {
    let x: Vec<f32> = edge_blocks(9).concat();
    for t in [
        DType::Q2_K,
        DType::Q3_K,
        DType::Q4_K,
        DType::Q5_K,
        DType::Q6_K,
    ] {
        for nb in [1usize, 2, 3, 4, 5, 7, 8, 9, 24] {
            let xs = &x[..256 * nb];
            let all = quantize(t, xs, 256).unwrap();
            let alone: Vec<u8> = xs
                .chunks_exact(256)
                .flat_map(|b| quantize(t, b, 256).unwrap())
                .collect();
            assert_eq!(all, alone, "{t} {nb} blocks");
        }
    }
}
