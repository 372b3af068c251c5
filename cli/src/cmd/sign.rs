//! `llama-tool sign`: sign a model folder (or one file) in the OpenSSF Model Signing format
//! (model_signing 1.1.1, key-based): a Sigstore bundle with a DSSE-signed in-toto statement
//! listing every file and its SHA-256. `model_signing verify key` accepts what this writes.
//! Exit 0 signed, 2 usage or bad input (unreadable or unsupported key, symlink in the folder).
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use llama_manifests::sign::{self, PrivateKey, SignOptions};
use llama_manifests::verify::Progress;
use llama_manifests::Algo;
use serde_json::json;

/// Arguments of `llama-tool sign`.
#[derive(clap::Args)]
pub struct Args {
    /// The model folder (or a single file) to sign.
    pub path: PathBuf,
    /// PEM EC private key (SEC1 or PKCS#8, optionally encrypted) on P-256, P-384 or P-521.
    #[arg(long, value_name = "KEY.pem")]
    pub key: PathBuf,
    /// Where to write the signature (default: DIR/model.sig; FILE.sig for a single file).
    #[arg(short = 'o', long = "output", alias = "out", value_name = "SIG")]
    pub output: Option<PathBuf>,
    /// Replace an existing signature file (refused otherwise, exit 2).
    #[arg(long)]
    pub force: bool,
    /// File holding the password of an encrypted key (first line). The environment variable
    /// LLAMA_TOOL_KEY_PASSWORD is read when this is not given.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Leave PATH (relative to the model folder, or a path inside it) out of the signature;
    /// repeatable. `.git/`, `.github/`, `.gitattributes`, `.gitignore` and the signature
    /// itself are always left out.
    #[arg(long, value_name = "PATH")]
    pub ignore: Vec<PathBuf>,
    /// Follow symlinks (refused otherwise, as model_signing does).
    #[arg(long)]
    pub allow_symlinks: bool,
    /// Hash each file with BLAKE3 instead of SHA-256 (model_signing's library verifies it;
    /// its CLI verifies only SHA-256).
    #[arg(long)]
    pub blake3: bool,
    /// Also sign the per-tensor identities of the checkpoint (as `manifest --tensors`), in an
    /// extra predicate field that model_signing ignores; `verify --tensors SIG --public-key
    /// PUB OTHER` then checks a conversion against them.
    #[arg(long)]
    pub tensors: bool,
    /// Files hashed at once (default: the number of cores).
    #[arg(short = 'j', long = "jobs", alias = "threads", value_name = "N")]
    pub jobs: Option<usize>,
    /// Print one JSON document (signature path, files, bytes, key hint); no bar.
    #[arg(long)]
    pub json: bool,
}

/// The key's password: `--password-file` (first line) or `LLAMA_TOOL_KEY_PASSWORD`.
fn password(args: &Args) -> anyhow::Result<Option<Vec<u8>>> {
    if let Some(f) = &args.password_file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("{}: cannot read the password file", f.display()))?;
        let line = text.lines().next().unwrap_or("");
        return Ok(Some(line.as_bytes().to_vec()));
    }
    Ok(
        std::env::var_os("LLAMA_TOOL_KEY_PASSWORD")
            .map(|p| p.to_string_lossy().as_bytes().to_vec()),
    )
}

struct Bar(indicatif::ProgressBar);
impl Progress for Bar {
    fn bytes(&self, n: u64) {
        self.0.inc(n);
    }
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let threads = args.jobs.unwrap_or_else(super::verify::default_jobs);
    if threads == 0 {
        bail!("--jobs must be at least 1");
    }
    let meta = std::fs::metadata(&args.path).with_context(|| args.path.display().to_string())?;
    if !meta.is_dir() && !meta.is_file() {
        bail!("{}: not a folder or a regular file", args.path.display());
    }
    let key = PrivateKey::load(&args.key, password(&args)?.as_deref())?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| sign::default_signature_path(&args.path));
    crate::args::check_file_output(&output, args.force)?;
    let mut ignore = sign::ignore::ignore_entries(&args.path, &args.ignore)?;
    if meta.is_dir() {
        ignore.extend(sign::signature_ignore(&args.path, &output));
    }
    let tensors = if args.tensors {
        let start = Instant::now();
        let set = super::verify::checkpoint_tensors(&args.path, ".", args.json)?;
        if !args.json {
            eprintln!(
                "hashed {} tensors in {:.1} s",
                set.tensors.len(),
                start.elapsed().as_secs_f64()
            );
        }
        Some(set)
    } else {
        None
    };
    let opts = SignOptions {
        ignore,
        allow_symlinks: args.allow_symlinks,
        algo: if args.blake3 {
            Algo::Blake3
        } else {
            Algo::Sha256
        },
        threads,
        tensors,
    };
    let total = if meta.is_dir() {
        llama_manifests::discover::walk_files(&args.path)
            .map(|fs| {
                fs.iter()
                    .filter_map(|f| std::fs::metadata(f).ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    } else {
        meta.len()
    };
    let bar = Bar(crate::progress::bytes_bar(total, "sign", args.json));
    let start = Instant::now();
    let signed = sign::sign_model(&args.path, &key, &opts, &bar)?;
    bar.0.finish_and_clear();
    let written = match sign::write_bundle(&signed.bundle, &output, args.force) {
        Ok(w) => w,
        Err(sign::SignError::Output(e)) => return Err(crate::args::output_error(e)),
        Err(e) => return Err(e.into()),
    };
    let seconds = start.elapsed().as_secs_f64();
    let hint = key.public_key().hint();
    if args.json {
        let doc = json!({
            "signature": written,
            "model": signed.manifest.model_name,
            "files": signed.manifest.resources.len(),
            "bytes": signed.bytes,
            "seconds": seconds,
            "algorithm": opts.algo.name(),
            "key_curve": key.curve().name(),
            "key_hint": hint,
            "root_digest": signed.manifest.root_digest,
            "ignore_paths": signed.manifest.serialization.ignore_paths,
            "tensors": signed.manifest.tensors.as_ref().map(|t| t.tensors.len()),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!(
            "signed {} files, {:.2} GB in {seconds:.2} s with {} key {}: {}",
            signed.manifest.resources.len(),
            signed.bytes as f64 / 1e9,
            key.curve().name(),
            &hint[..16],
            written.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
