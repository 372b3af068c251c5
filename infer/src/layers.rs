//! Hidden-state divergence after every transformer block (`check --per-layer`): both models
//! run in lockstep, one block of each in memory at a time, and after block `l` the residual
//! streams are compared position by position (cosine similarity, relative RMS difference
//! `||cand - ref|| / ||ref||`). A broken conversion shows up as the first block whose
//! divergence jumps from (near) zero.

use crate::device::Device;
use crate::error::InferError;
use crate::model::ForwardPass;
use crate::weights::WeightSource;

/// How far the candidate's hidden states are from the reference's after one block.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LayerDivergence {
    /// Block index, 0-based (`layers.N` / `blk.N`).
    pub layer: usize,
    /// Mean over positions of the cosine similarity of the hidden vectors.
    pub cosine_mean: f64,
    /// Smallest per-position cosine similarity.
    pub cosine_min: f64,
    /// `||cand - ref|| / ||ref||` over every position and dimension.
    pub rel_rms: f64,
    /// Largest |cand - ref| of any hidden value.
    pub max_abs: f64,
}

/// Compare two hidden-state sets (`[tokens, dim]` per sequence) of block `layer`.
pub fn divergence(
    layer: usize,
    dim: usize,
    reference: &[Vec<f32>],
    candidate: &[Vec<f32>],
) -> Result<LayerDivergence, InferError> {
    let (mut cos_sum, mut cos_min, mut n) = (0f64, f64::INFINITY, 0usize);
    let (mut diff_sq, mut ref_sq, mut max_abs) = (0f64, 0f64, 0f64);
    let mismatch = |reference, candidate| InferError::HiddenStates {
        layer,
        reference,
        candidate,
        dim,
    };
    if reference.len() != candidate.len() || dim == 0 {
        return Err(mismatch(reference.len(), candidate.len()));
    }
    for (r, c) in reference.iter().zip(candidate) {
        if r.len() != c.len() || !r.len().is_multiple_of(dim) {
            return Err(mismatch(r.len(), c.len()));
        }
        for (rr, cr) in r.chunks_exact(dim).zip(c.chunks_exact(dim)) {
            let (mut dot, mut nr, mut nc) = (0f64, 0f64, 0f64);
            for (&a, &b) in rr.iter().zip(cr) {
                let (a, b) = (a as f64, b as f64);
                let d = b - a;
                diff_sq += d * d;
                max_abs = if d.abs() > max_abs || d.is_nan() {
                    d.abs()
                } else {
                    max_abs
                };
                dot += a * b;
                nr += a * a;
                nc += b * b;
            }
            ref_sq += nr;
            let cos = if nr > 0.0 && nc > 0.0 {
                dot / (nr.sqrt() * nc.sqrt())
            } else if nr == nc {
                1.0
            } else {
                0.0
            };
            cos_sum += cos;
            cos_min = if cos < cos_min || cos.is_nan() {
                cos
            } else {
                cos_min
            };
            n += 1;
        }
    }
    let rel_rms = if ref_sq > 0.0 {
        (diff_sq / ref_sq).sqrt()
    } else if diff_sq == 0.0 {
        0.0
    } else {
        f64::INFINITY
    };
    Ok(LayerDivergence {
        layer,
        cosine_mean: cos_sum / n.max(1) as f64,
        cosine_min: cos_min,
        rel_rms,
        max_abs,
    })
}

/// What a lockstep run gives: both models' logits and the divergence after every block.
#[derive(Debug, Clone)]
pub struct Lockstep {
    /// Reference logits per sequence, `[tokens, vocab]`.
    pub reference: Vec<Vec<f32>>,
    /// Candidate logits per sequence.
    pub candidate: Vec<Vec<f32>>,
    /// One entry per block, in order.
    pub layers: Vec<LayerDivergence>,
}

/// Run both models on `seqs` block by block, comparing hidden states after each;
/// `on_layer(done, total)` after each block. The models must have the same width and depth.
pub fn run_lockstep(
    reference: &dyn WeightSource,
    candidate: &dyn WeightSource,
    seqs: &[&[u32]],
    ref_device: &Device,
    cand_device: &Device,
    on_layer: &mut dyn FnMut(usize, usize),
) -> Result<Lockstep, InferError> {
    let mut r = ForwardPass::new(reference, seqs, ref_device)?;
    let mut c = ForwardPass::new(candidate, seqs, cand_device)?;
    let (rc, cc) = (r.params(), c.params());
    if rc.dim != cc.dim || rc.n_layers != cc.n_layers {
        return Err(InferError::ShapesDiffer {
            reference_dim: rc.dim,
            reference_layers: rc.n_layers,
            candidate_dim: cc.dim,
            candidate_layers: cc.n_layers,
        });
    }
    let dim = rc.dim as usize;
    let total = r.n_layers();
    let mut layers = Vec::with_capacity(total);
    while r.step()? {
        c.step()?;
        let l = r.layers_done() - 1;
        layers.push(divergence(l, dim, &r.hidden()?, &c.hidden()?)?);
        on_layer(l + 1, total);
    }
    Ok(Lockstep {
        reference: r.finish()?,
        candidate: c.finish()?,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_states_diverge_by_nothing_and_a_scaled_one_by_its_factor() {
        let r = vec![vec![1.0f32, 2.0, 3.0, 4.0, -1.0, 0.5]];
        let d = divergence(3, 3, &r, &r).unwrap();
        assert_eq!((d.layer, d.rel_rms, d.max_abs), (3, 0.0, 0.0));
        assert!((d.cosine_min - 1.0).abs() < 1e-12);
        let c = vec![r[0].iter().map(|x| x * 1.1).collect::<Vec<f32>>()];
        let d = divergence(0, 3, &r, &c).unwrap();
        assert!((d.rel_rms - 0.1).abs() < 1e-6, "{}", d.rel_rms);
        assert!((d.cosine_mean - 1.0).abs() < 1e-9);
        assert!(divergence(0, 4, &r, &c).is_err());
    }
}
