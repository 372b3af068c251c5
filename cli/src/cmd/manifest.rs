//! `llama-tool manifest`: write a checksum manifest of a folder: a `checklist.chk` that
//! `md5sum -c` accepts, a `SHA256SUMS` that `sha256sum -c` accepts, a b3sum list, or the
//! llama-tool JSON manifest (docs/MANIFEST.md). Names are relative to DIR.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{bail, Context};
use llama_formats::atomic::AtomicFile;
use llama_manifests::checksums;
use llama_manifests::json::{FileEntry, Manifest, DEFAULT_CHUNK_SIZE, MIN_CHUNK_SIZE};
use llama_manifests::listing;
use llama_manifests::verify::digest_for_manifest;
use llama_manifests::Algo;
use rayon::prelude::*;

use crate::args::{Choice, DigestAlgo};

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
    /// Write here (atomically; an existing file is replaced) instead of stdout.
    #[arg(short = 'o', long = "output", alias = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
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

/// Files to list (llama-manifests decides what a folder's content is); what was left out
/// is reported as a warning.
fn files_to_list(dir: &Path, output: Option<&Path>) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let listing = listing::list_folder(dir, output)?;
    for (p, why) in &listing.skipped {
        eprintln!(
            "llama-tool: warning: skipping {}: {why}",
            llama_codecs::text::shown(&p.display().to_string())
        );
    }
    Ok(listing.files.into_iter().map(|f| (f.path, f.rel)).collect())
}

/// One hashed file: relative name, size, whole digests, chunk digests.
type Hashed = (String, u64, Vec<(Algo, String)>, Vec<String>);

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.dir.is_dir() {
        bail!("{}: not a folder", args.dir.display());
    }
    if args.tensors && args.format != Format::Json {
        bail!("--tensors needs --format json");
    }
    let algo = args.algo.map(DigestAlgo::algo);
    let jobs_n = args.jobs.unwrap_or_else(super::verify::default_jobs).max(1);
    if args.format == Format::Torrent {
        return super::manifest_torrent::run(
            &args.dir,
            args.output.as_deref(),
            &args.torrent,
            jobs_n,
        );
    }
    let files = files_to_list(&args.dir, args.output.as_deref())?;
    let total: u64 = files
        .iter()
        .filter_map(|(p, _)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let bar = crate::progress::bytes_bar(total, "manifest", args.output.is_none());
    let (algos, chunk): (Vec<Algo>, Option<(Algo, u64)>) = match args.format {
        Format::Chk => (vec![algo.unwrap_or(Algo::Md5)], None),
        Format::Sha256sums => (vec![algo.unwrap_or(Algo::Sha256)], None),
        Format::Json => {
            let ca = algo.unwrap_or(Algo::Blake3);
            if ca == Algo::Md5 {
                bail!("--algo for json picks the chunk digest: sha256 or blake3");
            }
            if args.chunk_size < MIN_CHUNK_SIZE {
                bail!("--chunk-size must be at least {MIN_CHUNK_SIZE}");
            }
            (vec![Algo::Md5, Algo::Sha256], Some((ca, args.chunk_size)))
        }
        Format::Torrent => (Vec::new(), None), // handled above
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs_n)
        .build()?;
    let failure = Mutex::new(None);
    let hashed: Vec<Option<Hashed>> = pool.install(|| {
        files
            .par_iter()
            .map(
                |(p, rel)| match digest_for_manifest(p, &algos, chunk, &|n| bar.inc(n)) {
                    Ok((size, d, c)) => Some((rel.clone(), size, d, c)),
                    Err(e) => {
                        failure.lock().map(|mut f| *f = Some(e.to_string())).ok();
                        None
                    }
                },
            )
            .collect()
    });
    bar.finish_and_clear();
    if let Some(e) = failure.into_inner().ok().flatten() {
        bail!(e);
    }
    let hashed: Vec<_> = hashed.into_iter().flatten().collect();
    let text = match args.format {
        Format::Torrent => String::new(), // handled above
        Format::Chk | Format::Sha256sums => checksums::write_gnu(
            hashed
                .iter()
                .map(|(rel, _, d, _)| (d[0].1.as_str(), rel.as_str())),
        ),
        Format::Json => {
            let (ca, cs) = chunk.unwrap_or((Algo::Blake3, DEFAULT_CHUNK_SIZE));
            let mut m = Manifest::new(cs, ca);
            for (rel, size, d, c) in hashed {
                let get = |a: Algo| d.iter().find(|(x, _)| *x == a).map(|(_, h)| h.clone());
                m.files.push(FileEntry {
                    path: rel,
                    size,
                    sha256: get(Algo::Sha256),
                    md5: get(Algo::Md5),
                    blake3: None,
                    chunks: c,
                });
            }
            if args.tensors {
                let ck =
                    llama_formats::checkpoint::Checkpoint::open(&args.dir).with_context(|| {
                        format!(
                            "{}: --tensors needs a checkpoint folder",
                            args.dir.display()
                        )
                    })?;
                let set = pool
                    .install(|| llama_manifests::tensors::hash_checkpoint(&ck, ".", &|_, _| {}))?;
                m.tensor_sets.push(set);
            }
            m.to_json()
        }
    };
    match &args.output {
        Some(o) => {
            let mut f =
                AtomicFile::create(o).with_context(|| format!("{}: cannot create", o.display()))?;
            f.write_all(text.as_bytes())
                .with_context(|| format!("{}: write failed", o.display()))?;
            f.commit()
                .with_context(|| format!("{}: cannot rename into place", o.display()))?;
        }
        None => {
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
