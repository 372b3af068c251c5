//! `llama-tool diff A B`: two checkpoints of any formats (Meta folder, Hugging Face folder,
//! GGUF, safetensors, .pth) compared tensor by tensor after name mapping, in Meta's layout:
//! missing/extra tensors, shape and dtype differences, identical or not (identity hash of
//! the values), max absolute and relative difference. Exit 0 equal, 1 not, 2 error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use llama_manifests::diff::{self, DeltaStatus, DiffReport, TensorDelta};

use super::logits::open;
use crate::args::ReportArgs;

/// Arguments of `llama-tool diff`.
#[derive(clap::Args)]
pub struct Args {
    /// First checkpoint (the reference).
    pub a: PathBuf,
    /// Second checkpoint.
    pub b: PathBuf,
    /// --json and --junit (one test case per tensor).
    #[command(flatten)]
    pub ci: ReportArgs,
    /// List identical tensors too (default: only the differences and a summary).
    #[arg(long)]
    pub all: bool,
    /// Count tensors stored in another dtype with the same values (f16 norms kept as f32 in
    /// a GGUF export) as differences too.
    #[arg(long = "strict-dtype")]
    pub strict_dtype: bool,
}

fn shape(s: &[u64]) -> String {
    let parts: Vec<String> = s.iter().map(u64::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// One line about a tensor.
pub fn describe(t: &TensorDelta) -> String {
    let side = |s: &Option<diff::TensorSide>| {
        s.as_ref()
            .map(|s| format!("{} {}", s.dtype, shape(&s.shape)))
            .unwrap_or_else(|| "-".into())
    };
    let mut line = format!(
        "{:<9} {:<36} A {:<24} B {}",
        t.status.word().to_ascii_uppercase(),
        t.name,
        side(&t.a),
        side(&t.b)
    );
    if let (Some(abs), Some(rel)) = (t.max_abs, t.max_rel) {
        if t.status != DeltaStatus::Identical && t.status != DeltaStatus::Dtype {
            line.push_str(&format!("  max |Δ| {abs:.6e} (rel {rel:.3e})"));
        }
    }
    line
}

fn summary(r: &DiffReport, strict_dtype: bool) -> String {
    let parts: Vec<String> = [
        DeltaStatus::Identical,
        DeltaStatus::Dtype,
        DeltaStatus::Values,
        DeltaStatus::Shape,
        DeltaStatus::Missing,
        DeltaStatus::Extra,
    ]
    .into_iter()
    .filter(|&s| r.count(s) > 0)
    .map(|s| format!("{} {}", r.count(s), s.word()))
    .collect();
    format!(
        "{}: {} tensors: {}",
        if r.is_equal(strict_dtype) {
            "equal"
        } else {
            "DIFFERENT"
        },
        r.tensors.len(),
        parts.join(", ")
    )
}

/// The diff as a JUnit suite: one case per tensor.
fn suite(a: &Args, r: &DiffReport) -> crate::ci::Suite {
    let mut cases: Vec<crate::ci::Case> = r
        .tensors
        .iter()
        .map(|t| {
            let mut c = if !DiffReport::differs(t, a.strict_dtype) {
                crate::ci::Case::ok("diff", &t.name)
            } else {
                crate::ci::Case::failed("diff", &t.name, &describe(t))
            };
            c.file = Some(a.b.display().to_string());
            c
        })
        .collect();
    if r.unmapped_a != r.unmapped_b {
        let mut c = crate::ci::Case::failed(
            "diff",
            "unmapped tensors",
            &format!(
                "non-LLaMA tensors differ: A {:?}, B {:?}",
                r.unmapped_a, r.unmapped_b
            ),
        );
        c.file = Some(a.b.display().to_string());
        cases.push(c);
    }
    crate::ci::Suite {
        name: format!("llama-tool diff {} {}", a.a.display(), a.b.display()),
        time: 0.0,
        cases,
        out: summary(r, a.strict_dtype),
    }
}

/// Run the command.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    run_inner(&a).inspect_err(|e| crate::ci::write_error(&a.ci, "diff", e))
}

fn run_inner(a: &Args) -> anyhow::Result<ExitCode> {
    a.ci.check_outputs()?;
    let ca = open(&a.a)?;
    let cb = open(&a.b)?;
    let bar = if a.ci.json || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template("diff [{bar:40}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b
    };
    let r = diff::diff(&ca, &cb, &mut |name, done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(name.to_string());
    })
    .with_context(|| format!("diff {} {}", a.a.display(), a.b.display()))?;
    bar.finish_and_clear();
    if a.ci.json {
        let v = serde_json::json!({
            "ok": r.is_equal(a.strict_dtype),
            "a": {"path": a.a, "kind": ca.kind().name()},
            "b": {"path": a.b, "kind": cb.kind().name()},
            "tensors": r.tensors,
            "unmapped_a": r.unmapped_a,
            "unmapped_b": r.unmapped_b,
            "summary": {
                "tensors": r.tensors.len(),
                "identical": r.count(DeltaStatus::Identical),
                "dtype": r.count(DeltaStatus::Dtype),
                "values": r.count(DeltaStatus::Values),
                "shape": r.count(DeltaStatus::Shape),
                "missing": r.count(DeltaStatus::Missing),
                "extra": r.count(DeltaStatus::Extra),
            },
            "equal": r.is_equal(a.strict_dtype),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("A: {} ({})", a.a.display(), ca.kind().name());
        println!("B: {} ({})", a.b.display(), cb.kind().name());
        for t in &r.tensors {
            if a.all || t.status != DeltaStatus::Identical {
                println!("{}", describe(t));
            }
        }
        if r.unmapped_a != r.unmapped_b {
            println!(
                "UNMAPPED  non-LLaMA tensors: A {:?}, B {:?}",
                r.unmapped_a, r.unmapped_b
            );
        }
        println!("{}", summary(&r, a.strict_dtype));
    }
    let s = suite(a, &r);
    if let Some(path) = &a.ci.junit {
        crate::ci::write_junit(path, a.ci.force, &s)?;
    }
    crate::ci::annotate(&s, a.ci.json);
    Ok(if r.is_equal(a.strict_dtype) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_FAIL)
    })
}
