//! `llama-tool download MAGNET|FILE.torrent [--models 7B,13B] [--dir DIR] [--peer HOST:PORT]...
//! [--no-dht] [--no-trackers] [--port P]`: BitTorrent download with librqbit, staged until
//! the engine verified every piece and the folders' `checklist.chk` matched (docs/TORRENT.md).
//! Exit 0 complete and verified, 1 a checklist mismatch, 2 an error (stalled, interrupted).
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use llama_manifests::torrent::engine::{
    self, DownloadRequest, EngineConfig, Network, Phase, Snapshot, Source, TorrentProgress,
};
use serde_json::json;

use super::download::Args;
use crate::EXIT_FAIL;

/// BitTorrent options of `download` (and `seed`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct BtArgs {
    /// A peer to connect to (repeatable), e.g. 127.0.0.1:6881.
    #[arg(long = "peer", value_name = "HOST:PORT")]
    pub peers: Vec<String>,
    /// Do not use the DHT to find peers (on by default: a magnet link without trackers
    /// needs it).
    #[arg(long)]
    pub no_dht: bool,
    /// Do not announce to the torrent's trackers.
    #[arg(long)]
    pub no_trackers: bool,
    /// TCP port to listen on for peers (default: any free port).
    #[arg(long, value_name = "P")]
    pub port: Option<u16>,
    /// Give up (exit 2, staged data kept for a rerun) after this many seconds without
    /// verified progress; default: wait for peers forever.
    #[arg(long, value_name = "SECS")]
    pub stall_timeout: Option<u64>,
}

impl BtArgs {
    /// The engine's network options.
    pub fn network(&self) -> anyhow::Result<Network> {
        let mut peers = Vec::new();
        for p in &self.peers {
            let addr: SocketAddr = p
                .to_socket_addrs()
                .with_context(|| format!("--peer {p}: expected HOST:PORT"))?
                .next()
                .with_context(|| format!("--peer {p}: no address"))?;
            peers.push(addr);
        }
        Ok(Network {
            dht: !self.no_dht,
            trackers: !self.no_trackers,
            port: self.port,
            peers,
        })
    }
}

/// Set by SIGINT/SIGTERM once [`install_stop_handler`] ran.
pub static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Make Ctrl-C (and SIGTERM) set [`STOP`] instead of killing the process, so the engine can
/// stop cleanly.
pub fn install_stop_handler() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// The engine configuration as JSON.
pub fn engine_json(c: &EngineConfig) -> serde_json::Value {
    json!({
        "dht": c.dht,
        "trackers": c.trackers,
        "lsd": c.lsd,
        "upnp": c.upnp,
        "pex": c.pex,
        "listen_port": c.listen_port,
        "peers": c.peers.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    })
}

/// One line saying which network features are on.
pub fn engine_line(c: &EngineConfig) -> String {
    let on = |b: bool| if b { "on" } else { "off" };
    format!(
        "network: DHT {}, trackers {}, LSD {}, UPnP {}, PEX {}; peers given: {}",
        on(c.dht),
        on(c.trackers),
        on(c.lsd),
        on(c.upnp),
        on(c.pex),
        c.peers.len()
    )
}

/// A bar with rate, peers and ETA.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// Hidden when `quiet` or stderr is not a terminal.
    pub fn new(quiet: bool) -> Bar {
        let bar = crate::progress::bytes_bar(0, "torrent", quiet);
        if !bar.is_hidden() {
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:28} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
        }
        Bar { bar }
    }

    /// Clear it.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl TorrentProgress for Bar {
    fn update(&self, s: &Snapshot) {
        let phase = match s.phase {
            Phase::Metadata => "metadata",
            Phase::Checking => "checking",
            Phase::Transfer => "transfer",
            Phase::Checklists => "checklists",
        };
        self.bar.set_length(s.total);
        self.bar.set_position(s.have);
        self.bar
            .set_message(format!("{phase} {} peers up {}", s.peers, s.uploaded));
    }
}

/// `download MAGNET|FILE.torrent`.
pub fn run(args: &Args, source: &str) -> anyhow::Result<ExitCode> {
    let src = if source.starts_with("magnet:") {
        Source::Magnet(source.to_string())
    } else {
        let p = PathBuf::from(source);
        if !p.is_file() {
            bail!("{source}: neither a magnet link nor a .torrent file");
        }
        Source::File(p)
    };
    let req = DownloadRequest {
        source: src,
        dir: args.dir.clone(),
        models: args.models.clone(),
        net: args.bt.network()?,
        stall: args.bt.stall_timeout.map(Duration::from_secs),
    };
    let (_, cfg) = engine::session_options(&req.net);
    if !args.json {
        eprintln!("{}", engine_line(&cfg));
    }
    install_stop_handler();
    let bar = Bar::new(args.json);
    let r = engine::download(&req, &bar, &STOP);
    bar.finish();
    let r = r?;
    let failed: Vec<_> = r.checklist.iter().filter(|c| !c.status.is_ok()).collect();
    if args.json {
        let doc = json!({
            "name": r.name,
            "info_hash": r.info_hash,
            "magnet": r.magnet,
            "root": r.root.display().to_string(),
            "files": r.files,
            "total_bytes": r.total_bytes,
            "resumed_bytes": r.resumed_bytes,
            "fetched_bytes": r.fetched_bytes,
            "seconds": r.seconds,
            "engine": engine_json(&r.engine),
            "checklist": r.checklist.iter().map(|c| json!({
                "path": c.name, "status": c.status.word(),
            })).collect::<Vec<_>>(),
            "complete": r.complete,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for c in &r.checklist {
            let word = if c.status.is_ok() { "OK" } else { "FAILED" };
            println!("{word:9} {} (checklist md5)", c.name);
        }
        println!(
            "{}: {} files, {} bytes in {:.1} s ({} resumed, {} fetched) -> {}",
            if r.complete { "downloaded" } else { "FAILED" },
            r.files.len(),
            r.total_bytes,
            r.seconds,
            r.resumed_bytes,
            r.fetched_bytes,
            r.root.display()
        );
    }
    if !failed.is_empty() || !r.complete {
        if !args.json {
            eprintln!(
                "llama-tool: {} file(s) failed their checklist; kept out of {} (staged under {})",
                failed.len(),
                r.root.display(),
                args.dir.join(engine::STAGING).display()
            );
        }
        return Ok(ExitCode::from(EXIT_FAIL));
    }
    Ok(ExitCode::SUCCESS)
}
