//! Resumable, verified download of a LLaMA release (Meta's signed-URL scheme, as its
//! `download.sh` on the `llama_v1` branch of facebookresearch/llama) or of every file a
//! manifest lists.
//!
//! Each file streams into `NAME.part` while being hashed; an interrupted transfer resumes
//! with an HTTP Range request ([RFC 9110 §14](https://www.rfc-editor.org/rfc/rfc9110#name-range-requests))
//! after re-hashing the part on disk; the file is renamed to its final name only after its
//! size and every digest match. Transport errors, timeouts and 5xx answers are retried with
//! backoff. Progress goes to a [`DownloadProgress`] the caller implements.

mod fetch;
mod sources;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rayon::prelude::*;

use crate::checksums;
use crate::digest::Algo;
use crate::discover::{self, Chunks, Expect, PlanError};
use crate::json::Manifest;

pub use fetch::{fetch_small, redact};
pub use sources::{checklist_expects, is_url, listing, Listing};

/// Shards per model size in Meta's release.
pub(crate) fn release_shards(model: &str) -> Option<usize> {
    match model {
        "7B" => Some(1),
        "13B" => Some(2),
        "30B" => Some(4),
        "65B" => Some(8),
        _ => None,
    }
}

/// One file to fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Path relative to the download folder (`/`-separated).
    pub rel: String,
    /// Where to get it.
    pub url: String,
    /// Expected size, when known.
    pub size: Option<u64>,
    /// Digests it must have.
    pub expect: Vec<Expect>,
    /// Chunk digests, when a JSON manifest gives them.
    pub chunks: Option<Chunks>,
}

/// Download settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// Files at once.
    pub jobs: usize,
    /// Retries after the first try of a file.
    pub retries: u32,
    /// First backoff wait; doubles each retry, capped at 30 s.
    pub retry_delay: Duration,
    /// Connect timeout and idle timeout for each read.
    pub timeout: Duration,
    /// Most bytes accepted for a file whose size no manifest or release gives (a file of
    /// known size is held to that size).
    pub max_size: u64,
    /// When the whole download must be over (no retry starts and no transfer continues
    /// after it); `None`: no deadline.
    pub deadline: Option<std::time::Instant>,
    /// Follow a redirect from https:// to http:// (refused by default: it drops TLS).
    pub allow_insecure_redirect: bool,
}

/// Default per-file cap for files of unknown size: 64 GiB (Meta's largest shard is 16.3 GB).
pub(crate) const DEFAULT_MAX_SIZE: u64 = 64 << 30;

impl Default for Options {
    fn default() -> Options {
        Options {
            jobs: 4,
            retries: 5,
            retry_delay: Duration::from_millis(500),
            timeout: Duration::from_secs(60),
            max_size: DEFAULT_MAX_SIZE,
            deadline: None,
            allow_insecure_redirect: false,
        }
    }
}

/// Errors of planning or running a download.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// A bad `--url` template.
    #[error("URL template must contain `*` (replaced by each file's path): {0}")]
    Template(String),
    /// An unknown model size.
    #[error("unknown model size {0:?} (7B, 13B, 30B, 65B)")]
    Model(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {error}")]
    Client {
        /// reqwest's error.
        error: reqwest::Error,
    },
    /// The download threads could not start.
    #[error("cannot start the download threads: {error}")]
    Threads {
        /// rayon's error.
        error: rayon::ThreadPoolBuildError,
    },
    /// A request failed for good.
    #[error("{url}: {problem} (after {tries} tries)")]
    Http {
        /// URL (query redacted).
        url: String,
        /// What happened on the last try.
        problem: FetchProblem,
        /// How many requests were made.
        tries: u32,
    },
    /// Local file trouble.
    #[error("{path}: {error}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A manifest was unusable.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A URL could not be formed.
    #[error("{0}: not an http:// or https:// URL")]
    Url(String),
}

/// Why one GET of a small document failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchProblem {
    /// The request could not be made (connection, TLS, redirect loop).
    #[error("{}", fetch::error_chain(.error))]
    Request {
        /// reqwest's error (shown with its causes).
        error: reqwest::Error,
    },
    /// The server answered with a status other than success.
    #[error("HTTP {status}")]
    Status {
        /// The status.
        status: reqwest::StatusCode,
    },
    /// The body could not be read.
    #[error("{error}")]
    Read {
        /// The I/O error.
        error: std::io::Error,
    },
    /// The body is larger than a manifest can be.
    #[error("larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The body is not UTF-8 text.
    #[error("not UTF-8 text")]
    NotUtf8,
}

impl FetchProblem {
    /// Worth another try: a network failure, a 5xx or 429.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchProblem::Request { .. } | FetchProblem::Read { .. } => true,
            FetchProblem::Status { status } => {
                status.is_server_error() || *status == reqwest::StatusCode::TOO_MANY_REQUESTS
            }
            FetchProblem::TooLarge { .. } | FetchProblem::NotUtf8 => false,
        }
    }
}

/// How one file ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DlStatus {
    /// Fetched (perhaps resumed) and verified.
    Downloaded,
    /// Already present and verified; not fetched.
    Skipped,
    /// Fetched but a digest or the size is wrong (nothing under the final name).
    Mismatch {
        /// What differs.
        what: String,
        /// Expected.
        expected: String,
        /// Actual.
        actual: String,
    },
    /// Could not be fetched (after retries).
    Failed(String),
}

impl DlStatus {
    /// OK, SKIPPED, MISMATCH, FAILED.
    pub fn word(&self) -> &'static str {
        match self {
            DlStatus::Downloaded => "OK",
            DlStatus::Skipped => "SKIPPED",
            DlStatus::Mismatch { .. } => "MISMATCH",
            DlStatus::Failed(_) => "FAILED",
        }
    }
}

/// The report of one file.
#[derive(Clone, Debug, PartialEq)]
pub struct FileReport {
    /// Relative path.
    pub rel: String,
    /// URL, query redacted.
    pub url: String,
    /// Outcome.
    pub status: DlStatus,
    /// Final size on disk (0 unless OK or SKIPPED).
    pub size: u64,
    /// Bytes received over the network.
    pub downloaded: u64,
    /// Bytes taken from an existing `.part`.
    pub resumed_from: u64,
    /// Digests verified (algo, hex).
    pub digests: Vec<(Algo, String)>,
    /// Seconds spent.
    pub seconds: f64,
    /// True when no digest was known to check.
    pub unverified: bool,
}

/// Receives progress; every method has an empty default. Called from worker threads.
pub trait DownloadProgress: Sync {
    /// A file starts: its total size if known, and how much a `.part` already holds.
    fn start(&self, _rel: &str, _total: Option<u64>, _have: u64) {}
    /// The server told the full size of `rel`.
    fn total(&self, _rel: &str, _total: u64) {}
    /// More bytes of `rel` were hashed (from disk or network).
    fn bytes(&self, _rel: &str, _n: u64) {}
    /// The partial file was discarded (server ignored Range, bad chunk, mismatch).
    fn restart(&self, _rel: &str, _why: &str) {}
    /// A try failed; waiting `_wait` before the next one.
    fn retry(&self, _rel: &str, _attempt: u32, _error: &str, _wait: Duration) {}
    /// A file finished.
    fn finish(&self, _report: &FileReport) {}
}

/// A progress sink that ignores everything.
pub struct NoDownloadProgress;
impl DownloadProgress for NoDownloadProgress {}

/// Replace the `*` of a signed-URL template by `rel`.
pub fn fill_template(template: &str, rel: &str) -> Result<String, DownloadError> {
    if !template.contains('*') {
        return Err(DownloadError::Template(redact(template)));
    }
    Ok(template.replacen('*', &encode_path(rel), 1))
}

/// Percent-encode a relative path for a URL (keeping `/`).
pub(crate) fn encode_path(rel: &str) -> String {
    let mut out = String::with_capacity(rel.len());
    for b in rel.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `base` + `rel`: `*` in `base` is replaced, else `rel` is appended after a `/`.
pub(crate) fn join_url(base: &str, rel: &str) -> Result<String, DownloadError> {
    if !is_url(base) {
        return Err(DownloadError::Url(redact(base)));
    }
    if base.contains('*') {
        return fill_template(base, rel);
    }
    let sep = if base.ends_with('/') { "" } else { "/" };
    Ok(format!("{base}{sep}{}", encode_path(rel)))
}

/// The checklists of a release: `tokenizer_checklist.chk` and `SIZE/checklist.chk`.
pub fn release_checklists(models: &[String]) -> Vec<String> {
    let mut v = vec!["tokenizer_checklist.chk".to_string()];
    v.extend(models.iter().map(|m| format!("{m}/checklist.chk")));
    v
}

/// Every other file of a release, in Meta's order.
pub fn release_files(models: &[String]) -> Result<Vec<String>, DownloadError> {
    let mut v = vec!["tokenizer.model".to_string()];
    for m in models {
        let n = release_shards(m).ok_or_else(|| DownloadError::Model(m.clone()))?;
        for i in 0..n {
            v.push(format!("{m}/consolidated.{i:02}.pth"));
        }
        v.push(format!("{m}/params.json"));
    }
    Ok(v)
}

/// Targets of the files a manifest lists. `manifest_name` decides the format (JSON when the
/// text starts with `{`); names are checked against `dir` (no escape).
pub fn manifest_targets(
    text: &str,
    manifest_name: &str,
    base_url: &str,
    dir: &Path,
) -> Result<Vec<Target>, DownloadError> {
    let file = Path::new(manifest_name);
    let mut out = Vec::new();
    if text.trim_start().starts_with('{') {
        let m = Manifest::parse(text, file).map_err(PlanError::from)?;
        let algo = m.chunk_algo().unwrap_or(Algo::Blake3);
        for (i, f) in m.files.iter().enumerate() {
            let location = format!("{manifest_name}: files[{i}]");
            discover::resolve(dir, &f.path, &location)?;
            out.push(Target {
                rel: f.path.clone(),
                url: join_url(base_url, &f.path)?,
                size: Some(f.size),
                expect: discover::entry_expect(f, &location),
                chunks: discover::entry_chunks(&m, f, algo),
            });
        }
    } else {
        let base_name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(manifest_name);
        let algo = checksums::list_kind(base_name).flatten();
        for e in checksums::parse(text, file, algo).map_err(PlanError::from)? {
            let location = format!("{manifest_name}:{}", e.line);
            discover::resolve(dir, &e.name, &location)?;
            out.push(Target {
                rel: e.name.clone(),
                url: join_url(base_url, &e.name)?,
                size: None,
                expect: vec![discover::line_expect(e, location)],
                chunks: None,
            });
        }
    }
    Ok(merge_targets(out))
}

/// One target per path (claims merged).
pub(crate) fn merge_targets(targets: Vec<Target>) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    for t in targets {
        if let Some(have) = out.iter_mut().find(|o| o.rel == t.rel) {
            for e in t.expect {
                if !have
                    .expect
                    .iter()
                    .any(|h| h.algo == e.algo && h.hex == e.hex)
                {
                    have.expect.push(e);
                }
            }
            have.size = have.size.or(t.size);
            if have.chunks.is_none() {
                have.chunks = t.chunks;
            }
        } else {
            out.push(t);
        }
    }
    out
}

/// Why a redirect from a URL of scheme `from` (None: the first request) to one of scheme
/// `to`, after `hops` redirects, is refused; `None` when it may be followed.
pub(crate) fn redirect_refusal(
    from: Option<&str>,
    to: &str,
    hops: usize,
    allow_insecure: bool,
) -> Option<String> {
    if to != "http" && to != "https" {
        Some(format!("refused redirect to a {to}: URL"))
    } else if from == Some("https") && to == "http" && !allow_insecure {
        Some(
            "refused redirect from https:// to http:// (pass --allow-insecure-redirect to follow it)"
                .into(),
        )
    } else if hops >= 10 {
        Some("more than 10 redirects".into())
    } else {
        None
    }
}

/// Build the HTTP client: rustls, redirects only to http/https (at most 10; never from
/// https to http unless allowed), timeouts.
pub fn client(opts: &Options) -> Result<reqwest::blocking::Client, DownloadError> {
    let insecure_ok = opts.allow_insecure_redirect;
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        let from = attempt.previous().last().map(|u| u.scheme().to_string());
        let why = redirect_refusal(
            from.as_deref(),
            attempt.url().scheme(),
            attempt.previous().len(),
            insecure_ok,
        );
        match why {
            Some(w) => attempt.error(w),
            None => attempt.follow(),
        }
    });
    reqwest::blocking::Client::builder()
        .redirect(policy)
        .connect_timeout(opts.timeout)
        .timeout(opts.timeout)
        .user_agent(concat!("llama-tool/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| DownloadError::Client { error })
}

/// Fetch every target into `dir` (`jobs` at once). Returns one report per target, in order.
pub fn download_all(
    client: &reqwest::blocking::Client,
    targets: &[Target],
    dir: &Path,
    opts: &Options,
    progress: &dyn DownloadProgress,
) -> Result<Vec<FileReport>, DownloadError> {
    std::fs::create_dir_all(dir).map_err(|source| DownloadError::Io {
        path: dir.display().to_string(),
        error: source,
    })?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .map_err(|error| DownloadError::Threads { error })?;
    Ok(pool.install(|| {
        targets
            .par_iter()
            .with_max_len(1)
            .map(|t| fetch::fetch_file(client, t, dir, opts, progress))
            .collect()
    }))
}

/// Final path of a target (checked against escape).
pub fn final_path(dir: &Path, rel: &str) -> Result<PathBuf, DownloadError> {
    Ok(discover::resolve(dir, rel, rel)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 10, finding 6: https -> http is refused unless asked for.
    #[test]
    fn https_to_http_redirects_are_refused_unless_allowed() {
        assert!(redirect_refusal(Some("https"), "http", 1, false)
            .is_some_and(|w| w.contains("--allow-insecure-redirect")));
        assert_eq!(redirect_refusal(Some("https"), "http", 1, true), None);
        assert_eq!(redirect_refusal(Some("http"), "https", 1, false), None);
        assert_eq!(redirect_refusal(Some("https"), "https", 1, false), None);
        assert!(redirect_refusal(Some("http"), "file", 1, true).is_some());
        assert!(redirect_refusal(Some("http"), "http", 10, false).is_some());
    }

    #[test]
    fn release_scheme_matches_download_sh() {
        let models = vec!["7B".to_string(), "13B".to_string()];
        assert_eq!(
            release_checklists(&models),
            [
                "tokenizer_checklist.chk",
                "7B/checklist.chk",
                "13B/checklist.chk"
            ]
        );
        assert_eq!(
            release_files(&models).unwrap(),
            [
                "tokenizer.model",
                "7B/consolidated.00.pth",
                "7B/params.json",
                "13B/consolidated.00.pth",
                "13B/consolidated.01.pth",
                "13B/params.json"
            ]
        );
        assert_eq!(
            fill_template("https://h/x/*?Policy=a*b", "7B/params.json").unwrap(),
            "https://h/x/7B/params.json?Policy=a*b"
        );
        assert!(release_files(&["8B".to_string()]).is_err());
        assert!(fill_template("https://h/x", "a").is_err());
        assert_eq!(
            join_url("http://h/base", "a b/c").unwrap(),
            "http://h/base/a%20b/c"
        );
        assert!(join_url("file:///etc", "a").is_err());
    }
}
