//! What `llama-tool check` judges a candidate by: default limits chosen by the candidate's
//! weight type against the reference's (the KLD figures follow llama.cpp's perplexity
//! README), the near-identical-logits gate of lossless pairs, the hyper-parameter
//! comparison (a wrong `norm_eps` in a lossless conversion moves logits by a few thousandths
//! only, far under any KLD limit, so the parameters are compared themselves), and the limit a
//! layer's hidden-state divergence is held to with `--per-layer`.

use llama_formats::llama::ModelParams;
use llama_ggml::DType;

use crate::compare::Comparison;
use crate::layers::LayerDivergence;

/// For lossless pairs: max |Δlogit| may be at most this fraction of the reference's logit
/// range (max - min over all positions). A faithful conversion computes bit-identical
/// logits; a changed `norm_eps` (1e-6 -> 1e-5) already moves them by ~1e-3 of the range.
pub(crate) const LOSSLESS_MAX_ABS_OF_RANGE: f64 = 1e-4;

/// How far the candidate's weights may be from the reference's, by kind of conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fidelity {
    /// Same float type or wider (f16 -> f16, f16 -> f32): values are carried exactly.
    Lossless,
    /// A narrower float type (f32 -> f16, anything -> bf16): rounding only.
    FloatCast,
    /// A ggml block-quantized type.
    Quantized,
}

/// The limits a run is judged by.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Thresholds {
    /// Why these defaults (the candidate's class), e.g. "lossless (f16 -> f16)".
    pub class: String,
    /// The kind of conversion the defaults were chosen for.
    pub fidelity: Fidelity,
    /// Mean KLD limit.
    pub max_kld: Option<f64>,
    /// Top-1 agreement floor, percent.
    pub min_top1: Option<f64>,
    /// Max |logit difference|.
    pub max_abs: Option<f64>,
    /// Max |logit difference| as a fraction of the reference's logit range (lossless pairs).
    pub max_abs_of_range: Option<f64>,
    /// With `--per-layer`: a layer whose hidden-state relative RMS difference exceeds this
    /// is a bad layer.
    pub max_layer_rel_rms: f64,
}

fn float_rank(d: DType) -> Option<u8> {
    match d {
        DType::F64 => Some(3),
        DType::F32 => Some(2),
        DType::F16 | DType::BF16 => Some(1),
        _ => None,
    }
}

/// Default thresholds for a candidate whose main weight type is `cand`, made from `reference`.
pub fn default_thresholds(reference: DType, cand: DType) -> Thresholds {
    let t = |class: String, fidelity, kld: f64, top1: Option<f64>, layer: f64| Thresholds {
        class,
        fidelity,
        max_kld: Some(kld),
        min_top1: top1,
        max_abs: None,
        max_abs_of_range: (fidelity == Fidelity::Lossless).then_some(LOSSLESS_MAX_ABS_OF_RANGE),
        max_layer_rel_rms: layer,
    };
    match (float_rank(reference), float_rank(cand)) {
        (Some(r), Some(c)) if cand == reference || c > r => t(
            format!("lossless ({reference} -> {cand})"),
            Fidelity::Lossless,
            1e-6,
            Some(100.0),
            1e-4,
        ),
        (_, Some(_)) if cand == DType::BF16 => t(
            format!("{reference} -> bf16"),
            Fidelity::FloatCast,
            1e-3,
            None,
            0.05,
        ),
        (_, Some(_)) => t(
            format!("{reference} -> {cand}"),
            Fidelity::FloatCast,
            1e-4,
            None,
            0.02,
        ),
        _ => {
            let kld = match cand {
                DType::Q8_0 | DType::Q8_1 | DType::Q8_K => 0.001,
                DType::Q6_K => 0.005,
                DType::Q5_K | DType::Q5_0 | DType::Q5_1 => 0.01,
                DType::Q4_K => 0.02,
                DType::Q4_0 | DType::Q4_1 => 0.03,
                DType::Q3_K => 0.06,
                _ => 0.15,
            };
            t(
                format!("quantized {cand}"),
                Fidelity::Quantized,
                kld,
                None,
                0.5,
            )
        }
    }
}

/// One named check of a run, passed or failed, with the figures behind it (a JUnit test
/// case, a row of the report).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Gate {
    /// What is checked: `hyper_parameters`, `finite_logits`, `mean_kld`, ...
    pub name: String,
    /// Whether it holds.
    pub pass: bool,
    /// The measured value against its limit, or why it failed.
    pub detail: String,
}

fn gate(name: &str, pass: bool, detail: String) -> Gate {
    Gate {
        name: name.into(),
        pass,
        detail,
    }
}

/// Every check of a run in a fixed order: hyper-parameters (when given), finite logits,
/// each limit `th` sets, and the per-layer divergence (when given).
pub fn gates(
    c: &Comparison,
    th: &Thresholds,
    params: Option<&[ParamRow]>,
    layers: Option<&[LayerDivergence]>,
) -> Vec<Gate> {
    let mut g = Vec::new();
    if let Some(rows) = params {
        let bad = param_failures(rows);
        let detail = if bad.is_empty() {
            "dim, heads, kv heads, layers, hidden, vocab, norm_eps, rope_theta, context length agree".into()
        } else {
            bad.join("; ")
        };
        g.push(gate("hyper_parameters", bad.is_empty(), detail));
    }
    g.push(gate(
        "finite_logits",
        c.non_finite == 0,
        if c.non_finite == 0 {
            "no NaN or infinite logits".into()
        } else {
            format!("{} logits are NaN or infinite", c.non_finite)
        },
    ));
    if let Some(x) = th.max_kld {
        let ok = c.kld_mean <= x;
        let op = if ok { "<=" } else { ">" };
        g.push(gate(
            "mean_kld",
            ok,
            format!("mean KLD {:.6} {op} {x}", c.kld_mean),
        ));
    }
    if let Some(p) = th.min_top1 {
        let ok = c.top1_agreement * 100.0 >= p;
        let op = if ok { ">=" } else { "<" };
        g.push(gate(
            "top1_agreement",
            ok,
            format!("top-1 agreement {:.3}% {op} {p}%", c.top1_agreement * 100.0),
        ));
    }
    if let Some(d) = th.max_abs {
        let ok = c.max_abs_diff <= d;
        let op = if ok { "<=" } else { ">" };
        g.push(gate(
            "max_abs_logit",
            ok,
            format!("max |logit diff| {:.6} {op} {d}", c.max_abs_diff),
        ));
    }
    if let Some(frac) = th.max_abs_of_range {
        let ok = c.max_abs_diff <= frac * c.logit_range;
        let detail = if ok {
            format!(
                "max |logit diff| {:.6} <= {frac} of the logit range {:.4}",
                c.max_abs_diff, c.logit_range
            )
        } else {
            format!(
                "max |logit diff| {:.6} > {frac} of the logit range {:.4} (a lossless conversion computes the same logits)",
                c.max_abs_diff, c.logit_range
            )
        };
        g.push(gate("lossless_logits", ok, detail));
    }
    if let Some(layers) = layers {
        let detail = match first_bad_layer(layers, th) {
            Some(l) => format!(
                "hidden states diverge first after layer {l}: relative RMS {:.3e} > {}",
                layers[l].rel_rms, th.max_layer_rel_rms
            ),
            None => format!(
                "every layer's hidden-state relative RMS <= {}",
                th.max_layer_rel_rms
            ),
        };
        g.push(gate(
            "per_layer",
            first_bad_layer(layers, th).is_none(),
            detail,
        ));
    }
    g
}

/// Which limits a comparison breaks (empty: pass).
pub fn failures(c: &Comparison, th: &Thresholds) -> Vec<String> {
    gates(c, th, None, None)
        .into_iter()
        .filter(|g| !g.pass)
        .map(|g| g.detail)
        .collect()
}

/// One hyper-parameter of both sides.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ParamRow {
    /// `dim`, `n_heads`, `norm_eps`, ...
    pub name: &'static str,
    /// The reference's value (None: the checkpoint does not say).
    pub reference: Option<f64>,
    /// The candidate's value.
    pub candidate: Option<f64>,
    /// Both are known and differ (floats compared at f32 precision: GGUF stores f32).
    pub differs: bool,
}

impl ParamRow {
    /// A value as a table cell: integers plainly, small floats in exponent form.
    pub fn cell(v: Option<f64>) -> String {
        match v {
            None => "-".into(),
            Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
            Some(x) => format!("{:e}", x as f32),
        }
    }
}

/// The hyper-parameters of both sides, side by side, each marked when it differs.
pub fn compare_params(reference: &ModelParams, candidate: &ModelParams) -> Vec<ParamRow> {
    type Get = fn(&ModelParams) -> Option<f64>;
    let rows: [(&'static str, Get); 9] = [
        ("dim", |p| Some(p.dim as f64)),
        ("n_layers", |p| Some(p.n_layers as f64)),
        ("n_heads", |p| Some(p.n_heads as f64)),
        ("n_kv_heads", |p| Some(p.n_kv_heads as f64)),
        ("hidden_dim", |p| Some(p.hidden_dim as f64)),
        ("vocab_size", |p| Some(p.vocab_size as f64)),
        ("norm_eps", |p| Some(p.norm_eps)),
        ("rope_theta", |p| Some(p.rope_theta)),
        ("context_length", |p| p.context_length.map(|c| c as f64)),
    ];
    rows.into_iter()
        .map(|(name, get)| {
            let (r, c) = (get(reference), get(candidate));
            let differs = match (r, c) {
                (Some(a), Some(b)) => (a as f32) != (b as f32) || (a - b).abs() >= 1.0,
                _ => false,
            };
            ParamRow {
                name,
                reference: r,
                candidate: c,
                differs,
            }
        })
        .collect()
}

/// One failure line per differing hyper-parameter.
pub(crate) fn param_failures(rows: &[ParamRow]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.differs)
        .map(|r| {
            format!(
                "hyper-parameter {} differs: reference {}, candidate {}",
                r.name,
                ParamRow::cell(r.reference),
                ParamRow::cell(r.candidate)
            )
        })
        .collect()
}

/// The first layer (0-based) whose hidden-state divergence breaks the limit, if any.
pub fn first_bad_layer(layers: &[LayerDivergence], th: &Thresholds) -> Option<usize> {
    layers
        .iter()
        .position(|l| !l.rel_rms.is_finite() || l.rel_rms > th.max_layer_rel_rms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ModelParams {
        ModelParams {
            dim: 64,
            n_layers: 2,
            n_heads: 4,
            n_kv_heads: 4,
            vocab_size: 512,
            hidden_dim: 192,
            norm_eps: 1e-6,
            rope_theta: 10000.0,
            context_length: None,
        }
    }

    #[test]
    fn a_changed_norm_eps_is_named_and_gguf_f32_rounding_is_not() {
        let a = params();
        let mut b = params();
        b.norm_eps = (1e-6f32) as f64; // as a GGUF stores it
        b.context_length = Some(2048); // unknown on one side: not compared
        assert!(param_failures(&compare_params(&a, &b)).is_empty());
        b.norm_eps = 1e-5;
        b.rope_theta = 500000.0;
        let f = param_failures(&compare_params(&a, &b));
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].contains("norm_eps") && f[0].contains("1e-6") && f[0].contains("1e-5"));
        assert!(f[1].contains("rope_theta 500000") || f[1].contains("rope_theta"));
    }

    #[test]
    fn lossless_pairs_gate_on_the_logit_range() {
        let th = default_thresholds(DType::F16, DType::F16);
        assert_eq!(th.fidelity, Fidelity::Lossless);
        let mut c = crate::compare::compare(&[0.0, 10.0], &[0.0, 10.0], 2, None).unwrap();
        assert!(failures(&c, &th).is_empty());
        c.max_abs_diff = 0.0036; // the norm_eps 1e-5 copy of the issue, range ~10
        let f = failures(&c, &th);
        assert_eq!(f.len(), 1);
        assert!(f[0].contains("logit range"), "{f:?}");
        // A quantized candidate is not held to it.
        assert!(failures(&c, &default_thresholds(DType::F16, DType::Q4_K)).is_empty());
        assert_eq!(
            default_thresholds(DType::F32, DType::F16).fidelity,
            Fidelity::FloatCast
        );
    }
}
