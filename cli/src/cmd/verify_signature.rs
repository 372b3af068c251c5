//! `llama-tool verify DIR --signature SIG --public-key PUB.pem`: check a model folder against
//! an OpenSSF Model Signing bundle (model_signing 1.1.1, key-based; files or shards, SHA-256
//! or BLAKE3), and `verify --tensors SIG --public-key PUB CHECKPOINT`: check a conversion's
//! tensor values against the identities signed with `sign --tensors`.
//!
//! The signature itself is the first result line: OK, or MISMATCH for a wrong key or a forged
//! payload (exit 1). Then one line per signed file, UNLISTED extra files (unless
//! `--ignore-unsigned`) and ERROR for symlinks or special files where files belong; the
//! summary, `--json` and exit codes are verify's own. A malformed or unreadable signature or
//! key is exit 2.
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use llama_manifests::sign::{self, check, ModelManifest, PublicKey, SignError};
use llama_manifests::verify::{self, FileResult, Progress, Status};

use super::verify::{Args, Reporter};

/// The signature's own result: OK, or the reason it does not hold (a failed check).
fn signature_result(
    sig: &Path,
    key_path: &Path,
    key: &PublicKey,
    verified: &Result<ModelManifest, SignError>,
    seconds: f64,
) -> FileResult {
    let status = match verified {
        Ok(_) => Status::Ok,
        Err(e) => Status::Mismatch {
            what: "signature".into(),
            expected: format!(
                "signed by {} ({} key {})",
                key_path.display(),
                key.curve().name(),
                &key.hint()[..16]
            ),
            actual: e.to_string(),
            source: "model signature".into(),
        },
    };
    FileResult {
        name: sig.display().to_string(),
        status,
        bytes: 0,
        seconds,
        digests: Vec::new(),
    }
}

/// Read the key and the bundle (exit 2 when unusable) and check the signature. A signature
/// that does not hold is returned as `Err` inside `Ok`, to be reported as a failed check.
fn load_and_verify(
    sig: &Path,
    key_path: &Path,
) -> anyhow::Result<(PublicKey, Result<ModelManifest, SignError>)> {
    let key = PublicKey::load(key_path)?;
    let bundle = sign::read_bundle(sig)?;
    let shown = sig.display().to_string();
    match sign::verify_bundle(&bundle, &key, &shown) {
        Ok(m) => Ok((key, Ok(m))),
        Err(e) if e.is_check_failure() => Ok((key, Err(e))),
        Err(e) => Err(e.into()),
    }
}

/// [`load_and_verify`] and the signature's own result line, timed from `start`.
fn checked_signature(
    sig: &Path,
    key_path: &Path,
    start: Instant,
) -> anyhow::Result<(Result<ModelManifest, SignError>, FileResult)> {
    let (key, verified) = load_and_verify(sig, key_path)?;
    let first = signature_result(
        sig,
        key_path,
        &key,
        &verified,
        start.elapsed().as_secs_f64(),
    );
    Ok((verified, first))
}

/// `verify DIR --signature SIG --public-key PUB`.
pub fn run(args: &Args, sig: &Path) -> anyhow::Result<ExitCode> {
    let Some(key_path) = &args.public_key else {
        bail!("--signature needs --public-key PUB.pem (the signer's EC public key)");
    };
    let [root] = args.paths.as_slice() else {
        bail!("--signature checks one model folder (or file) at a time");
    };
    let threads = args.jobs.unwrap_or_else(super::verify::default_jobs);
    if threads == 0 {
        bail!("--jobs must be at least 1");
    }
    std::fs::metadata(root).with_context(|| root.display().to_string())?;
    let start = Instant::now();
    let (verified, first) = checked_signature(sig, key_path, start)?;
    let reporter = Reporter::new(0, args.ci.json);
    let manifest = match verified {
        Ok(m) => m,
        Err(_) => {
            reporter.file_done(&first);
            return super::verify::report(args, vec![first], start.elapsed().as_secs_f64());
        }
    };
    let opts = check::CheckOptions {
        allow_symlinks: args.allow_symlinks,
        ignore: Vec::new(),
        ignore_unsigned: args.ignore_unsigned,
        signature: Some(sig.to_path_buf()),
    };
    let plan = check::plan_check(
        root,
        &root.display().to_string(),
        &manifest,
        &sig.display().to_string(),
        &opts,
    )?;
    reporter.bar.set_length(verify::total_bytes(&plan.jobs));
    reporter.bar.set_message("verify");
    reporter.file_done(&first);
    let mut results = vec![first];
    results.extend(verify::verify_all(&plan.jobs, threads, &reporter)?);
    reporter.bar.finish_and_clear();
    for r in plan.failures {
        reporter.file_done(&r);
        results.push(r);
    }
    super::verify::report(args, results, start.elapsed().as_secs_f64())
}

/// `verify --tensors SIG --public-key PUB CHECKPOINT...`.
pub fn run_tensors(args: &Args, sig: &Path, key_path: &Path) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let (verified, first) = checked_signature(sig, key_path, start)?;
    let manifest = match verified {
        Ok(m) => m,
        Err(_) => return super::verify::report(args, vec![first], 0.0),
    };
    let Some(expected) = manifest.tensors else {
        bail!(
            "{}: the signature holds no tensor identities (sign with `llama-tool sign DIR --key KEY --tensors`)",
            sig.display()
        );
    };
    let mut results = vec![first];
    for p in &args.paths {
        let t = Instant::now();
        let actual = super::verify::checkpoint_tensors(p, &p.display().to_string(), args.ci.json)?;
        results.push(llama_manifests::tensor_claims::tensor_result(
            format!("tensors of {}", p.display()),
            &expected,
            &actual,
            t.elapsed().as_secs_f64(),
        ));
    }
    super::verify::report(args, results, start.elapsed().as_secs_f64())
}
