//! ggml's `make_qkx2_quants`, the scale/min search of Q2_K, Q4_K and Q5_K in `ggml-quants.c`
//! (<https://github.com/ggml-org/llama.cpp/blob/master/ggml/src/ggml-quants.c>), float
//! operation for float operation.
//!
//! Each candidate's sums are sequential float adds in the reference's order (that order
//! decides the result). Computing several candidates side by side was tried and measured no
//! faster here: a candidate that is accepted moves `min`, which invalidates the ones after it.

use super::kquants::nearest_int;

/// Parameters of one `make_qkx2_quants` call.
pub(super) struct Qkx2 {
    pub nmax: i32,
    pub rmin: f32,
    pub rdelta: f32,
    pub nstep: i32,
    pub use_mad: bool,
}

/// `make_qkx2_quants`: an asymmetric scale and min searched over `nstep + 1` candidate
/// scales with weighted least squares. Returns (scale, the_min); `l` gets `0..=nmax`.
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
