//! `llama-tool manifest DIR --format torrent -o NAME.torrent [--piece-size SIZE]
//! [--tracker URL]... [--web-seed URL]... [--private] [--v2|--hybrid] [--creation-date T]`:
//! a deterministic BitTorrent metainfo of a folder, hashed in parallel (docs/TORRENT.md).
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use llama_manifests::torrent::{self, CreateOptions, Metainfo, Version};

/// The torrent options of `manifest` (and `seed` without `--torrent`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TorrentArgs {
    /// Torrent piece size (power of two, 16K..256M; e.g. 4M, 16MiB, 262144). Default: at
    /// most 2000 pieces, up to 16 MiB.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub piece_size: Option<u64>,
    /// Tracker announce URL (repeatable; none by default: magnet links find peers by DHT).
    #[arg(long = "tracker", value_name = "URL")]
    pub trackers: Vec<String>,
    /// Web seed URL (BEP 19, repeatable).
    #[arg(long = "web-seed", value_name = "URL")]
    pub web_seeds: Vec<String>,
    /// Mark the torrent private (BEP 27: clients use only its trackers; no DHT or PEX).
    #[arg(long)]
    pub private: bool,
    /// Make a v2-only torrent (BEP 52; SHA-256 merkle trees). Many clients read only v1.
    #[arg(long, conflicts_with = "hybrid")]
    pub v2: bool,
    /// Make a hybrid v1+v2 torrent (padding files align every file to a piece).
    #[arg(long)]
    pub hybrid: bool,
    /// Record this Unix time as `creation date` (omitted by default, so the same folder
    /// always gives the same torrent).
    #[arg(long, value_name = "UNIX_TIME")]
    pub creation_date: Option<i64>,
}

impl TorrentArgs {
    /// The library options.
    pub fn options(&self) -> CreateOptions {
        CreateOptions {
            piece_length: self.piece_size,
            trackers: self.trackers.clone(),
            web_seeds: self.web_seeds.clone(),
            private: self.private,
            version: if self.v2 {
                Version::V2
            } else if self.hybrid {
                Version::Hybrid
            } else {
                Version::V1
            },
            creation_date: self.creation_date,
            comment: None,
        }
    }
}

/// `16384`, `256K`, `4M`, `16MiB`, `1G` (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.chars().take_while(|c| c.is_ascii_digit()).count();
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 4M, 16MiB, 262144)"))?;
    let mul: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("{s:?}: unknown unit (use K, M or G)")),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Hash `dir` into a torrent (with a progress bar unless `quiet`), leaving out `exclude`.
pub fn make(
    dir: &Path,
    exclude: &[PathBuf],
    opts: &CreateOptions,
    jobs: usize,
    quiet: bool,
) -> anyhow::Result<(Vec<u8>, Metainfo)> {
    let total: u64 = llama_manifests::discover::walk_files(dir)
        .map(|fs| {
            fs.iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    let total = if opts.version == Version::Hybrid {
        total * 2
    } else {
        total
    };
    let bar = crate::progress::bytes_bar(total, "torrent", quiet);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let made = pool.install(|| torrent::create(dir, exclude, opts, &|n| bar.inc(n)))?;
    bar.finish_and_clear();
    Ok(made)
}

/// `manifest DIR --format torrent`.
pub fn run(
    dir: &Path,
    output: Option<&Path>,
    force: bool,
    t: &TorrentArgs,
    jobs: usize,
) -> anyhow::Result<ExitCode> {
    let Some(out) = output else {
        bail!("--format torrent writes a binary file: give -o NAME.torrent");
    };
    let exclude = vec![out.to_path_buf()];
    let (bytes, meta) = make(dir, &exclude, &t.options(), jobs, false)?;
    crate::args::write_file_output(out, force, &bytes)?;
    eprintln!(
        "{}: {} files, {} pieces of {} bytes",
        out.display(),
        meta.files.iter().filter(|f| !f.padding).count(),
        meta.total_length().div_ceil(meta.piece_length),
        meta.piece_length
    );
    if let Some(h) = meta.info_hash_v1 {
        eprintln!("info-hash (v1): {}", hex::encode(h));
    }
    if let Some(h) = meta.info_hash_v2 {
        eprintln!("info-hash (v2): {}", hex::encode(h));
    }
    eprintln!("magnet: {}", meta.magnet());
    Ok(ExitCode::SUCCESS)
}
