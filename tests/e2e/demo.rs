//! README's first command: `llama-tool demo` runs the whole pipeline on a generated model.

use crate::common::*;

#[test]
fn demo_runs_every_step() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("demo");
    let o = run(["demo", "--dir", dir.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "demo failed:\n{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("demo: every step passed"), "{out}");
    for step in [
        "$ llama-tool synth",
        "$ llama-tool verify",
        "$ llama-tool convert",
        "$ llama-tool reshard",
        "$ llama-tool check",
    ] {
        assert!(out.contains(step), "missing step {step}");
    }
    assert_eq!(out.matches("PASS").count(), 4, "{out}");
}
