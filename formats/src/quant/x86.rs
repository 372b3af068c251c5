//! x86 SIMD versions of the k-quant searches: independent sub-blocks in the lanes of one
//! register (16 with AVX-512F, 8 with AVX2), each lane performing exactly the float
//! operations of the scalar reference in the same order (no reassociation, no fused
//! multiply-add: every `mul` and `add` is its own IEEE-rounded instruction, as in
//! `ggml-quants.c`). Branches of the reference become per-lane masks, so every lane's result
//! is bit-identical to a scalar call on its sub-block. The search is written once, generic
//! over [`Simd`]; the widest instruction set the CPU has is picked at run time, and the
//! portable code stays the fallback. The tests hold every path equal to the scalar reference.

use std::arch::x86_64::*;

use super::qkx2::Qkx2;

/// The most lanes any [`Simd`] has.
pub(super) const MAX_LANES: usize = 16;

/// The widest SIMD this CPU runs (std caches the detection).
#[inline]
pub(super) fn best() -> Option<Isa> {
    if std::arch::is_x86_feature_detected!("avx512f") {
        Some(Isa::Avx512)
    } else if std::arch::is_x86_feature_detected!("avx2") {
        Some(Isa::Avx2)
    } else {
        None
    }
}

/// An instruction set the searches are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Isa {
    Avx512,
    Avx2,
}

impl Isa {
    /// Sub-blocks per register.
    pub(super) fn lanes(self) -> usize {
        match self {
            Isa::Avx512 => 16,
            Isa::Avx2 => 8,
        }
    }
}

/// The lane operations the searches need. Every method is a single IEEE operation per lane.
trait Simd {
    const LANES: usize;
    type V: Copy;
    type I: Copy;
    type M: Copy;
    unsafe fn splat(v: f32) -> Self::V;
    unsafe fn splat_i(v: i32) -> Self::I;
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn div(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn abs(a: Self::V) -> Self::V;
    /// `a < b`, `a > b`, `a == b` (ordered), `a != b` (unordered), `!(a < b)` (unordered).
    unsafe fn lt(a: Self::V, b: Self::V) -> Self::M;
    unsafe fn gt(a: Self::V, b: Self::V) -> Self::M;
    unsafe fn eq(a: Self::V, b: Self::V) -> Self::M;
    unsafe fn ne(a: Self::V, b: Self::V) -> Self::M;
    unsafe fn nlt(a: Self::V, b: Self::V) -> Self::M;
    unsafe fn and(a: Self::M, b: Self::M) -> Self::M;
    unsafe fn bits(m: Self::M) -> u32;
    /// `new` where `m`, else `old`.
    unsafe fn blend(m: Self::M, old: Self::V, new: Self::V) -> Self::V;
    unsafe fn blend_i(m: Self::M, old: Self::I, new: Self::I) -> Self::I;
    /// ggml's `nearest_int(a * b)`: the 1.5 * 2^23 trick, same bits for any input.
    unsafe fn nearest(a: Self::V, b: Self::V) -> Self::I;
    unsafe fn clamp_i(v: Self::I, lo: Self::I, hi: Self::I) -> Self::I;
    unsafe fn add_i(a: Self::I, b: Self::I) -> Self::I;
    unsafe fn to_f(v: Self::I) -> Self::V;
    unsafe fn to_i(v: Self::V) -> Self::I;
    /// Lane `j` gets `base[stride * j]`.
    unsafe fn gather(base: *const f32, stride: i32) -> Self::V;
    unsafe fn store(v: Self::V, out: &mut [f32; MAX_LANES]);
    unsafe fn store_i(v: Self::I, out: &mut [i32; MAX_LANES]);
}

struct Avx512;

impl Simd for Avx512 {
    const LANES: usize = 16;
    type V = __m512;
    type I = __m512i;
    type M = __mmask16;
    #[inline(always)]
    unsafe fn splat(v: f32) -> __m512 {
        _mm512_set1_ps(v)
    }
    #[inline(always)]
    unsafe fn splat_i(v: i32) -> __m512i {
        _mm512_set1_epi32(v)
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        _mm512_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: __m512, b: __m512) -> __m512 {
        _mm512_sub_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: __m512, b: __m512) -> __m512 {
        _mm512_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn div(a: __m512, b: __m512) -> __m512 {
        _mm512_div_ps(a, b)
    }
    #[inline(always)]
    unsafe fn abs(a: __m512) -> __m512 {
        _mm512_castsi512_ps(_mm512_and_si512(
            _mm512_castps_si512(a),
            _mm512_set1_epi32(0x7fff_ffff),
        ))
    }
    #[inline(always)]
    unsafe fn lt(a: __m512, b: __m512) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b)
    }
    #[inline(always)]
    unsafe fn gt(a: __m512, b: __m512) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b)
    }
    #[inline(always)]
    unsafe fn eq(a: __m512, b: __m512) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b)
    }
    #[inline(always)]
    unsafe fn ne(a: __m512, b: __m512) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(a, b)
    }
    #[inline(always)]
    unsafe fn nlt(a: __m512, b: __m512) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(a, b)
    }
    #[inline(always)]
    unsafe fn and(a: __mmask16, b: __mmask16) -> __mmask16 {
        a & b
    }
    #[inline(always)]
    unsafe fn bits(m: __mmask16) -> u32 {
        m as u32
    }
    #[inline(always)]
    unsafe fn blend(m: __mmask16, old: __m512, new: __m512) -> __m512 {
        _mm512_mask_blend_ps(m, old, new)
    }
    #[inline(always)]
    unsafe fn blend_i(m: __mmask16, old: __m512i, new: __m512i) -> __m512i {
        _mm512_mask_blend_epi32(m, old, new)
    }
    #[inline(always)]
    unsafe fn nearest(a: __m512, b: __m512) -> __m512i {
        let val = _mm512_add_ps(_mm512_mul_ps(a, b), _mm512_set1_ps(12_582_912.0));
        _mm512_sub_epi32(
            _mm512_and_si512(_mm512_castps_si512(val), _mm512_set1_epi32(0x007f_ffff)),
            _mm512_set1_epi32(0x0040_0000),
        )
    }
    #[inline(always)]
    unsafe fn clamp_i(v: __m512i, lo: __m512i, hi: __m512i) -> __m512i {
        _mm512_min_epi32(_mm512_max_epi32(v, lo), hi)
    }
    #[inline(always)]
    unsafe fn add_i(a: __m512i, b: __m512i) -> __m512i {
        _mm512_add_epi32(a, b)
    }
    #[inline(always)]
    unsafe fn to_f(v: __m512i) -> __m512 {
        _mm512_cvtepi32_ps(v)
    }
    #[inline(always)]
    unsafe fn to_i(v: __m512) -> __m512i {
        _mm512_cvtps_epi32(v)
    }
    #[inline(always)]
    unsafe fn gather(base: *const f32, stride: i32) -> __m512 {
        let idx = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(stride),
        );
        _mm512_i32gather_ps::<4>(idx, base)
    }
    #[inline(always)]
    unsafe fn store(v: __m512, out: &mut [f32; MAX_LANES]) {
        _mm512_storeu_ps(out.as_mut_ptr(), v)
    }
    #[inline(always)]
    unsafe fn store_i(v: __m512i, out: &mut [i32; MAX_LANES]) {
        _mm512_storeu_si512(out.as_mut_ptr().cast(), v)
    }
}

struct Avx2;

impl Simd for Avx2 {
    const LANES: usize = 8;
    type V = __m256;
    type I = __m256i;
    type M = __m256;
    #[inline(always)]
    unsafe fn splat(v: f32) -> __m256 {
        _mm256_set1_ps(v)
    }
    #[inline(always)]
    unsafe fn splat_i(v: i32) -> __m256i {
        _mm256_set1_epi32(v)
    }
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        _mm256_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: __m256, b: __m256) -> __m256 {
        _mm256_sub_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: __m256, b: __m256) -> __m256 {
        _mm256_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn div(a: __m256, b: __m256) -> __m256 {
        _mm256_div_ps(a, b)
    }
    #[inline(always)]
    unsafe fn abs(a: __m256) -> __m256 {
        _mm256_castsi256_ps(_mm256_and_si256(
            _mm256_castps_si256(a),
            _mm256_set1_epi32(0x7fff_ffff),
        ))
    }
    #[inline(always)]
    unsafe fn lt(a: __m256, b: __m256) -> __m256 {
        _mm256_cmp_ps::<_CMP_LT_OQ>(a, b)
    }
    #[inline(always)]
    unsafe fn gt(a: __m256, b: __m256) -> __m256 {
        _mm256_cmp_ps::<_CMP_GT_OQ>(a, b)
    }
    #[inline(always)]
    unsafe fn eq(a: __m256, b: __m256) -> __m256 {
        _mm256_cmp_ps::<_CMP_EQ_OQ>(a, b)
    }
    #[inline(always)]
    unsafe fn ne(a: __m256, b: __m256) -> __m256 {
        _mm256_cmp_ps::<_CMP_NEQ_UQ>(a, b)
    }
    #[inline(always)]
    unsafe fn nlt(a: __m256, b: __m256) -> __m256 {
        _mm256_cmp_ps::<_CMP_NLT_UQ>(a, b)
    }
    #[inline(always)]
    unsafe fn and(a: __m256, b: __m256) -> __m256 {
        _mm256_and_ps(a, b)
    }
    #[inline(always)]
    unsafe fn bits(m: __m256) -> u32 {
        _mm256_movemask_ps(m) as u32
    }
    #[inline(always)]
    unsafe fn blend(m: __m256, old: __m256, new: __m256) -> __m256 {
        _mm256_blendv_ps(old, new, m)
    }
    #[inline(always)]
    unsafe fn blend_i(m: __m256, old: __m256i, new: __m256i) -> __m256i {
        _mm256_castps_si256(_mm256_blendv_ps(
            _mm256_castsi256_ps(old),
            _mm256_castsi256_ps(new),
            m,
        ))
    }
    #[inline(always)]
    unsafe fn nearest(a: __m256, b: __m256) -> __m256i {
        let val = _mm256_add_ps(_mm256_mul_ps(a, b), _mm256_set1_ps(12_582_912.0));
        _mm256_sub_epi32(
            _mm256_and_si256(_mm256_castps_si256(val), _mm256_set1_epi32(0x007f_ffff)),
            _mm256_set1_epi32(0x0040_0000),
        )
    }
    #[inline(always)]
    unsafe fn clamp_i(v: __m256i, lo: __m256i, hi: __m256i) -> __m256i {
        _mm256_min_epi32(_mm256_max_epi32(v, lo), hi)
    }
    #[inline(always)]
    unsafe fn add_i(a: __m256i, b: __m256i) -> __m256i {
        _mm256_add_epi32(a, b)
    }
    #[inline(always)]
    unsafe fn to_f(v: __m256i) -> __m256 {
        _mm256_cvtepi32_ps(v)
    }
    #[inline(always)]
    unsafe fn to_i(v: __m256) -> __m256i {
        _mm256_cvtps_epi32(v)
    }
    #[inline(always)]
    unsafe fn gather(base: *const f32, stride: i32) -> __m256 {
        let idx = _mm256_mullo_epi32(
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            _mm256_set1_epi32(stride),
        );
        _mm256_i32gather_ps::<4>(base, idx)
    }
    #[inline(always)]
    unsafe fn store(v: __m256, out: &mut [f32; MAX_LANES]) {
        _mm256_storeu_ps(out.as_mut_ptr(), v)
    }
    #[inline(always)]
    unsafe fn store_i(v: __m256i, out: &mut [i32; MAX_LANES]) {
        _mm256_storeu_si256(out.as_mut_ptr().cast(), v)
    }
}

/// `make_qkx2_quants` on `isa.lanes()` sub-blocks of `N` values at once: sub-block `j` is
/// `x[N*j..N*j+N]` with `weights[N*j..]`; its levels go to `l[N*j..N*j+N]` and its
/// (scale, -min) to `out[j]`. Same contract as `qkx2::make_qkx2_quants_x8`.
///
/// # Safety
/// The CPU must have `isa` (as [`best`] reports it).
pub(super) unsafe fn qkx2<const N: usize>(
    isa: Isa,
    p: &Qkx2,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    out: &mut [(f32, f32)],
) {
    match isa {
        Isa::Avx512 => qkx2_avx512::<N>(p, x, weights, l, out),
        Isa::Avx2 => qkx2_avx2::<N>(p, x, weights, l, out),
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn qkx2_avx512<const N: usize>(
    p: &Qkx2,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    out: &mut [(f32, f32)],
) {
    qkx2_lanes::<Avx512, N>(p, x, weights, l, out)
}

#[target_feature(enable = "avx2")]
unsafe fn qkx2_avx2<const N: usize>(
    p: &Qkx2,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    out: &mut [(f32, f32)],
) {
    qkx2_lanes::<Avx2, N>(p, x, weights, l, out)
}

#[inline(always)]
unsafe fn qkx2_lanes<S: Simd, const N: usize>(
    p: &Qkx2,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    out: &mut [(f32, f32)],
) {
    let lanes = S::LANES;
    assert!(x.len() >= lanes * N && weights.len() >= lanes * N && l.len() >= lanes * N);
    assert!(out.len() >= lanes);
    let zero = S::splat(0.0);
    let mut xt = [zero; N];
    let mut wt = [zero; N];
    for i in 0..N {
        // SAFETY: lane j reads x[N*j + i] < lanes * N <= x.len() (asserted), same for weights.
        xt[i] = S::gather(x.as_ptr().add(i), N as i32);
        wt[i] = S::gather(weights.as_ptr().add(i), N as i32);
    }
    let mut min = xt[0];
    let mut max = xt[0];
    let mut sum_w = wt[0];
    let mut sum_x = S::mul(sum_w, xt[0]);
    for i in 1..N {
        let v = xt[i];
        min = S::blend(S::lt(v, min), min, v);
        max = S::blend(S::gt(v, max), max, v);
        sum_w = S::add(sum_w, wt[i]);
        sum_x = S::add(sum_x, S::mul(wt[i], v));
    }
    min = S::blend(S::gt(min, zero), min, zero);
    let flat = S::bits(S::eq(max, min));
    let nmaxf = p.nmax as f32;
    let (izero, nmax) = (S::splat_i(0), S::splat_i(p.nmax));
    let quant = |isc: S::V, v: S::V| S::to_f(S::clamp_i(S::nearest(isc, v), izero, nmax));
    let mut range = S::sub(max, min);
    let iscale = S::div(S::splat(nmaxf), range);
    let mut scale = S::div(S::splat(1.0), iscale);
    let mut xm = [zero; N];
    let mut lt = [zero; N];
    for i in 0..N {
        xm[i] = S::sub(xt[i], min);
        lt[i] = quant(iscale, xm[i]);
    }
    let err = |s: S::V, m: S::V, q: S::V, v: S::V, w: S::V| {
        let diff = S::sub(S::add(S::mul(s, q), m), v);
        let diff = if p.use_mad {
            S::abs(diff)
        } else {
            S::mul(diff, diff)
        };
        S::mul(w, diff)
    };
    let mut best_error = zero;
    for i in 0..N {
        best_error = S::add(best_error, err(scale, min, lt[i], xt[i], wt[i]));
    }
    if p.nstep >= 1 {
        let mut aux = [zero; N];
        for is in 0..=p.nstep {
            let num = p.rmin + p.rdelta * is as f32 + nmaxf;
            let isc = S::div(S::splat(num), range);
            let (mut sum_l, mut sum_l2, mut sum_xl) = (zero, zero, zero);
            for i in 0..N {
                let a = quant(isc, xm[i]);
                aux[i] = a;
                let wl = S::mul(wt[i], a);
                sum_l = S::add(sum_l, wl);
                sum_l2 = S::add(sum_l2, S::mul(wl, a));
                sum_xl = S::add(sum_xl, S::mul(wl, xt[i]));
            }
            let d = S::sub(S::mul(sum_w, sum_l2), S::mul(sum_l, sum_l));
            let ok = S::gt(d, zero);
            if S::bits(ok) == 0 {
                continue;
            }
            let s = S::div(S::sub(S::mul(sum_w, sum_xl), S::mul(sum_x, sum_l)), d);
            let m = S::div(S::sub(S::mul(sum_l2, sum_x), S::mul(sum_l, sum_xl)), d);
            let clamp = S::gt(m, zero);
            let this_min = S::blend(clamp, m, zero);
            let this_scale = S::blend(clamp, s, S::div(sum_xl, sum_l2));
            let mut cur_error = zero;
            for i in 0..N {
                cur_error = S::add(cur_error, err(this_scale, this_min, aux[i], xt[i], wt[i]));
            }
            let take = S::and(ok, S::lt(cur_error, best_error));
            if S::bits(take) == 0 {
                continue;
            }
            best_error = S::blend(take, best_error, cur_error);
            scale = S::blend(take, scale, this_scale);
            min = S::blend(take, min, this_min);
            range = S::sub(max, min);
            for i in 0..N {
                lt[i] = S::blend(take, lt[i], aux[i]);
                xm[i] = S::sub(xt[i], min);
            }
        }
    }
    let mut levels = [[0i32; MAX_LANES]; N];
    for i in 0..N {
        S::store_i(S::to_i(lt[i]), &mut levels[i]);
    }
    let (mut sc, mut mn) = ([0f32; MAX_LANES], [0f32; MAX_LANES]);
    S::store(scale, &mut sc);
    S::store(min, &mut mn);
    for j in 0..lanes {
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
/// (sub-block `j` in lane `j`, two passes of 8 on AVX2): levels `0..64` into `l`, scales into
/// `scales`. Same contract as 16 calls of `kquants::make_qx_quants(32, ..)`.
///
/// # Safety
/// The CPU must have `isa` (as [`best`] reports it).
pub(super) unsafe fn qx_q6(isa: Isa, x: &[f32], l: &mut [u8], scales: &mut [f32; 16]) {
    assert!(x.len() >= 256 && l.len() >= 256);
    match isa {
        Isa::Avx512 => qx_q6_avx512(x, l, scales),
        Isa::Avx2 => {
            let (lo, hi) = scales.split_at_mut(8);
            qx_q6_avx2(&x[..128], &mut l[..128], lo);
            qx_q6_avx2(&x[128..], &mut l[128..], hi);
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn qx_q6_avx512(x: &[f32], l: &mut [u8], scales: &mut [f32]) {
    qx_q6_lanes::<Avx512>(x, l, scales)
}

#[target_feature(enable = "avx2")]
unsafe fn qx_q6_avx2(x: &[f32], l: &mut [u8], scales: &mut [f32]) {
    qx_q6_lanes::<Avx2>(x, l, scales)
}

#[inline(always)]
unsafe fn qx_q6_lanes<S: Simd>(x: &[f32], l: &mut [u8], scales: &mut [f32]) {
    const N: usize = 16;
    const NMAX: i32 = 32;
    let lanes = S::LANES;
    assert!(x.len() >= lanes * N && l.len() >= lanes * N && scales.len() >= lanes);
    let zero = S::splat(0.0);
    let mut xt = [zero; N];
    let mut w = [zero; N];
    let mut wv = [zero; N];
    let mut amax = zero;
    let mut max = zero;
    for i in 0..N {
        // SAFETY: lane j reads x[N*j + i] < lanes * N <= x.len() (asserted).
        let v = S::gather(x.as_ptr().add(i), N as i32);
        xt[i] = v;
        let ax = S::abs(v);
        let gt = S::gt(ax, amax);
        amax = S::blend(gt, amax, ax);
        max = S::blend(gt, max, v);
        w[i] = S::mul(v, v);
        wv[i] = S::mul(w[i], v);
    }
    let live = S::nlt(amax, S::splat(super::kquants::GROUP_MAX_EPS));
    let (lo, hi) = (S::splat_i(-NMAX), S::splat_i(NMAX - 1));
    let quant = |isc: S::V, v: S::V| S::clamp_i(S::nearest(isc, v), lo, hi);
    let nmaxf = NMAX as f32;
    let sums = |isc: S::V| {
        let (mut sumlx, mut suml2) = (zero, zero);
        for i in 0..N {
            let q = S::to_f(quant(isc, xt[i]));
            sumlx = S::add(sumlx, S::mul(wv[i], q));
            suml2 = S::add(suml2, S::mul(S::mul(w[i], q), q));
        }
        (sumlx, suml2)
    };
    // Candidate 0 (iscale = -nmax / max), then is = -9..=9 without 0, as the reference.
    let mut chosen = S::div(S::splat(-nmaxf), max);
    let (sumlx, suml2) = sums(chosen);
    let nz = S::ne(suml2, zero);
    let mut scale = S::blend(nz, zero, S::div(sumlx, suml2));
    let mut best = S::mul(scale, sumlx);
    // The other 18 candidates do not depend on each other; only acceptance is in order.
    let mut cand = [(zero, zero, zero); 18];
    for (k, is) in (-9i32..=9).filter(|&is| is != 0).enumerate() {
        let isc = S::div(S::splat(-(nmaxf + 0.1 * is as f32)), max);
        let (sumlx, suml2) = sums(isc);
        cand[k] = (isc, sumlx, suml2);
    }
    for &(isc, sumlx, suml2) in &cand {
        let take = S::and(
            S::gt(suml2, zero),
            S::gt(S::mul(sumlx, sumlx), S::mul(best, suml2)),
        );
        if S::bits(take) == 0 {
            continue;
        }
        scale = S::blend(take, scale, S::div(sumlx, suml2));
        best = S::blend(take, best, S::mul(scale, sumlx));
        chosen = S::blend(take, chosen, isc);
    }
    let mut levels = [[0i32; MAX_LANES]; N];
    let (off, izero) = (S::splat_i(NMAX), S::splat_i(0));
    for i in 0..N {
        let q = S::blend_i(live, izero, S::add_i(quant(chosen, xt[i]), off));
        S::store_i(q, &mut levels[i]);
    }
    for j in 0..lanes {
        for i in 0..N {
            l[N * j + i] = levels[i][j] as u8;
        }
    }
    let mut sc = [0f32; MAX_LANES];
    S::store(S::blend(live, zero, scale), &mut sc);
    scales[..lanes].copy_from_slice(&sc[..lanes]);
}
