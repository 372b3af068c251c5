//! Comparison of two models' logits on the same tokens, as llama.cpp's
//! `llama-perplexity --kl-divergence` reports it
//! (<https://github.com/ggml-org/llama.cpp/tree/master/tools/perplexity>): per-position
//! KL divergence of the softmax (reference || candidate, in f64) with mean, max and
//! percentiles, top-1 agreement ("same top p"), plus max-abs and RMS logit difference,
//! cosine similarity, and each model's perplexity over the token sequence.

/// Why two logits matrices cannot be compared.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompareError {
    /// The matrices differ in size or are not whole rows of `vocab`.
    #[error("logits sizes differ or are not whole rows: reference {reference}, candidate {candidate}, vocab {vocab}")]
    Shape {
        /// Reference length.
        reference: usize,
        /// Candidate length.
        candidate: usize,
        /// Row length.
        vocab: usize,
    },
    /// The token sequence does not match the number of rows.
    #[error("{tokens} tokens for {rows} logits rows")]
    Tokens {
        /// Tokens given.
        tokens: usize,
        /// Rows.
        rows: usize,
    },
    /// Nothing was added.
    #[error("no positions to compare")]
    Empty,
}

/// The report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Comparison {
    /// Positions compared.
    pub positions: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Mean KL divergence (nats).
    pub kld_mean: f64,
    /// Max KL divergence.
    pub kld_max: f64,
    /// Median KL divergence.
    pub kld_p50: f64,
    /// 90th percentile.
    pub kld_p90: f64,
    /// 95th percentile.
    pub kld_p95: f64,
    /// 99th percentile.
    pub kld_p99: f64,
    /// Fraction of positions where both models' argmax agree ("same top p"), 0..1.
    pub top1_agreement: f64,
    /// Largest |ref - cand| over all logits.
    pub max_abs_diff: f64,
    /// Root mean square of ref - cand over all logits.
    pub rms_diff: f64,
    /// Mean per-position cosine similarity of the logit vectors.
    pub cosine_mean: f64,
    /// Smallest per-position cosine similarity.
    pub cosine_min: f64,
    /// Reference perplexity over the tokens (None without next tokens to score).
    pub ppl_reference: Option<f64>,
    /// Candidate perplexity.
    pub ppl_candidate: Option<f64>,
    /// Logits that were NaN or infinite in either model (any is a failure).
    pub(crate) non_finite: usize,
    /// Largest minus smallest finite reference logit (the scale the lossless gate uses).
    pub logit_range: f64,
}

/// Accumulates positions of one or more sequences.
#[derive(Debug, Default)]
pub struct Comparator {
    vocab: usize,
    klds: Vec<f64>,
    cosines: Vec<f64>,
    same_top: usize,
    max_abs: f64,
    sq_sum: f64,
    n_values: usize,
    nll_ref: f64,
    nll_cand: f64,
    n_scored: usize,
    non_finite: usize,
    ref_min: f64,
    ref_max: f64,
}

fn log_softmax(x: &[f32], out: &mut Vec<f64>) {
    let max = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let lse = max + x.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
    out.clear();
    out.extend(x.iter().map(|&v| v as f64 - lse));
}

/// Index of the largest value (first on ties; NaN never wins).
fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in x.iter().enumerate() {
        if v > best_v {
            best = i;
            best_v = v;
        }
    }
    best
}

/// Linear-interpolated percentile of sorted values (numpy's default), `q` in 0..=100.
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = (q / 100.0).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

impl Comparator {
    /// A comparator for rows of `vocab` logits.
    pub fn new(vocab: usize) -> Self {
        Comparator {
            vocab,
            ref_min: f64::INFINITY,
            ref_max: f64::NEG_INFINITY,
            ..Default::default()
        }
    }

    /// Add one sequence: logits `[n, vocab]` of both models, and the `n` tokens they were
    /// computed on (row i predicts token i+1, which scores perplexity), or None.
    pub fn add(
        &mut self,
        reference: &[f32],
        candidate: &[f32],
        tokens: Option<&[u32]>,
    ) -> Result<(), CompareError> {
        let v = self.vocab;
        if v == 0 || reference.len() != candidate.len() || !reference.len().is_multiple_of(v) {
            return Err(CompareError::Shape {
                reference: reference.len(),
                candidate: candidate.len(),
                vocab: v,
            });
        }
        let rows = reference.len() / v;
        if let Some(t) = tokens {
            if t.len() != rows {
                return Err(CompareError::Tokens {
                    tokens: t.len(),
                    rows,
                });
            }
        }
        let (mut lr, mut lc) = (Vec::with_capacity(v), Vec::with_capacity(v));
        for i in 0..rows {
            let r = &reference[i * v..(i + 1) * v];
            let c = &candidate[i * v..(i + 1) * v];
            self.non_finite += r.iter().chain(c).filter(|x| !x.is_finite()).count();
            for &x in r.iter().filter(|x| x.is_finite()) {
                self.ref_min = self.ref_min.min(x as f64);
                self.ref_max = self.ref_max.max(x as f64);
            }
            log_softmax(r, &mut lr);
            log_softmax(c, &mut lc);
            let kld: f64 = lr.iter().zip(&lc).map(|(&a, &b)| a.exp() * (a - b)).sum();
            self.klds.push(kld.max(0.0));
            if argmax(r) == argmax(c) {
                self.same_top += 1;
            }
            let (mut dot, mut nr, mut nc) = (0f64, 0f64, 0f64);
            for (&a, &b) in r.iter().zip(c) {
                let (a, b) = (a as f64, b as f64);
                let d = (a - b).abs();
                if d > self.max_abs || d.is_nan() {
                    self.max_abs = d;
                }
                self.sq_sum += d * d;
                dot += a * b;
                nr += a * a;
                nc += b * b;
            }
            self.n_values += v;
            self.cosines.push(if nr > 0.0 && nc > 0.0 {
                dot / (nr.sqrt() * nc.sqrt())
            } else {
                1.0
            });
            if let Some(next) = tokens.and_then(|t| t.get(i + 1)) {
                let j = *next as usize;
                if let (Some(a), Some(b)) = (lr.get(j), lc.get(j)) {
                    self.nll_ref -= a;
                    self.nll_cand -= b;
                    self.n_scored += 1;
                }
            }
        }
        Ok(())
    }

    /// The KL divergence of every position added so far, in order (for plots).
    pub fn klds(&self) -> &[f64] {
        &self.klds
    }

    /// The report over everything added.
    pub fn finish(&self) -> Result<Comparison, CompareError> {
        let n = self.klds.len();
        if n == 0 {
            return Err(CompareError::Empty);
        }
        let mut sorted = self.klds.clone();
        sorted.sort_by(f64::total_cmp);
        let ppl = |nll: f64| (self.n_scored > 0).then(|| (nll / self.n_scored as f64).exp());
        Ok(Comparison {
            positions: n,
            vocab: self.vocab,
            kld_mean: self.klds.iter().sum::<f64>() / n as f64,
            kld_max: sorted[n - 1],
            kld_p50: percentile(&sorted, 50.0),
            kld_p90: percentile(&sorted, 90.0),
            kld_p95: percentile(&sorted, 95.0),
            kld_p99: percentile(&sorted, 99.0),
            top1_agreement: self.same_top as f64 / n as f64,
            max_abs_diff: self.max_abs,
            rms_diff: (self.sq_sum / self.n_values.max(1) as f64).sqrt(),
            cosine_mean: self.cosines.iter().sum::<f64>() / n as f64,
            cosine_min: self.cosines.iter().copied().fold(f64::INFINITY, f64::min),
            ppl_reference: ppl(self.nll_ref),
            ppl_candidate: ppl(self.nll_cand),
            non_finite: self.non_finite,
            logit_range: (self.ref_max - self.ref_min).max(0.0),
        })
    }
}

/// Compare one sequence's logits (see [`Comparator::add`]).
pub fn compare(
    reference: &[f32],
    candidate: &[f32],
    vocab: usize,
    tokens: Option<&[u32]>,
) -> Result<Comparison, CompareError> {
    let mut c = Comparator::new(vocab);
    c.add(reference, candidate, tokens)?;
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_logits_have_zero_divergence_and_full_agreement() {
        let l: Vec<f32> = (0..40).map(|i| ((i * 7) % 11) as f32 * 0.3).collect();
        let c = compare(&l, &l, 10, Some(&[0, 1, 2, 3])).unwrap();
        assert_eq!(c.positions, 4);
        assert!(c.kld_mean.abs() < 1e-12 && c.kld_max.abs() < 1e-12);
        assert_eq!(c.top1_agreement, 1.0);
        assert_eq!(c.max_abs_diff, 0.0);
        assert!((c.cosine_min - 1.0).abs() < 1e-12);
        assert_eq!(c.ppl_reference, c.ppl_candidate);
    }

    #[test]
    fn kld_matches_a_hand_computed_value() {
        // p = softmax([0, ln 3]) = [1/4, 3/4]; q = softmax([0, 0]) = [1/2, 1/2].
        let r = [0.0f32, 3f32.ln()];
        let c = [0.0f32, 0.0];
        let want = 0.25 * (0.25f64 / 0.5).ln() + 0.75 * (0.75f64 / 0.5).ln();
        let got = compare(&r, &c, 2, None).unwrap();
        assert!(
            (got.kld_mean - want).abs() < 1e-7,
            "{} vs {want}",
            got.kld_mean
        );
        assert_eq!(got.top1_agreement, 0.0); // argmax 1 vs a tie resolved to 0
        assert!((got.max_abs_diff - 3f64.ln()).abs() < 1e-6);
        assert!(got.ppl_reference.is_none());
    }

    #[test]
    fn perplexity_of_uniform_logits_is_the_vocabulary_size() {
        let l = vec![0.5f32; 3 * 8];
        let c = compare(&l, &l, 8, Some(&[1, 2, 3])).unwrap();
        assert!((c.ppl_reference.unwrap() - 8.0).abs() < 1e-9);
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let s: Vec<f64> = (0..=10).map(f64::from).collect();
        assert_eq!(percentile(&s, 50.0), 5.0);
        assert!((percentile(&s, 95.0) - 9.5).abs() < 1e-12);
        assert!((percentile(&[1.0, 2.0], 90.0) - 1.9).abs() < 1e-12);
    }

    #[test]
    fn top1_disagreement_and_non_finite_are_counted() {
        let r = [1.0f32, 0.0, 0.0, 1.0];
        let c = [0.0f32, 1.0, f32::NAN, 1.0];
        let got = compare(&r, &c, 2, None).unwrap();
        assert_eq!(got.non_finite, 1);
        assert_eq!(got.top1_agreement, 0.5);
        assert!(compare(&r, &c[..3], 2, None).is_err());
    }
}
