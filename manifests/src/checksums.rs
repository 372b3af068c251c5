//! Checksum lists as coreutils and b3sum read and write them: GNU lines `HEX  NAME` /
//! `HEX *NAME` (with the `\`-escaped form for names holding a newline or backslash), and
//! BSD-style tagged lines `SHA256 (NAME) = HEX`. Spec: the coreutils manual, "md5sum
//! invocation" (<https://www.gnu.org/software/coreutils/manual/html_node/md5sum-invocation.html>),
//! and `b3sum --help`, which writes the same GNU form.
//!
//! Meta's `checklist.chk` is an md5sum list. Which algorithm a GNU line uses comes from the
//! file name (`*.chk`, `*.md5`, `MD5SUMS` md5; `SHA256SUMS`, `*.sha256` sha256; `*.b3sum`,
//! `B3SUMS` BLAKE3), else from the digest length (32 hex md5, 64 sha256).

use std::path::Path;

use crate::digest::Algo;

/// One `digest  name` claim of a checksum list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name as written (relative to the list's folder).
    pub name: String,
    /// The algorithm.
    pub algo: Algo,
    /// Lowercase hex digest.
    pub hex: String,
    /// 1-based line number in the list.
    pub line: usize,
}

/// A line that is not a checksum line.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {problem}")]
pub struct ParseError {
    /// The list's path.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub problem: BadLine,
}

/// What is wrong with a line of a checksum list ([`ParseError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadLine {
    /// Neither `HEX  NAME` nor `ALGO (NAME) = HEX`.
    #[error("not a checksum line (expected `HEX  NAME` or `ALGO (NAME) = HEX`): {line:?}")]
    NotChecksumLine {
        /// The line (first 80 characters).
        line: String,
    },
    /// A digest not followed by two spaces or ` *`.
    #[error("expected two spaces or ` *` after the digest: {line:?}")]
    NoSeparator {
        /// The line (first 80 characters).
        line: String,
    },
    /// A digest whose length names no algorithm (the list's name gives none).
    #[error("digest of {digits} hex digits is neither md5 (32) nor sha256 (64)")]
    DigestLength {
        /// Its hex digits.
        digits: usize,
    },
    /// A digest that is not the algorithm's number of hex digits.
    #[error("{algo} digest must be {} hex digits, found {found:?}", algo.hex_len())]
    BadDigest {
        /// The algorithm.
        algo: Algo,
        /// The digest (first 80 characters).
        found: String,
    },
    /// A `\`-escaped name with a bad escape.
    #[error("bad `\\` escape in the file name")]
    BadEscape,
    /// An empty file name.
    #[error("empty file name")]
    EmptyName,
    /// The list is not UTF-8 (the line of the first invalid byte).
    #[error("not UTF-8 text")]
    NotUtf8,
}

/// What a checksum list is, judged by its file name. None: not a checksum list.
pub fn list_kind(file_name: &str) -> Option<Option<Algo>> {
    let lower = file_name.to_ascii_lowercase();
    let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match (lower.as_str(), ext) {
        ("md5sums", _) | (_, "chk") | (_, "md5") | (_, "md5sum") => Some(Some(Algo::Md5)),
        ("sha256sums", _) | (_, "sha256") | (_, "sha256sum") => Some(Some(Algo::Sha256)),
        ("b3sums", _) | (_, "b3sum") | (_, "b3") => Some(Some(Algo::Blake3)),
        ("checksums" | "checksums.txt", _) => Some(None),
        _ => None,
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Undo the GNU escaping of a name (`\\` and `\n`); None when an escape is unknown.
fn unescape(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut it = name.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Parse a checksum list. `default_algo` comes from [`list_kind`]; blank lines and `#`
/// comments are skipped; any other line that is not a checksum line is an error naming it.
pub fn parse(
    text: &str,
    file: &Path,
    default_algo: Option<Algo>,
) -> Result<Vec<Entry>, ParseError> {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let err = |problem: BadLine| ParseError {
            file: file.display().to_string(),
            line: line_no,
            problem,
        };
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (escaped, body) = match line.strip_prefix('\\') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let (algo, hex, name) = if let Some(e) = parse_bsd(body) {
            e
        } else if let Some((hex, rest)) = body.split_once(' ') {
            if !is_hex(hex) {
                return Err(err(BadLine::NotChecksumLine {
                    line: truncate(line),
                }));
            }
            let name = rest
                .strip_prefix(' ')
                .or_else(|| rest.strip_prefix('*'))
                .ok_or_else(|| {
                    err(BadLine::NoSeparator {
                        line: truncate(line),
                    })
                })?;
            let algo = match default_algo {
                Some(a) => a,
                None => match hex.len() {
                    32 => Algo::Md5,
                    64 => Algo::Sha256,
                    n => return Err(err(BadLine::DigestLength { digits: n })),
                },
            };
            (algo, hex, name)
        } else {
            return Err(err(BadLine::NotChecksumLine {
                line: truncate(line),
            }));
        };
        if hex.len() != algo.hex_len() || !is_hex(hex) {
            return Err(err(BadLine::BadDigest {
                algo,
                found: truncate(hex),
            }));
        }
        let name = if escaped {
            unescape(name).ok_or_else(|| err(BadLine::BadEscape))?
        } else {
            name.to_string()
        };
        if name.is_empty() {
            return Err(err(BadLine::EmptyName));
        }
        out.push(Entry {
            name,
            algo,
            hex: hex.to_ascii_lowercase(),
            line: line_no,
        });
    }
    Ok(out)
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// `ALGO (NAME) = HEX`.
fn parse_bsd(line: &str) -> Option<(Algo, &str, &str)> {
    let (tag, rest) = line.split_once(" (")?;
    let algo = match tag {
        "MD5" => Algo::Md5,
        "SHA256" => Algo::Sha256,
        "BLAKE3" => Algo::Blake3,
        _ => return None,
    };
    let (name, hex) = rest.rsplit_once(") = ")?;
    Some((algo, hex, name))
}

/// Write a GNU checksum list (`HEX  NAME` lines, the `\` form for names with a newline or
/// backslash), which `md5sum -c` / `sha256sum -c` / `b3sum --check` accept.
pub fn write_gnu<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (hex, name) in entries {
        if name.contains(['\\', '\n', '\r']) {
            let esc = name
                .replace('\\', "\\\\")
                .replace('\n', "\\n")
                .replace('\r', "\\r");
            out.push('\\');
            out.push_str(hex);
            out.push_str("  ");
            out.push_str(&esc);
        } else {
            out.push_str(hex);
            out.push_str("  ");
            out.push_str(name);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD5_A: &str = "0cc175b9c0f1b6a831c399e269772661";

    #[test]
    fn reads_gnu_binary_marker_bsd_and_comments() {
        let text = format!(
            "# comment\n{MD5_A}  consolidated.00.pth\n{MD5_A} *params.json\r\n\nMD5 (a b.txt) = {}\n",
            MD5_A.to_uppercase()
        );
        let e = parse(&text, Path::new("checklist.chk"), Some(Algo::Md5)).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].name, "consolidated.00.pth");
        assert_eq!(e[1].name, "params.json");
        assert_eq!(e[2].name, "a b.txt");
        assert_eq!(e[2].hex, MD5_A);
        assert_eq!(e[2].line, 5);
    }

    #[test]
    fn garbage_line_is_named_by_number() {
        let text = format!("{MD5_A}  ok\nthis is not a checksum\n");
        let err = parse(&text, Path::new("x.chk"), Some(Algo::Md5)).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().starts_with("x.chk:2:"), "{err}");
        let short = parse("abcd  f\n", Path::new("x.chk"), Some(Algo::Md5)).unwrap_err();
        assert!(short.to_string().contains("32 hex digits"), "{short}");
    }

    #[test]
    fn kind_comes_from_name_then_length() {
        assert_eq!(list_kind("checklist.chk"), Some(Some(Algo::Md5)));
        assert_eq!(list_kind("SHA256SUMS"), Some(Some(Algo::Sha256)));
        assert_eq!(list_kind("weights.b3sum"), Some(Some(Algo::Blake3)));
        assert_eq!(list_kind("params.json"), None);
        let e = parse(&format!("{}  f\n", "a".repeat(64)), Path::new("c"), None).unwrap();
        assert_eq!(e[0].algo, Algo::Sha256);
    }

    #[test]
    fn escaped_names_round_trip() {
        let text = write_gnu([(MD5_A, "we\\ird\nname")]);
        assert!(text.starts_with('\\'));
        let e = parse(&text, Path::new("c.md5"), Some(Algo::Md5)).unwrap();
        assert_eq!(e[0].name, "we\\ird\nname");
    }
}
