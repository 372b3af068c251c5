//! `check --report FILE`: one self-contained HTML page (inline CSS and SVG, no scripts, no
//! external assets or links) with the verdict, both sides and their hyper-parameters, the
//! metrics and every check, and hand-written SVG plots: KL divergence per evaluated
//! position, its distribution, and with `--per-layer` the hidden-state divergence per layer.
//! Hand-written because three simple charts are ~150 lines, smaller than a plotting crate.

use std::fmt::Write as _;
use std::path::Path;

use llama_infer::policy::ParamRow;

use crate::ci::xml_escape as esc;
use crate::cmd::check::CheckResult;

const W: f64 = 720.0;
const H: f64 = 260.0;
/// Plot margins: left, right, top, bottom.
const ML: f64 = 70.0;
const MR: f64 = 16.0;
const MT: f64 = 28.0;
const MB: f64 = 40.0;

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:980px;color:#1d232a;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:26px 0 8px;border-bottom:1px solid #dde3ea;padding-bottom:4px}
.badge{display:inline-block;padding:3px 12px;border-radius:12px;font-weight:700;color:#fff;margin-left:8px;font-size:14px;vertical-align:middle}
.pass{background:#1a7f37}.fail{background:#cf222e}
table{border-collapse:collapse;font-size:13px;margin:4px 0}td,th{padding:3px 10px;border-bottom:1px solid #eef1f4;text-align:left}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums;font-family:ui-monospace,monospace}
tr.bad td{background:#ffebe9}.grid{display:flex;flex-wrap:wrap;gap:24px}
svg{background:#fbfcfd;border:1px solid #e3e8ee;border-radius:6px}svg text{font-size:11px;fill:#57606a}
.muted{color:#57606a;font-size:12px}";

/// Write the report of `r` to `path` (atomically; an existing file only with `force`).
pub fn write(path: &Path, force: bool, r: &CheckResult) -> anyhow::Result<()> {
    crate::args::write_file_output(path, force, render(r).as_bytes())?;
    Ok(())
}

/// A number for a table cell or axis label.
fn num(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if !x.is_finite() {
        format!("{x}")
    } else if (1e-3..1e4).contains(&x.abs()) {
        format!("{x:.6}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        format!("{x:.3e}")
    }
}

/// An axis tick: three significant digits.
fn tick(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return num(x);
    }
    let digits = (2 - x.abs().log10().floor() as i32).max(0) as usize;
    if (1e-3..1e5).contains(&x.abs()) {
        format!("{x:.digits$}")
    } else {
        format!("{x:.2e}")
    }
}

/// The page.
pub fn render(r: &CheckResult) -> String {
    let m = &r.metrics;
    let mut h = String::new();
    let verdict = if r.pass {
        "<span class=\"badge pass\">PASS</span>"
    } else {
        "<span class=\"badge fail\">FAIL</span>"
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><title>llama-tool check report</title><style>{STYLE}</style></head><body>\n<h1>llama-tool check{verdict}</h1>\n<p class=\"muted\">{} tokens in {} sequence(s), vocabulary {}; thresholds: {}</p>\n",
        r.tokens,
        r.sequences,
        m.vocab,
        esc(&r.thresholds.class)
    );
    h.push_str("<table><tr><th></th><th>path</th><th>kind</th><th>weights</th></tr>\n");
    for (label, s) in [("reference", &r.reference), ("candidate", &r.candidate)] {
        let _ = writeln!(
            h,
            "<tr><th>{label}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.path.display().to_string()),
            esc(s.kind),
            esc(s.weights)
        );
    }
    h.push_str("</table>\n");
    if !r.failures.is_empty() {
        h.push_str("<h2>Failures</h2><ul>\n");
        for f in &r.failures {
            let _ = writeln!(h, "<li>{}</li>", esc(f));
        }
        h.push_str("</ul>\n");
    }
    h.push_str(
        "<h2>Summary</h2><div class=\"grid\"><table><tr><th>metric</th><th>value</th></tr>\n",
    );
    let mut rows: Vec<(&str, String)> = vec![
        ("mean KLD", num(m.kld_mean)),
        ("max KLD", num(m.kld_max)),
        ("99% KLD", num(m.kld_p99)),
        ("95% KLD", num(m.kld_p95)),
        ("90% KLD", num(m.kld_p90)),
        ("median KLD", num(m.kld_p50)),
        (
            "same top token",
            format!("{:.3} %", m.top1_agreement * 100.0),
        ),
        ("max |Δlogit|", num(m.max_abs_diff)),
        ("RMS Δlogit", num(m.rms_diff)),
        ("logit range", num(m.logit_range)),
        ("cosine mean", format!("{:.8}", m.cosine_mean)),
        ("cosine min", format!("{:.8}", m.cosine_min)),
    ];
    if let (Some(a), Some(b)) = (m.ppl_reference, m.ppl_candidate) {
        rows.push(("perplexity ref / cand", format!("{a:.4} / {b:.4}")));
    }
    for (k, v) in rows {
        let _ = writeln!(h, "<tr><td>{k}</td><td class=\"num\">{}</td></tr>", esc(&v));
    }
    h.push_str("</table>\n<table><tr><th>check</th><th>result</th><th>detail</th></tr>\n");
    for g in &r.checks {
        let _ = writeln!(
            h,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td></tr>",
            if g.pass { "" } else { " class=\"bad\"" },
            esc(&g.name),
            if g.pass { "pass" } else { "FAIL" },
            esc(&g.detail)
        );
    }
    h.push_str(
        "</table>\n<table><tr><th>hyper-parameter</th><th>reference</th><th>candidate</th></tr>\n",
    );
    for p in &r.hyper_parameters {
        let _ = writeln!(
            h,
            "<tr{}><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            if p.differs { " class=\"bad\"" } else { "" },
            p.name,
            ParamRow::cell(p.reference),
            ParamRow::cell(p.candidate)
        );
    }
    h.push_str("</table></div>\n<h2>KL divergence per position</h2>\n");
    h.push_str(&line_chart(
        &r.kld_per_position,
        "position (all sequences in order)",
        "KLD (nats)",
    ));
    h.push_str("\n<h2>Distribution of KL divergence</h2>\n");
    h.push_str(&histogram(&r.kld_per_position, 30, "KLD (nats)"));
    if let Some(layers) = &r.layers {
        h.push_str("\n<h2>Hidden-state divergence per layer</h2>\n");
        let vals: Vec<f64> = layers.iter().map(|l| l.rel_rms).collect();
        h.push_str(&bar_chart(
            &vals,
            r.first_bad_layer,
            Some(r.thresholds.max_layer_rel_rms),
            "layer",
            "relative RMS ‖Δh‖/‖h‖",
        ));
        h.push_str("<table><tr><th>layer</th><th>cosine mean</th><th>cosine min</th><th>relative RMS</th><th>max |Δh|</th></tr>\n");
        for l in layers {
            let _ = writeln!(
                h,
                "<tr{}><td>{}</td><td class=\"num\">{:.8}</td><td class=\"num\">{:.8}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                if r.first_bad_layer == Some(l.layer) { " class=\"bad\"" } else { "" },
                l.layer,
                l.cosine_mean,
                l.cosine_min,
                num(l.rel_rms),
                num(l.max_abs)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<p class=\"muted\">KLD is KL(reference ‖ candidate) of the next-token softmax at each position, as llama.cpp's llama-perplexity --kl-divergence reports it. Generated by llama-tool.</p>\n</body></html>\n");
    h
}

/// Axis frame, y ticks from 0 to `ymax` and the labels; returns (svg so far, plot width, height).
fn frame(ymax: f64, xlabel: &str, ylabel: &str) -> (String, f64, f64) {
    let (pw, ph) = (W - ML - MR, H - MT - MB);
    let mut s = format!(
        "<svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\">\n<line x1=\"{ML}\" y1=\"{MT}\" x2=\"{ML}\" y2=\"{}\" stroke=\"#8c959f\"/>\n<line x1=\"{ML}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#8c959f\"/>\n",
        MT + ph,
        MT + ph,
        ML + pw,
        MT + ph
    );
    for i in 0..=4 {
        let v = ymax * i as f64 / 4.0;
        let y = MT + ph - ph * i as f64 / 4.0;
        let _ = writeln!(
            s,
            "<line x1=\"{ML}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#eef1f4\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            ML + pw,
            ML - 6.0,
            y + 4.0,
            tick(v)
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text><text x=\"12\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 12 {})\">{}</text>",
        ML + pw / 2.0,
        H - 8.0,
        esc(xlabel),
        MT + ph / 2.0,
        MT + ph / 2.0,
        esc(ylabel)
    );
    (s, pw, ph)
}

fn top(values: &[f64]) -> f64 {
    let m = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    if m > 0.0 {
        m * 1.05
    } else {
        1.0
    }
}

/// Values over their index, as a polyline with dots.
fn line_chart(values: &[f64], xlabel: &str, ylabel: &str) -> String {
    let ymax = top(values);
    let (mut s, pw, ph) = frame(ymax, xlabel, ylabel);
    let n = values.len().max(2) - 1;
    let pt = |i: usize, v: f64| {
        let v = if v.is_finite() { v.min(ymax) } else { ymax };
        (
            ML + pw * i as f64 / n as f64,
            MT + ph - ph * (v / ymax).max(0.0),
        )
    };
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let (x, y) = pt(i, v);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let _ = writeln!(
        s,
        "<polyline fill=\"none\" stroke=\"#0969da\" stroke-width=\"1.5\" points=\"{}\"/>",
        points.join(" ")
    );
    if values.len() <= 400 {
        for (i, &v) in values.iter().enumerate() {
            let (x, y) = pt(i, v);
            let _ = writeln!(
                s,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2\" fill=\"#0969da\"><title>position {i}: {}</title></circle>",
                num(v)
            );
        }
    }
    let _ = writeln!(
        s,
        "<text x=\"{ML}\" y=\"16\">{} positions, max {}</text>",
        values.len(),
        num(values.iter().copied().fold(0.0, f64::max))
    );
    s.push_str("</svg>\n");
    s
}

/// Counts of values in `bins` equal-width bins from 0 to the maximum.
fn histogram(values: &[f64], bins: usize, xlabel: &str) -> String {
    let max = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let mut counts = vec![0usize; bins];
    for &v in values {
        let i = if max > 0.0 && v.is_finite() {
            ((v / max * bins as f64) as usize).min(bins - 1)
        } else {
            0
        };
        counts[i] += 1;
    }
    let ymax = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let (mut s, pw, ph) = frame(ymax, xlabel, "positions");
    let bw = pw / bins as f64;
    for (i, &c) in counts.iter().enumerate() {
        let bh = ph * c as f64 / ymax;
        let lo = max * i as f64 / bins as f64;
        let hi = max * (i + 1) as f64 / bins as f64;
        let _ = writeln!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#8250df\"><title>{} to {}: {c}</title></rect>",
            ML + bw * i as f64 + 1.0,
            MT + ph - bh,
            (bw - 2.0).max(1.0),
            num(lo),
            num(hi)
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{ML}\" y=\"{}\">0</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        MT + ph + 14.0,
        ML + pw,
        MT + ph + 14.0,
        num(max)
    );
    s.push_str("</svg>\n");
    s
}

/// One bar per layer; `bad` in red; `limit` as a dashed line when in range.
fn bar_chart(
    values: &[f64],
    bad: Option<usize>,
    limit: Option<f64>,
    xlabel: &str,
    ylabel: &str,
) -> String {
    let ymax = top(values);
    let (mut s, pw, ph) = frame(ymax, xlabel, ylabel);
    let n = values.len().max(1);
    let bw = pw / n as f64;
    for (i, &v) in values.iter().enumerate() {
        let v = if v.is_finite() { v } else { ymax };
        let bh = (ph * v / ymax).max(if v > 0.0 { 1.0 } else { 0.0 });
        let colour = match bad {
            Some(b) if i == b => "#cf222e",
            Some(b) if i > b => "#f4a3a8",
            _ => "#1a7f37",
        };
        let _ = writeln!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{colour}\"><title>layer {i}: {}</title></rect>",
            ML + bw * i as f64 + bw * 0.15,
            MT + ph - bh,
            bw * 0.7,
            num(v)
        );
        if n <= 40 || i % (n / 20).max(1) == 0 {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{i}</text>",
                ML + bw * (i as f64 + 0.5),
                MT + ph + 14.0
            );
        }
    }
    if let Some(l) = limit.filter(|&l| l > 0.0 && l <= ymax) {
        let y = MT + ph - ph * l / ymax;
        let _ = writeln!(
            s,
            "<line x1=\"{ML}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#cf222e\" stroke-dasharray=\"5 4\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">limit {}</text>",
            ML + pw,
            ML + pw,
            y - 4.0,
            num(l)
        );
    }
    if let Some(b) = bad {
        let _ = writeln!(s, "<text x=\"{ML}\" y=\"16\">first bad layer: {b}</text>");
    }
    s.push_str("</svg>\n");
    s
}
