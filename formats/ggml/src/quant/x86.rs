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

/// Whether this CPU runs `isa`.
#[inline]
pub(super) fn has(isa: Isa) -> bool {
    match isa {
        Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
        Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
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
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn splat(v: f32) -> __m512 {
        _mm512_set1_ps(v)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn splat_i(v: i32) -> __m512i {
        _mm512_set1_epi32(v)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        _mm512_add_ps(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn sub(a: __m512, b: __m512) -> __m512 {
        _mm512_sub_ps(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn mul(a: __m512, b: __m512) -> __m512 {
        _mm512_mul_ps(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn div(a: __m512, b: __m512) -> __m512 {
        _mm512_div_ps(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn abs(a: __m512) -> __m512 {
        _mm512_castsi512_ps(_mm512_and_si512(
            _mm512_castps_si512(a),
            _mm512_set1_epi32(0x7fff_ffff),
        ))
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn lt(a: __m512, b: __m512) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn gt(a: __m512, b: __m512) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn eq(a: __m512, b: __m512) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn ne(a: __m512, b: __m512) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn nlt(a: __m512, b: __m512) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn and(a: __mmask16, b: __mmask16) -> __mmask16 {
        a & b
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn bits(m: __mmask16) -> u32 {
        m as u32
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn blend(m: __mmask16, old: __m512, new: __m512) -> __m512 {
        _mm512_mask_blend_ps(m, old, new)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn blend_i(m: __mmask16, old: __m512i, new: __m512i) -> __m512i {
        _mm512_mask_blend_epi32(m, old, new)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn nearest(a: __m512, b: __m512) -> __m512i {
        let val = _mm512_add_ps(_mm512_mul_ps(a, b), _mm512_set1_ps(12_582_912.0));
        _mm512_sub_epi32(
            _mm512_and_si512(_mm512_castps_si512(val), _mm512_set1_epi32(0x007f_ffff)),
            _mm512_set1_epi32(0x0040_0000),
        )
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn clamp_i(v: __m512i, lo: __m512i, hi: __m512i) -> __m512i {
        _mm512_min_epi32(_mm512_max_epi32(v, lo), hi)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn add_i(a: __m512i, b: __m512i) -> __m512i {
        _mm512_add_epi32(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn to_f(v: __m512i) -> __m512 {
        _mm512_cvtepi32_ps(v)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn to_i(v: __m512) -> __m512i {
        _mm512_cvtps_epi32(v)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn gather(base: *const f32, stride: i32) -> __m512 {
        let idx = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(stride),
        );
        _mm512_i32gather_ps::<4>(idx, base)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store(v: __m512, out: &mut [f32; MAX_LANES]) {
        _mm512_storeu_ps(out.as_mut_ptr(), v)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
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
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn splat(v: f32) -> __m256 {
        _mm256_set1_ps(v)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn splat_i(v: i32) -> __m256i {
        _mm256_set1_epi32(v)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        _mm256_add_ps(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn sub(a: __m256, b: __m256) -> __m256 {
        _mm256_sub_ps(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn mul(a: __m256, b: __m256) -> __m256 {
        _mm256_mul_ps(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn div(a: __m256, b: __m256) -> __m256 {
        _mm256_div_ps(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn abs(a: __m256) -> __m256 {
        _mm256_castsi256_ps(_mm256_and_si256(
            _mm256_castps_si256(a),
            _mm256_set1_epi32(0x7fff_ffff),
        ))
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn lt(a: __m256, b: __m256) -> __m256 {
        _mm256_cmp_ps::<_CMP_LT_OQ>(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn gt(a: __m256, b: __m256) -> __m256 {
        _mm256_cmp_ps::<_CMP_GT_OQ>(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn eq(a: __m256, b: __m256) -> __m256 {
        _mm256_cmp_ps::<_CMP_EQ_OQ>(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn ne(a: __m256, b: __m256) -> __m256 {
        _mm256_cmp_ps::<_CMP_NEQ_UQ>(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn nlt(a: __m256, b: __m256) -> __m256 {
        _mm256_cmp_ps::<_CMP_NLT_UQ>(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn and(a: __m256, b: __m256) -> __m256 {
        _mm256_and_ps(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn bits(m: __m256) -> u32 {
        _mm256_movemask_ps(m) as u32
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn blend(m: __m256, old: __m256, new: __m256) -> __m256 {
        _mm256_blendv_ps(old, new, m)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn blend_i(m: __m256, old: __m256i, new: __m256i) -> __m256i {
        _mm256_castps_si256(_mm256_blendv_ps(
            _mm256_castsi256_ps(old),
            _mm256_castsi256_ps(new),
            m,
        ))
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn nearest(a: __m256, b: __m256) -> __m256i {
        let val = _mm256_add_ps(_mm256_mul_ps(a, b), _mm256_set1_ps(12_582_912.0));
        _mm256_sub_epi32(
            _mm256_and_si256(_mm256_castps_si256(val), _mm256_set1_epi32(0x007f_ffff)),
            _mm256_set1_epi32(0x0040_0000),
        )
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn clamp_i(v: __m256i, lo: __m256i, hi: __m256i) -> __m256i {
        _mm256_min_epi32(_mm256_max_epi32(v, lo), hi)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn add_i(a: __m256i, b: __m256i) -> __m256i {
        _mm256_add_epi32(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn to_f(v: __m256i) -> __m256 {
        _mm256_cvtepi32_ps(v)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn to_i(v: __m256) -> __m256i {
        _mm256_cvtps_epi32(v)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn gather(base: *const f32, stride: i32) -> __m256 {
        let idx = _mm256_mullo_epi32(
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            _mm256_set1_epi32(stride),
        );
        _mm256_i32gather_ps::<4>(base, idx)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn store(v: __m256, out: &mut [f32; MAX_LANES]) {
        _mm256_storeu_ps(out.as_mut_ptr(), v)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn store_i(v: __m256i, out: &mut [i32; MAX_LANES]) {
        _mm256_storeu_si256(out.as_mut_ptr().cast(), v)
    }
}

/// Registers searched side by side by [`qkx2`] at most: the sums are chains of dependent
/// adds, so two independent groups of sub-blocks fill the adder's latency.
pub(super) const GROUPS: usize = 2;

/// `make_qkx2_quants` on `groups * isa.lanes()` sub-blocks of `N` values at once (`groups`
/// is 1 or [`GROUPS`]): sub-block `j` is `x[N*j..N*j+N]` with `weights[N*j..]`; its levels
/// go to `l[N*j..N*j+N]` and its (scale, -min) to `out[j]`. Same contract as
/// `qkx2::make_qkx2_quants_x8`.
///
/// # Safety
/// The CPU must have `isa` (as [`best`] or [`has`] report it).
pub(super) unsafe fn qkx2<const N: usize>(
    isa: Isa,
    groups: usize,
    p: &Qkx2,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    out: &mut [(f32, f32)],
) {
    match (isa, groups == GROUPS) {
        (Isa::Avx512, true) => qkx2_avx512::<N, GROUPS>(p, x, weights, l, out),
        (Isa::Avx512, false) => qkx2_avx512::<N, 1>(p, x, weights, l, out),
        (Isa::Avx2, true) => qkx2_avx2::<N, GROUPS>(p, x, weights, l, out),
        (Isa::Avx2, false) => qkx2_avx2::<N, 1>(p, x, weights, l, out),
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn qkx2_avx512<const N: usize, const G: usize>(
    p: &Qkx2,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    out: &mut [(f32, f32)],
) {
    qkx2_lanes::<Avx512, N, G>(p, x, weights, l, out)
}

#[target_feature(enable = "avx2")]
unsafe fn qkx2_avx2<const N: usize, const G: usize>(
    p: &Qkx2,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    out: &mut [(f32, f32)],
) {
    qkx2_lanes::<Avx2, N, G>(p, x, weights, l, out)
}

/// The search on `G` registers of sub-blocks; per lane exactly the scalar operation order.
/// A candidate is skipped (as the reference skips it) only where it is skipped in every lane
/// of every group; elsewhere per-lane masks keep the skipped lanes unchanged.
#[inline(always)]
unsafe fn qkx2_lanes<S: Simd, const N: usize, const G: usize>(
    p: &Qkx2,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    out: &mut [(f32, f32)],
) {
    let lanes = S::LANES;
    let n = G * lanes * N;
    assert!(x.len() >= n && weights.len() >= n && l.len() >= n && out.len() >= G * lanes);
    let zero = S::splat(0.0);
    let mut xt = [[zero; G]; N];
    let mut wt = [[zero; G]; N];
    for i in 0..N {
        for g in 0..G {
            let at = g * lanes * N + i;
            // SAFETY: lane j of group g reads x[g*lanes*N + N*j + i] < n <= x.len()
            // (asserted), same for weights.
            xt[i][g] = S::gather(x.as_ptr().add(at), N as i32);
            wt[i][g] = S::gather(weights.as_ptr().add(at), N as i32);
        }
    }
    let mut min = xt[0];
    let mut max = xt[0];
    let mut sum_w = wt[0];
    let mut sum_x = [zero; G];
    for g in 0..G {
        sum_x[g] = S::mul(sum_w[g], xt[0][g]);
    }
    for i in 1..N {
        for g in 0..G {
            let v = xt[i][g];
            min[g] = S::blend(S::lt(v, min[g]), min[g], v);
            max[g] = S::blend(S::gt(v, max[g]), max[g], v);
            sum_w[g] = S::add(sum_w[g], wt[i][g]);
            sum_x[g] = S::add(sum_x[g], S::mul(wt[i][g], v));
        }
    }
    let mut flat = [0u32; G];
    let nmaxf = p.nmax as f32;
    let (izero, nmax) = (S::splat_i(0), S::splat_i(p.nmax));
    // Macros, not closures: a closure would not carry the caller's target features, and
    // the lane ops inside it would stay out-of-line calls.
    macro_rules! quant {
        ($isc:expr, $v:expr) => {
            S::to_f(S::clamp_i(S::nearest($isc, $v), izero, nmax))
        };
    }
    let mut range = [zero; G];
    let mut iscale = [zero; G];
    let mut scale = [zero; G];
    for g in 0..G {
        min[g] = S::blend(S::gt(min[g], zero), min[g], zero);
        flat[g] = S::bits(S::eq(max[g], min[g]));
        range[g] = S::sub(max[g], min[g]);
        iscale[g] = S::div(S::splat(nmaxf), range[g]);
        scale[g] = S::div(S::splat(1.0), iscale[g]);
    }
    let mut xm = [[zero; G]; N];
    let mut lt = [[zero; G]; N];
    for i in 0..N {
        for g in 0..G {
            xm[i][g] = S::sub(xt[i][g], min[g]);
            lt[i][g] = quant!(iscale[g], xm[i][g]);
        }
    }
    macro_rules! err {
        ($s:expr, $m:expr, $q:expr, $v:expr, $w:expr) => {{
            let diff = S::sub(S::add(S::mul($s, $q), $m), $v);
            let diff = if p.use_mad {
                S::abs(diff)
            } else {
                S::mul(diff, diff)
            };
            S::mul($w, diff)
        }};
    }
    let mut best_error = [zero; G];
    for i in 0..N {
        for g in 0..G {
            best_error[g] = S::add(
                best_error[g],
                err!(scale[g], min[g], lt[i][g], xt[i][g], wt[i][g]),
            );
        }
    }
    if p.nstep >= 1 {
        let mut aux = [[zero; G]; N];
        for is in 0..=p.nstep {
            let num = S::splat(p.rmin + p.rdelta * is as f32 + nmaxf);
            let mut isc = [zero; G];
            for g in 0..G {
                isc[g] = S::div(num, range[g]);
            }
            let (mut sum_l, mut sum_l2, mut sum_xl) = ([zero; G], [zero; G], [zero; G]);
            for i in 0..N {
                for g in 0..G {
                    let a = quant!(isc[g], xm[i][g]);
                    aux[i][g] = a;
                    let wl = S::mul(wt[i][g], a);
                    sum_l[g] = S::add(sum_l[g], wl);
                    sum_l2[g] = S::add(sum_l2[g], S::mul(wl, a));
                    sum_xl[g] = S::add(sum_xl[g], S::mul(wl, xt[i][g]));
                }
            }
            let mut ok = [S::gt(zero, zero); G];
            let mut any = 0;
            let mut this_min = [zero; G];
            let mut this_scale = [zero; G];
            for g in 0..G {
                let d = S::sub(S::mul(sum_w[g], sum_l2[g]), S::mul(sum_l[g], sum_l[g]));
                ok[g] = S::gt(d, zero);
                any |= S::bits(ok[g]);
                let s = S::div(
                    S::sub(S::mul(sum_w[g], sum_xl[g]), S::mul(sum_x[g], sum_l[g])),
                    d,
                );
                let m = S::div(
                    S::sub(S::mul(sum_l2[g], sum_x[g]), S::mul(sum_l[g], sum_xl[g])),
                    d,
                );
                let clamp = S::gt(m, zero);
                this_min[g] = S::blend(clamp, m, zero);
                this_scale[g] = S::blend(clamp, s, S::div(sum_xl[g], sum_l2[g]));
            }
            if any == 0 {
                continue;
            }
            let mut cur_error = [zero; G];
            for i in 0..N {
                for g in 0..G {
                    cur_error[g] = S::add(
                        cur_error[g],
                        err!(this_scale[g], this_min[g], aux[i][g], xt[i][g], wt[i][g]),
                    );
                }
            }
            let mut take = ok;
            let mut any = 0;
            for g in 0..G {
                take[g] = S::and(ok[g], S::lt(cur_error[g], best_error[g]));
                any |= S::bits(take[g]);
            }
            if any == 0 {
                continue;
            }
            for g in 0..G {
                best_error[g] = S::blend(take[g], best_error[g], cur_error[g]);
                scale[g] = S::blend(take[g], scale[g], this_scale[g]);
                min[g] = S::blend(take[g], min[g], this_min[g]);
                range[g] = S::sub(max[g], min[g]);
            }
            for i in 0..N {
                for g in 0..G {
                    lt[i][g] = S::blend(take[g], lt[i][g], aux[i][g]);
                    xm[i][g] = S::sub(xt[i][g], min[g]);
                }
            }
        }
    }
    for g in 0..G {
        let mut levels = [[0i32; MAX_LANES]; N];
        for i in 0..N {
            S::store_i(S::to_i(lt[i][g]), &mut levels[i]);
        }
        let (mut sc, mut mn) = ([0f32; MAX_LANES], [0f32; MAX_LANES]);
        S::store(scale[g], &mut sc);
        S::store(min[g], &mut mn);
        for j in 0..lanes {
            let sub = g * lanes + j;
            let dst = &mut l[N * sub..N * sub + N];
            if flat[g] & (1 << j) != 0 {
                dst.fill(0);
                out[sub] = (0.0, -mn[j]);
            } else {
                for (i, o) in dst.iter_mut().enumerate() {
                    *o = levels[i][j] as u8;
                }
                out[sub] = (sc[j], -mn[j]);
            }
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
    // Macros, not closures (see `qkx2_lanes`).
    macro_rules! quant {
        ($isc:expr, $v:expr) => {
            S::clamp_i(S::nearest($isc, $v), lo, hi)
        };
    }
    let nmaxf = NMAX as f32;
    macro_rules! sums {
        ($isc:expr) => {{
            let isc = $isc;
            let (mut sumlx, mut suml2) = (zero, zero);
            for i in 0..N {
                let q = S::to_f(quant!(isc, xt[i]));
                sumlx = S::add(sumlx, S::mul(wv[i], q));
                suml2 = S::add(suml2, S::mul(S::mul(w[i], q), q));
            }
            (sumlx, suml2)
        }};
    }
    // Candidate 0 (iscale = -nmax / max), then is = -9..=9 without 0, as the reference.
    let mut chosen = S::div(S::splat(-nmaxf), max);
    let (sumlx, suml2) = sums!(chosen);
    let nz = S::ne(suml2, zero);
    let mut scale = S::blend(nz, zero, S::div(sumlx, suml2));
    let mut best = S::mul(scale, sumlx);
    // The other 18 candidates do not depend on each other; only acceptance is in order.
    let mut cand = [(zero, zero, zero); 18];
    for (k, is) in (-9i32..=9).filter(|&is| is != 0).enumerate() {
        let isc = S::div(S::splat(-(nmaxf + 0.1 * is as f32)), max);
        let (sumlx, suml2) = sums!(isc);
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
        let q = S::blend_i(live, izero, S::add_i(quant!(chosen, xt[i]), off));
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
