//! safetensors: a reader over a memory map (single files and sharded folders with
//! `model.safetensors.index.json`) and a streaming writer, following the format described
//! at <https://github.com/huggingface/safetensors#format> and validated by the
//! `safetensors` crate (header capped at 100 MB, offsets contiguous and covering the file).
//!
//! The writer's header is what the Python package writes: compact JSON with `__metadata__`
//! first, then `{"dtype", "shape", "data_offsets"}` per tensor, padded with spaces to a
//! multiple of 8 bytes.

mod folder;
mod reader;
mod writer;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use folder::{index_json, SafetensorsFolder};
pub use reader::SafetensorsFile;
pub use writer::SafetensorsWriter;

use crate::dtype::DType;
use crate::sequence::SequenceError;
use crate::tensor::ViewError;

/// The safetensors crate's header cap (`MAX_HEADER_SIZE`).
pub(crate) const MAX_HEADER_LEN: u64 = 100_000_000;

/// The index file of a sharded checkpoint.
pub(crate) const INDEX_NAME: &str = "model.safetensors.index.json";

/// Errors of the safetensors reader and writer.
#[derive(Debug, thiserror::Error)]
pub enum SafetensorsError {
    /// Opening, mapping or listing failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The file is shorter than the 8-byte header length.
    #[error("{}: file is {len} bytes, too short for a safetensors header", path.display())]
    TooShort {
        /// The file.
        path: PathBuf,
        /// Length in bytes.
        len: u64,
    },
    /// The header length is over the cap or past the end of the file.
    #[error("{}: header length {header_len} is invalid (the file is {file_len} bytes; the limit is 100 MB)", path.display())]
    BadHeaderLength {
        /// The file.
        path: PathBuf,
        /// The header len.
        header_len: u64,
        /// File length in bytes.
        file_len: u64,
    },
    /// The `safetensors` crate refused the header or offsets.
    #[error("{}: invalid safetensors file: {error}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: ::safetensors::SafeTensorError,
    },
    /// A dtype llama-tool does not handle (F8, U16, C64, ...).
    #[error("{}: tensor {name:?} has dtype {dtype}, which llama-tool does not handle", path.display())]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// The name, as written in the file.
        name: String,
        /// The element type.
        dtype: String,
    },
    /// No tensor of that name.
    #[error("{}: no tensor named {name:?}", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
        /// The name, as written in the file.
        name: String,
    },
    /// A tensor's bytes do not make a view.
    #[error("{}: tensor {name:?}: {error}", path.display())]
    View {
        /// The file.
        path: PathBuf,
        /// The name, as written in the file.
        name: String,
        /// The underlying error.
        error: ViewError,
    },
    /// A folder with neither an index nor a single safetensors file.
    #[error("{}: no {INDEX_NAME} and {found} .safetensors files (expected an index or exactly one file)", path.display())]
    NoCheckpoint {
        /// The file.
        path: PathBuf,
        /// What was found.
        found: usize,
    },
    /// The index is not valid JSON of the expected shape.
    #[error("{}: invalid index: {error}", path.display())]
    BadIndex {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: serde_json::Error,
    },
    /// The index names a shard that is not a plain file name in the folder.
    #[error("{}: shard name {file:?} for tensor {name:?} is not a file name inside the folder", path.display())]
    BadShardName {
        /// The file.
        path: PathBuf,
        /// The name, as written in the file.
        name: String,
        /// The file.
        file: String,
    },
    /// A tensor the index lists is not in the shard it names.
    #[error("{}: index says tensor {name:?} is in {file}, but that shard does not hold it", path.display())]
    MissingFromShard {
        /// The file.
        path: PathBuf,
        /// The name, as written in the file.
        name: String,
        /// The file.
        file: String,
    },
    /// A shard holds a tensor the index does not list (or lists elsewhere).
    #[error("{}: shard {file} holds tensor {name:?}, which the index does not place there", path.display())]
    NotInIndex {
        /// The file.
        path: PathBuf,
        /// The name, as written in the file.
        name: String,
        /// The file.
        file: String,
    },
    /// Writing the output failed.
    #[error("writing safetensors: {0}")]
    Write(#[from] std::io::Error),
    /// A dtype safetensors cannot hold (ggml's quantized types).
    #[error("tensor {name:?}: {dtype} cannot be stored in safetensors")]
    NotInSafetensors {
        /// The name, as written in the file.
        name: String,
        /// The element type.
        dtype: DType,
    },
    /// A shape whose byte size overflows.
    #[error("tensor {name:?}: shape {shape:?} overflows")]
    BadShape {
        /// The name, as written in the file.
        name: String,
        /// The shape.
        shape: Vec<u64>,
    },
    /// A tensor name given twice, or the reserved `__metadata__`.
    #[error("tensor name {0:?} given twice or reserved")]
    BadTensorName(String),
    /// The header would exceed the 100 MB cap readers enforce.
    #[error("header of {0} bytes exceeds the 100 MB limit readers enforce")]
    HeaderTooLarge(u64),
    /// The data did not follow the declared tensors (order, sizes, completeness).
    #[error(transparent)]
    Sequence(#[from] SequenceError),
}

/// Our dtype for a safetensors dtype, where llama-tool handles it.
pub(crate) fn dtype_from_st(d: ::safetensors::Dtype) -> Option<DType> {
    use ::safetensors::Dtype as S;
    Some(match d {
        S::F64 => DType::F64,
        S::F32 => DType::F32,
        S::F16 => DType::F16,
        S::BF16 => DType::BF16,
        S::I64 => DType::I64,
        S::I32 => DType::I32,
        S::I16 => DType::I16,
        S::I8 => DType::I8,
        S::U8 => DType::U8,
        S::BOOL => DType::Bool,
        _ => return None,
    })
}

/// The safetensors header spelling of a dtype (`"BF16"`), where safetensors has one.
pub fn dtype_to_st_name(d: DType) -> Option<&'static str> {
    Some(match d {
        DType::F64 => "F64",
        DType::F32 => "F32",
        DType::F16 => "F16",
        DType::BF16 => "BF16",
        DType::I64 => "I64",
        DType::I32 => "I32",
        DType::I16 => "I16",
        DType::I8 => "I8",
        DType::U8 => "U8",
        DType::Bool => "BOOL",
        _ => return None,
    })
}
