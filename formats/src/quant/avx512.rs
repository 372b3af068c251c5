//! AVX-512 versions of the k-quant searches: 16 independent sub-blocks in the 16 lanes of one
//! register, each lane performing exactly the float operations of the scalar reference in
//! the same order (no reassociation, no fused multiply-add: every `mul` and `add` is its own
//! IEEE-rounded instruction, as in `ggml-quants.c` compiled without contraction). Branches of
//! the reference become per-lane masks, so every lane's result is bit-identical to a scalar
//! call on its sub-block. Picked at run time when the CPU has AVX-512F; the portable code
//! stays the fallback and the tests hold both equal.

use std::arch::x86_64::*;

use super::qkx2::Qkx2;

/// Lanes per register.
pub(super) const LANES: usize = 16;

/// Whether this CPU runs the functions of this module (cached by std).
#[inline]
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Lane-wise ggml `nearest_int(iscale * v)` (the 1.5 * 2^23 trick, same bits for any input).
#[inline(always)]
unsafe fn nearest(iscale: __m512, v: __m512) -> __m512i {
    let val = _mm512_add_ps(_mm512_mul_ps(iscale, v), _mm512_set1_ps(12_582_912.0));
    _mm512_sub_epi32(
        _mm512_and_si512(_mm512_castps_si512(val), _mm512_set1_epi32(0x007f_ffff)),
        _mm512_set1_epi32(0x0040_0000),
    )
}

/// Value `i` of each of 16 sub-blocks of `n` values laid out one after the other.
#[inline(always)]
unsafe fn gather(base: *const f32, idx: __m512i) -> __m512 {
    _mm512_i32gather_ps::<4>(idx, base)
}

#[inline(always)]
unsafe fn blend(take: __mmask16, old: __m512, new: __m512) -> __m512 {
    _mm512_mask_blend_ps(take, old, new)
}

#[inline(always)]
unsafe fn abs(v: __m512) -> __m512 {
    _mm512_castsi512_ps(_mm512_and_si512(
        _mm512_castps_si512(v),
        _mm512_set1_epi32(0x7fff_ffff),
    ))
}

/// `make_qkx2_quants` on 16 sub-blocks of `N` values at once: sub-block `j` is
/// `x[N*j..N*j+N]` with `weights[N*j..]`; its levels go to `l[N*j..N*j+N]` and its
/// (scale, -min) to `out[j]`. Same contract as `qkx2::make_qkx2_quants_x8`, twice as wide.
///
/// # Safety
/// The CPU must have AVX-512F ([`available`]).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn qkx2_x16<const N: usize>(
    p: &Qkx2,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    out: &mut [(f32, f32); LANES],
) {
    assert!(x.len() >= LANES * N && weights.len() >= LANES * N && l.len() >= LANES * N);
    let idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(N as i32),
    );
    let zero = _mm512_setzero_ps();
    let mut xt = [zero; N];
    let mut wt = [zero; N];
    for i in 0..N {
        // SAFETY: lane j reads x[N*j + i] < LANES * N <= x.len() (asserted), same for weights.
        xt[i] = gather(x.as_ptr().add(i), idx);
        wt[i] = gather(weights.as_ptr().add(i), idx);
    }
    let mut min = xt[0];
    let mut max = xt[0];
    let mut sum_w = wt[0];
    let mut sum_x = _mm512_mul_ps(sum_w, xt[0]);
    for i in 1..N {
        let v = xt[i];
        min = blend(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(v, min), min, v);
        max = blend(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, max), max, v);
        sum_w = _mm512_add_ps(sum_w, wt[i]);
        sum_x = _mm512_add_ps(sum_x, _mm512_mul_ps(wt[i], v));
    }
    min = blend(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(min, zero), min, zero);
    let flat = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(max, min);
    let nmaxf = p.nmax as f32;
    let nmax = _mm512_set1_epi32(p.nmax);
    let izero = _mm512_setzero_si512();
    let quant = |isc: __m512, v: __m512| {
        _mm512_cvtepi32_ps(_mm512_min_epi32(
            _mm512_max_epi32(nearest(isc, v), izero),
            nmax,
        ))
    };
    let mut range = _mm512_sub_ps(max, min);
    let iscale = _mm512_div_ps(_mm512_set1_ps(nmaxf), range);
    let mut scale = _mm512_div_ps(_mm512_set1_ps(1.0), iscale);
    let mut xm = [zero; N];
    let mut lt = [zero; N];
    for i in 0..N {
        xm[i] = _mm512_sub_ps(xt[i], min);
        lt[i] = quant(iscale, xm[i]);
    }
    let err = |s: __m512, m: __m512, q: __m512, v: __m512, w: __m512| {
        let diff = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(s, q), m), v);
        let diff = if p.use_mad {
            abs(diff)
        } else {
            _mm512_mul_ps(diff, diff)
        };
        _mm512_mul_ps(w, diff)
    };
    let mut best_error = zero;
    for i in 0..N {
        best_error = _mm512_add_ps(best_error, err(scale, min, lt[i], xt[i], wt[i]));
    }
    if p.nstep >= 1 {
        let mut aux = [zero; N];
        for is in 0..=p.nstep {
            let num = p.rmin + p.rdelta * is as f32 + nmaxf;
            let isc = _mm512_div_ps(_mm512_set1_ps(num), range);
            let (mut sum_l, mut sum_l2, mut sum_xl) = (zero, zero, zero);
            for i in 0..N {
                let a = quant(isc, xm[i]);
                aux[i] = a;
                let wl = _mm512_mul_ps(wt[i], a);
                sum_l = _mm512_add_ps(sum_l, wl);
                sum_l2 = _mm512_add_ps(sum_l2, _mm512_mul_ps(wl, a));
                sum_xl = _mm512_add_ps(sum_xl, _mm512_mul_ps(wl, xt[i]));
            }
            let d = _mm512_sub_ps(_mm512_mul_ps(sum_w, sum_l2), _mm512_mul_ps(sum_l, sum_l));
            let ok = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(d, zero);
            if ok == 0 {
                continue;
            }
            let s = _mm512_div_ps(
                _mm512_sub_ps(_mm512_mul_ps(sum_w, sum_xl), _mm512_mul_ps(sum_x, sum_l)),
                d,
            );
            let m = _mm512_div_ps(
                _mm512_sub_ps(_mm512_mul_ps(sum_l2, sum_x), _mm512_mul_ps(sum_l, sum_xl)),
                d,
            );
            let clamp = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(m, zero);
            let this_min = blend(clamp, m, zero);
            let this_scale = blend(clamp, s, _mm512_div_ps(sum_xl, sum_l2));
            let mut cur_error = zero;
            for i in 0..N {
                cur_error =
                    _mm512_add_ps(cur_error, err(this_scale, this_min, aux[i], xt[i], wt[i]));
            }
            let take = ok & _mm512_cmp_ps_mask::<_CMP_LT_OQ>(cur_error, best_error);
            if take == 0 {
                continue;
            }
            best_error = blend(take, best_error, cur_error);
            scale = blend(take, scale, this_scale);
            min = blend(take, min, this_min);
            range = _mm512_sub_ps(max, min);
            for i in 0..N {
                lt[i] = blend(take, lt[i], aux[i]);
                xm[i] = _mm512_sub_ps(xt[i], min);
            }
        }
    }
    let mut levels = [[0i32; LANES]; N];
    for i in 0..N {
        _mm512_storeu_si512(levels[i].as_mut_ptr().cast(), _mm512_cvtps_epi32(lt[i]));
    }
    let mut sc = [0f32; LANES];
    let mut mn = [0f32; LANES];
    _mm512_storeu_ps(sc.as_mut_ptr(), scale);
    _mm512_storeu_ps(mn.as_mut_ptr(), min);
    for j in 0..LANES {
        let dst = &mut l[N * j..N * j + N];
        if flat & (1 << j) != 0 {
            dst.fill(0);
            out[j] = (0.0, -mn[j]);
        } else {
            for (i, o) in dst.iter_mut().enumerate() {
                *o = levels[i][j] as u8;
            }
            out[j] = (sc[j], -mn[j]);
        }
    }
}

/// Q6_K's `make_qx_quants(16, 32, x, L, 1, NULL)` on the 16 sub-blocks of one super-block
/// at once (sub-block `j` in lane `j`): levels `0..64` into `l`, scales into `scales`. Same
/// contract as 16 calls of `kquants::make_qx_quants(32, ..)`.
///
/// # Safety
/// The CPU must have AVX-512F ([`available`]).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn qx_q6_x16(x: &[f32], l: &mut [u8], scales: &mut [f32; LANES]) {
    const N: usize = 16;
    const NMAX: i32 = 32;
    assert!(x.len() >= LANES * N && l.len() >= LANES * N);
    let idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(N as i32),
    );
    let zero = _mm512_setzero_ps();
    let mut xt = [zero; N];
    let mut w = [zero; N];
    let mut wv = [zero; N];
    let mut amax = zero;
    let mut max = zero;
    for i in 0..N {
        // SAFETY: lane j reads x[N*j + i] < LANES * N <= x.len() (asserted).
        let v = gather(x.as_ptr().add(i), idx);
        xt[i] = v;
        let ax = abs(v);
        let gt = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(ax, amax);
        amax = blend(gt, amax, ax);
        max = blend(gt, max, v);
        w[i] = _mm512_mul_ps(v, v);
        wv[i] = _mm512_mul_ps(w[i], v);
    }
    let live =
        _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(amax, _mm512_set1_ps(super::kquants::GROUP_MAX_EPS));
    let lo = _mm512_set1_epi32(-NMAX);
    let hi = _mm512_set1_epi32(NMAX - 1);
    let quant =
        |isc: __m512, v: __m512| _mm512_min_epi32(_mm512_max_epi32(nearest(isc, v), lo), hi);
    let nmaxf = NMAX as f32;
    // Candidate 0 (iscale = -nmax / max), then is = -9..=9 without 0, as the reference.
    let mut chosen = _mm512_div_ps(_mm512_set1_ps(-nmaxf), max);
    let sums = |isc: __m512| {
        let (mut sumlx, mut suml2) = (zero, zero);
        for i in 0..N {
            let q = _mm512_cvtepi32_ps(quant(isc, xt[i]));
            sumlx = _mm512_add_ps(sumlx, _mm512_mul_ps(wv[i], q));
            suml2 = _mm512_add_ps(suml2, _mm512_mul_ps(_mm512_mul_ps(w[i], q), q));
        }
        (sumlx, suml2)
    };
    let (sumlx, suml2) = sums(chosen);
    let nz = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(suml2, zero);
    let mut scale = _mm512_maskz_div_ps(nz, sumlx, suml2);
    let mut best = _mm512_mul_ps(scale, sumlx);
    // The 18 other candidates are independent of each other; only acceptance is in order.
    let mut cand = [(zero, zero, zero); 18];
    for (k, is) in (-9i32..=9).filter(|&is| is != 0).enumerate() {
        let isc = _mm512_div_ps(_mm512_set1_ps(-(nmaxf + 0.1 * is as f32)), max);
        let (sumlx, suml2) = sums(isc);
        cand[k] = (isc, sumlx, suml2);
    }
    for &(isc, sumlx, suml2) in &cand {
        let take = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(suml2, zero)
            & _mm512_cmp_ps_mask::<_CMP_GT_OQ>(
                _mm512_mul_ps(sumlx, sumlx),
                _mm512_mul_ps(best, suml2),
            );
        if take == 0 {
            continue;
        }
        scale = blend(take, scale, _mm512_div_ps(sumlx, suml2));
        best = blend(take, best, _mm512_mul_ps(scale, sumlx));
        chosen = blend(take, chosen, isc);
    }
    let mut levels = [[0i32; LANES]; N];
    let off = _mm512_set1_epi32(NMAX);
    for i in 0..N {
        let q = _mm512_maskz_add_epi32(live, quant(chosen, xt[i]), off);
        _mm512_storeu_si512(levels[i].as_mut_ptr().cast(), q);
    }
    for j in 0..LANES {
        for i in 0..N {
            l[N * j + i] = levels[i][j] as u8;
        }
    }
    _mm512_storeu_ps(scales.as_mut_ptr(), _mm512_maskz_mov_ps(live, scale));
}
