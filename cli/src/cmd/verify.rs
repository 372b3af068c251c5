//! `llama-tool verify`: check files against md5 checklists, SHA256SUMS, b3sum lists or
//! llama-tool JSON manifests (found recursively in a folder), or one file against
//! `--sha256` / `--md5`. Exit 0 all verified, 1 any failure, 2 usage error or bad manifest.
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use llama_formats::checkpoint::Checkpoint;
use llama_manifests::discover::Plan;
use llama_manifests::json::TensorSet;
use llama_manifests::tally::{Tally, VerifyKind};
use llama_manifests::tensor_claims::{self, tensor_result, Reference};
use llama_manifests::tensors;
use llama_manifests::verify::{self, FileResult, Progress, Status};
use llama_manifests::verify_plan::{self, GivenDigests};
use serde_json::json;

use crate::args::ReportArgs;
use crate::EXIT_FAIL;

/// Arguments of `llama-tool verify`.
#[derive(clap::Args)]
pub struct Args {
    /// Folders (every manifest under them, recursively), manifests, or single files (checked
    /// against the manifest in their folder or above that lists them).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// --json (per-file results, digests, bytes, seconds, summary) and --junit (one test
    /// case per file).
    #[command(flatten)]
    pub ci: ReportArgs,
    /// Files verified at once (default: the number of cores).
    #[arg(short = 'j', long = "jobs", alias = "threads", value_name = "N")]
    pub jobs: Option<usize>,
    /// Also report files present but listed by no manifest (as failures).
    #[arg(long)]
    pub strict: bool,
    /// Expected SHA-256 of the single file given.
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// Expected MD5 of the single file given.
    #[arg(long, value_name = "HEX")]
    pub md5: Option<String>,
    /// Expected BLAKE3 of the single file given.
    #[arg(long, value_name = "HEX")]
    pub blake3: Option<String>,
    /// Compare the tensor values of each PATH (a checkpoint: Meta folder, HF folder, GGUF)
    /// with REF: a llama-tool JSON manifest holding tensor hashes (`manifest --tensors`), or
    /// another checkpoint. Format-independent: an f16 GGUF export matches its f16 .pth.
    #[arg(long, value_name = "REF")]
    pub tensors: Option<PathBuf>,
    /// Check the one folder given against this BitTorrent metainfo: every v1 piece and v2
    /// merkle root (docs/TORRENT.md).
    #[arg(long, value_name = "FILE.torrent")]
    pub torrent: Option<PathBuf>,
    /// With --torrent: the magnet link whose info-hash the torrent must have.
    #[arg(long, value_name = "URI", requires = "torrent")]
    pub magnet: Option<String>,
    /// Check the folder (or file) against an OpenSSF Model Signing signature (model_signing
    /// key-based bundle); needs --public-key. See docs/SIGNING.md.
    #[arg(long, value_name = "SIG")]
    pub signature: Option<PathBuf>,
    /// The signer's PEM EC public key, for --signature (or for --tensors SIG).
    #[arg(long, value_name = "PUB.pem")]
    pub public_key: Option<PathBuf>,
    /// With --signature: check only the signed files; extra files are not failures.
    #[arg(long)]
    pub ignore_unsigned: bool,
    /// With --signature: follow symlinks in the folder (refused otherwise).
    #[arg(long)]
    pub allow_symlinks: bool,
}

/// The tensor identities of a checkpoint.
pub(crate) fn checkpoint_tensors(
    path: &Path,
    label: &str,
    json: bool,
) -> anyhow::Result<TensorSet> {
    let ck = Checkpoint::open(path)
        .with_context(|| format!("{}: cannot open as a checkpoint", path.display()))?;
    let n = ck.llama_tensors().len() as u64;
    let bar = crate::progress::count_bar(
        n,
        &format!("tensors of {}", path.display()),
        "tensors",
        json,
    );
    let set = tensors::hash_checkpoint(&ck, label, &|_, _| bar.inc(1))?;
    bar.finish_and_clear();
    Ok(set)
}

/// Tensor sets claimed by the JSON manifests among `manifests`, checked.
fn manifest_tensor_results(manifests: &[PathBuf], json: bool) -> anyhow::Result<Vec<FileResult>> {
    let mut out = Vec::new();
    for (ck, set) in tensor_claims::manifest_claims(manifests)? {
        let start = Instant::now();
        let actual = checkpoint_tensors(&ck, &set.checkpoint, json)?;
        out.push(tensor_result(
            format!("tensors of {}", ck.display()),
            &set,
            &actual,
            start.elapsed().as_secs_f64(),
        ));
    }
    Ok(out)
}

/// `--tensors REF`: each path's tensors against REF's.
fn reference_set(reference: &Path, json: bool) -> anyhow::Result<TensorSet> {
    Ok(match tensor_claims::reference(reference)? {
        Reference::Claimed(set) => set,
        Reference::Checkpoint(p) => checkpoint_tensors(&p, &p.display().to_string(), json)?,
    })
}

/// Default worker count: the cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The jobs, unlisted files and manifests for the given paths (or the one file against
/// `--sha256/--md5/--blake3`).
fn plan(args: &Args) -> anyhow::Result<Plan> {
    let given = GivenDigests {
        sha256: args.sha256.as_deref(),
        md5: args.md5.as_deref(),
        blake3: args.blake3.as_deref(),
    };
    Ok(verify_plan::plan_paths(&args.paths, &given)?)
}

pub(crate) struct Reporter {
    pub(crate) bar: indicatif::ProgressBar,
    json: bool,
}

impl Reporter {
    /// A bar over `total` bytes (hidden with --json or off a terminal).
    pub(crate) fn new(total: u64, json: bool) -> Reporter {
        Reporter {
            bar: crate::progress::bytes_bar(total, "verify", json),
            json,
        }
    }
}

impl Progress for Reporter {
    fn bytes(&self, n: u64) {
        self.bar.inc(n);
    }
    fn file_done(&self, r: &FileResult) {
        if self.json {
            return;
        }
        let line = result_line(r);
        if self.bar.is_hidden() {
            println!("{line}");
        } else {
            self.bar.println(line);
        }
    }
}

/// What is wrong with a file, beyond its status word (a mismatch's digests, a size, an
/// error), as the result line and the JUnit case show it.
pub(crate) fn problem(status: &Status) -> Option<String> {
    match status {
        Status::Mismatch {
            what,
            expected,
            actual,
            source,
        } => Some(format!(
            "{what} expected {expected}, actual {actual} ({source})"
        )),
        Status::Size { expected, actual } => {
            Some(format!("expected {expected} bytes, found {actual}"))
        }
        Status::Error(e) => Some(e.clone()),
        Status::Ok | Status::Missing | Status::Unlisted => None,
    }
}

/// `WORD      NAME[: problem]`.
fn result_line(r: &FileResult) -> String {
    let word = r.status.word();
    match problem(&r.status) {
        Some(p) => format!("{word:<10}{}: {p}", r.name),
        None => format!("{word:<10}{}", r.name),
    }
}

fn result_json(r: &FileResult) -> serde_json::Value {
    let mut v = json!({
        "path": r.name,
        "status": r.status.word(),
        "bytes": r.bytes,
        "seconds": r.seconds,
        "digests": r.digests.iter().map(|(a, h)| (a.name().to_string(), json!(h))).collect::<serde_json::Map<_, _>>(),
    });
    match &r.status {
        Status::Mismatch {
            what,
            expected,
            actual,
            source,
        } => {
            v["digest"] = json!(what);
            v["expected"] = json!(expected);
            v["actual"] = json!(actual);
            v["source"] = json!(source);
        }
        Status::Size { expected, actual } => {
            v["expected_size"] = json!(expected);
            v["actual_size"] = json!(actual);
        }
        Status::Error(e) => v["error"] = json!(e),
        _ => {}
    }
    v
}

/// Run the command (with --junit, bad input still leaves a JUnit file with an error case).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ci = args.ci.clone();
    run_args(args).inspect_err(|e| crate::ci::write_error(&ci, "verify", e))
}

fn run_args(args: Args) -> anyhow::Result<ExitCode> {
    args.ci.check_outputs()?;
    let jobs_n = args.jobs.unwrap_or_else(default_jobs);
    if jobs_n == 0 {
        bail!("--jobs must be at least 1");
    }
    match (&args.signature, &args.tensors, &args.public_key) {
        (Some(sig), _, _) => return super::verify_signature::run(&args, sig),
        (None, Some(sig), Some(key)) => {
            return super::verify_signature::run_tensors(&args, sig, key)
        }
        _ => {}
    }
    if let Some(reference) = &args.tensors {
        let expected = reference_set(reference, args.ci.json)?;
        let mut results = Vec::new();
        for p in &args.paths {
            let start = Instant::now();
            let actual = checkpoint_tensors(p, &p.display().to_string(), args.ci.json)?;
            results.push(tensor_result(
                format!("tensors of {}", p.display()),
                &expected,
                &actual,
                start.elapsed().as_secs_f64(),
            ));
        }
        return report(&args, results, 0.0);
    }
    if let Some(t) = &args.torrent {
        let (results, seconds) = super::verify_torrent::run(&args, t, jobs_n)?;
        return report(&args, results, seconds);
    }
    let Plan {
        manifests,
        jobs,
        unlisted,
    } = plan(&args)?;
    let total = verify::total_bytes(&jobs);
    let reporter = Reporter {
        bar: crate::progress::bytes_bar(total, "verify", args.ci.json),
        json: args.ci.json,
    };
    let start = Instant::now();
    let mut results = verify::verify_all(&jobs, jobs_n, &reporter)?;
    results.extend(super::verify_torrent::discovered(
        &manifests, jobs_n, &reporter,
    )?);
    reporter.bar.finish_and_clear();
    for r in manifest_tensor_results(&manifests, args.ci.json)? {
        reporter.file_done(&r);
        results.push(r);
    }
    let seconds = start.elapsed().as_secs_f64();
    if args.strict {
        for name in unlisted {
            let r = FileResult {
                name,
                status: Status::Unlisted,
                bytes: 0,
                seconds: 0.0,
                digests: Vec::new(),
            };
            reporter.file_done(&r);
            results.push(r);
        }
    }
    report(&args, results, seconds)
}

/// Print the summary (or the JSON document) and pick the exit code.
pub(crate) fn report(
    args: &Args,
    results: Vec<FileResult>,
    seconds: f64,
) -> anyhow::Result<ExitCode> {
    if args.tensors.is_some() && !args.ci.json {
        for r in &results {
            println!("{}", result_line(r));
        }
    }
    let bytes: u64 = results.iter().map(|r| r.bytes).sum();
    let tally = Tally::of(results.iter().map(|r| r.status.kind()));
    let failed = tally.failed();
    crate::ci::verify_outputs(&args.ci, &results, seconds, failed)?;
    if args.ci.json {
        let mut summary = json!({
            "files": results.len(),
            "failed": failed,
            "bytes": bytes,
            "seconds": seconds,
            "ok": failed == 0,
        });
        for k in VerifyKind::ALL {
            summary[k.word().to_ascii_lowercase()] = json!(tally.get(k));
        }
        let doc = json!({
            "ok": failed == 0,
            "files": results.iter().map(result_json).collect::<Vec<_>>(),
            "summary": summary,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        let parts: Vec<String> = VerifyKind::ALL
            .iter()
            .filter(|k| tally.get(**k) > 0)
            .map(|k| format!("{} {}", tally.get(*k), k.word()))
            .collect();
        let rate = if seconds > 0.0 {
            bytes as f64 / seconds / 1e9
        } else {
            0.0
        };
        println!(
            "{}: {} files, {:.2} GB in {seconds:.2} s ({rate:.2} GB/s): {}",
            if failed == 0 { "verified" } else { "FAILED" },
            results.len(),
            bytes as f64 / 1e9,
            if parts.is_empty() {
                "nothing to check".to_string()
            } else {
                parts.join(", ")
            }
        );
    }
    Ok(ExitCode::from(if failed == 0 { 0 } else { EXIT_FAIL }))
}
