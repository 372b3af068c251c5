//! Finding manifests in a folder and turning them into a verification plan: which file, what
//! size, which digests, from which manifest line. Paths in a manifest are relative to the
//! manifest's folder and may not leave it: `..`, absolute paths and symlinks resolving outside
//! are refused (the ones hostile lists use; see docs/MANIFEST.md, "Paths").

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::checksums::{self, ParseError};
use crate::digest::Algo;
use crate::json::{FileEntry, JsonError, Manifest, MAX_MANIFEST_BYTES};

/// A digest a file must have, and where the claim came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Expect {
    /// Algorithm.
    pub algo: Algo,
    /// Lowercase hex.
    pub hex: String,
    /// `manifest:line` or the flag that gave it.
    pub source: String,
}

/// Chunk digests of a file (from a JSON manifest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunks {
    /// Chunk digest algorithm.
    pub algo: Algo,
    /// Chunk size in bytes.
    pub size: u64,
    /// Hex digest of each chunk.
    pub digests: Vec<String>,
}

/// One file to verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// Where it is on disk.
    pub path: PathBuf,
    /// How to name it in reports.
    pub name: String,
    /// Expected size, when a manifest gives one.
    pub size: Option<u64>,
    /// Whole-file digests it must have.
    pub expect: Vec<Expect>,
    /// Chunk digests it must have.
    pub chunks: Option<Chunks>,
}

/// Errors that make a manifest unusable (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A file or folder could not be read.
    #[error("{path}: {error}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A checksum list has a bad line.
    #[error(transparent)]
    List(#[from] ParseError),
    /// A JSON manifest is malformed.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// A manifest names a path outside its folder.
    #[error("{location}: path {name:?} escapes the manifest's folder (refused)")]
    PathEscape {
        /// `manifest:line`.
        location: String,
        /// The name as written.
        name: String,
    },
    /// A manifest is larger than any real one.
    #[error("{path}: {size} bytes is too large for a manifest (limit {MAX_MANIFEST_BYTES})")]
    TooLarge {
        /// The manifest.
        path: String,
        /// Its size.
        size: u64,
    },
    /// A `.torrent` among the manifests is unusable.
    #[error(transparent)]
    Torrent(#[from] crate::torrent::TorrentError),
    /// A folder holds no manifest.
    #[error("{0}: no manifest found (checklist.chk, *.chk, SHA256SUMS, *.sha256, *.md5, *.b3sum, *.manifest.json, *.torrent)")]
    NoManifest(String),
    /// No manifest lists a file.
    #[error("{0}: no manifest in its folder or above lists it; give --sha256 HEX or --md5 HEX")]
    NotListed(String),
}

/// What kind of manifest a file name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestKind {
    /// A checksum list; the algorithm when the name implies one.
    List(Option<Algo>),
    /// A llama-tool JSON manifest.
    Json,
}

/// The manifest kind of a file name, or None.
pub fn manifest_kind(file_name: &str) -> Option<ManifestKind> {
    let lower = file_name.to_ascii_lowercase();
    if lower == "manifest.json"
        || lower.ends_with(".manifest.json")
        || lower == "llama-manifest.json"
    {
        return Some(ManifestKind::Json);
    }
    checksums::list_kind(file_name).map(ManifestKind::List)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PlanError + '_ {
    move |source| PlanError::Io {
        path: path.display().to_string(),
        error: source,
    }
}

/// Every regular file under `root` (symlinks to files included, symlinked folders not
/// followed), sorted.
pub fn walk_files(root: &Path) -> Result<Vec<PathBuf>, PlanError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let ft = entry.file_type().map_err(io_err(&dir))?;
            let p = entry.path();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() || ft.is_symlink() {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The manifests under `root`, recursively.
pub fn find_manifests(root: &Path) -> Result<Vec<PathBuf>, PlanError> {
    Ok(walk_files(root)?
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| manifest_kind(n).is_some())
        })
        .collect())
}

/// Join `name` (from a manifest in `base`) safely: no absolute path, no `..`, no symlink
/// leading outside `base`.
pub fn resolve(base: &Path, name: &str, location: &str) -> Result<PathBuf, PlanError> {
    let base_canon = fs::canonicalize(base).map_err(io_err(base))?;
    resolve_in(base, &base_canon, name, location)
}

/// [`resolve`] with `base` already canonicalized (once per manifest, not once per line).
fn resolve_in(
    base: &Path,
    base_canon: &Path,
    name: &str,
    location: &str,
) -> Result<PathBuf, PlanError> {
    let escape = || PlanError::PathEscape {
        location: location.to_string(),
        name: name.to_string(),
    };
    let rel = Path::new(name);
    if name.contains('\0') || name.contains('\\') && cfg!(windows) {
        return Err(escape());
    }
    let mut joined = base.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(p) => joined.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(escape())
            }
        }
    }
    if joined == base {
        return Err(escape());
    }
    // Symlinks: the deepest existing ancestor (or the file itself) must resolve inside base.
    let mut probe = joined.as_path();
    loop {
        if fs::symlink_metadata(probe).is_ok() {
            match fs::canonicalize(probe) {
                Ok(c) if c.starts_with(base_canon) => break,
                Ok(_) => return Err(escape()),
                // A dangling symlink: treat its target lexically.
                Err(_) => match fs::read_link(probe) {
                    Ok(t)
                        if t.is_absolute() || t.components().any(|c| c == Component::ParentDir) =>
                    {
                        return Err(escape())
                    }
                    _ => break,
                },
            }
        }
        match probe.parent() {
            Some(p) if p.starts_with(base) && p != base => probe = p,
            _ => break,
        }
    }
    Ok(joined)
}

/// Like [`resolve`], but `.` (or an empty name) means `base` itself (a tensor set of the
/// checkpoint in the manifest's own folder).
pub fn resolve_or_base(base: &Path, name: &str, location: &str) -> Result<PathBuf, PlanError> {
    if name.is_empty() || name == "." {
        return Ok(base.to_path_buf());
    }
    resolve(base, name, location)
}

/// Read and parse the llama-tool JSON manifest at `path` (a regular file within
/// [`MAX_MANIFEST_BYTES`], UTF-8).
pub(crate) fn read_json_manifest(path: &Path) -> Result<Manifest, PlanError> {
    Ok(Manifest::parse(&read_manifest_text(path)?, path)?)
}

fn read_manifest_text(path: &Path) -> Result<String, PlanError> {
    // Open, then fstat the handle: a FIFO or a link to /dev/zero is refused, not read.
    let (f, len) = llama_codecs::safe_read::open_regular(path).map_err(io_err(path))?;
    if len > MAX_MANIFEST_BYTES {
        return Err(PlanError::TooLarge {
            path: path.display().to_string(),
            size: len,
        });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    std::io::Read::read_to_end(
        &mut std::io::Read::take(f, MAX_MANIFEST_BYTES + 1),
        &mut bytes,
    )
    .map_err(io_err(path))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(PlanError::TooLarge {
            path: path.display().to_string(),
            size: bytes.len() as u64,
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        // Name the line of the first invalid byte.
        let upto = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..upto].iter().filter(|&&b| b == b'\n').count() + 1;
        PlanError::List(ParseError {
            file: path.display().to_string(),
            line,
            problem: checksums::BadLine::NotUtf8,
        })
    })
}

/// The jobs one manifest implies. `display_base` names files in reports: a file
/// `base/sub/x` is shown as `display_base/sub/x`.
pub fn load_manifest(
    manifest: &Path,
    root: &Path,
    display_root: &str,
) -> Result<Vec<Job>, PlanError> {
    let name = manifest.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let kind = manifest_kind(name).unwrap_or(ManifestKind::List(None));
    let base = manifest.parent().unwrap_or(Path::new("."));
    let text = read_manifest_text(manifest)?;
    let shown = |p: &Path| display_name(p, root, display_root);
    let mut jobs = Vec::new();
    // Lines naming a file already resolved reuse the answer: a list naming one file a
    // million times costs one resolution, not a million rounds of syscalls.
    let base_canon = fs::canonicalize(base).map_err(io_err(base))?;
    let mut resolved: std::collections::HashMap<String, PathBuf> = Default::default();
    let mut resolve = |name: &str, location: &str| -> Result<PathBuf, PlanError> {
        if let Some(p) = resolved.get(name) {
            return Ok(p.clone());
        }
        let p = resolve_in(base, &base_canon, name, location)?;
        resolved.insert(name.to_string(), p.clone());
        Ok(p)
    };
    match kind {
        ManifestKind::List(algo) => {
            for e in checksums::parse(&text, manifest, algo)? {
                let location = format!("{}:{}", manifest.display(), e.line);
                let path = resolve(&e.name, &location)?;
                jobs.push(Job {
                    name: shown(&path),
                    path,
                    size: None,
                    expect: vec![line_expect(e, location)],
                    chunks: None,
                });
            }
        }
        ManifestKind::Json => {
            let m = Manifest::parse(&text, manifest)?;
            let chunk_algo = m.chunk_algo().unwrap_or(Algo::Blake3);
            for (i, f) in m.files.iter().enumerate() {
                let location = format!("{}: files[{i}]", manifest.display());
                let path = resolve(&f.path, &location)?;
                let chunks = entry_chunks(&m, f, chunk_algo);
                // Chunk digests cover every byte; whole-file digests are checked only when
                // there are no chunks (they are there for comparison with published lists).
                let expect = if chunks.is_some() {
                    Vec::new()
                } else {
                    entry_expect(f, &location)
                };
                jobs.push(Job {
                    name: shown(&path),
                    path,
                    size: Some(f.size),
                    expect,
                    chunks,
                });
            }
        }
    }
    Ok(jobs)
}

/// What checksum-list line `e` (at `location`) claims.
pub(crate) fn line_expect(e: checksums::Entry, location: String) -> Expect {
    Expect {
        algo: e.algo,
        hex: e.hex,
        source: location,
    }
}

/// The whole-file digests JSON manifest entry `f` (at `location`) claims.
pub(crate) fn entry_expect(f: &FileEntry, location: &str) -> Vec<Expect> {
    f.digests()
        .into_iter()
        .map(|(algo, hex)| Expect {
            algo,
            hex,
            source: location.to_string(),
        })
        .collect()
}

/// The chunk digests (in `algo`) JSON manifest entry `f` of `m` claims, if any.
pub(crate) fn entry_chunks(m: &Manifest, f: &FileEntry, algo: Algo) -> Option<Chunks> {
    (!f.chunks.is_empty()).then(|| Chunks {
        algo,
        size: m.chunk_size,
        digests: f.chunks.iter().map(|c| c.to_ascii_lowercase()).collect(),
    })
}

/// `display_root/rel` for a path under `root`.
pub(crate) fn display_name(path: &Path, root: &Path, display_root: &str) -> String {
    match path.strip_prefix(root) {
        Ok(rel) if display_root.is_empty() || display_root == "." => rel.display().to_string(),
        Ok(rel) => Path::new(display_root).join(rel).display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// Merge jobs naming the same file: the union of their claims. Linear in the number of
/// claims (a set per file), so a list naming one file a million times stays fast.
pub fn merge_jobs(jobs: Vec<Job>) -> Vec<Job> {
    let mut by_path: BTreeMap<PathBuf, (Job, std::collections::HashSet<Expect>)> = BTreeMap::new();
    for j in jobs {
        match by_path.get_mut(&j.path) {
            Some((have, seen)) => {
                for e in j.expect {
                    if seen.insert(e.clone()) {
                        have.expect.push(e);
                    }
                }
                if have.size.is_none() {
                    have.size = j.size;
                }
                if have.chunks.is_none() {
                    have.chunks = j.chunks;
                }
            }
            None => {
                let seen = j.expect.iter().cloned().collect();
                by_path.insert(j.path.clone(), (j, seen));
            }
        }
    }
    by_path.into_values().map(|(j, _)| j).collect()
}

/// A folder's plan: its manifests, the merged jobs, and (for `--strict`) files no manifest
/// lists.
#[derive(Debug, Default)]
pub struct Plan {
    /// The manifests found (`.torrent` files last).
    pub manifests: Vec<PathBuf>,
    /// The files to verify.
    pub jobs: Vec<Job>,
    /// Files present but unlisted (display names).
    pub unlisted: Vec<String>,
}

/// Plan the verification of folder `root`, shown as `display_root`.
pub fn plan_folder(root: &Path, display_root: &str) -> Result<Plan, PlanError> {
    let files = walk_files(root)?;
    let manifests: Vec<PathBuf> = files
        .iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| manifest_kind(n).is_some())
        })
        .cloned()
        .collect();
    let torrents: Vec<PathBuf> = files.iter().filter(|p| is_torrent(p)).cloned().collect();
    if manifests.is_empty() && torrents.is_empty() {
        return Err(PlanError::NoManifest(root.display().to_string()));
    }
    let mut jobs = Vec::new();
    for m in &manifests {
        jobs.extend(load_manifest(m, root, display_root)?);
    }
    let jobs = merge_jobs(jobs);
    let mut listed: std::collections::BTreeSet<&PathBuf> = jobs.iter().map(|j| &j.path).collect();
    // Files a torrent covers are listed by it (the CLI verifies torrents piece by piece).
    let mut covered = Vec::new();
    for t in &torrents {
        let meta = crate::torrent::Metainfo::read(t)?;
        let base = t.parent().unwrap_or(Path::new("."));
        let content = crate::torrent::content_root(&meta, base);
        for f in meta.files.iter().filter(|f| !f.padding) {
            covered.push(meta.file_path(&content, f));
        }
    }
    listed.extend(covered.iter());
    let unlisted = files
        .iter()
        .filter(|p| !listed.contains(p) && !manifests.contains(p) && !torrents.contains(p))
        .map(|p| display_name(p, root, display_root))
        .collect();
    let mut manifests = manifests;
    manifests.extend(torrents);
    Ok(Plan {
        manifests,
        jobs,
        unlisted,
    })
}

/// Is `path` a BitTorrent metainfo file (`*.torrent`)?
pub fn is_torrent(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("torrent"))
}

/// Find the manifest that lists `file`: look in its folder, then each folder above.
pub fn plan_file(file: &Path) -> Result<Job, PlanError> {
    let canon = fs::canonicalize(file).map_err(io_err(file))?;
    let mut dir = canon.parent();
    while let Some(d) = dir {
        let mut found: Vec<Job> = Vec::new();
        if let Ok(rd) = fs::read_dir(d) {
            let mut names: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            names.sort();
            for m in names {
                let is_manifest = m
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| manifest_kind(n).is_some());
                if !is_manifest || !m.is_file() {
                    continue;
                }
                for mut j in load_manifest(&m, d, "")? {
                    if j.path == canon {
                        j.name = file.display().to_string();
                        j.path = file.to_path_buf();
                        found.push(j);
                    }
                }
            }
        }
        if !found.is_empty() {
            return Ok(merge_jobs(found).remove(0));
        }
        dir = d.parent();
    }
    Err(PlanError::NotListed(file.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_parent_absolute_and_outward_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("m");
        fs::create_dir(&base).unwrap();
        fs::write(dir.path().join("secret"), b"x").unwrap();
        assert!(resolve(&base, "a/b.pth", "l:1").is_ok());
        assert!(matches!(
            resolve(&base, "../secret", "l:1"),
            Err(PlanError::PathEscape { .. })
        ));
        assert!(matches!(
            resolve(&base, "/etc/passwd", "l:1"),
            Err(PlanError::PathEscape { .. })
        ));
        assert!(matches!(
            resolve(&base, "a/../../secret", "l:1"),
            Err(PlanError::PathEscape { .. })
        ));
        std::os::unix::fs::symlink(dir.path().join("secret"), base.join("link")).unwrap();
        assert!(matches!(
            resolve(&base, "link", "l:1"),
            Err(PlanError::PathEscape { .. })
        ));
        std::os::unix::fs::symlink(dir.path(), base.join("up")).unwrap();
        assert!(matches!(
            resolve(&base, "up/secret", "l:1"),
            Err(PlanError::PathEscape { .. })
        ));
        fs::write(base.join("inside"), b"y").unwrap();
        std::os::unix::fs::symlink(base.join("inside"), base.join("ok-link")).unwrap();
        assert!(resolve(&base, "ok-link", "l:1").is_ok());
    }
}
