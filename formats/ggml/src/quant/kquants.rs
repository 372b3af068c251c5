//! k-quant quantizers (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K): 256-weight super-blocks laid out as
//! ggml's `block_q*_K` (`ggml-common.h`), values chosen exactly as `quantize_row_q*_K_ref` and
//! its helpers `make_qkx2_quants`, `make_q3_quants`, `make_qx_quants` and `nearest_int` in
//! `ggml-quants.c` choose them
//! (<https://github.com/ggml-org/llama.cpp/blob/master/ggml/src/ggml-quants.c>).
//!
//! Float sums are accumulated in the reference's order (that order decides the chosen
//! scales); the per-element work around them is written as separate straight loops so the
//! compiler can vectorize it.

use super::qkx2::{make_qkx2_quants_many, Qkx2};
use super::{f16_at, fp32_to_fp16};

pub(super) const QK_K: usize = 256;
pub(super) const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml's `nearest_int`: round half to even through the 1.5 * 2^23 trick (and the same bits
/// as the reference for out-of-range inputs).
#[inline(always)]
pub(super) fn nearest_int(f: f32) -> i32 {
    let val = f + 12_582_912.0;
    (val.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// The first value with the largest magnitude (`if (ax > amax) { amax = ax; max = x[i]; }`).
#[inline]
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let mut max = 0f32;
    let mut amax = 0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    (amax, max)
}

/// `make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL)`: a symmetric scale tried at 19
/// candidate steps, weights x^2. `l` gets values in `0..2*nmax`.
pub(super) fn make_qx_quants(nmax: i32, x: &[f32], l: &mut [u8]) -> f32 {
    // The 19 candidate scales' sums do not depend on each other, so they are computed side
    // by side (each lane in the reference's order); acceptance is then scanned in order.
    const C: usize = 20;
    let (amax, max) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let mut iscales = [0f32; C];
    iscales[0] = -nmaxf / max;
    for (k, is) in (-9i32..=9).filter(|&is| is != 0).enumerate() {
        iscales[k + 1] = -(nmaxf + 0.1 * is as f32) / max;
    }
    iscales[C - 1] = iscales[0];
    let quant = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    let (mut sumlx, mut suml2) = ([0f32; C], [0f32; C]);
    for &v in x {
        let w = v * v;
        let wv = w * v;
        for k in 0..C {
            let q = quant(iscales[k], v) as f32;
            sumlx[k] += wv * q;
            suml2[k] += w * q * q;
        }
    }
    let mut chosen = 0;
    let mut scale = if suml2[0] != 0.0 {
        sumlx[0] / suml2[0]
    } else {
        0.0
    };
    let mut best = scale * sumlx[0];
    for k in 1..C - 1 {
        if suml2[k] > 0.0 && sumlx[k] * sumlx[k] > best * suml2[k] {
            chosen = k;
            scale = sumlx[k] / suml2[k];
            best = scale * sumlx[k];
        }
    }
    for (o, &v) in l.iter_mut().zip(x) {
        *o = (quant(iscales[chosen], v) + nmax) as u8;
    }
    scale
}

/// `make_q3_quants(n, nmax, x, L, do_rmse = true)`: symmetric scale refined by moving one
/// value at a time. `l` gets values in `0..2*nmax`.
fn make_q3_quants(nmax: i32, x: &[f32], l: &mut [i8]) -> f32 {
    let (amax, max) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let mut sumlx = 0f32;
    let mut suml2 = 0f32;
    for (o, &v) in l.iter_mut().zip(x) {
        let q = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
        *o = q as i8;
        let w = v * v;
        sumlx += w * v * q as f32;
        suml2 += w * q as f32 * q as f32;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for (li, &v) in l.iter_mut().zip(x) {
            let w = v * v;
            let cur = *li as f32;
            let mut slx = sumlx - w * v * cur;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * cur * cur;
                let new_l = nearest_int(v * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != *li as i32 {
                    let nl = new_l as f32;
                    slx += w * v * nl;
                    sl2 += w * nl * nl;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *li = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for li in l.iter_mut() {
        *li += nmax as i8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// ggml's `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` of a Q4_K/Q5_K block.
#[inline]
pub(super) fn get_scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// 2-bit packing shared by Q2_K and Q3_K: qs[j/4 + l] holds L[j+l], L[j+l+32], L[j+l+64],
/// L[j+l+96] for each half of the block.
#[inline]
fn pack2(l: &[u8; QK_K], qs: &mut [u8]) {
    for j in (0..QK_K).step_by(128) {
        for k in 0..32 {
            qs[j / 4 + k] =
                l[j + k] | (l[j + k + 32] << 2) | (l[j + k + 64] << 4) | (l[j + k + 96] << 6);
        }
    }
}

pub(super) fn quantize_q2_k(x: &[f32], y: &mut [u8]) {
    let p = Qkx2::Q2_K;
    for (x, y) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(84)) {
        let mut l = [0u8; QK_K];
        let mut scales = [0f32; 16];
        let mut mins = [0f32; 16];
        let mut weights = [0f32; QK_K];
        for (w, v) in weights.iter_mut().zip(x) {
            *w = v.abs();
        }
        // 16 independent sub-blocks, one per SIMD lane.
        let mut found = [(0f32, 0f32); 16];
        make_qkx2_quants_many::<16>(&p, x, &weights, &mut l, &mut found);
        let (max_scale, max_min) = unpack_found(&found, &mut scales, &mut mins);
        let (sc, rest) = y.split_at_mut(16);
        if max_scale > 0.0 {
            let iscale = 15.0 / max_scale;
            for (o, s) in sc.iter_mut().zip(scales) {
                *o = nearest_int(iscale * s) as u8;
            }
            rest[64..66].copy_from_slice(&fp32_to_fp16(max_scale / 15.0).to_le_bytes());
        } else {
            sc.fill(0);
            rest[64..66].copy_from_slice(&fp32_to_fp16(0.0).to_le_bytes());
        }
        if max_min > 0.0 {
            let iscale = 15.0 / max_min;
            for (o, m) in sc.iter_mut().zip(mins) {
                *o |= (nearest_int(iscale * m) << 4) as u8;
            }
            rest[66..68].copy_from_slice(&fp32_to_fp16(max_min / 15.0).to_le_bytes());
        } else {
            rest[66..68].copy_from_slice(&fp32_to_fp16(0.0).to_le_bytes());
        }
        let (d_all, dmin_all) = (f16_at(rest, 64), f16_at(rest, 66));
        for j in 0..16 {
            let d = d_all * (sc[j] & 0xF) as f32;
            if d == 0.0 {
                continue;
            }
            let dm = dmin_all * (sc[j] >> 4) as f32;
            for ii in 0..16 {
                l[16 * j + ii] = nearest_int((x[16 * j + ii] + dm) / d).clamp(0, 3) as u8;
            }
        }
        pack2(&l, &mut rest[0..64]);
    }
}

pub(super) fn quantize_q3_k(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(110)) {
        let mut l = [0i8; QK_K];
        let mut scales = [0f32; 16];
        let mut max_scale = 0f32;
        let mut amax = 0f32;
        for j in 0..16 {
            scales[j] = make_q3_quants(4, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16]);
            let scale = scales[j].abs();
            if scale > amax {
                amax = scale;
                max_scale = scales[j];
            }
        }
        let (hmask, rest) = y.split_at_mut(32);
        let (qs, rest) = rest.split_at_mut(64);
        let (sc, dbytes) = rest.split_at_mut(12);
        sc.fill(0);
        if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            for (j, &s) in scales.iter().enumerate() {
                let q = nearest_int(iscale * s) as i8;
                let q = ((q as i32).clamp(-32, 31) + 32) as u8;
                if j < 8 {
                    sc[j] = q & 0xF;
                } else {
                    sc[j - 8] |= (q & 0xF) << 4;
                }
                sc[j % 4 + 8] |= (q >> 4) << (2 * (j / 4));
            }
            dbytes.copy_from_slice(&fp32_to_fp16(1.0 / iscale).to_le_bytes());
        } else {
            dbytes.copy_from_slice(&fp32_to_fp16(0.0).to_le_bytes());
        }
        let d_all = f16_at(dbytes, 0);
        for j in 0..16 {
            let lo = if j < 8 { sc[j] & 0xF } else { sc[j - 8] >> 4 };
            let s = (lo | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) as i8 - 32;
            let d = d_all * s as f32;
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                l[16 * j + ii] = (nearest_int(x[16 * j + ii] / d).clamp(-4, 3) + 4) as i8;
            }
        }
        hmask.fill(0);
        let mut lu = [0u8; QK_K];
        for (j, (o, &v)) in lu.iter_mut().zip(l.iter()).enumerate() {
            let mut v = v as u8;
            if v > 3 {
                hmask[j % 32] |= 1 << (j / 32);
                v -= 4;
            }
            *o = v;
        }
        pack2(&lu, qs);
    }
}

/// Super-blocks searched together by [`quantize_k_asym`]: 32 sub-blocks of 32, two AVX-512
/// registers (`x86::GROUPS`).
const ASYM_GROUP: usize = 4;

/// Q4_K and Q5_K share everything but the bit width, the candidate steps and the packing of
/// the levels (`pack` writes one block's levels after its 16-byte head). Super-blocks are
/// taken [`ASYM_GROUP`] at a time so that all their sub-blocks' searches run side by side.
fn quantize_k_asym(
    x: &[f32],
    y: &mut [u8],
    block_bytes: usize,
    p: &Qkx2,
    pack: fn(&[u8; QK_K], &mut [u8]),
) {
    const G: usize = ASYM_GROUP;
    for (x, y) in x.chunks(G * QK_K).zip(y.chunks_mut(G * block_bytes)) {
        let nb = x.len() / QK_K;
        let mut weights = [0f32; G * QK_K];
        let mut l = [0u8; G * QK_K];
        let mut found = [(0f32, 0f32); 8 * G];
        for (j, xs) in x.chunks_exact(32).enumerate() {
            let mut sum_x2 = 0f32;
            for v in xs {
                sum_x2 += v * v;
            }
            let av_x = (sum_x2 / 32.0).sqrt();
            for (w, v) in weights[32 * j..32 * j + 32].iter_mut().zip(xs) {
                *w = av_x + v.abs();
            }
        }
        // The sub-blocks' searches are independent: one per SIMD lane.
        make_qkx2_quants_many::<32>(p, x, &weights, &mut l, &mut found[..8 * nb]);
        for (b, (x, y)) in x
            .chunks_exact(QK_K)
            .zip(y.chunks_exact_mut(block_bytes))
            .enumerate()
        {
            let l: &mut [u8; QK_K] = (&mut l[QK_K * b..QK_K * b + QK_K])
                .try_into()
                .expect("one block");
            let (head, rest) = y.split_at_mut(16);
            k_asym_finish(x, p, &found[8 * b..8 * b + 8], l, head);
            pack(l, rest);
        }
    }
}

/// Split the sub-blocks' (scale, min) pairs into `scales` and `mins` and return the largest
/// of each (0 when none is positive), in sub-block order as ggml scans them.
fn unpack_found(found: &[(f32, f32)], scales: &mut [f32], mins: &mut [f32]) -> (f32, f32) {
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    for (j, &(s, m)) in found.iter().enumerate() {
        scales[j] = s;
        mins[j] = m;
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    (max_scale, max_min)
}

/// One Q4_K/Q5_K block's scales and levels from its sub-blocks' (scale, -min).
fn k_asym_finish(x: &[f32], p: &Qkx2, found: &[(f32, f32)], l: &mut [u8; QK_K], y_head: &mut [u8]) {
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    let (max_scale, max_min) = unpack_found(found, &mut scales, &mut mins);
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let sc = &mut y_head[4..16];
    for j in 0..8 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            sc[j - 4] |= (ls >> 4) << 6;
            sc[j] |= (lm >> 4) << 6;
        }
    }
    y_head[0..2].copy_from_slice(&fp32_to_fp16(max_scale / 63.0).to_le_bytes());
    y_head[2..4].copy_from_slice(&fp32_to_fp16(max_min / 63.0).to_le_bytes());
    let (d_all, dmin_all) = (f16_at(y_head, 0), f16_at(y_head, 2));
    for j in 0..8 {
        let (s, m) = get_scale_min_k4(j, &y_head[4..16]);
        let d = d_all * s as f32;
        if d == 0.0 {
            continue;
        }
        let dm = dmin_all * m as f32;
        for ii in 0..32 {
            l[32 * j + ii] = nearest_int((x[32 * j + ii] + dm) / d).clamp(0, p.nmax) as u8;
        }
    }
}

pub(super) fn quantize_q4_k(x: &[f32], y: &mut [u8]) {
    let p = Qkx2::Q4_K;
    quantize_k_asym(x, y, 144, &p, |l, qs| {
        for (n, q) in qs.chunks_exact_mut(32).enumerate() {
            let j = 64 * n;
            for (k, o) in q.iter_mut().enumerate() {
                *o = l[j + k] | (l[j + k + 32] << 4);
            }
        }
    });
}

pub(super) fn quantize_q5_k(x: &[f32], y: &mut [u8]) {
    let p = Qkx2::Q5_K;
    quantize_k_asym(x, y, 176, &p, |l, rest| {
        let (qh, ql) = rest.split_at_mut(32);
        qh.fill(0);
        let (mut m1, mut m2) = (1u8, 2u8);
        for (n, q) in ql.chunks_exact_mut(32).enumerate() {
            let base = 64 * n;
            for j in 0..32 {
                let mut l1 = l[base + j];
                if l1 > 15 {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                let mut l2 = l[base + j + 32];
                if l2 > 15 {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                q[j] = l1 | (l2 << 4);
            }
            m1 <<= 2;
            m2 <<= 2;
        }
    });
}

pub(super) fn quantize_q6_k(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(210)) {
        let mut l = [0u8; QK_K];
        let mut scales = [0f32; 16];
        let mut max_scale = 0f32;
        let mut max_abs_scale = 0f32;
        q6_k_search(x, &mut l, &mut scales);
        for &scale in &scales {
            if scale.abs() > max_abs_scale {
                max_abs_scale = scale.abs();
                max_scale = scale;
            }
        }
        if max_abs_scale < GROUP_MAX_EPS {
            y.fill(0);
            y[208..210].copy_from_slice(&fp32_to_fp16(0.0).to_le_bytes());
            continue;
        }
        let (ql, rest) = y.split_at_mut(128);
        let (qh, rest) = rest.split_at_mut(64);
        let (sc, dbytes) = rest.split_at_mut(16);
        let iscale = -128.0 / max_scale;
        dbytes.copy_from_slice(&fp32_to_fp16(1.0 / iscale).to_le_bytes());
        for (o, &s) in sc.iter_mut().zip(scales.iter()) {
            *o = nearest_int(iscale * s).min(127) as i8 as u8;
        }
        let d_all = f16_at(dbytes, 0);
        for j in 0..16 {
            let d = d_all * (sc[j] as i8) as f32;
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                l[16 * j + ii] = (nearest_int(x[16 * j + ii] / d).clamp(-32, 31) + 32) as u8;
            }
        }
        for (h, (ql, qh)) in ql
            .chunks_exact_mut(64)
            .zip(qh.chunks_exact_mut(32))
            .enumerate()
        {
            let j = 128 * h;
            for k in 0..32 {
                let q1 = l[j + k] & 0xF;
                let q2 = l[j + k + 32] & 0xF;
                let q3 = l[j + k + 64] & 0xF;
                let q4 = l[j + k + 96] & 0xF;
                ql[k] = q1 | (q3 << 4);
                ql[k + 32] = q2 | (q4 << 4);
                qh[k] = (l[j + k] >> 4)
                    | ((l[j + k + 32] >> 4) << 2)
                    | ((l[j + k + 64] >> 4) << 4)
                    | ((l[j + k + 96] >> 4) << 6);
            }
        }
    }
}

/// The 16 sub-blocks' `make_qx_quants(16, 32, ..)` of one Q6_K block: in SIMD lanes where
/// the CPU has AVX-512 or AVX2, else one sub-block at a time.
fn q6_k_search(x: &[f32], l: &mut [u8; QK_K], scales: &mut [f32; 16]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(isa) = super::x86::best() {
        // SAFETY: the CPU has `isa` (detected above).
        unsafe { super::x86::qx_q6(isa, x, l, scales) };
        return;
    }
    for ib in 0..16 {
        scales[ib] = make_qx_quants(32, &x[16 * ib..16 * ib + 16], &mut l[16 * ib..16 * ib + 16]);
    }
}
