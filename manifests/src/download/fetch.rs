//! One file's transfer: existing file check, `.part` re-hash (truncated at the first bad chunk
//! when chunk digests are known), Range request, streaming write + hash, retries, and the
//! rename to the final name only once size and digests match.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::StatusCode;

use super::{DlStatus, DownloadError, DownloadProgress, FetchProblem, FileReport, Options, Target};
use crate::digest::{self, Algo, MultiHasher};
use crate::discover::Job;
use crate::verify::{self, ChunkHasher, NoProgress};

/// Largest body [`fetch_small`] accepts.
const SMALL_MAX: u64 = 64 << 20;
const NET_BUF: usize = 1 << 20;

/// A URL without its query (signed URLs carry secrets there).
pub fn redact(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?..."),
        None => url.to_string(),
    }
}

/// Why one try failed.
enum TryError {
    /// Worth another try (transport error, timeout, 5xx, short body).
    Retry(String),
    /// The partial file is unusable: start over from byte 0, then retry.
    Restart(String),
    /// Give up now (4xx, local I/O).
    Fatal(String),
}

/// What the streamed bytes hash to so far; mirrors the `.part` on disk.
struct State {
    have: u64,
    whole: MultiHasher,
    chunks: Option<ChunkHasher>,
}

impl State {
    fn new(algos: &[Algo], t: &Target) -> State {
        State {
            have: 0,
            whole: MultiHasher::new(algos),
            chunks: t.chunks.as_ref().map(|c| ChunkHasher::new(c.algo, c.size)),
        }
    }

    /// Feed bytes; Err names the first chunk whose digest is wrong.
    fn feed(&mut self, t: &Target, data: &[u8]) -> Result<(), String> {
        self.whole.update(data).map_err(|e| e.to_string())?;
        self.have += data.len() as u64;
        if let (Some(ch), Some(spec)) = (&mut self.chunks, &t.chunks) {
            let before = ch.completed().len();
            ch.update(data).map_err(|e| e.to_string())?;
            for (k, got) in ch.completed().iter().enumerate().skip(before) {
                if spec.digests.get(k) != Some(got) {
                    return Err(format!("chunk {k}"));
                }
            }
        }
        Ok(())
    }
}

fn algos_of(t: &Target) -> Vec<Algo> {
    let mut a: Vec<Algo> = t.expect.iter().map(|e| e.algo).collect();
    a.sort();
    a.dedup();
    a
}

/// Re-hash an existing `.part` into a fresh state, truncating it at the first chunk whose
/// digest is wrong (or at the expected size when it is longer).
fn load_part(part: &Path, t: &Target, progress: &dyn DownloadProgress) -> Result<State, TryError> {
    let algos = algos_of(t);
    let mut st = State::new(&algos, t);
    let mut f = match open_part(part, OpenOptions::new().read(true)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(st),
        Err(e) => return Err(TryError::Fatal(format!("{}: {e}", part.display()))),
    };
    let len = f
        .metadata()
        .map_err(|e| TryError::Fatal(format!("{}: {e}", part.display())))?
        .len();
    if t.size.is_some_and(|s| len > s) {
        drop(f);
        truncate(part, 0)?;
        progress.restart(&t.rel, "partial file longer than the expected size");
        return Ok(st);
    }
    let mut buf = vec![0u8; digest::READ_BUF];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(TryError::Fatal(format!("{}: {e}", part.display()))),
        };
        // Feed chunk-aligned pieces so a bad chunk is found at its boundary.
        if let Err(bad) = st.feed(t, &buf[..n]) {
            let chunk = t.chunks.as_ref().map(|c| c.size).unwrap_or(0);
            let k: u64 = bad.trim_start_matches("chunk ").parse().unwrap_or(0);
            let keep = k.saturating_mul(chunk);
            drop(f);
            truncate(part, keep)?;
            progress.restart(
                &t.rel,
                &format!("{bad} of the partial file is wrong; keeping {keep} bytes"),
            );
            // Re-hash the good prefix.
            return load_part(part, t, progress);
        }
        progress.bytes(&t.rel, n as u64);
    }
    Ok(st)
}

/// Open a `.part` file without following a symlink at its name (`O_NOFOLLOW`) and refuse
/// anything but a regular file, checked on the opened handle: a link planted at the
/// predictable resume name must never receive the server's bytes.
fn open_part(part: &Path, opts: &mut OpenOptions) -> std::io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let f = opts.open(part).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            std::io::Error::other("is a symbolic link; refusing to write through it")
        } else {
            e
        }
    })?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other(
            "is not a regular file; refusing to use it as a partial download",
        ));
    }
    Ok(f)
}

fn truncate(part: &Path, len: u64) -> Result<(), TryError> {
    let f = open_part(part, OpenOptions::new().write(true))
        .map_err(|e| TryError::Fatal(format!("{}: {e}", part.display())))?;
    f.set_len(len)
        .map_err(|e| TryError::Fatal(format!("{}: {e}", part.display())))
}

/// Parse `bytes START-END/TOTAL`.
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let total = if total == "*" {
        None
    } else {
        Some(total.parse().ok()?)
    };
    Some((a.parse().ok()?, b.parse().ok()?, total))
}

/// One request: stream the rest of the body into `part` and `st`.
fn try_once(
    client: &reqwest::blocking::Client,
    t: &Target,
    part: &Path,
    st: &mut State,
    downloaded: &mut u64,
    opts: &Options,
    progress: &dyn DownloadProgress,
) -> Result<(), TryError> {
    let url = redact(&t.url);
    // Bytes this file may have: its known size, else --max-size.
    let cap = t.size.unwrap_or(opts.max_size);
    let over_cap = |n: u64| {
        TryError::Fatal(format!(
            "{url}: server sends more than the {cap}-byte cap for a file of unknown size \
             (at least {n} bytes; raise it with --max-size)"
        ))
    };
    if t.size == Some(st.have) && st.have > 0 {
        return Ok(()); // The part is complete already.
    }
    let mut req = client.get(&t.url);
    if st.have > 0 {
        req = req.header(RANGE, format!("bytes={}-", st.have));
    }
    let mut resp = req
        .send()
        .map_err(|e| TryError::Retry(format!("{url}: {}", error_chain(&e))))?;
    let status = resp.status();
    match status {
        StatusCode::PARTIAL_CONTENT if st.have > 0 => {
            let cr = resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_content_range);
            match cr {
                Some((start, _, total))
                    if start == st.have
                        && (t.size.is_none() || total.is_none() || total == t.size) => {}
                _ => {
                    return Err(TryError::Restart(format!(
                        "{url}: 206 answer for the wrong range; restarting the file"
                    )))
                }
            }
        }
        StatusCode::OK => {
            if st.have > 0 {
                progress.restart(&t.rel, "server ignored the Range request; restarting");
                truncate(part, 0)?;
                *st = State::new(&algos_of(t), t);
            }
        }
        StatusCode::RANGE_NOT_SATISFIABLE if st.have > 0 => {
            // `bytes */N` with N == what we have: the part is complete (killed before rename).
            let total = resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.trim()
                        .strip_prefix("bytes */")
                        .and_then(|n| n.parse::<u64>().ok())
                });
            if total == Some(st.have) {
                return Ok(());
            }
            return Err(TryError::Restart(format!(
                "{url}: 416 for bytes={}-; restarting the file",
                st.have
            )));
        }
        s if s.is_server_error()
            || s == StatusCode::TOO_MANY_REQUESTS
            || s == StatusCode::REQUEST_TIMEOUT =>
        {
            return Err(TryError::Retry(format!("{url}: HTTP {s}")));
        }
        s if s.is_redirection() => {
            let loc = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            return Err(TryError::Fatal(format!(
                "{url}: HTTP {s} to {} not followed (only http:// and https:// redirects are)",
                redact(loc)
            )));
        }
        s => return Err(TryError::Fatal(format!("{url}: HTTP {s}"))),
    }
    let declared_end = resp.content_length().map(|n| st.have.saturating_add(n));
    if let Some(end) = declared_end {
        progress.total(&t.rel, end);
    }
    if let (Some(end), Some(size)) = (declared_end, t.size) {
        if end > size {
            return Err(TryError::Restart(format!(
                "{url}: server offers {end} bytes, manifest says {size}"
            )));
        }
    }
    if let Some(end) = declared_end.filter(|&e| t.size.is_none() && e > cap) {
        return Err(over_cap(end));
    }
    let mut out = open_part(
        part,
        OpenOptions::new().create(true).truncate(false).write(true),
    )
    .map_err(|e| TryError::Fatal(format!("{}: {e}", part.display())))?;
    out.set_len(st.have)
        .and_then(|_| out.seek(SeekFrom::Start(st.have)))
        .map_err(|e| TryError::Fatal(format!("{}: {e}", part.display())))?;
    let mut buf = vec![0u8; NET_BUF];
    loop {
        let n = match resp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(TryError::Retry(format!(
                    "{url}: connection lost after {} bytes: {e}",
                    st.have
                )))
            }
        };
        let data = &buf[..n];
        if let Some(msg) = past_deadline(opts) {
            return Err(TryError::Fatal(format!("{url}: {msg}")));
        }
        if t.size.is_none() && st.have + n as u64 > cap {
            drop(out);
            let _ = std::fs::remove_file(part);
            return Err(over_cap(st.have + n as u64));
        }
        if t.size.is_some_and(|s| st.have + n as u64 > s) {
            return Err(TryError::Restart(format!(
                "{url}: more bytes than the expected {}",
                t.size.unwrap_or(0)
            )));
        }
        out.write_all(data)
            .map_err(|e| TryError::Fatal(format!("{}: write failed: {e}", part.display())))?;
        *downloaded += n as u64;
        if let Err(bad) = st.feed(t, data) {
            // Drop the bad chunk and what follows; the retry resumes at its start.
            let chunk = t.chunks.as_ref().map(|c| c.size).unwrap_or(0);
            let k: u64 = bad.trim_start_matches("chunk ").parse().unwrap_or(0);
            drop(out);
            truncate(part, k.saturating_mul(chunk))?;
            return Err(TryError::Retry(format!(
                "{url}: {bad} has the wrong digest; refetching it"
            )));
        }
        progress.bytes(&t.rel, n as u64);
    }
    out.sync_all()
        .map_err(|e| TryError::Fatal(format!("{}: {e}", part.display())))?;
    if let Some(end) = declared_end {
        if st.have < end {
            return Err(TryError::Retry(format!(
                "{url}: body ended at {} of {end} bytes",
                st.have
            )));
        }
    }
    if t.size.is_some_and(|s| st.have < s) {
        return Err(TryError::Retry(format!(
            "{url}: body ended at {} of {} bytes",
            st.have,
            t.size.unwrap_or(0)
        )));
    }
    Ok(())
}

pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Check an already-present final file; true when it verifies (a file with no digest to
/// check counts when its size matches or is unknown).
fn present_and_good(path: &Path, t: &Target) -> bool {
    if !path.is_file() {
        return false;
    }
    let job = Job {
        path: path.to_path_buf(),
        name: t.rel.clone(),
        size: t.size,
        expect: t.expect.clone(),
        chunks: t.chunks.clone(),
    };
    verify::verify_job(&job, &NoProgress).status.is_ok()
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(crate::listing::PARTIAL_SUFFIX);
    dest.with_file_name(name)
}

/// Fetch one target into `dir`.
pub(super) fn fetch_file(
    client: &reqwest::blocking::Client,
    t: &Target,
    dir: &Path,
    opts: &Options,
    progress: &dyn DownloadProgress,
) -> FileReport {
    let start = Instant::now();
    let mut report = FileReport {
        rel: t.rel.clone(),
        url: redact(&t.url),
        status: DlStatus::Failed(String::new()),
        size: 0,
        downloaded: 0,
        resumed_from: 0,
        digests: Vec::new(),
        seconds: 0.0,
        unverified: t.expect.is_empty() && t.chunks.is_none(),
    };
    report.status = match fetch_inner(client, t, dir, opts, progress, &mut report) {
        Ok(s) => s,
        Err(e) => DlStatus::Failed(e),
    };
    report.seconds = start.elapsed().as_secs_f64();
    progress.finish(&report);
    report
}

fn fetch_inner(
    client: &reqwest::blocking::Client,
    t: &Target,
    dir: &Path,
    opts: &Options,
    progress: &dyn DownloadProgress,
    report: &mut FileReport,
) -> Result<DlStatus, String> {
    let dest = super::final_path(dir, &t.rel).map_err(|e| e.to_string())?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    if present_and_good(&dest, t) && !(report.unverified && t.size.is_none()) {
        report.size = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
        report.digests = t.expect.iter().map(|e| (e.algo, e.hex.clone())).collect();
        progress.start(&t.rel, Some(report.size), report.size);
        let _ = std::fs::remove_file(part_path(&dest)); // a stale part of a good file
        return Ok(DlStatus::Skipped);
    }
    let part = part_path(&dest);
    let mut st = load_part(&part, t, progress).map_err(fatal_text)?;
    report.resumed_from = st.have;
    progress.start(&t.rel, t.size, st.have);
    let mut attempt = 0u32;
    loop {
        if let Some(msg) = past_deadline(opts) {
            return Err(msg);
        }
        match try_once(
            client,
            t,
            &part,
            &mut st,
            &mut report.downloaded,
            opts,
            progress,
        ) {
            Ok(()) => {}
            Err(TryError::Fatal(e)) => return Err(e),
            Err(err @ (TryError::Retry(_) | TryError::Restart(_))) => {
                let (msg, restart) = match err {
                    TryError::Retry(m) => (m, false),
                    TryError::Restart(m) => (m, true),
                    TryError::Fatal(_) => unreachable!(),
                };
                if restart {
                    progress.restart(&t.rel, &msg);
                    truncate_or_remove(&part)?;
                }
                if attempt >= opts.retries {
                    return Err(format!("{msg} (gave up after {} tries)", attempt + 1));
                }
                attempt += 1;
                let wait = backoff(opts.retry_delay, attempt);
                progress.retry(&t.rel, attempt, &msg, wait);
                std::thread::sleep(wait);
                // The part on disk is the truth: re-hash it (cheap next to the transfer,
                // and it catches a truncation after a bad chunk).
                st = load_part(&part, t, progress).map_err(fatal_text)?;
                continue;
            }
        }
        // Complete body: check size and digests before the rename.
        let have = st.have;
        let whole = std::mem::replace(&mut st.whole, MultiHasher::new(&[]));
        let chunks_ok = match (st.chunks.take(), &t.chunks) {
            (Some(ch), Some(spec)) => ch.finish().map(|d| d == spec.digests).unwrap_or(false),
            _ => true,
        };
        let digests = whole.finish().map_err(|e| e.to_string())?;
        let mismatch = t.expect.iter().find_map(|e| {
            let actual = digests
                .iter()
                .find(|(a, _)| *a == e.algo)
                .map(|(_, h)| h.clone())
                .unwrap_or_default();
            (actual != e.hex).then(|| DlStatus::Mismatch {
                what: e.algo.name().into(),
                expected: e.hex.clone(),
                actual,
            })
        });
        let status = if let Some(size) = t.size.filter(|s| *s != have) {
            Some(DlStatus::Mismatch {
                what: "size".into(),
                expected: size.to_string(),
                actual: have.to_string(),
            })
        } else if !chunks_ok {
            Some(DlStatus::Mismatch {
                what: "chunk digests".into(),
                expected: "manifest".into(),
                actual: "differ".into(),
            })
        } else {
            mismatch
        };
        if let Some(bad) = status {
            // Never keep bytes that failed: the next run starts clean.
            let _ = std::fs::remove_file(&part);
            if attempt >= opts.retries.min(1) {
                return Ok(bad);
            }
            attempt += 1;
            progress.restart(
                &t.rel,
                "digest mismatch after download; fetching again from byte 0",
            );
            st = State::new(&algos_of(t), t);
            continue;
        }
        std::fs::rename(&part, &dest)
            .map_err(|e| format!("{}: rename to {}: {e}", part.display(), dest.display()))?;
        if let Some(parent) = dest.parent() {
            if let Ok(d) = File::open(parent) {
                let _ = d.sync_all();
            }
        }
        report.size = have;
        report.digests = digests;
        return Ok(DlStatus::Downloaded);
    }
}

/// The message when `--deadline` has passed.
fn past_deadline(opts: &Options) -> Option<String> {
    opts.deadline
        .filter(|d| Instant::now() >= *d)
        .map(|_| "the --deadline for the whole download passed; stopped".to_string())
}

fn fatal_text(e: TryError) -> String {
    match e {
        TryError::Retry(m) | TryError::Restart(m) | TryError::Fatal(m) => m,
    }
}

fn truncate_or_remove(part: &Path) -> Result<(), String> {
    match std::fs::remove_file(part) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", part.display())),
    }
}

fn backoff(first: Duration, attempt: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1).min(16))
        .unwrap_or(u32::MAX);
    first.saturating_mul(factor).min(Duration::from_secs(30))
}

/// GET a small document (a manifest) into memory, with retries.
pub fn fetch_small(
    client: &reqwest::blocking::Client,
    url: &str,
    opts: &Options,
) -> Result<String, DownloadError> {
    let shown = redact(url);
    let mut attempt = 0;
    loop {
        let res = client
            .get(url)
            .send()
            .map_err(|error| FetchProblem::Request { error })
            .and_then(|resp| {
                let status = resp.status();
                if !status.is_success() {
                    return Err(FetchProblem::Status { status });
                }
                let mut body = Vec::new();
                resp.take(SMALL_MAX + 1)
                    .read_to_end(&mut body)
                    .map_err(|error| FetchProblem::Read { error })?;
                if body.len() as u64 > SMALL_MAX {
                    return Err(FetchProblem::TooLarge { limit: SMALL_MAX });
                }
                String::from_utf8(body).map_err(|_| FetchProblem::NotUtf8)
            });
        match res {
            Ok(t) => return Ok(t),
            Err(problem) if !problem.is_transient() || attempt >= opts.retries => {
                return Err(DownloadError::Http {
                    url: shown,
                    problem,
                    tries: attempt + 1,
                })
            }
            Err(_) => {
                attempt += 1;
                std::thread::sleep(backoff(opts.retry_delay, attempt));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_and_redaction() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, 199, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 0-9/*"), Some((0, 9, None)));
        assert_eq!(parse_content_range("items 0-9/10"), None);
        assert_eq!(redact("https://h/a?Signature=secret"), "https://h/a?...");
        assert_eq!(
            backoff(Duration::from_millis(100), 1),
            Duration::from_millis(100)
        );
        assert_eq!(
            backoff(Duration::from_millis(100), 3),
            Duration::from_millis(400)
        );
    }
}
