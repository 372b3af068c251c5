//! k-quant dequantizers, operation for operation as `dequantize_row_q*_K` in ggml's
//! `ggml-quants.c` (<https://github.com/ggml-org/llama.cpp/blob/master/ggml/src/ggml-quants.c>).

use super::f16_at;
use super::kquants::{get_scale_min_k4, QK_K};

pub(super) fn dequantize_q2_k(x: &[u8], y: &mut [f32]) {
    for (b, y) in x.chunks_exact(84).zip(y.chunks_exact_mut(QK_K)) {
        let (sc, qs) = (&b[0..16], &b[16..80]);
        let (d, min) = (f16_at(b, 80), f16_at(b, 82));
        for e in 0..QK_K {
            let (half, within) = (e / 128, e % 128);
            let (shift, l) = (2 * (within / 32), within % 32);
            let s = sc[e / 16];
            let dl = d * (s & 0xF) as f32;
            let ml = min * (s >> 4) as f32;
            let q = (qs[32 * half + l] >> shift) & 3;
            y[e] = dl * q as f32 - ml;
        }
    }
}

pub(super) fn dequantize_q3_k(x: &[u8], y: &mut [f32]) {
    for (b, y) in x.chunks_exact(110).zip(y.chunks_exact_mut(QK_K)) {
        let (hmask, qs, sc) = (&b[0..32], &b[32..96], &b[96..108]);
        let d_all = f16_at(b, 108);
        let mut scales = [0i32; 16];
        for (j, s) in scales.iter_mut().enumerate() {
            let lo = if j < 8 { sc[j] & 0xF } else { sc[j - 8] >> 4 };
            *s = (lo | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) as i32 - 32;
        }
        for e in 0..QK_K {
            let (half, within) = (e / 128, e % 128);
            let (shift, l) = (2 * (within / 32), within % 32);
            let dl = d_all * scales[e / 16] as f32;
            let q = ((qs[32 * half + l] >> shift) & 3) as i32;
            let high = if hmask[l] & (1 << (e / 32)) != 0 {
                0
            } else {
                4
            };
            y[e] = dl * (q - high) as f32;
        }
    }
}

pub(super) fn dequantize_q4_k(x: &[u8], y: &mut [f32]) {
    dequantize_k_asym(x, y, 144, 16, |_, q, _, [(d1, m1), (d2, m2)], y| {
        let (lo, hi) = y.split_at_mut(32);
        for ((q, a), c) in q.iter().zip(lo).zip(hi) {
            *a = d1 * (q & 0xF) as f32 - m1;
            *c = d2 * (q >> 4) as f32 - m2;
        }
    });
}

pub(super) fn dequantize_q5_k(x: &[u8], y: &mut [f32]) {
    dequantize_k_asym(x, y, 176, 48, |b, ql, n, [(d1, m1), (d2, m2)], y| {
        let qh = &b[16..48];
        let (u1, u2) = (1u8 << (2 * n), 2u8 << (2 * n));
        let (lo, hi) = y.split_at_mut(32);
        for (((q, h), a), c) in ql.iter().zip(qh).zip(lo).zip(hi) {
            let h1 = if h & u1 != 0 { 16 } else { 0 };
            let h2 = if h & u2 != 0 { 16 } else { 0 };
            *a = d1 * ((q & 0xF) + h1) as f32 - m1;
            *c = d2 * ((q >> 4) + h2) as f32 - m2;
        }
    });
}

/// The frame Q4_K and Q5_K share: each `block`-byte block starts with f16 `d` and `dmin`
/// and 12 bytes of 6-bit scales and mins; its low-nibble quants start at `qs_at`, 32 bytes
/// per 64 values. `group` gets the block, group `n`'s 32 quant bytes, its two sub-blocks'
/// (scale, min) as floats and the 64 outputs.
fn dequantize_k_asym(
    x: &[u8],
    y: &mut [f32],
    block: usize,
    qs_at: usize,
    group: impl Fn(&[u8], &[u8], usize, [(f32, f32); 2], &mut [f32]),
) {
    for (b, y) in x.chunks_exact(block).zip(y.chunks_exact_mut(QK_K)) {
        let (d, min) = (f16_at(b, 0), f16_at(b, 2));
        let sc = &b[4..16];
        for (n, (q, y)) in b[qs_at..block]
            .chunks_exact(32)
            .zip(y.chunks_exact_mut(64))
            .enumerate()
        {
            let (s1, m1) = get_scale_min_k4(2 * n, sc);
            let (s2, m2) = get_scale_min_k4(2 * n + 1, sc);
            let pairs = [
                (d * s1 as f32, min * m1 as f32),
                (d * s2 as f32, min * m2 as f32),
            ];
            group(b, q, n, pairs, y);
        }
    }
}

pub(super) fn dequantize_q6_k(x: &[u8], y: &mut [f32]) {
    for (b, y) in x.chunks_exact(210).zip(y.chunks_exact_mut(QK_K)) {
        let d = f16_at(b, 208);
        let sc = &b[192..208];
        for (h, y) in y.chunks_exact_mut(128).enumerate() {
            let ql = &b[64 * h..64 * h + 64];
            let qh = &b[128 + 32 * h..128 + 32 * h + 32];
            let sc = &sc[8 * h..8 * h + 8];
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
                let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
                y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
                y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
                y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
            }
        }
    }
}
