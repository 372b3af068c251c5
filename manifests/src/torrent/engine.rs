//! Downloading and seeding over BitTorrent with [librqbit](https://docs.rs/librqbit), a
//! maintained pure-Rust engine (v1 and hybrid torrents, magnet links with BEP 9 metadata
//! exchange, BEP 47 padding, per-file selection, resume by re-checking existing data).
//!
//! Network features are explicit ([`Network`]): DHT and trackers only when asked, local
//! service discovery and UPnP never, peers given by address. [`EngineConfig`] is read back
//! from the options the engine was started with, so callers (and tests) can show exactly what
//! it was allowed to do.
//!
//! A download is staged under `DIR/.llama-tool-torrent/<info-hash>/`; files reach their final
//! names under `DIR/<torrent name>/` only after the engine verified every piece and each
//! downloaded folder's `checklist.chk` (md5) matched. Killed, it resumes: the engine re-checks
//! the staged data and fetches only the pieces that fail.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use librqbit::{
    AddTorrent, AddTorrentOptions, AddTorrentResponse, DhtSessionConfig, ListenerMode,
    ListenerOptions, ManagedTorrent, Session, SessionOptions, TorrentStatsState,
};

use super::metainfo::Metainfo;
use super::{models, Magnet, TorrentError};
use crate::discover;
use crate::verify::{self, FileResult, NoProgress};

/// Name of the staging folder inside the download folder.
pub const STAGING: &str = ".llama-tool-torrent";

/// What the engine may do on the network.
#[derive(Clone, Debug, Default)]
pub struct Network {
    /// Use the mainline DHT (BEP 5) to find peers.
    pub dht: bool,
    /// Announce to the torrent's trackers.
    pub trackers: bool,
    /// TCP port to listen on for peers (None: any free port).
    pub port: Option<u16>,
    /// Peers to connect to.
    pub peers: Vec<SocketAddr>,
}

/// The network features the engine was configured with (read back from its options).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Mainline DHT.
    pub dht: bool,
    /// Tracker announces.
    pub trackers: bool,
    /// Local service discovery (BEP 14 multicast).
    pub lsd: bool,
    /// UPnP / NAT-PMP port forwarding.
    pub upnp: bool,
    /// Peer exchange (BEP 11): librqbit exchanges addresses with connected peers on public
    /// torrents; it has no switch, and learns nothing without a first peer.
    pub pex: bool,
    /// The TCP port asked for (0: any).
    pub listen_port: u16,
    /// Peers given explicitly.
    pub peers: Vec<SocketAddr>,
}

/// Engine options for `net`, and what they enable.
pub fn session_options(net: &Network) -> (SessionOptions, EngineConfig) {
    let listen = ListenerOptions {
        mode: ListenerMode::TcpOnly,
        listen_addr: (Ipv4Addr::UNSPECIFIED, net.port.unwrap_or(0)).into(),
        enable_upnp_port_forwarding: false,
        ipv4_only: true,
        ..Default::default()
    };
    let opts = SessionOptions {
        dht: net.dht.then_some(DhtSessionConfig {
            bootstrap_addrs: None,
            port: None,
            persistence: None,
        }),
        disable_trackers: !net.trackers,
        disable_local_service_discovery: true,
        fastresume: false,
        persistence: None,
        listen: Some(listen),
        ..Default::default()
    };
    let cfg = EngineConfig {
        dht: opts.dht.is_some(),
        trackers: !opts.disable_trackers,
        lsd: !opts.disable_local_service_discovery,
        upnp: opts
            .listen
            .as_ref()
            .is_some_and(|l| l.enable_upnp_port_forwarding),
        pex: true,
        listen_port: opts.listen.as_ref().map_or(0, |l| l.listen_addr.port()),
        peers: net.peers.clone(),
    };
    (opts, cfg)
}

/// Errors of a download or seed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Bad torrent, magnet or selection.
    #[error(transparent)]
    Torrent(#[from] TorrentError),
    /// The engine failed.
    #[error("BitTorrent engine: {0}")]
    Engine(String),
    /// A file operation failed.
    #[error("{path}: {error}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        error: std::io::Error,
    },
    /// No verified progress for too long.
    #[error("no verified progress for {secs} s ({have} of {total} bytes verified; peers: {peers}); staged in {staging}, rerun to resume")]
    Stalled {
        /// The timeout.
        secs: u64,
        /// Verified bytes.
        have: u64,
        /// Bytes wanted.
        total: u64,
        /// Live peers.
        peers: u32,
        /// The staging folder.
        staging: String,
    },
    /// Stopped by a signal.
    #[error("interrupted; staged in {0}, rerun to resume")]
    Interrupted(String),
    /// Seeding: the folder does not hold the torrent's data.
    #[error(
        "{0}: the engine's check found missing or bad pieces; run `llama-tool verify --torrent`"
    )]
    Incomplete(String),
}

fn engine(e: impl std::fmt::Display) -> EngineError {
    EngineError::Engine(e.to_string())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |source| EngineError::Io {
        path: path.display().to_string(),
        error: source,
    }
}

/// What a download or seed is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Getting the torrent's metadata from peers (magnet link).
    Metadata,
    /// Checking data already on disk.
    Checking,
    /// Transferring.
    Transfer,
    /// Checking the downloaded folders' checklists.
    Checklists,
}

/// A progress snapshot.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Phase.
    pub phase: Phase,
    /// Verified bytes (checked bytes while checking).
    pub have: u64,
    /// Bytes wanted.
    pub total: u64,
    /// Download rate, bytes/s.
    pub down_rate: f64,
    /// Upload rate, bytes/s.
    pub up_rate: f64,
    /// Bytes uploaded.
    pub uploaded: u64,
    /// Connected peers.
    pub peers: u32,
    /// Estimated time left.
    pub eta: Option<Duration>,
}

/// Receives progress about twice a second; empty defaults.
pub trait TorrentProgress: Sync {
    /// A snapshot.
    fn update(&self, _s: &Snapshot) {}
}

/// Where to get the torrent.
#[derive(Clone, Debug)]
pub enum Source {
    /// A magnet link (metadata fetched from peers).
    Magnet(String),
    /// A `.torrent` file.
    File(PathBuf),
}

/// A download.
#[derive(Clone, Debug)]
pub struct DownloadRequest {
    /// The torrent.
    pub source: Source,
    /// The download folder (files land in `dir/<torrent name>/`).
    pub dir: PathBuf,
    /// Model sizes to fetch (`7B`); empty: everything.
    pub models: Vec<String>,
    /// Network features.
    pub net: Network,
    /// Give up after this long without verified progress (None: wait for peers forever).
    pub stall: Option<Duration>,
}

/// The outcome of a download.
#[derive(Clone, Debug)]
pub struct DownloadReport {
    /// The torrent's name.
    pub name: String,
    /// v1 info-hash, hex.
    pub info_hash: String,
    /// A magnet link for the torrent.
    pub magnet: String,
    /// The content folder (or file).
    pub root: PathBuf,
    /// Selected files, relative to the root.
    pub files: Vec<String>,
    /// Bytes of the selected files.
    pub total_bytes: u64,
    /// Bytes found already verified when the transfer started (resume).
    pub resumed_bytes: u64,
    /// Bytes received from peers.
    pub fetched_bytes: u64,
    /// Wall time.
    pub seconds: f64,
    /// Network configuration.
    pub engine: EngineConfig,
    /// The checklist verification of the downloaded files.
    pub checklist: Vec<FileResult>,
    /// True when every file is verified and under its final name.
    pub complete: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime, EngineError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(engine)
}

/// Sleep a little, or return true when `stop` is set.
async fn tick(stop: &AtomicBool) -> bool {
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.load(Ordering::Relaxed)
}

async fn new_session(
    net: &Network,
    output: &Path,
) -> Result<(Arc<Session>, EngineConfig), EngineError> {
    let (opts, cfg) = session_options(net);
    let session = Session::new_with_opts(output.to_path_buf(), opts)
        .await
        .map_err(engine)?;
    Ok((session, cfg))
}

/// The torrent's bytes and parse: read the file, or fetch the metadata a magnet link names.
async fn resolve(
    session: &Arc<Session>,
    source: &Source,
    net: &Network,
    stall: Option<Duration>,
    stop: &AtomicBool,
    progress: &dyn TorrentProgress,
) -> Result<(Vec<u8>, Metainfo), EngineError> {
    match source {
        Source::File(p) => {
            let meta = Metainfo::read(p)?;
            let bytes = std::fs::read(p).map_err(io(p))?;
            Ok((bytes, meta))
        }
        Source::Magnet(uri) => {
            let magnet = Magnet::parse(uri)?;
            progress.update(&Snapshot {
                phase: Phase::Metadata,
                have: 0,
                total: 0,
                down_rate: 0.0,
                up_rate: 0.0,
                uploaded: 0,
                peers: 0,
                eta: None,
            });
            let opts = AddTorrentOptions {
                list_only: true,
                initial_peers: Some(net.peers.clone()),
                ..Default::default()
            };
            let add = session.add_torrent(AddTorrent::from_url(uri.clone()), Some(opts));
            let started = Instant::now();
            tokio::pin!(add);
            let resp = loop {
                tokio::select! {
                    r = &mut add => break r.map_err(engine)?,
                    s = tick(stop) => {
                        if s {
                            return Err(EngineError::Interrupted("nothing staged yet".into()));
                        }
                        if let Some(limit) = stall {
                            if started.elapsed() > limit {
                                return Err(EngineError::Stalled {
                                    secs: limit.as_secs(),
                                    have: 0,
                                    total: 0,
                                    peers: 0,
                                    staging: "nothing (no peer sent the metadata)".into(),
                                });
                            }
                        }
                    }
                }
            };
            let AddTorrentResponse::ListOnly(list) = resp else {
                return Err(engine("metadata request returned no metadata"));
            };
            let bytes = list.torrent_bytes.to_vec();
            let meta = Metainfo::parse(&bytes, "metadata from peers")?;
            if !magnet.matches(meta.info_hash_v1, None) {
                return Err(TorrentError::WrongInfoHash {
                    file: "metadata from peers".into(),
                    expected: magnet.btih.map(hex::encode).unwrap_or_default(),
                    actual: meta.info_hash_v1.map(hex::encode).unwrap_or_default(),
                }
                .into());
            }
            Ok((bytes, meta))
        }
    }
}

fn snapshot(h: &ManagedTorrent, phase: Phase) -> Snapshot {
    let s = h.stats();
    let live = s.live.as_ref();
    let down_rate = live.map_or(0.0, |l| l.download_speed.mbps * 1024.0 * 1024.0);
    let left = s.total_bytes.saturating_sub(s.progress_bytes);
    Snapshot {
        phase: match s.state {
            TorrentStatsState::Initializing { .. } => Phase::Checking,
            _ => phase,
        },
        have: s.progress_bytes,
        total: s.total_bytes,
        down_rate,
        up_rate: live.map_or(0.0, |l| l.upload_speed.mbps * 1024.0 * 1024.0),
        uploaded: s.uploaded_bytes,
        peers: live.map_or(0, |l| l.snapshot.peer_stats.live),
        eta: (down_rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / down_rate)),
    }
}

/// Download (part of) a torrent into `req.dir`. `stop` set (by a signal) ends it, leaving
/// the staged data for a rerun.
pub fn download(
    req: &DownloadRequest,
    progress: &dyn TorrentProgress,
    stop: &AtomicBool,
) -> Result<DownloadReport, EngineError> {
    let start = Instant::now();
    std::fs::create_dir_all(&req.dir).map_err(io(&req.dir))?;
    let rt = runtime()?;
    let staging_base = req.dir.join(STAGING);
    std::fs::create_dir_all(&staging_base).map_err(io(&staging_base))?;
    let result = rt.block_on(async {
        let (session, cfg) = new_session(&req.net, &staging_base).await?;
        let r = download_in(&session, cfg, req, progress, stop, start).await;
        session.stop().await;
        r
    });
    drop(rt);
    let (mut report, meta, staging, selected) = result?;
    finish(&mut report, &meta, &staging, &selected, progress)?;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

type Transferred = (DownloadReport, Metainfo, PathBuf, Vec<usize>);

async fn download_in(
    session: &Arc<Session>,
    cfg: EngineConfig,
    req: &DownloadRequest,
    progress: &dyn TorrentProgress,
    stop: &AtomicBool,
    start: Instant,
) -> Result<Transferred, EngineError> {
    let (bytes, meta) = resolve(session, &req.source, &req.net, req.stall, stop, progress).await?;
    let selected: Vec<usize> = if req.models.is_empty() {
        (0..meta.files.len())
            .filter(|&i| !meta.files[i].padding)
            .collect()
    } else {
        models::select(&meta, &req.models)?
    };
    let hash = meta.info_hash_v1.map(hex::encode).ok_or_else(|| {
        engine("v2-only torrents are not supported by the engine (use a v1 or hybrid torrent)")
    })?;
    let staging = req.dir.join(STAGING).join(&hash);
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let root = req.dir.join(&meta.name);
    // Files already under their final names go back to staging, so the engine re-checks
    // them and fetches only what is missing; they return after verification.
    for &i in &selected {
        let f = &meta.files[i];
        let fin = final_path(&meta, &root, i);
        let staged = staged_path(&meta, &staging, i);
        if fin.is_file() && !staged.exists() {
            if let Some(p) = staged.parent() {
                std::fs::create_dir_all(p).map_err(io(p))?;
            }
            std::fs::rename(&fin, &staged).map_err(io(&fin))?;
            let _ = f;
        }
    }
    let total_bytes: u64 = selected.iter().map(|&i| meta.files[i].length).sum();
    let opts = AddTorrentOptions {
        only_files: (!req.models.is_empty()).then(|| selected.clone()),
        output_folder: Some(staging.display().to_string()),
        overwrite: true,
        initial_peers: Some(req.net.peers.clone()),
        ..Default::default()
    };
    let handle = session
        .add_torrent(AddTorrent::from_bytes(bytes), Some(opts))
        .await
        .map_err(engine)?
        .into_handle()
        .ok_or_else(|| engine("the engine did not start the torrent"))?;
    let mut resumed: Option<u64> = None;
    let mut last_have = 0u64;
    let mut last_change = Instant::now();
    loop {
        let snap = snapshot(&handle, Phase::Transfer);
        let stats = handle.stats();
        if let Some(e) = &stats.error {
            return Err(engine(e));
        }
        progress.update(&snap);
        if snap.phase == Phase::Transfer && resumed.is_none() {
            resumed = Some(snap.have);
            last_have = snap.have;
            last_change = Instant::now();
        }
        if stats.finished {
            break;
        }
        if snap.have != last_have || snap.phase == Phase::Checking {
            last_have = snap.have;
            last_change = Instant::now();
        }
        if let Some(limit) = req.stall {
            if last_change.elapsed() > limit {
                return Err(EngineError::Stalled {
                    secs: limit.as_secs(),
                    have: snap.have,
                    total: snap.total,
                    peers: snap.peers,
                    staging: staging.display().to_string(),
                });
            }
        }
        if tick(stop).await {
            return Err(EngineError::Interrupted(staging.display().to_string()));
        }
    }
    let stats = handle.stats();
    let fetched = stats.live.as_ref().map_or(0, |l| l.snapshot.fetched_bytes);
    let report = DownloadReport {
        name: meta.name.clone(),
        info_hash: hash,
        magnet: meta.magnet(),
        root: if meta.single_file {
            req.dir.join(&meta.name)
        } else {
            root
        },
        files: selected.iter().map(|&i| meta.files[i].rel()).collect(),
        total_bytes,
        resumed_bytes: resumed.unwrap_or(0).min(total_bytes),
        fetched_bytes: fetched,
        seconds: start.elapsed().as_secs_f64(),
        engine: cfg,
        checklist: Vec::new(),
        complete: false,
    };
    Ok((report, meta, staging, selected))
}

fn staged_path(meta: &Metainfo, staging: &Path, i: usize) -> PathBuf {
    let mut p = staging.to_path_buf();
    for c in &meta.files[i].path {
        p.push(c);
    }
    p
}

fn final_path(meta: &Metainfo, root: &Path, i: usize) -> PathBuf {
    meta.file_path(root, &meta.files[i])
}

/// Checklists, then rename into place.
fn finish(
    report: &mut DownloadReport,
    meta: &Metainfo,
    staging: &Path,
    selected: &[usize],
    progress: &dyn TorrentProgress,
) -> Result<(), EngineError> {
    progress.update(&Snapshot {
        phase: Phase::Checklists,
        have: report.total_bytes,
        total: report.total_bytes,
        down_rate: 0.0,
        up_rate: 0.0,
        uploaded: 0,
        peers: 0,
        eta: None,
    });
    let staged: Vec<PathBuf> = selected
        .iter()
        .map(|&i| staged_path(meta, staging, i))
        .collect();
    let mut jobs = Vec::new();
    for p in staged.iter().filter(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| discover::manifest_kind(n).is_some())
    }) {
        let base = p.parent().unwrap_or(staging);
        for mut j in discover::load_manifest(p, staging, "").map_err(|e| engine(e.to_string()))? {
            if staged.contains(&j.path) {
                j.name = j
                    .path
                    .strip_prefix(staging)
                    .map(|r| r.display().to_string())
                    .unwrap_or_else(|_| j.name.clone());
                jobs.push(j);
            }
            let _ = base;
        }
    }
    let jobs = discover::merge_jobs(jobs);
    report.checklist = verify::verify_all(&jobs, 2, &NoProgress).map_err(engine)?;
    if report.checklist.iter().any(|r| !r.status.is_ok()) {
        return Ok(()); // stays staged; the caller reports the failures
    }
    let root = if meta.single_file {
        report.root.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        report.root.clone()
    };
    for (&i, from) in selected.iter().zip(&staged) {
        let to = if meta.single_file {
            root.join(&meta.name)
        } else {
            final_path(meta, &root, i)
        };
        if let Some(p) = to.parent() {
            std::fs::create_dir_all(p).map_err(io(p))?;
        }
        std::fs::rename(from, &to).map_err(io(from))?;
    }
    std::fs::remove_dir_all(staging).map_err(io(staging))?;
    if let Some(base) = staging.parent() {
        let _ = std::fs::remove_dir(base); // only when empty
    }
    report.complete = true;
    Ok(())
}

/// A seeding session.
#[derive(Clone, Debug)]
pub struct SeedRequest {
    /// The `.torrent` bytes.
    pub torrent: Vec<u8>,
    /// Their parse.
    pub meta: Metainfo,
    /// The content root (folder, or the file of a single-file torrent).
    pub root: PathBuf,
    /// Network features.
    pub net: Network,
}

/// What seeding did.
#[derive(Clone, Debug)]
pub struct SeedReport {
    /// Bytes uploaded.
    pub uploaded: u64,
    /// Seconds seeded.
    pub seconds: f64,
    /// Network configuration.
    pub engine: EngineConfig,
}

/// Serve the torrent until `stop` is set. `ready(port, config)` is called once the engine has
/// checked the data and listens.
pub fn seed(
    req: &SeedRequest,
    ready: &dyn Fn(u16, &EngineConfig),
    progress: &dyn TorrentProgress,
    stop: &AtomicBool,
) -> Result<SeedReport, EngineError> {
    let start = Instant::now();
    let output = if req.meta.single_file {
        req.root.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        req.root.clone()
    };
    let rt = runtime()?;
    rt.block_on(async {
        let (session, cfg) = new_session(&req.net, &output).await?;
        let r = async {
            let opts = AddTorrentOptions {
                output_folder: Some(output.display().to_string()),
                overwrite: true,
                initial_peers: Some(req.net.peers.clone()),
                ..Default::default()
            };
            let handle = session
                .add_torrent(AddTorrent::from_bytes(req.torrent.clone()), Some(opts))
                .await
                .map_err(engine)?
                .into_handle()
                .ok_or_else(|| engine("the engine did not start the torrent"))?;
            handle.wait_until_initialized().await.map_err(engine)?;
            if !handle.stats().finished {
                return Err(EngineError::Incomplete(req.root.display().to_string()));
            }
            let port = session
                .listen_addr()
                .map(|a| a.port())
                .or(session.announce_port())
                .unwrap_or(cfg.listen_port);
            ready(port, &cfg);
            loop {
                progress.update(&snapshot(&handle, Phase::Transfer));
                if tick(stop).await {
                    break;
                }
            }
            Ok(SeedReport {
                uploaded: handle.stats().uploaded_bytes,
                seconds: start.elapsed().as_secs_f64(),
                engine: cfg,
            })
        }
        .await;
        session.stop().await;
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_options_turn_off_what_was_not_asked_for() {
        let (_, cfg) = session_options(&Network {
            dht: false,
            trackers: false,
            port: Some(6999),
            peers: vec!["127.0.0.1:7000".parse().unwrap()],
        });
        assert!(!cfg.dht && !cfg.trackers && !cfg.lsd && !cfg.upnp);
        assert_eq!(cfg.listen_port, 6999);
        let (_, cfg) = session_options(&Network {
            dht: true,
            trackers: true,
            ..Default::default()
        });
        assert!(cfg.dht && cfg.trackers && !cfg.lsd && !cfg.upnp);
    }
}
