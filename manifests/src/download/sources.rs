//! Where a download's list of files comes from: a manifest or signature given as a URL or a
//! local file ([`listing`]), and the md5 checklists of Meta's release once fetched
//! ([`checklist_expects`]).

use std::path::Path;

use crate::checksums;
use crate::digest::Algo;
use crate::discover::{self, Expect, PlanError};
use crate::json::MAX_MANIFEST_BYTES;

use super::DownloadError;

/// A list of files to fetch, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Its text.
    pub text: String,
    /// Its file name (the caller's default when the source has none).
    pub name: String,
    /// For a URL, the folder URL it sits in (the default `--base-url`), ending in `/`.
    pub base: Option<String>,
}

/// True for an `http://` or `https://` URL (any case).
pub fn is_url(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// A list of files to fetch (a manifest or a signature) from a URL (through `fetch_small`)
/// or a local file: its text, its file name (`default_name` when the source has none) and,
/// for a URL, the folder URL it sits in. Local files are read only when regular and at most
/// [`MAX_MANIFEST_BYTES`] long.
pub fn listing(
    src: &str,
    default_name: &str,
    fetch_small: impl Fn(&str) -> Result<String, DownloadError>,
) -> Result<Listing, DownloadError> {
    if is_url(src) {
        let text = fetch_small(src)?;
        let path = src.split(['?', '#']).next().unwrap_or(src);
        let (base, name) = path.rsplit_once('/').unwrap_or((path, default_name));
        return Ok(Listing {
            text,
            name: name.to_string(),
            base: Some(format!("{base}/")),
        });
    }
    let text = llama_codecs::safe_read::read_capped_string(Path::new(src), MAX_MANIFEST_BYTES)
        .map_err(|error| DownloadError::Io {
            path: src.to_string(),
            error,
        })?;
    let name = Path::new(src)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(default_name)
        .to_string();
    Ok(Listing {
        text,
        name,
        base: None,
    })
}

/// Expectations from a downloaded md5 checklist `dir/chk_rel`, keyed by path relative to
/// the download folder; each `source` is `chk_rel:line`. A name escaping the checklist's
/// folder is refused.
pub fn checklist_expects(
    dir: &Path,
    chk_rel: &str,
) -> Result<Vec<(String, Expect)>, DownloadError> {
    let path = dir.join(chk_rel);
    let text = std::fs::read_to_string(&path).map_err(|error| DownloadError::Io {
        path: path.display().to_string(),
        error,
    })?;
    let folder = Path::new(chk_rel)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = Vec::new();
    for e in checksums::parse(&text, &path, Some(Algo::Md5)).map_err(PlanError::from)? {
        discover::resolve(
            &dir.join(&folder),
            &e.name,
            &format!("{}:{}", path.display(), e.line),
        )?;
        let rel = if folder.is_empty() {
            e.name.clone()
        } else {
            format!("{folder}/{}", e.name)
        };
        let source = format!("{chk_rel}:{}", e.line);
        out.push((rel, discover::line_expect(e, source)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD5_EMPTY: &str = "d41d8cd98f00b204e9800998ecf8427e";

    #[test]
    fn a_url_listing_gives_its_name_and_folder() {
        let l = listing(
            "https://host/rel/m.manifest.json?sig=1#x",
            "manifest",
            |u| {
                assert_eq!(u, "https://host/rel/m.manifest.json?sig=1#x");
                Ok("{}".into())
            },
        )
        .unwrap();
        assert_eq!(l.text, "{}");
        assert_eq!(l.name, "m.manifest.json");
        assert_eq!(l.base.as_deref(), Some("https://host/rel/"));
        assert!(is_url("HTTP://x"));
        assert!(!is_url("ftp://x"));
    }

    #[test]
    fn a_local_listing_is_read_capped() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("SHA256SUMS");
        std::fs::write(&f, "text").unwrap();
        let l = listing(f.to_str().unwrap(), "manifest", |_| unreachable!()).unwrap();
        assert_eq!(
            (l.text.as_str(), l.name.as_str(), l.base),
            ("text", "SHA256SUMS", None)
        );
        let missing = d.path().join("nope");
        let e = listing(missing.to_str().unwrap(), "manifest", |_| unreachable!()).unwrap_err();
        assert!(matches!(e, DownloadError::Io { .. }));
        assert!(e.to_string().starts_with(missing.to_str().unwrap()), "{e}");
        // A folder is no listing.
        assert!(listing(d.path().to_str().unwrap(), "m", |_| unreachable!()).is_err());
    }

    #[test]
    fn checklist_entries_are_keyed_by_download_path() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("7B")).unwrap();
        std::fs::write(
            d.path().join("7B/checklist.chk"),
            format!("{MD5_EMPTY}  consolidated.00.pth\n{MD5_EMPTY}  params.json\n"),
        )
        .unwrap();
        let got = checklist_expects(d.path(), "7B/checklist.chk").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "7B/consolidated.00.pth");
        assert_eq!(got[1].0, "7B/params.json");
        assert_eq!(got[0].1.algo, Algo::Md5);
        assert_eq!(got[0].1.hex, MD5_EMPTY);
        assert_eq!(got[1].1.source, "7B/checklist.chk:2");
    }

    #[test]
    fn checklist_names_outside_the_folder_or_bad_lines_are_refused() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("c.chk"), format!("{MD5_EMPTY}  ../x\n")).unwrap();
        let e = checklist_expects(d.path(), "c.chk").unwrap_err();
        assert!(
            matches!(e, DownloadError::Plan(PlanError::PathEscape { .. })),
            "{e}"
        );
        std::fs::write(d.path().join("c.chk"), "not a checksum line\n").unwrap();
        let e = checklist_expects(d.path(), "c.chk").unwrap_err();
        assert!(matches!(e, DownloadError::Plan(PlanError::List(_))), "{e}");
        assert!(matches!(
            checklist_expects(d.path(), "missing.chk"),
            Err(DownloadError::Io { .. })
        ));
    }
}
