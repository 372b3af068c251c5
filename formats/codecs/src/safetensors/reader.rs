//! One `.safetensors` file over a read-only memory map
//! (<https://github.com/huggingface/safetensors#format>). The header is parsed and
//! validated by the `safetensors` crate after our own checks of the header length, so a
//! hostile length (2^60) is one clean error and never an allocation.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::{dtype_from_st, SafetensorsError, MAX_HEADER_LEN};
use crate::mmap::release_range;
use crate::tensor::{TensorInfo, TensorView};

/// An open safetensors file.
#[derive(Debug)]
pub struct SafetensorsFile {
    path: PathBuf,
    mmap: Mmap,
    /// In file order (by offset).
    tensors: Vec<TensorInfo>,
    /// Absolute byte ranges, parallel to `tensors`.
    ranges: Vec<Range<usize>>,
    index: HashMap<String, usize>,
    metadata: Option<HashMap<String, String>>,
}

impl SafetensorsFile {
    /// Map and validate `path`.
    pub fn open(path: &Path) -> Result<SafetensorsFile, SafetensorsError> {
        let io = |source| SafetensorsError::Io {
            path: path.to_path_buf(),
            error: source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: read-only map; a file truncated underneath us by another process is
        // outside what a reader can defend against.
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        let (tensors, ranges, metadata) = parse(&mmap, path)?;
        let index = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(SafetensorsFile {
            path: path.to_path_buf(),
            mmap,
            tensors,
            ranges,
            index,
            metadata,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensors in file order (by data offset).
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// A tensor's info by name.
    pub fn get(&self, name: &str) -> Option<&TensorInfo> {
        self.index.get(name).and_then(|&i| self.tensors.get(i))
    }

    /// The `__metadata__` map, if the header has one.
    pub fn metadata(&self) -> Option<&HashMap<String, String>> {
        self.metadata.as_ref()
    }

    fn range(&self, name: &str) -> Result<Range<usize>, SafetensorsError> {
        self.index
            .get(name)
            .and_then(|&i| self.ranges.get(i))
            .cloned()
            .ok_or_else(|| SafetensorsError::NotFound {
                path: self.path.clone(),
                name: name.to_string(),
            })
    }

    /// The tensor's bytes, borrowed from the map.
    pub fn view(&self, name: &str) -> Result<TensorView<'_>, SafetensorsError> {
        let r = self.range(name)?;
        let info = self.get(name).ok_or_else(|| SafetensorsError::NotFound {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        let data = self.mmap.get(r).unwrap_or_default();
        TensorView::contiguous(info.dtype, info.shape.clone(), data).map_err(|source| {
            SafetensorsError::View {
                path: self.path.clone(),
                name: name.to_string(),
                error: source,
            }
        })
    }

    /// Drop the tensor's pages from memory (`MADV_DONTNEED`); best effort.
    pub fn release(&self, name: &str) {
        if let Ok(r) = self.range(name) {
            release_range(&self.mmap, r.start, r.end - r.start);
        }
    }
}

type Parsed = (
    Vec<TensorInfo>,
    Vec<Range<usize>>,
    Option<HashMap<String, String>>,
);

/// Check the header length ourselves, then let the `safetensors` crate validate the rest.
pub(crate) fn parse(buf: &[u8], path: &Path) -> Result<Parsed, SafetensorsError> {
    let file_len = buf.len() as u64;
    let Some(len_bytes) = buf.get(..8) else {
        return Err(SafetensorsError::TooShort {
            path: path.to_path_buf(),
            len: file_len,
        });
    };
    let header_len = u64::from_le_bytes(len_bytes.try_into().unwrap_or_default());
    if header_len > MAX_HEADER_LEN || header_len > file_len - 8 {
        return Err(SafetensorsError::BadHeaderLength {
            path: path.to_path_buf(),
            header_len,
            file_len,
        });
    }
    let (n, meta) = ::safetensors::SafeTensors::read_metadata(buf).map_err(|source| {
        SafetensorsError::Invalid {
            path: path.to_path_buf(),
            error: source,
        }
    })?;
    let data_start = 8 + n;
    let mut tensors = Vec::new();
    let mut ranges = Vec::new();
    for name in meta.offset_keys() {
        let Some(info) = meta.info(&name) else {
            continue; // offset_keys only lists names that info() knows
        };
        let Some(dtype) = dtype_from_st(info.dtype) else {
            return Err(SafetensorsError::UnsupportedDtype {
                path: path.to_path_buf(),
                name,
                dtype: info.dtype.to_string(),
            });
        };
        // The crate proved the offsets contiguous and covering the file: no overflow.
        let (s, e) = info.data_offsets;
        ranges.push(data_start + s..data_start + e);
        tensors.push(TensorInfo {
            name,
            dtype,
            shape: info.shape.iter().map(|&d| d as u64).collect(),
        });
    }
    Ok((tensors, ranges, meta.metadata().clone()))
}
