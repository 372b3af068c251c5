//! `llama-tool manifest`: write a checksum manifest of a folder: a `checklist.chk` that
//! `md5sum -c` accepts, a `SHA256SUMS` that `sha256sum -c` accepts, a b3sum list, or the
//! llama-tool JSON manifest (docs/MANIFEST.md). Names are relative to DIR.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use llama_manifests::build::{
    build_manifest, listed_bytes, BuildError, ManifestFormat, ManifestOptions,
};
use llama_manifests::json::{DEFAULT_CHUNK_SIZE, MIN_CHUNK_SIZE};
use llama_manifests::listing;

use crate::args::{check_file_output, write_file_output, Choice, DigestAlgo};

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// md5sum list (`HEX  NAME`), like Meta's `checklist.chk` (with --algo md5, the default).
    Chk,
    /// GNU list for sha256sum -c / md5sum -c / b3sum --check (--algo, default sha256).
    Sha256sums,
    /// The llama-tool JSON manifest: size, sha256, md5 and chunk digests per file.
    Json,
    /// A BitTorrent metainfo file (needs -o; see the torrent options and docs/TORRENT.md).
    Torrent,
}

/// Arguments of `llama-tool manifest`.
#[derive(clap::Args)]
pub struct Args {
    /// The folder to describe.
    pub dir: PathBuf,
    /// Manifest format.
    #[arg(long, default_value = "sha256sums", value_parser = Choice::<Format>::new())]
    pub format: Format,
    /// Digest: md5, sha256 or blake3 (for json: the chunk digest, sha256 or blake3; default
    /// blake3).
    #[arg(long, value_parser = Choice::<DigestAlgo>::new())]
    pub algo: Option<DigestAlgo>,
    /// Write here (atomically) instead of stdout.
    #[arg(short = 'o', long = "output", alias = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace an existing -o FILE (refused otherwise, exit 2).
    #[arg(long)]
    pub force: bool,
    /// JSON chunk size in bytes (default 64 MiB).
    #[arg(long, default_value_t = DEFAULT_CHUNK_SIZE)]
    pub chunk_size: u64,
    /// Also hash every tensor of the checkpoint in DIR (format-independent identity; JSON only).
    #[arg(long)]
    pub tensors: bool,
    /// Files hashed at once (default: the number of cores).
    #[arg(short = 'j', long = "jobs", alias = "threads", value_name = "N")]
    pub jobs: Option<usize>,
    /// Options of --format torrent.
    #[command(flatten)]
    pub torrent: super::manifest_torrent::TorrentArgs,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.dir.is_dir() {
        bail!("{}: not a folder", args.dir.display());
    }
    if let Some(o) = &args.output {
        check_file_output(o, args.force)?;
    }
    let jobs = args.jobs.unwrap_or_else(super::verify::default_jobs).max(1);
    let format = match args.format {
        Format::Torrent => {
            return super::manifest_torrent::run(
                &args.dir,
                args.output.as_deref(),
                args.force,
                &args.torrent,
                jobs,
            )
        }
        Format::Chk => ManifestFormat::Chk,
        Format::Sha256sums => ManifestFormat::Sha256Sums,
        Format::Json => ManifestFormat::Json,
    };
    let opts = ManifestOptions {
        format,
        algo: args.algo.map(DigestAlgo::algo),
        chunk_size: args.chunk_size,
        tensors: args.tensors,
        jobs,
    };
    opts.check().map_err(flag_error)?;
    let listing = listing::list_folder(&args.dir, args.output.as_deref())?;
    for (p, why) in &listing.skipped {
        eprintln!(
            "llama-tool: warning: skipping {}: {why}",
            llama_codecs::text::shown(&p.display().to_string())
        );
    }
    let bar = crate::progress::bytes_bar(listed_bytes(&listing), "manifest", args.output.is_none());
    let text = build_manifest(&args.dir, &listing, &opts, &|n| bar.inc(n));
    bar.finish_and_clear();
    let text = text.map_err(flag_error)?;
    match &args.output {
        Some(o) => {
            write_file_output(o, args.force, text.as_bytes())?;
        }
        None => {
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A library error about the options, in the words of the flags that set them.
fn flag_error(e: BuildError) -> anyhow::Error {
    match e {
        BuildError::ChunkAlgo(_) => {
            anyhow!("--algo for json picks the chunk digest: sha256 or blake3")
        }
        BuildError::ChunkSize { .. } => anyhow!("--chunk-size must be at least {MIN_CHUNK_SIZE}"),
        BuildError::TensorsNeedJson => anyhow!("--tensors needs --format json"),
        e => e.into(),
    }
}
