//! ggml's `make_qkx2_quants` (the scale/min search of Q2_K, Q4_K and Q5_K in
//! `ggml-quants.c`, <https://github.com/ggml-org/llama.cpp/blob/master/ggml/src/ggml-quants.c>),
//! with the same results bit for bit but faster.
//!
//! The reference tries `nstep + 1` candidate scales one after another; each candidate is a
//! few sequential float sums over the group, so it runs at the latency of a float add. The
//! sums of different candidates are independent as long as the running `min` does not
//! change, so here [`LANES`] candidates are summed side by side (each lane adding in the
//! reference's order, so each sum is the same float), which the compiler turns into SIMD.
//! Candidates are then accepted in order exactly as the reference does; when one is
//! accepted the reference moves `min`, so the candidates after it are recomputed.

use super::kquants::nearest_int;

/// Candidates computed side by side.
const LANES: usize = 4;
/// Largest group (Q4_K/Q5_K sub-blocks).
const N: usize = 32;

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
    let n = x.len().min(N);
    let (x, weights) = (&x[..n], &weights[..n]);
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
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.fill(0);
        return (0.0, -min);
    }
    let nmaxf = p.nmax as f32;
    let err = |d: f32| if p.use_mad { d.abs() } else { d * d };
    let mut range = max - min;
    let mut xm = [0f32; N];
    for (o, &v) in xm.iter_mut().zip(x) {
        *o = v - min;
    }
    let iscale = nmaxf / range;
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..n {
        let q = nearest_int(iscale * xm[i]).clamp(0, p.nmax);
        l[i] = q as u8;
        best_error += weights[i] * err(scale * q as f32 + min - x[i]);
    }
    if p.nstep < 1 {
        return (scale, -min);
    }
    let quant = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(0, p.nmax) as f32;
    let mut first = 0i32;
    while first <= p.nstep {
        let mut iscales = [0f32; LANES];
        for (k, s) in iscales.iter_mut().enumerate() {
            *s = (p.rmin + p.rdelta * (first + k as i32) as f32 + nmaxf) / range;
        }
        let (mut sum_l, mut sum_l2, mut sum_xl) = ([0f32; LANES], [0f32; LANES], [0f32; LANES]);
        for i in 0..n {
            let (w, xi, xmi) = (weights[i], x[i], xm[i]);
            for k in 0..LANES {
                let q = quant(iscales[k], xmi);
                let wl = w * q;
                sum_l[k] += wl;
                sum_l2[k] += wl * q;
                sum_xl[k] += wl * xi;
            }
        }
        let (mut scales, mut mins, mut ok) = ([0f32; LANES], [0f32; LANES], [false; LANES]);
        for k in 0..LANES {
            let d = sum_w * sum_l2[k] - sum_l[k] * sum_l[k];
            ok[k] = d > 0.0;
            let mut this_scale = (sum_w * sum_xl[k] - sum_x * sum_l[k]) / d;
            let mut this_min = (sum_l2[k] * sum_x - sum_l[k] * sum_xl[k]) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl[k] / sum_l2[k];
            }
            scales[k] = this_scale;
            mins[k] = this_min;
        }
        let mut errors = [0f32; LANES];
        for i in 0..n {
            let (w, xi, xmi) = (weights[i], x[i], xm[i]);
            for k in 0..LANES {
                let q = quant(iscales[k], xmi);
                errors[k] += w * err(scales[k] * q + mins[k] - xi);
            }
        }
        let count = LANES.min((p.nstep - first + 1) as usize);
        let accepted = (0..count).find(|&k| ok[k] && errors[k] < best_error);
        match accepted {
            None => first += count as i32,
            Some(k) => {
                for (o, &v) in l.iter_mut().zip(xm.iter()) {
                    *o = quant(iscales[k], v) as u8;
                }
                best_error = errors[k];
                scale = scales[k];
                min = mins[k];
                range = max - min;
                for (o, &v) in xm.iter_mut().zip(x) {
                    *o = v - min;
                }
                first += k as i32 + 1;
            }
        }
    }
    (scale, -min)
}

/// The reference loop as written in ggml, one candidate after the other; the proof that
/// [`make_qkx2_quants`] computes the same.
#[cfg(test)]
pub(super) fn make_qkx2_quants_scalar(
    p: &Qkx2,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
) -> (f32, f32) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_search_equals_the_reference_loop() {
        let params = [
            Qkx2 {
                nmax: 3,
                rmin: -0.5,
                rdelta: 0.1,
                nstep: 15,
                use_mad: true,
            },
            Qkx2 {
                nmax: 15,
                rmin: -1.0,
                rdelta: 0.1,
                nstep: 20,
                use_mad: false,
            },
            Qkx2 {
                nmax: 31,
                rmin: -0.5,
                rdelta: 0.1,
                nstep: 15,
                use_mad: false,
            },
        ];
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32
        };
        for trial in 0..4000 {
            let p = &params[trial % 3];
            let n = if p.nmax == 3 { 16 } else { 32 };
            let scale = [1e-3f32, 0.02, 1.0, 300.0][trial % 4];
            let skew = [0.0f32, 0.5, -0.3, 0.9][(trial / 4) % 4];
            let x: Vec<f32> = (0..n).map(|_| (next() - 0.5 + skew) * scale).collect();
            let av = (x.iter().map(|v| v * v).sum::<f32>() / n as f32).sqrt();
            let w: Vec<f32> = if p.use_mad {
                x.iter().map(|v| v.abs()).collect()
            } else {
                x.iter().map(|v| av + v.abs()).collect()
            };
            let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
            let ra = make_qkx2_quants(p, &x, &w, &mut a[..n]);
            let rb = make_qkx2_quants_scalar(p, &x, &w, &mut b[..n]);
            assert_eq!(
                (ra.0.to_bits(), ra.1.to_bits()),
                (rb.0.to_bits(), rb.1.to_bits()),
                "trial {trial}"
            );
            assert_eq!(a, b, "trial {trial}");
        }
    }
}
