//! GGUF reader: parses the header, metadata and tensor infos of a memory-mapped GGUF v2/v3
//! file (<https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>) and lends tensor data
//! as [`TensorView`]s borrowed from the map.
//!
//! `open` validates everything before it returns (see `parse.rs`): every tensor's data lies
//! inside the file, aligned and without overlap.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::parse::{parse, Header};
use super::value::GgufValue;
use super::{GgufError, GgufProblem};
use crate::mmap::release_range;
use crate::tensor::{TensorInfo, TensorView};

/// A tensor as a GGUF file declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTensor {
    /// Name, dtype and shape (numpy order: outermost first, the reverse of the file's dims).
    pub info: TensorInfo,
    /// Offset of the data relative to the start of the data section.
    pub offset: u64,
}

/// An open GGUF file: parsed header over a read-only memory map.
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    mmap: Mmap,
    header: Header,
}

impl GgufFile {
    /// Map and validate `path`.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            error: source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the map is read-only; a file truncated underneath us by another process
        // is outside what any reader can defend against (same stance as llama.cpp).
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        let header = parse(&mmap, path)?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            mmap,
            header,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.header.version
    }

    /// Data alignment (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.header.alignment
    }

    /// File size in bytes.
    pub fn file_len(&self) -> u64 {
        self.mmap.len() as u64
    }

    /// Metadata in file order.
    pub fn metadata(&self) -> &[(String, GgufValue)] {
        &self.header.metadata
    }

    /// The value of a metadata key.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        let &i = self.header.kv_index.get(key)?;
        self.header.metadata.get(i).map(|(_, v)| v)
    }

    /// Tensors in file order (the order of the tensor infos).
    pub fn tensors(&self) -> &[GgufTensor] {
        &self.header.tensors
    }

    /// A tensor by name.
    pub fn get_tensor(&self, name: &str) -> Option<&GgufTensor> {
        let &i = self.header.tensor_index.get(name)?;
        self.header.tensors.get(i)
    }

    /// Absolute byte range of a tensor's data in the file.
    pub(crate) fn data_range(&self, t: &GgufTensor) -> Result<std::ops::Range<u64>, GgufError> {
        let n = t.info.n_bytes();
        let start = self.header.data_start.checked_add(t.offset);
        match (start, n) {
            (Some(s), Some(n)) if s.checked_add(n).is_some_and(|e| e <= self.file_len()) => {
                Ok(s..s + n)
            }
            _ => Err(self.invalid(
                self.header.data_start,
                GgufProblem::DataOutOfBounds {
                    name: t.info.name.clone(),
                    offset: t.offset,
                    file_len: self.file_len(),
                },
            )),
        }
    }

    /// The tensor's bytes, borrowed from the map.
    pub fn view(&self, t: &GgufTensor) -> Result<TensorView<'_>, GgufError> {
        let r = self.data_range(t)?;
        let data = self
            .mmap
            .get(r.start as usize..r.end as usize)
            .unwrap_or_default();
        TensorView::contiguous(t.info.dtype, t.info.shape.clone(), data).map_err(|source| {
            GgufError::View {
                path: self.path.clone(),
                name: t.info.name.clone(),
                error: source,
            }
        })
    }

    /// Tell the kernel the tensor's pages are no longer needed (`MADV_DONTNEED`), so a
    /// streaming pass over a large file does not keep it all resident. Best effort.
    pub fn release(&self, t: &GgufTensor) {
        if let Ok(r) = self.data_range(t) {
            release_range(&self.mmap, r.start as usize, (r.end - r.start) as usize);
        }
    }

    fn invalid(&self, offset: u64, problem: GgufProblem) -> GgufError {
        GgufError::Invalid {
            path: self.path.clone(),
            offset,
            problem,
        }
    }
}
