//! The 32-weight block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: layouts of ggml's
//! `ggml-common.h` (`block_q4_0` ...) and rounding of `quantize_row_q*_ref` in
//! `ggml-quants.c` (<https://github.com/ggml-org/llama.cpp/blob/master/ggml/src/ggml-quants.c>).
//! Each function takes whole blocks; the loops are branch-free so they vectorize.

use super::{f16_at, fp32_to_fp16};

const QK: usize = 32;

/// The absolute maximum of a block and the first value reaching it (sign kept), as the
/// reference's `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }` finds it.
#[inline]
fn signed_absmax(x: &[f32]) -> f32 {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    if amax == 0.0 {
        return 0.0;
    }
    x.iter().copied().find(|v| v.abs() == amax).unwrap_or(0.0)
}

/// Block minimum and maximum with the reference's strict comparisons (so a -0.0 never
/// replaces a 0.0 already found, which matters for the stored f16 sign).
#[inline]
fn min_max(x: &[f32]) -> (f32, f32) {
    x.iter().fold((f32::MAX, -f32::MAX), |(lo, hi), &v| {
        (if v < lo { v } else { lo }, if v > hi { v } else { hi })
    })
}

/// A float to int conversion as x86 does it for C's casts (`cvttss2si`): truncate toward
/// zero; NaN and out-of-range values give `i32::MIN`. That is what ggml's reference code
/// produces when a subnormal block scale makes `1/d` infinite.
#[inline]
fn c_int(v: f32) -> i32 {
    if v.abs() < 2_147_483_648.0 {
        v as i32
    } else {
        i32::MIN
    }
}

/// C's `(int8_t)(v)` of a float: truncate toward zero, keep the low 8 bits.
#[inline]
fn trunc_i8(v: f32) -> i8 {
    c_int(v) as i8
}

pub(super) fn quantize_q4_0(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK).zip(y.chunks_exact_mut(18)) {
        let max = signed_absmax(x);
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        y[0..2].copy_from_slice(&fp32_to_fp16(d).to_le_bytes());
        let (lo, hi) = x.split_at(QK / 2);
        for ((q, a), b) in y[2..18].iter_mut().zip(lo).zip(hi) {
            let x0 = trunc_i8(a * id + 8.5).min(15) as u8;
            let x1 = trunc_i8(b * id + 8.5).min(15) as u8;
            *q = x0 | (x1 << 4);
        }
    }
}

pub(super) fn quantize_q4_1(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK).zip(y.chunks_exact_mut(20)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        y[0..2].copy_from_slice(&fp32_to_fp16(d).to_le_bytes());
        y[2..4].copy_from_slice(&fp32_to_fp16(min).to_le_bytes());
        let (lo, hi) = x.split_at(QK / 2);
        for ((q, a), b) in y[4..20].iter_mut().zip(lo).zip(hi) {
            let x0 = trunc_i8((a - min) * id + 0.5).min(15) as u8;
            let x1 = trunc_i8((b - min) * id + 0.5).min(15) as u8;
            *q = x0 | (x1 << 4);
        }
    }
}

pub(super) fn quantize_q5_0(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK).zip(y.chunks_exact_mut(22)) {
        let max = signed_absmax(x);
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        y[0..2].copy_from_slice(&fp32_to_fp16(d).to_le_bytes());
        let mut l = [0u8; QK];
        for (l, v) in l.iter_mut().zip(x) {
            *l = trunc_i8(v * id + 16.5).min(31) as u8;
        }
        pack5(&l, &mut y[2..22]);
    }
}

pub(super) fn quantize_q5_1(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK).zip(y.chunks_exact_mut(24)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        y[0..2].copy_from_slice(&fp32_to_fp16(d).to_le_bytes());
        y[2..4].copy_from_slice(&fp32_to_fp16(min).to_le_bytes());
        let mut l = [0u8; QK];
        for (l, v) in l.iter_mut().zip(x) {
            *l = c_int((v - min) * id + 0.5) as u8;
        }
        pack5(&l, &mut y[4..24]);
    }
}

/// qh (u32 of fifth bits, little-endian) then qs (low nibbles, x[j] | x[j+16] << 4).
#[inline]
fn pack5(l: &[u8; QK], out: &mut [u8]) {
    let mut qh = 0u32;
    for (j, &v) in l.iter().enumerate() {
        qh |= (((v & 0x10) >> 4) as u32) << j;
    }
    out[0..4].copy_from_slice(&qh.to_le_bytes());
    for (j, q) in out[4..20].iter_mut().enumerate() {
        *q = (l[j] & 0x0F) | ((l[j + QK / 2] & 0x0F) << 4);
    }
}

pub(super) fn quantize_q8_0(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK).zip(y.chunks_exact_mut(34)) {
        let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        y[0..2].copy_from_slice(&fp32_to_fp16(d).to_le_bytes());
        for (q, v) in y[2..34].iter_mut().zip(x) {
            *q = c_int((v * id).round()) as i8 as u8;
        }
    }
}

pub(super) fn dequantize_q4_0(x: &[u8], y: &mut [f32]) {
    for (b, y) in x.chunks_exact(18).zip(y.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        let (lo, hi) = y.split_at_mut(QK / 2);
        for ((q, a), c) in b[2..18].iter().zip(lo).zip(hi) {
            *a = ((q & 0x0F) as i32 - 8) as f32 * d;
            *c = ((q >> 4) as i32 - 8) as f32 * d;
        }
    }
}

pub(super) fn dequantize_q4_1(x: &[u8], y: &mut [f32]) {
    for (b, y) in x.chunks_exact(20).zip(y.chunks_exact_mut(QK)) {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        let (lo, hi) = y.split_at_mut(QK / 2);
        for ((q, a), c) in b[4..20].iter().zip(lo).zip(hi) {
            *a = (q & 0x0F) as f32 * d + m;
            *c = (q >> 4) as f32 * d + m;
        }
    }
}

/// The 32 five-bit values of a Q5 block body (qh[4] then qs[16]).
#[inline]
fn unpack5(b: &[u8]) -> [i32; QK] {
    let qh = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let mut l = [0i32; QK];
    for j in 0..QK / 2 {
        let q = b[4 + j];
        l[j] = ((q & 0x0F) as u32 | (((qh >> j) << 4) & 0x10)) as i32;
        l[j + QK / 2] = ((q >> 4) as u32 | ((qh >> (j + 12)) & 0x10)) as i32;
    }
    l
}

pub(super) fn dequantize_q5_0(x: &[u8], y: &mut [f32]) {
    for (b, y) in x.chunks_exact(22).zip(y.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        for (o, l) in y.iter_mut().zip(unpack5(&b[2..22])) {
            *o = (l - 16) as f32 * d;
        }
    }
}

pub(super) fn dequantize_q5_1(x: &[u8], y: &mut [f32]) {
    for (b, y) in x.chunks_exact(24).zip(y.chunks_exact_mut(QK)) {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        for (o, l) in y.iter_mut().zip(unpack5(&b[4..24])) {
            *o = l as f32 * d + m;
        }
    }
}

pub(super) fn dequantize_q8_0(x: &[u8], y: &mut [f32]) {
    for (b, y) in x.chunks_exact(34).zip(y.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        for (o, q) in y.iter_mut().zip(&b[2..34]) {
            *o = *q as i8 as f32 * d;
        }
    }
}
