//! `llama-tool verify --torrent FILE.torrent DIR [--magnet URI]`, and `.torrent` files found
//! among the manifests `verify` discovers: every piece of the torrent checked against the
//! folder (docs/TORRENT.md). Results go through `verify`'s common report (text, `--json`).
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use llama_manifests::torrent::{self, check, Magnet, Metainfo};
use llama_manifests::verify::{FileResult, Progress, Status};

use super::verify::Args;

pub use llama_manifests::discover::is_torrent;

/// A line per file in the torrent's words: OK, FAILED (pieces), MISSING, WRONG SIZE.
pub fn torrent_line(r: &FileResult) -> String {
    match &r.status {
        Status::Ok => format!("OK         {}", r.name),
        Status::Mismatch { what, .. } => format!("FAILED     {}: {what}", r.name),
        Status::Missing => format!("MISSING    {}", r.name),
        Status::Size { expected, actual } => format!(
            "WRONG SIZE {}: expected {expected} bytes, found {actual}",
            r.name
        ),
        Status::Unlisted => format!("UNLISTED   {}", r.name),
        Status::Error(e) => format!("ERROR      {}: {e}", r.name),
    }
}

/// Per-file lines (unless quiet) and bar progress.
pub struct Lines<'a> {
    /// The bar.
    pub bar: &'a indicatif::ProgressBar,
    /// No lines.
    pub quiet: bool,
}

impl Progress for Lines<'_> {
    fn bytes(&self, n: u64) {
        self.bar.inc(n);
    }
    fn file_done(&self, r: &FileResult) {
        if self.quiet {
            return;
        }
        let line = torrent_line(r);
        if self.bar.is_hidden() {
            println!("{line}");
        } else {
            self.bar.println(line);
        }
    }
}

/// The info-hash check of `--magnet`: a result line, failed when the hashes differ.
fn magnet_result(meta: &Metainfo, torrent: &Path, uri: &str) -> anyhow::Result<FileResult> {
    let m = Magnet::parse(uri)?;
    let status = if m.matches(meta.info_hash_v1, meta.info_hash_v2) {
        Status::Ok
    } else {
        let (expected, actual) = match m.btih {
            Some(h) => (
                hex::encode(h),
                meta.info_hash_v1.map(hex::encode).unwrap_or_default(),
            ),
            None => (
                m.btmh.map(hex::encode).unwrap_or_default(),
                meta.info_hash_v2.map(hex::encode).unwrap_or_default(),
            ),
        };
        Status::Mismatch {
            what: "info-hash".into(),
            expected,
            actual,
            source: "--magnet".into(),
        }
    };
    Ok(FileResult {
        name: format!("info-hash of {}", torrent.display()),
        status,
        bytes: 0,
        seconds: 0.0,
        digests: Vec::new(),
    })
}

/// `verify --torrent FILE DIR`: the results and the seconds taken.
pub fn run(args: &Args, torrent: &Path, jobs: usize) -> anyhow::Result<(Vec<FileResult>, f64)> {
    let [dir] = args.paths.as_slice() else {
        bail!("--torrent takes exactly one folder (the content, or the folder holding it)");
    };
    let meta = Metainfo::read(torrent)?;
    let mut results = Vec::new();
    if let Some(uri) = &args.magnet {
        let r = magnet_result(&meta, torrent, uri)?;
        if !args.ci.json {
            println!("{}", torrent_line(&r));
        }
        results.push(r);
    }
    if !dir.exists() {
        bail!("{}: no such folder", dir.display());
    }
    let root = torrent::content_root(&meta, dir);
    let bar = crate::progress::bytes_bar(check::bytes_to_hash(&meta), "verify", args.ci.json);
    let lines = Lines {
        bar: &bar,
        quiet: args.ci.json,
    };
    let start = Instant::now();
    let shown = root.display().to_string();
    results.extend(torrent::verify_content(&meta, &root, &shown, jobs, &lines)?);
    bar.finish_and_clear();
    Ok((results, start.elapsed().as_secs_f64()))
}

/// The torrents among discovered manifests, each checked against the content next to it.
pub fn discovered(
    manifests: &[PathBuf],
    jobs: usize,
    progress: &dyn Progress,
) -> anyhow::Result<Vec<FileResult>> {
    let mut out = Vec::new();
    for t in manifests.iter().filter(|p| is_torrent(p)) {
        let meta = Metainfo::read(t)?;
        let base = t.parent().unwrap_or(Path::new("."));
        let root = torrent::content_root(&meta, base);
        let shown = root.display().to_string();
        out.extend(
            torrent::verify_content(&meta, &root, &shown, jobs, progress)
                .with_context(|| t.display().to_string())?,
        );
    }
    Ok(out)
}
