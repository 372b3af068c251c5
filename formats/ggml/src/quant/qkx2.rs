//! ggml's `make_qkx2_quants`, the scale/min search of Q2_K, Q4_K and Q5_K in `ggml-quants.c`
//! (<https://github.com/ggml-org/llama.cpp/blob/master/ggml/src/ggml-quants.c>), float
//! operation for float operation.
//!
//! Each candidate's sums are sequential float adds in the reference's order (that order
//! decides the result). Computing several candidates side by side was tried and measured no
//! faster here: a candidate that is accepted moves `min`, which invalidates the ones after it.
//! Instead independent sub-blocks run in the lanes of a vector, each lane keeping its
//! sub-block's exact operation order: [`make_qkx2_quants_many`] uses `x86.rs`'s AVX-512/AVX2
//! intrinsics where the CPU has them and the portable [`make_qkx2_quants_x8`] elsewhere.

#[cfg(test)]
use super::kquants::nearest_int;

/// Parameters of one `make_qkx2_quants` call.
pub(super) struct Qkx2 {
    pub(crate) nmax: i32,
    pub(crate) rmin: f32,
    pub(crate) rdelta: f32,
    pub(crate) nstep: i32,
    pub(crate) use_mad: bool,
}

impl Qkx2 {
    /// Q2_K's call: `make_qkx2_quants(16, 3, ..., -0.5f, 0.1f, 15, true)`.
    pub(super) const Q2_K: Qkx2 = Qkx2 {
        nmax: 3,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: true,
    };
    /// Q4_K's call: `make_qkx2_quants(32, 15, ..., -1.f, 0.1f, 20, false)`.
    pub(super) const Q4_K: Qkx2 = Qkx2 {
        nmax: 15,
        rmin: -1.0,
        rdelta: 0.1,
        nstep: 20,
        use_mad: false,
    };
    /// Q5_K's call: `make_qkx2_quants(32, 31, ..., -0.5f, 0.1f, 15, false)`.
    pub(super) const Q5_K: Qkx2 = Qkx2 {
        nmax: 31,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: false,
    };
    /// The three, in the order the tests walk them.
    #[cfg(test)]
    pub(super) const ALL: [&'static Qkx2; 3] = [&Qkx2::Q4_K, &Qkx2::Q5_K, &Qkx2::Q2_K];
}

/// `make_qkx2_quants`: an asymmetric scale and min searched over `nstep + 1` candidate
/// scales with weighted least squares. Returns (scale, the_min); `l` gets `0..=nmax`.
/// The quantizers run [`make_qkx2_quants_x8`]; this scalar transcription is the reference
/// the tests hold it to.
#[cfg(test)]
pub(super) fn make_qkx2_quants(p: &Qkx2, x: &[f32], weights: &[f32], l: &mut [u8]) -> (f32, f32) {
    const N: usize = 32;
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.fill(0);
        return (0.0, -min);
    }
    let nmaxf = p.nmax as f32;
    // x - min and max - min, recomputed whenever a better min is found: the reference's
    // search loop keeps using its (updated) `min` variable.
    let mut range = max - min;
    let mut xm = [0f32; N];
    let xm = &mut xm[..n];
    for (o, &v) in xm.iter_mut().zip(x) {
        *o = v - min;
    }
    let iscale = nmaxf / range;
    let mut scale = 1.0 / iscale;
    let mut lf = [0f32; N];
    let lf = &mut lf[..n];
    for (o, &v) in lf.iter_mut().zip(xm.iter()) {
        *o = nearest_int(iscale * v).clamp(0, p.nmax) as f32;
    }
    let mut best_error = 0f32;
    for i in 0..n {
        let diff = scale * lf[i] + min - x[i];
        let diff = if p.use_mad { diff.abs() } else { diff * diff };
        best_error += weights[i] * diff;
    }
    for (o, &v) in l.iter_mut().zip(lf.iter()) {
        *o = v as u8;
    }
    if p.nstep < 1 {
        return (scale, -min);
    }
    let mut aux = [0f32; N];
    let aux = &mut aux[..n];
    let mut wl = [0f32; N];
    let wl = &mut wl[..n];
    for is in 0..=p.nstep {
        let iscale = (p.rmin + p.rdelta * is as f32 + nmaxf) / range;
        for (o, &v) in aux.iter_mut().zip(xm.iter()) {
            *o = nearest_int(iscale * v).clamp(0, p.nmax) as f32;
        }
        for ((o, &w), &a) in wl.iter_mut().zip(weights).zip(aux.iter()) {
            *o = w * a;
        }
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..n {
            sum_l += wl[i];
            sum_l2 += wl[i] * aux[i];
            sum_xl += wl[i] * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0f32;
            for i in 0..n {
                let diff = this_scale * aux[i] + this_min - x[i];
                let diff = if p.use_mad { diff.abs() } else { diff * diff };
                cur_error += weights[i] * diff;
            }
            if cur_error < best_error {
                for (o, &v) in l.iter_mut().zip(aux.iter()) {
                    *o = v as u8;
                }
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
                range = max - min;
                for (o, &v) in xm.iter_mut().zip(x) {
                    *o = v - min;
                }
            }
        }
    }
    (scale, -min)
}

/// Lanes of [`make_qkx2_quants_x8`]: one sub-block per lane.
pub(super) const LANES: usize = 8;
type Lanes = [f32; LANES];

/// [`make_qkx2_quants`] on `out.len()` (a multiple of 8) independent sub-blocks of `N`
/// values: sub-block `j` is `x[N*j..N*j+N]` with `weights[N*j..]`, its levels go to
/// `l[N*j..N*j+N]` and its (scale, -min) to `out[j]`. Runs 16 sub-blocks per AVX-512
/// register or 8 per AVX2 register, two registers side by side while enough remain, where
/// the CPU has them (`x86`); elsewhere 8 at a time per [`make_qkx2_quants_x8`].
/// Bit-identical to scalar calls either way.
pub(super) fn make_qkx2_quants_many<const N: usize>(
    p: &Qkx2,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    out: &mut [(f32, f32)],
) {
    assert!(out.len().is_multiple_of(LANES));
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use super::x86::{has, qkx2, Isa, GROUPS};
        for isa in [Isa::Avx512, Isa::Avx2] {
            if !has(isa) {
                continue;
            }
            for groups in [GROUPS, 1] {
                let wide = groups * isa.lanes();
                while out.len() - done >= wide {
                    let r = N * done..N * (done + wide);
                    let o = &mut out[done..done + wide];
                    // SAFETY: the CPU has `isa` (checked above).
                    unsafe {
                        qkx2::<N>(
                            isa,
                            groups,
                            p,
                            &x[r.clone()],
                            &weights[r.clone()],
                            &mut l[r],
                            o,
                        )
                    };
                    done += wide;
                }
            }
        }
    }
    while done < out.len() {
        let r = N * done..N * (done + LANES);
        let o: &mut [(f32, f32); LANES] =
            (&mut out[done..done + LANES]).try_into().expect("8 lanes");
        make_qkx2_quants_x8::<N>(p, &x[r.clone()], &weights[r.clone()], &mut l[r], o);
        done += LANES;
    }
}

/// [`make_qkx2_quants`] on 8 independent sub-blocks of `N` values at once, one per SIMD
/// lane: sub-block `j` is `x[N*j..N*j+N]` with `weights[N*j..]`, and its results go to
/// `l[N*j..N*j+N]` and `out[j]`. Every lane performs exactly the float operations of the
/// scalar search in the same order (no reassociation, no fused multiply-add); branches
/// become per-lane selects, so the results are bit-identical to 8 scalar calls. Portable
/// (left to the compiler's vectorizer): the fallback where `x86`'s explicit SIMD is missing.
pub(super) fn make_qkx2_quants_x8<const N: usize>(
    p: &Qkx2,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    out: &mut [(f32, f32); LANES],
) {
    qkx2_x8::<N>(p, x, weights, l, out)
}

/// Lane-wise `nearest_int(v).clamp(0, nmax) as f32`.
#[inline(always)]
fn quant_lanes(iscale: &Lanes, xm: &Lanes, nmax: i32, o: &mut Lanes) {
    for j in 0..LANES {
        let val = iscale[j] * xm[j] + 12_582_912.0;
        let q = (val.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000;
        o[j] = q.clamp(0, nmax) as f32;
    }
}

#[inline(always)]
fn qkx2_x8<const N: usize>(
    p: &Qkx2,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    out: &mut [(f32, f32); LANES],
) {
    // Transpose: xt[i][j] = value i of sub-block j.
    let mut xt = [[0f32; LANES]; N];
    let mut wt = [[0f32; LANES]; N];
    for j in 0..LANES {
        for i in 0..N {
            xt[i][j] = x[N * j + i];
            wt[i][j] = weights[N * j + i];
        }
    }
    let mut min = xt[0];
    let mut max = xt[0];
    let mut sum_w = wt[0];
    let mut sum_x = [0f32; LANES];
    for j in 0..LANES {
        sum_x[j] = sum_w[j] * xt[0][j];
    }
    for i in 1..N {
        for j in 0..LANES {
            let v = xt[i][j];
            min[j] = if v < min[j] { v } else { min[j] };
            max[j] = if v > max[j] { v } else { max[j] };
            sum_w[j] += wt[i][j];
            sum_x[j] += wt[i][j] * v;
        }
    }
    let mut flat = [false; LANES];
    for j in 0..LANES {
        if min[j] > 0.0 {
            min[j] = 0.0;
        }
        flat[j] = max[j] == min[j];
    }
    let nmaxf = p.nmax as f32;
    let mut range = [0f32; LANES];
    let mut iscale = [0f32; LANES];
    let mut scale = [0f32; LANES];
    for j in 0..LANES {
        range[j] = max[j] - min[j];
        iscale[j] = nmaxf / range[j];
        scale[j] = 1.0 / iscale[j];
    }
    let mut xm = [[0f32; LANES]; N];
    for i in 0..N {
        for j in 0..LANES {
            xm[i][j] = xt[i][j] - min[j];
        }
    }
    let mut lt = [[0f32; LANES]; N];
    for i in 0..N {
        quant_lanes(&iscale, &xm[i], p.nmax, &mut lt[i]);
    }
    let mut best_error = [0f32; LANES];
    for i in 0..N {
        for j in 0..LANES {
            let diff = scale[j] * lt[i][j] + min[j] - xt[i][j];
            let diff = if p.use_mad { diff.abs() } else { diff * diff };
            best_error[j] += wt[i][j] * diff;
        }
    }
    if p.nstep >= 1 {
        let mut aux = [[0f32; LANES]; N];
        let mut wl = [[0f32; LANES]; N];
        for is in 0..=p.nstep {
            let num = p.rmin + p.rdelta * is as f32 + nmaxf;
            let mut isc = [0f32; LANES];
            for j in 0..LANES {
                isc[j] = num / range[j];
            }
            for i in 0..N {
                quant_lanes(&isc, &xm[i], p.nmax, &mut aux[i]);
                for j in 0..LANES {
                    wl[i][j] = wt[i][j] * aux[i][j];
                }
            }
            let (mut sum_l, mut sum_l2, mut sum_xl) = ([0f32; LANES], [0f32; LANES], [0f32; LANES]);
            for i in 0..N {
                for j in 0..LANES {
                    sum_l[j] += wl[i][j];
                    sum_l2[j] += wl[i][j] * aux[i][j];
                    sum_xl[j] += wl[i][j] * xt[i][j];
                }
            }
            let mut this_scale = [0f32; LANES];
            let mut this_min = [0f32; LANES];
            let mut ok = [false; LANES];
            for j in 0..LANES {
                let d = sum_w[j] * sum_l2[j] - sum_l[j] * sum_l[j];
                ok[j] = d > 0.0;
                let s = (sum_w[j] * sum_xl[j] - sum_x[j] * sum_l[j]) / d;
                let m = (sum_l2[j] * sum_x[j] - sum_l[j] * sum_xl[j]) / d;
                let clamp = m > 0.0;
                this_min[j] = if clamp { 0.0 } else { m };
                this_scale[j] = if clamp { sum_xl[j] / sum_l2[j] } else { s };
            }
            if !ok.iter().any(|&o| o) {
                continue;
            }
            let mut cur_error = [0f32; LANES];
            for i in 0..N {
                for j in 0..LANES {
                    let diff = this_scale[j] * aux[i][j] + this_min[j] - xt[i][j];
                    let diff = if p.use_mad { diff.abs() } else { diff * diff };
                    cur_error[j] += wt[i][j] * diff;
                }
            }
            let mut take = [false; LANES];
            for j in 0..LANES {
                take[j] = ok[j] && cur_error[j] < best_error[j];
            }
            if !take.iter().any(|&t| t) {
                continue;
            }
            for j in 0..LANES {
                if take[j] {
                    best_error[j] = cur_error[j];
                    scale[j] = this_scale[j];
                    min[j] = this_min[j];
                    range[j] = max[j] - min[j];
                }
            }
            for i in 0..N {
                for j in 0..LANES {
                    lt[i][j] = if take[j] { aux[i][j] } else { lt[i][j] };
                    xm[i][j] = if take[j] { xt[i][j] - min[j] } else { xm[i][j] };
                }
            }
        }
    }
    for j in 0..LANES {
        let dst = &mut l[N * j..N * j + N];
        if flat[j] {
            dst.fill(0);
            out[j] = (0.0, -min[j]);
        } else {
            for (i, o) in dst.iter_mut().enumerate() {
                *o = lt[i][j] as u8;
            }
            out[j] = (scale[j], -min[j]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 8-lane search gives exactly the scalar search's bits, for Q4_K's, Q5_K's and
    /// Q2_K's parameters, on ordinary, flat, all-positive and spiky sub-blocks.
    #[test]
    fn eight_lanes_equal_eight_scalar_calls() {
        let mut s = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for round in 0..200 {
            let mut x: Vec<f32> = (0..256).map(|_| next()).collect();
            match round % 5 {
                1 => x[..32].fill(0.25),
                2 => x.iter_mut().for_each(|v| *v = v.abs() + 0.5),
                3 => x[77] = 40.0,
                4 => x.iter_mut().step_by(3).for_each(|v| *v = 0.0),
                _ => {}
            }
            let w: Vec<f32> = x.iter().map(|v| 0.3 + v.abs()).collect();
            for p in Qkx2::ALL {
                let nmax = p.nmax;
                let mut want_l = [0u8; 256];
                let mut want = [(0f32, 0f32); LANES];
                for j in 0..LANES {
                    want[j] = make_qkx2_quants(
                        p,
                        &x[32 * j..32 * j + 32],
                        &w[32 * j..32 * j + 32],
                        &mut want_l[32 * j..32 * j + 32],
                    );
                }
                let mut got_l = [0u8; 256];
                let mut got = [(0f32, 0f32); LANES];
                make_qkx2_quants_x8::<32>(p, &x, &w, &mut got_l, &mut got);
                assert_eq!(got_l, want_l, "round {round} nmax {nmax}");
                for j in 0..LANES {
                    assert_eq!(got[j].0.to_bits(), want[j].0.to_bits(), "round {round}");
                    assert_eq!(got[j].1.to_bits(), want[j].1.to_bits(), "round {round}");
                }
                // Sub-blocks of 16 (Q2_K's size).
                let mut want_l = [0u8; 128];
                for j in 0..LANES {
                    want[j] = make_qkx2_quants(
                        p,
                        &x[16 * j..16 * j + 16],
                        &w[16 * j..16 * j + 16],
                        &mut want_l[16 * j..16 * j + 16],
                    );
                }
                let mut got_l = [0u8; 128];
                make_qkx2_quants_x8::<16>(p, &x[..128], &w[..128], &mut got_l, &mut got);
                assert_eq!(got_l, want_l, "round {round} nmax {nmax} (16)");
                for j in 0..LANES {
                    assert_eq!(got[j].0.to_bits(), want[j].0.to_bits(), "round {round}");
                    assert_eq!(got[j].1.to_bits(), want[j].1.to_bits(), "round {round}");
                }
            }
        }
    }
}
