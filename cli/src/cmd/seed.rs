//! `llama-tool seed DIR [--torrent FILE.torrent] [--port P] [--peer HOST:PORT]...`: verify the
//! folder against the torrent (or make the torrent on the fly, with `manifest`'s torrent
//! options), then serve it until Ctrl-C, printing the info-hash and the magnet link.
//! Exit 0 after a clean stop, 1 when the folder fails verification, 2 on bad input.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use llama_manifests::torrent::engine::{self, SeedRequest};
use llama_manifests::torrent::{self, check, Metainfo};

use super::download_torrent::{engine_line, install_stop_handler, Bar, BtArgs, STOP};
use super::manifest_torrent::TorrentArgs;
use super::verify_torrent::torrent_line;
use crate::EXIT_FAIL;

/// Arguments of `llama-tool seed`.
#[derive(clap::Args)]
pub struct Args {
    /// The content folder (or the folder holding it).
    pub dir: PathBuf,
    /// The torrent to seed; without it one is made from DIR (see the torrent options).
    #[arg(long, value_name = "FILE.torrent")]
    pub torrent: Option<PathBuf>,
    /// Save the torrent made on the fly here.
    #[arg(long, value_name = "FILE.torrent", conflicts_with = "torrent")]
    pub save_torrent: Option<PathBuf>,
    /// Replace an existing --save-torrent FILE (refused otherwise, exit 2).
    #[arg(long, requires = "save_torrent")]
    pub force: bool,
    /// Files hashed at once (default: the number of cores).
    #[arg(short = 'j', long = "jobs", alias = "threads", value_name = "N")]
    pub jobs: Option<usize>,
    /// Options of a torrent made on the fly.
    #[command(flatten)]
    pub make: TorrentArgs,
    /// Network options.
    #[command(flatten)]
    pub bt: BtArgs,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let jobs = args.jobs.unwrap_or_else(super::verify::default_jobs).max(1);
    if !args.dir.exists() {
        bail!("{}: no such folder", args.dir.display());
    }
    if let Some(out) = &args.save_torrent {
        crate::args::check_file_output(out, args.force)?;
    }
    let (bytes, meta, root) = match &args.torrent {
        Some(t) => {
            let meta = Metainfo::read(t)?;
            let bytes = std::fs::read(t).with_context(|| t.display().to_string())?;
            let root = torrent::content_root(&meta, &args.dir);
            let bar = crate::progress::bytes_bar(check::bytes_to_hash(&meta), "verify", false);
            let results = torrent::verify_content(
                &meta,
                &root,
                &root.display().to_string(),
                jobs,
                &super::verify_torrent::Lines {
                    bar: &bar,
                    quiet: true,
                },
            )?;
            bar.finish_and_clear();
            let bad: Vec<_> = results.iter().filter(|r| !r.status.is_ok()).collect();
            if !bad.is_empty() {
                for r in &bad {
                    println!("{}", torrent_line(r));
                }
                eprintln!(
                    "llama-tool: {}: {} file(s) do not match {}; not seeding",
                    root.display(),
                    bad.len(),
                    t.display()
                );
                return Ok(ExitCode::from(EXIT_FAIL));
            }
            (bytes, meta, root)
        }
        None => {
            let exclude: Vec<PathBuf> = args.save_torrent.iter().cloned().collect();
            let (bytes, meta) = super::manifest_torrent::make(
                &args.dir,
                &exclude,
                &args.make.options(),
                jobs,
                false,
            )?;
            if let Some(out) = &args.save_torrent {
                crate::args::write_file_output(out, args.force, &bytes)?;
            }
            let root = args.dir.clone();
            (bytes, meta, root)
        }
    };
    let req = SeedRequest {
        torrent: bytes,
        meta,
        root,
        net: args.bt.network()?,
    };
    install_stop_handler();
    let bar = Bar::new(false);
    let ready = |port: u16, cfg: &engine::EngineConfig| {
        let name = &req.meta.name;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "seeding {name} on port {port}");
        if let Some(h) = req.meta.info_hash_v1 {
            let _ = writeln!(out, "info-hash: {}", hex::encode(h));
        }
        if let Some(h) = req.meta.info_hash_v2 {
            let _ = writeln!(out, "info-hash (v2): {}", hex::encode(h));
        }
        let _ = writeln!(out, "magnet: {}", req.meta.magnet());
        let _ = writeln!(out, "{}", engine_line(cfg));
        let _ = out.flush();
    };
    let r = engine::seed(&req, &ready, &bar, &STOP);
    bar.finish();
    let r = r?;
    println!(
        "stopped: uploaded {} bytes in {:.1} s",
        r.uploaded, r.seconds
    );
    Ok(ExitCode::SUCCESS)
}
