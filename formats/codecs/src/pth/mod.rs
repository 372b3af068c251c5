//! PyTorch checkpoints (`torch.save` zip format, every LLaMA `consolidated.NN.pth`): read
//! without executing anything and without copying tensor data, and write in the same layout.
//!
//! A torch zip holds `<archive>/data.pkl` (a pickle of the state dict whose tensors name
//! their storages through persistent ids), one record `<archive>/data/<key>` per storage
//! (stored uncompressed, 64-byte aligned) and small records (`version`, `byteorder`, ...).
//! Format: `torch/serialization.py` and `caffe2/serialize/inline_container.h`
//! (<https://github.com/pytorch/pytorch/blob/main/torch/serialization.py>).
//!
//! [`PthFile`] maps the file once; [`PthFile::view`] borrows a tensor's bytes straight from
//! the map (possibly strided: torch saves views with their storage), and
//! [`PthFile::release`] hands the pages back to the kernel once a tensor is converted.

mod globals;
mod machine;
pub mod pickle;
mod pickle_writer;
mod writer;
mod zipfile;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::dtype::DType;
use crate::mmap::release_range;
use crate::sequence::SequenceError;
use crate::tensor::{TensorInfo, TensorView, ViewError};
pub use pickle::PickleError;
pub use writer::{PthWriter, WriterOptions};
use zipfile::ZipIndex;

/// Largest `data.pkl` inflated when the record is compressed (stored ones are borrowed).
pub(crate) const MAX_PICKLE_BYTES: u64 = 256 << 20;

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PthError {
    /// Opening, mapping or writing failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// Pre-1.6 torch files are a bare pickle stream.
    #[error("{}: legacy torch format (pre-1.6, not a zip) is not supported", path.display())]
    Legacy {
        /// The file.
        path: PathBuf,
    },
    /// Neither a zip nor a legacy torch file.
    #[error("{}: not a torch checkpoint (no zip header at the start)", path.display())]
    NotZip {
        /// The file.
        path: PathBuf,
    },
    /// The zip structure is damaged or truncated (as the `zip` crate reads it).
    #[error("{}: bad or truncated zip archive: {error}", path.display())]
    Zip {
        /// The file.
        path: PathBuf,
        /// The zip crate's error.
        error: zip::result::ZipError,
    },
    /// The central directory lists one record name twice.
    #[error("{}: bad or truncated zip archive: the central directory lists a record name twice (which one is meant is ambiguous)", path.display())]
    DuplicateRecord {
        /// The file.
        path: PathBuf,
    },
    /// One record name listed twice (seen while indexing the records).
    #[error("{}: bad or truncated zip archive: record `{record}` appears twice", path.display())]
    RecordTwice {
        /// The file.
        path: PathBuf,
        /// The record.
        record: String,
    },
    /// A record whose data offset the zip crate cannot give.
    #[error("{}: bad or truncated zip archive: record `{record}` has no data offset", path.display())]
    NoDataOffset {
        /// The file.
        path: PathBuf,
        /// The record.
        record: String,
    },
    /// Inflating a compressed record failed.
    #[error("{}: bad or truncated zip archive: record `{record}`: {error}", path.display())]
    Inflate {
        /// The file.
        path: PathBuf,
        /// The record.
        record: String,
        /// The decompressor's error.
        error: std::io::Error,
    },
    /// A compressed record inflates to another size than the directory gives.
    #[error("{}: bad or truncated zip archive: record `{record}` inflates to {size} bytes but the directory says {expected}", path.display())]
    InflatedSize {
        /// The file.
        path: PathBuf,
        /// The record.
        record: String,
        /// Bytes it inflated to.
        size: u64,
        /// Bytes the directory gives.
        expected: u64,
    },
    /// A record reaches past the end of the file.
    #[error("{}: truncated: record `{record}` ends at byte {end} but the file has {len}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The record.
        record: String,
        /// The end.
        end: u64,
        /// Length in bytes.
        len: u64,
    },
    /// No `<archive>/data.pkl` record.
    #[error("{}: no `<archive>/data.pkl` record: not a torch.save checkpoint", path.display())]
    NoDataPkl {
        /// The file.
        path: PathBuf,
    },
    /// More than one `<archive>/data.pkl` record.
    #[error("{}: {} `data.pkl` records ({})", path.display(), names.len(), names.join(", "))]
    ManyDataPkl {
        /// The file.
        path: PathBuf,
        /// The records.
        names: Vec<String>,
    },
    /// A compressed record larger than the cap.
    #[error("{}: record `{record}` is compressed and {size} bytes, over the {cap}-byte cap", path.display())]
    RecordTooLarge {
        /// The file.
        path: PathBuf,
        /// The record.
        record: String,
        /// Size in bytes.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// The pickle was refused or is malformed.
    #[error("{}: data.pkl: {error}", path.display())]
    Pickle {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: PickleError,
    },
    /// A tensor names a storage record the archive lacks.
    #[error("{}: tensor `{tensor}`: storage record `{record}` is missing", path.display())]
    MissingStorage {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The record.
        record: String,
    },
    /// A storage record is compressed (torch never does this): refused, not inflated.
    #[error("{}: tensor `{tensor}`: storage record `{record}` is compressed; torch stores storages uncompressed", path.display())]
    CompressedStorage {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The record.
        record: String,
    },
    /// Two tensors see one storage with different dtypes or sizes.
    #[error("{}: tensor `{tensor}`: storage `{record}`: seen as {bytes} bytes of {dtype} and as {numel} elements of {other}", path.display())]
    StorageSeenTwice {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The record.
        record: String,
        /// The storage's bytes as first seen.
        bytes: usize,
        /// Its dtype as first seen.
        dtype: DType,
        /// Elements this tensor's persistent id gives.
        numel: u64,
        /// The dtype this tensor's persistent id gives.
        other: DType,
    },
    /// A storage record's size disagrees with its persistent id.
    #[error("{}: tensor `{tensor}`: storage `{record}`: the pickle declares {numel} {dtype} elements but the record holds {bytes} bytes", path.display())]
    StorageSize {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The record.
        record: String,
        /// Elements the pickle declares.
        numel: u64,
        /// Their dtype.
        dtype: DType,
        /// Bytes in the record.
        bytes: usize,
    },
    /// A tensor's view does not fit its storage.
    #[error("{}: tensor `{tensor}`: {error}", path.display())]
    View {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The underlying error.
        error: ViewError,
    },
    /// The file is big-endian (`byteorder` record); only little-endian is read.
    #[error("{}: byteorder is `{order}`; only little-endian checkpoints are supported", path.display())]
    ByteOrder {
        /// The file.
        path: PathBuf,
        /// The byte order written.
        order: String,
    },
    /// Writer: a write to the output failed.
    #[error("writing torch checkpoint: {0}")]
    Write(#[from] std::io::Error),
    /// Writer: the archive name is empty, over 1024 bytes or holds a slash.
    #[error(
        "writing torch checkpoint: archive name `{0}` must be 1 to 1024 bytes without slashes"
    )]
    BadArchiveName(String),
    /// Writer: a declared tensor's dtype has no torch storage type.
    #[error("writing torch checkpoint: tensor `{tensor}`: {dtype} has no torch dtype")]
    NoTorchDtype {
        /// The tensor.
        tensor: String,
        /// Its dtype.
        dtype: DType,
    },
    /// Writer: a declared tensor's byte size overflows.
    #[error("writing torch checkpoint: tensor `{0}`: size overflows")]
    SizeOverflow(String),
    /// Writer: a tensor declared twice.
    #[error("writing torch checkpoint: tensor `{0}` is declared twice")]
    DeclaredTwice(String),
    /// Writer: the data written differs from the CRC-32 announced before writing it.
    #[error(
        "writing torch checkpoint: tensor data CRC-32 {crc:08x} differs from the {promised:08x} \
         announced before writing it (did the source change while being read?)"
    )]
    CrcChanged {
        /// CRC-32 of the bytes written.
        crc: u32,
        /// CRC-32 announced.
        promised: u32,
    },
    /// Writer: the data did not follow the declared tensors (order, sizes, completeness).
    #[error("writing torch checkpoint: {0}")]
    Sequence(#[from] SequenceError),
}

/// One tensor of the state dict: its name, dtype and shape, and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PthTensor {
    /// Name, dtype, shape.
    pub info: TensorInfo,
    /// Storage record key (`<archive>/data/<key>`).
    pub storage_key: String,
    /// Offset into the storage, in elements.
    pub storage_offset: u64,
    /// Strides in elements.
    pub strides: Vec<u64>,
    storage: usize,
}

#[derive(Debug)]
struct Storage {
    key: String,
    dtype: DType,
    start: usize,
    len: usize,
}

/// An opened torch zip checkpoint: the map, the state dict's tensors and their storages.
#[derive(Debug)]
pub struct PthFile {
    path: PathBuf,
    map: Mmap,
    tensors: Vec<PthTensor>,
    by_name: HashMap<String, usize>,
    storages: Vec<Storage>,
}

impl PthFile {
    /// Map `path`, read its central directory and its pickle, and check every tensor's view
    /// against its storage. No tensor data is read.
    pub fn open(path: &Path) -> Result<PthFile, PthError> {
        let io = |source| PthError::Io {
            path: path.to_path_buf(),
            error: source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the map is read-only; like every mmap reader we rely on the file not being
        // truncated or rewritten while it is open (a changed file is the user's race).
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::from_map(path, map)
    }

    fn from_map(path: &Path, map: Mmap) -> Result<PthFile, PthError> {
        let p = || path.to_path_buf();
        match map.first() {
            Some(0x80) => return Err(PthError::Legacy { path: p() }),
            _ if !map.starts_with(b"PK\x03\x04") => return Err(PthError::NotZip { path: p() }),
            _ => {}
        }
        let zip = ZipIndex::read(path, &map)?;
        let pkls: Vec<&str> = zip
            .entries()
            .iter()
            .map(|e| e.name.as_str())
            .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
            .collect();
        let pkl_name = match pkls.as_slice() {
            [one] => one.to_string(),
            [] => return Err(PthError::NoDataPkl { path: p() }),
            many => {
                return Err(PthError::ManyDataPkl {
                    path: p(),
                    names: many.iter().map(|s| s.to_string()).collect(),
                })
            }
        };
        let prefix = &pkl_name[..pkl_name.len() - "data.pkl".len()];
        if let Some(e) = zip.get(&format!("{prefix}byteorder")) {
            let order = zip.read_small(path, &map, e, 64)?;
            if order.as_ref() != b"little" {
                return Err(PthError::ByteOrder {
                    path: p(),
                    order: String::from_utf8_lossy(&order).into_owned(),
                });
            }
        }
        let pkl_entry = zip
            .get(&pkl_name)
            .ok_or_else(|| PthError::NoDataPkl { path: p() })?;
        let pkl = zip.read_small(path, &map, pkl_entry, MAX_PICKLE_BYTES)?;
        let records = pickle::load_state_dict(&pkl).map_err(|source| PthError::Pickle {
            path: p(),
            error: source,
        })?;
        drop(pkl);

        let mut storages: Vec<Storage> = Vec::new();
        let mut storage_index: HashMap<String, usize> = HashMap::new();
        let mut tensors = Vec::with_capacity(records.len());
        let mut by_name = HashMap::with_capacity(records.len());
        for (name, rec) in records {
            let record = format!("{prefix}data/{}", rec.storage.key);
            let si = match storage_index.get(&rec.storage.key) {
                Some(&si) => {
                    let s = &storages[si];
                    let bytes = rec.storage.dtype.bytes_for(rec.storage.numel);
                    if s.dtype != rec.storage.dtype || bytes != Some(s.len as u64) {
                        return Err(PthError::StorageSeenTwice {
                            path: p(),
                            tensor: name,
                            record,
                            bytes: s.len,
                            dtype: s.dtype,
                            numel: rec.storage.numel,
                            other: rec.storage.dtype,
                        });
                    }
                    si
                }
                None => {
                    let e = zip.get(&record).ok_or_else(|| PthError::MissingStorage {
                        path: p(),
                        tensor: name.clone(),
                        record: record.clone(),
                    })?;
                    let bytes = zip
                        .stored(&map, e)
                        .ok_or_else(|| PthError::CompressedStorage {
                            path: p(),
                            tensor: name.clone(),
                            record: record.clone(),
                        })?;
                    let dtype = rec.storage.dtype;
                    let declared = dtype.bytes_for(rec.storage.numel);
                    if declared != Some(bytes.len() as u64) {
                        return Err(PthError::StorageSize {
                            path: p(),
                            tensor: name,
                            record,
                            numel: rec.storage.numel,
                            dtype,
                            bytes: bytes.len(),
                        });
                    }
                    storages.push(Storage {
                        key: rec.storage.key.clone(),
                        dtype,
                        start: e.data_start as usize,
                        len: bytes.len(),
                    });
                    storage_index.insert(rec.storage.key.clone(), storages.len() - 1);
                    storages.len() - 1
                }
            };
            let s = &storages[si];
            let data = &map[s.start..s.start + s.len];
            TensorView::strided(
                s.dtype,
                rec.shape.clone(),
                rec.strides.clone(),
                rec.offset,
                data,
            )
            .map_err(|source| PthError::View {
                path: p(),
                tensor: name.clone(),
                error: source,
            })?;
            by_name.insert(name.clone(), tensors.len());
            tensors.push(PthTensor {
                info: TensorInfo {
                    name,
                    dtype: s.dtype,
                    shape: rec.shape,
                },
                storage_key: s.key.clone(),
                storage_offset: rec.offset,
                strides: rec.strides,
                storage: si,
            });
        }
        Ok(PthFile {
            path: path.to_path_buf(),
            map,
            tensors,
            by_name,
            storages,
        })
    }

    /// The file this was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state dict's tensors, in the order the state dict holds them.
    pub fn tensors(&self) -> &[PthTensor] {
        &self.tensors
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&PthTensor> {
        self.by_name.get(name).and_then(|&i| self.tensors.get(i))
    }

    fn storage_bytes(&self, t: &PthTensor) -> Option<(&Storage, &[u8])> {
        let s = self.storages.get(t.storage)?;
        Some((s, self.map.get(s.start..s.start.checked_add(s.len)?)?))
    }

    /// The tensor's bytes, borrowed from the map (strided when torch saved a view).
    pub fn view(&self, t: &PthTensor) -> Result<TensorView<'_>, PthError> {
        let view_err = |source| PthError::View {
            path: self.path.clone(),
            tensor: t.info.name.clone(),
            error: source,
        };
        let (s, data) = self
            .storage_bytes(t)
            .ok_or_else(|| view_err(ViewError::Overflow))?;
        TensorView::strided(
            s.dtype,
            t.info.shape.clone(),
            t.strides.clone(),
            t.storage_offset,
            data,
        )
        .map_err(view_err)
    }

    /// Tell the kernel the pages under `t`'s bytes are no longer needed
    /// (`madvise(MADV_DONTNEED)`), so converting a large model keeps the resident set small.
    /// The map is read-only and file-backed, so a later read simply faults the pages in again
    /// from the page cache; the advice may cover parts of neighbouring records sharing a page.
    pub fn release(&self, t: &PthTensor) {
        let Ok(v) = self.view(t) else { return };
        let Some((s, _)) = self.storage_bytes(t) else {
            return;
        };
        let span = v.storage_span();
        release_range(&self.map, s.start + span.start, span.len());
    }
}

#[cfg(test)]
mod tests;
