//! `llama-tool download`: a release by its signed-URL template (`--url 'https://host/*?sig'
//! --models 7B,13B`), or every file of a manifest (`--manifest URL|FILE --base-url URL`).
//! Resumable (`NAME.part` + HTTP Range), verified while streaming, renamed only when good.
//! Exit 0 all verified, 1 a verification failure, 2 an error (network dead after retries).
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use llama_manifests::discover::Expect;
use llama_manifests::download::{self, DlStatus, DownloadProgress, FileReport, Options, Target};
use llama_manifests::tally::{DownloadKind, Tally};
use serde_json::json;

use crate::{EXIT_ERROR, EXIT_FAIL};

/// Arguments of `llama-tool download`.
#[derive(clap::Args)]
pub struct Args {
    /// A magnet link or a .torrent file to download over BitTorrent (docs/TORRENT.md).
    #[arg(value_name = "MAGNET|FILE.torrent", conflicts_with_all = ["url", "manifest"])]
    pub source: Option<String>,
    /// Signed URL template of a release: `*` is replaced by each file's path.
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "manifest")]
    pub url: Option<String>,
    /// Model sizes of the release to fetch (with --url, or from a torrent with the LLaMA
    /// layout: only those folders plus the tokenizer files and checklists).
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<String>,
    /// A manifest (URL or file) listing the files to fetch.
    #[arg(long, value_name = "URL|FILE")]
    pub manifest: Option<String>,
    /// Where the manifest's files are (`*` is replaced by the path, else the path is
    /// appended); default: the manifest URL's folder.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Target folder (files already there and verified are kept; partial ones resumed).
    #[arg(short = 'o', long = "output", aliases = ["dir", "out"], value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Files fetched at once.
    #[arg(
        short = 'j',
        long = "jobs",
        alias = "threads",
        value_name = "N",
        default_value_t = 4
    )]
    pub jobs: usize,
    /// Print one JSON summary; no bars.
    #[arg(long)]
    pub json: bool,
    /// Retries per file after the first try.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// First wait between tries (doubles each time), milliseconds.
    #[arg(long, default_value_t = 500)]
    pub retry_delay_ms: u64,
    /// Connect and read timeout, seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// BitTorrent options.
    #[command(flatten)]
    pub bt: super::download_torrent::BtArgs,
    /// A model signature (URL or file; OpenSSF model signing) listing the files to fetch,
    /// each checked against its signed digest while streaming; needs --public-key.
    #[arg(long, value_name = "URL|FILE", conflicts_with_all = ["url", "manifest"])]
    pub signature: Option<String>,
    /// The signer's PEM EC public key, for --signature.
    #[arg(long, value_name = "PUB.pem", requires = "signature")]
    pub public_key: Option<PathBuf>,
    /// Largest file accepted when no manifest or release gives its size (e.g. 64GiB, the
    /// default; files of known size are held to that size).
    #[arg(long, value_name = "SIZE", default_value = "64GiB")]
    pub max_size: String,
    /// Give up on the whole download after this many seconds (default: no deadline; the
    /// --timeout is per connection and read).
    #[arg(long, value_name = "SECONDS")]
    pub deadline: Option<u64>,
    /// Follow redirects from https:// to http:// (refused by default).
    #[arg(long)]
    pub allow_insecure_redirect: bool,
}

/// Bars per file and in total, on a terminal only.
struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    files: Mutex<HashMap<String, ProgressBar>>,
    json: bool,
}

impl Bars {
    fn new(quiet: bool) -> Bars {
        let visible = crate::term::show_progress(quiet);
        let multi = MultiProgress::with_draw_target(if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let total = multi.add(ProgressBar::new(0));
        total.set_style(style(
            "{msg:24} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        ));
        total.set_message("total");
        Bars {
            multi,
            total,
            files: Mutex::new(HashMap::new()),
            json: quiet,
        }
    }

    fn say(&self, line: String) {
        if self.json || crate::term::quiet() {
            return;
        }
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }
}

fn style(t: &str) -> ProgressStyle {
    ProgressStyle::with_template(t)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl DownloadProgress for Bars {
    fn start(&self, rel: &str, total: Option<u64>, have: u64) {
        let bar = self.multi.add(ProgressBar::new(total.unwrap_or(0)));
        bar.set_style(style(
            "{msg:24} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
        ));
        bar.set_message(rel.to_string());
        bar.set_position(0);
        if let Some(t) = total {
            self.total.inc_length(t);
        }
        let _ = have;
        if let Ok(mut m) = self.files.lock() {
            m.insert(rel.to_string(), bar);
        }
    }
    fn total(&self, rel: &str, total: u64) {
        if let Ok(m) = self.files.lock() {
            if let Some(b) = m.get(rel) {
                if b.length() == Some(0) {
                    b.set_length(total);
                    self.total.inc_length(total);
                }
            }
        }
    }
    fn bytes(&self, rel: &str, n: u64) {
        self.total.inc(n);
        if let Ok(m) = self.files.lock() {
            if let Some(b) = m.get(rel) {
                b.inc(n);
            }
        }
    }
    fn restart(&self, rel: &str, why: &str) {
        self.say(format!("{rel}: {why}"));
        if let Ok(m) = self.files.lock() {
            if let Some(b) = m.get(rel) {
                b.set_position(0);
            }
        }
    }
    fn retry(&self, rel: &str, attempt: u32, error: &str, wait: Duration) {
        self.say(format!(
            "{rel}: {error}; retry {attempt} in {:.1} s",
            wait.as_secs_f64()
        ));
    }
    fn finish(&self, r: &FileReport) {
        if let Ok(mut m) = self.files.lock() {
            if let Some(b) = m.remove(&r.rel) {
                b.finish_and_clear();
                self.multi.remove(&b);
            }
        }
        self.say(report_line(r));
    }
}

fn report_line(r: &FileReport) -> String {
    let note = if r.unverified {
        " (no digest to check)"
    } else {
        ""
    };
    match &r.status {
        DlStatus::Downloaded if r.resumed_from > 0 => {
            format!(
                "OK        {} ({} bytes, resumed at {}){note}",
                r.rel, r.size, r.resumed_from
            )
        }
        DlStatus::Downloaded => format!("OK        {} ({} bytes){note}", r.rel, r.size),
        DlStatus::Skipped => format!("SKIPPED   {} (already present and verified)", r.rel),
        DlStatus::Mismatch {
            what,
            expected,
            actual,
        } => {
            format!(
                "MISMATCH  {}: {what} expected {expected}, actual {actual} (not kept)",
                r.rel
            )
        }
        DlStatus::Failed(e) => format!("FAILED    {}: {e}", r.rel),
    }
}

fn plain_target(url: String, rel: String) -> Target {
    Target {
        rel,
        url,
        size: None,
        expect: Vec::new(),
        chunks: None,
    }
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(source) = &args.source {
        return super::download_torrent::run(&args, source);
    }
    if !args.models.is_empty() && args.url.is_none() {
        bail!("--models needs --url or a torrent source");
    }
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let opts = Options {
        jobs: args.jobs,
        retries: args.retries,
        retry_delay: Duration::from_millis(args.retry_delay_ms),
        timeout: Duration::from_secs(args.timeout.max(1)),
        max_size: super::convert::parse_size(&args.max_size)?,
        deadline: args
            .deadline
            .map(|s| Instant::now() + Duration::from_secs(s)),
        allow_insecure_redirect: args.allow_insecure_redirect,
    };
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("{}: cannot create", args.dir.display()))?;
    let client = download::client(&opts)?;
    let bars = Bars::new(args.json);
    let start = Instant::now();
    let mut reports = Vec::new();
    let targets: Vec<Target> = if let Some(template) = &args.url {
        if args.models.is_empty() {
            bail!("--url needs --models (e.g. --models 7B,13B)");
        }
        if !download::is_url(template) {
            bail!("--url must be an http:// or https:// URL");
        }
        let files = download::release_files(&args.models)?;
        let chk: Vec<Target> = download::release_checklists(&args.models)
            .into_iter()
            .map(|rel| Ok(plain_target(download::fill_template(template, &rel)?, rel)))
            .collect::<Result<_, download::DownloadError>>()?;
        let got = download::download_all(&client, &chk, &args.dir, &opts, &bars)?;
        let failed: Vec<&FileReport> = got
            .iter()
            .filter(|r| !matches!(r.status, DlStatus::Downloaded | DlStatus::Skipped))
            .collect();
        if let Some(r) = failed.first() {
            bail!(
                "checklist {} could not be fetched: {}",
                r.rel,
                report_line(r).trim_start_matches("FAILED").trim()
            );
        }
        reports.extend(got);
        let mut expects: Vec<(String, Expect)> = Vec::new();
        for c in download::release_checklists(&args.models) {
            expects.extend(download::checklist_expects(&args.dir, &c)?);
        }
        files
            .into_iter()
            .map(|rel| {
                let mut t = plain_target(download::fill_template(template, &rel)?, rel);
                t.expect = expects
                    .iter()
                    .filter(|(r, _)| *r == t.rel)
                    .map(|(_, e)| e.clone())
                    .collect();
                Ok(t)
            })
            .collect::<Result<_, download::DownloadError>>()?
    } else if let Some(m) = &args.manifest {
        let l = download::listing(m, "manifest", |u| download::fetch_small(&client, u, &opts))?;
        let Some(base) = args.base_url.clone().or(l.base) else {
            bail!("--manifest FILE needs --base-url URL");
        };
        let targets = download::manifest_targets(&l.text, &l.name, &base, &args.dir)?;
        keep_listing(&args.dir, &l.name, &l.text)?;
        targets
    } else if let Some(sig) = &args.signature {
        match super::download_signature::targets(&args, sig, |u| {
            download::fetch_small(&client, u, &opts)
        })? {
            Some(t) => t,
            None => return Ok(ExitCode::from(EXIT_FAIL)),
        }
    } else {
        bail!("give --url TEMPLATE --models SIZES, or --manifest URL|FILE [--base-url URL]");
    };
    reports.extend(download::download_all(
        &client, &targets, &args.dir, &opts, &bars,
    )?);
    bars.total.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let tally = Tally::of(reports.iter().map(|r| r.status.kind()));
    let failed = tally.get(DownloadKind::Failed);
    let mismatched = tally.get(DownloadKind::Mismatch);
    let downloaded: u64 = reports.iter().map(|r| r.downloaded).sum();
    if args.json {
        let files: Vec<_> = reports
            .iter()
            .map(|r| {
                let mut v = json!({
                    "path": r.rel, "url": r.url, "status": r.status.word(), "size": r.size,
                    "downloaded": r.downloaded, "resumed_from": r.resumed_from, "seconds": r.seconds,
                    "verified": !r.unverified,
                    "digests": r.digests.iter().map(|(a, h)| (a.name().to_string(), json!(h))).collect::<serde_json::Map<_, _>>(),
                });
                match &r.status {
                    DlStatus::Mismatch { what, expected, actual } => {
                        v["digest"] = json!(what);
                        v["expected"] = json!(expected);
                        v["actual"] = json!(actual);
                    }
                    DlStatus::Failed(e) => v["error"] = json!(e),
                    _ => {}
                }
                v
            })
            .collect();
        let doc = json!({
            "ok": failed + mismatched == 0,
            "files": files,
            "summary": {
                "files": reports.len(), "ok": tally.get(DownloadKind::Downloaded), "skipped": tally.get(DownloadKind::Skipped),
                "mismatch": mismatched, "failed": failed, "downloaded_bytes": downloaded,
                "seconds": seconds, "dir": args.dir.display().to_string(),
            }
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!(
            "{}: {} files ({} downloaded, {} already present), {:.2} GB received in {seconds:.1} s{}{}",
            if failed + mismatched == 0 { "done" } else { "FAILED" },
            reports.len(),
            tally.get(DownloadKind::Downloaded),
            tally.get(DownloadKind::Skipped),
            downloaded as f64 / 1e9,
            if mismatched > 0 { format!(", {mismatched} MISMATCH") } else { String::new() },
            if failed > 0 { format!(", {failed} FAILED") } else { String::new() },
        );
    }
    Ok(ExitCode::from(if failed > 0 {
        EXIT_ERROR
    } else if mismatched > 0 {
        EXIT_FAIL
    } else {
        0
    }))
}

/// Keep a manifest or signature beside the downloaded files (written atomically, and only
/// when it differs), so `llama-tool verify DIR` works later.
pub(crate) fn keep_listing(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    let keep = download::final_path(dir, name)?;
    if std::fs::read_to_string(&keep).ok().as_deref() != Some(text) {
        let mut f = llama_formats::atomic::AtomicFile::create(&keep)
            .with_context(|| keep.display().to_string())?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        f.commit().with_context(|| keep.display().to_string())?;
    }
    Ok(())
}
