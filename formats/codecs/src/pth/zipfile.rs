//! The zip side of a torch checkpoint: the central directory (read with the `zip` crate) and
//! each entry's byte range inside the memory map, so stored (uncompressed) records are
//! borrowed without a copy. Compressed records are inflated only below a size cap.
//!
//! Zip layout: PKWARE APPNOTE (<https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT>);
//! torch writes every record stored, 64-byte aligned (`caffe2/serialize/inline_container.cc`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::Path;

use zip::{CompressionMethod, ZipArchive};

use super::PthError;

/// One record of the archive.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub name: String,
    pub method: CompressionMethod,
    pub(crate) data_start: u64,
    pub(crate) compressed_size: u64,
    pub size: u64,
}

/// The archive's records by name.
#[derive(Debug)]
pub(super) struct ZipIndex {
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
}

fn zip_err(path: &Path, error: zip::result::ZipError) -> PthError {
    PthError::Zip {
        path: path.to_path_buf(),
        error,
    }
}

impl ZipIndex {
    /// Read the central directory of `bytes` (the whole mapped file) and locate every
    /// record's data; a record reaching past the end of the file is an error.
    pub fn read(path: &Path, bytes: &[u8]) -> Result<ZipIndex, PthError> {
        let mut zip = ZipArchive::new(Cursor::new(bytes)).map_err(|e| zip_err(path, e))?;
        // The zip crate keys records by name, so of two records with one name only the last
        // is visible: ask it whether the central directory had duplicates, and refuse.
        if zip.has_duplicate_names() {
            return Err(PthError::DuplicateRecord {
                path: path.to_path_buf(),
            });
        }
        let mut entries = Vec::with_capacity(zip.len());
        let mut by_name = HashMap::with_capacity(zip.len());
        for i in 0..zip.len() {
            let f = zip.by_index_raw(i).map_err(|e| zip_err(path, e))?;
            let name = f.name().map_err(|e| zip_err(path, e))?.into_owned();
            let data_start = f.data_start().ok_or_else(|| PthError::NoDataOffset {
                path: path.to_path_buf(),
                record: name.clone(),
            })?;
            let end = data_start.checked_add(f.compressed_size());
            if end.is_none_or(|e| e > bytes.len() as u64) {
                return Err(PthError::Truncated {
                    path: path.to_path_buf(),
                    record: name,
                    end: end.unwrap_or(u64::MAX),
                    len: bytes.len() as u64,
                });
            }
            let entry = Entry {
                method: f.compression(),
                data_start,
                compressed_size: f.compressed_size(),
                size: f.size(),
                name: name.clone(),
            };
            if by_name.insert(name.clone(), entries.len()).is_some() {
                return Err(PthError::RecordTwice {
                    path: path.to_path_buf(),
                    record: name,
                });
            }
            entries.push(entry);
        }
        Ok(ZipIndex { entries, by_name })
    }

    /// Every record, in central-directory order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The record called `name`.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).and_then(|&i| self.entries.get(i))
    }

    /// The bytes of a stored record, borrowed from the map (`None` when compressed).
    pub fn stored<'a>(&self, bytes: &'a [u8], e: &Entry) -> Option<&'a [u8]> {
        if e.method != CompressionMethod::Stored || e.size != e.compressed_size {
            return None;
        }
        let start = usize::try_from(e.data_start).ok()?;
        let end = start.checked_add(usize::try_from(e.size).ok()?)?;
        bytes.get(start..end)
    }

    /// The bytes of a small record: borrowed when stored, inflated (at most `cap` bytes)
    /// when compressed.
    pub(crate) fn read_small<'a>(
        &self,
        path: &Path,
        bytes: &'a [u8],
        e: &Entry,
        cap: u64,
    ) -> Result<Cow<'a, [u8]>, PthError> {
        if let Some(s) = self.stored(bytes, e) {
            return Ok(Cow::Borrowed(s));
        }
        let too_large = || PthError::RecordTooLarge {
            path: path.to_path_buf(),
            record: e.name.clone(),
            size: e.size,
            cap,
        };
        if e.size > cap {
            return Err(too_large());
        }
        let mut zip = ZipArchive::new(Cursor::new(bytes)).map_err(|x| zip_err(path, x))?;
        let mut f = zip.by_name(&e.name).map_err(|x| zip_err(path, x))?;
        let mut out = Vec::with_capacity(e.size as usize);
        (&mut f)
            .take(cap + 1)
            .read_to_end(&mut out)
            .map_err(|error| PthError::Inflate {
                path: path.to_path_buf(),
                record: e.name.clone(),
                error,
            })?;
        if out.len() as u64 > cap {
            return Err(too_large());
        }
        if out.len() as u64 != e.size {
            return Err(PthError::InflatedSize {
                path: path.to_path_buf(),
                record: e.name.clone(),
                size: out.len() as u64,
                expected: e.size,
            });
        }
        Ok(Cow::Owned(out))
    }
}
