//! GGUF v2/v3: a validating reader over a memory map and a streaming writer, following
//! ggml's `docs/gguf.md` (<https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>) and
//! matching what llama.cpp's `gguf-py` writes byte for byte (padding after the tensor infos
//! and after every tensor, `general.alignment` written only when it is not 32).
//!
//! Shapes are exposed in numpy order (outermost first); the file stores the reverse.

mod parse;
mod reader;
mod split;
mod value;
mod writer;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use reader::{GgufFile, GgufTensor};
pub use split::GgufSplit;
pub use value::{GgufArray, GgufValue, GgufValueType};
pub use writer::GgufWriter;

use crate::dtype::DType;
use crate::sequence::SequenceError;
use crate::tensor::ViewError;

/// `GGUF` in file order.
pub(crate) const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// The version this crate writes.
pub(crate) const GGUF_VERSION: u32 = 3;
/// Data alignment when `general.alignment` is absent.
pub(crate) const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's `GGML_MAX_DIMS`: llama.cpp refuses tensors with more dimensions.
pub(crate) const MAX_DIMS: usize = 4;

/// What is wrong with a GGUF file's bytes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GgufProblem {
    /// The first four bytes are not `GGUF`.
    #[error("not a GGUF file: magic is {0:02x?}, expected \"GGUF\"")]
    BadMagic([u8; 4]),
    /// GGUF v1 used 32-bit counts; ggml dropped it.
    #[error("GGUF version 1 is not supported (only versions 2 and 3): re-convert the model with a current llama.cpp")]
    Version1,
    /// Any other version (a big-endian file reads as 0x02000000 or 0x03000000).
    #[error(
        "unsupported GGUF version {0:#x} (only versions 2 and 3, little-endian, are supported)"
    )]
    UnsupportedVersion(u32),
    /// The file ends inside a structure.
    #[error("file is truncated: {what} needs {need} more bytes but only {left} remain")]
    Truncated {
        /// What was being read.
        what: String,
        /// Bytes needed.
        need: u64,
        /// Bytes left.
        left: u64,
    },
    /// A count that cannot possibly fit in the rest of the file.
    #[error(
        "{what}: count {count} cannot fit in the {left} bytes left (each takes at least {min})"
    )]
    CountTooLarge {
        /// What was being read.
        what: String,
        /// The count found.
        count: u64,
        /// Fewest bytes each entry takes.
        min: u64,
        /// Bytes left.
        left: u64,
    },
    /// A string that is not UTF-8.
    #[error("{0}: string is not valid UTF-8")]
    BadUtf8(String),
    /// A metadata value type id outside 0..=12.
    #[error("{what}: unknown metadata value type {id}")]
    UnknownValueType {
        /// What was being read.
        what: String,
        /// The id found.
        id: u32,
    },
    /// A bool byte other than 0 or 1.
    #[error("{what}: bool byte is {byte}, expected 0 or 1")]
    BadBool {
        /// What was being read.
        what: String,
        /// The byte found.
        byte: u8,
    },
    /// Arrays nested too deep.
    #[error("{what}: arrays nested deeper than {max} levels")]
    ArrayTooDeep {
        /// What was being read.
        what: String,
        /// The limit.
        max: u32,
    },
    /// The same key twice.
    #[error("duplicate metadata key {0:?}")]
    DuplicateKey(String),
    /// `general.alignment` is not a u32 power of two.
    #[error("general.alignment must be a UINT32 power of two, found {0}")]
    BadAlignment(String),
    /// The same tensor name twice.
    #[error("duplicate tensor name {0:?}")]
    DuplicateTensor(String),
    /// More than [`MAX_DIMS`] dimensions.
    #[error("tensor {name:?} has {n_dims} dimensions (at most 4)")]
    TooManyDims {
        /// The name, as written in the file.
        name: String,
        /// Number of dimensions found.
        n_dims: u32,
    },
    /// A ggml type id this crate does not know.
    #[error("tensor {name:?} has unknown ggml type id {id}")]
    UnknownGgmlType {
        /// The name, as written in the file.
        name: String,
        /// The id found.
        id: u32,
    },
    /// Dimensions whose product (or byte size) overflows.
    #[error("tensor {name:?}: dimensions {dims:?} overflow")]
    ShapeOverflow {
        /// The name, as written in the file.
        name: String,
        /// The dimensions.
        dims: Vec<u64>,
    },
    /// Innermost dimension not a whole number of quantization blocks.
    #[error(
        "tensor {name:?}: innermost dimension {dim} is not a multiple of the {dtype} block size"
    )]
    PartialBlock {
        /// The name, as written in the file.
        name: String,
        /// The dimension.
        dim: u64,
        /// The element type.
        dtype: DType,
    },
    /// Data offset not a multiple of the alignment.
    #[error(
        "tensor {name:?}: data offset {offset} is not a multiple of the alignment {alignment}"
    )]
    Misaligned {
        /// The name, as written in the file.
        name: String,
        /// Byte offset.
        offset: u64,
        /// The alignment.
        alignment: u64,
    },
    /// Data reaching past the end of the file.
    #[error("tensor {name:?}: data at offset {offset} reaches past the end of the file ({file_len} bytes)")]
    DataOutOfBounds {
        /// The name, as written in the file.
        name: String,
        /// Byte offset.
        offset: u64,
        /// File length in bytes.
        file_len: u64,
    },
    /// Two tensors share bytes.
    #[error("tensors {a:?} and {b:?} overlap")]
    Overlap {
        /// The first one.
        a: String,
        /// The second one.
        b: String,
    },
    /// The header would take more memory than [`MAX_HEADER_MEMORY`] once parsed.
    #[error("{what}: the metadata and tensor infos need more than {limit} bytes of memory (counting per-entry overhead)")]
    HeaderTooLarge {
        /// What was being read.
        what: String,
        /// The limit.
        limit: u64,
    },
}

/// Most memory a parsed GGUF header (metadata keys and values, tensor infos and their
/// indexes, counting each entry's overhead) may take: 128 MiB. A LLaMA 1 file needs ~2 MB,
/// a 256k-vocabulary one with merges ~30 MB.
pub(crate) const MAX_HEADER_MEMORY: u64 = 128 << 20;

/// Errors of the GGUF reader and writer.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// Opening or mapping a file failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The file is not a valid GGUF file.
    #[error("{}: {problem} (at byte {offset})", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Byte offset.
        offset: u64,
        /// The problem.
        problem: GgufProblem,
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
    /// Writing the output failed.
    #[error("writing GGUF: {0}")]
    Write(#[from] std::io::Error),
    /// The alignment is not a power of two that fits in u32.
    #[error("GGUF alignment {0} is not a power of two below 2^32")]
    BadAlignment(u64),
    /// The metadata's `general.alignment` disagrees with the writer's alignment.
    #[error("metadata general.alignment is {metadata} but the writer aligns to {alignment}")]
    AlignmentMismatch {
        /// The metadata.
        metadata: String,
        /// The alignment.
        alignment: u64,
    },
    /// A metadata key given twice.
    #[error("metadata key {0:?} given twice")]
    DuplicateKey(String),
    /// A tensor name given twice.
    #[error("tensor name {0:?} given twice")]
    DuplicateTensorName(String),
    /// A dtype ggml has no type id for.
    #[error("tensor {name:?}: {dtype} cannot be stored in GGUF")]
    NotInGguf {
        /// The name, as written in the file.
        name: String,
        /// The element type.
        dtype: DType,
    },
    /// A shape GGUF cannot hold: more than 4 dimensions, overflow, or a partial block.
    #[error("tensor {name:?}: shape {shape:?} cannot be stored in GGUF (at most 4 dimensions, innermost a whole number of blocks, no overflow)")]
    BadShape {
        /// The name, as written in the file.
        name: String,
        /// The shape.
        shape: Vec<u64>,
    },
    /// The data did not follow the declared tensors (order, sizes, completeness).
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    /// A file of a split model whose name does not follow `NAME-00001-of-0000N.gguf`.
    #[error("{}: split.count is {count} but the file name does not follow NAME-00001-of-{count:05}.gguf", path.display())]
    SplitName {
        /// The file.
        path: PathBuf,
        /// The count found.
        count: u64,
    },
    /// A split file whose `split.no` / `split.count` disagree with its place.
    #[error("{}: {key} is {found}, expected {expected}", path.display())]
    SplitMismatch {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What was expected.
        expected: u64,
        /// What was found.
        found: String,
    },
    /// The same tensor in two files of a split model.
    #[error("{}: tensor {name:?} is also in an earlier file of the split", path.display())]
    SplitDuplicateTensor {
        /// The file.
        path: PathBuf,
        /// The name, as written in the file.
        name: String,
    },
    /// `split.tensors.count` disagrees with the tensors found.
    #[error("{}: split.tensors.count is {expected} but the files hold {found} tensors", path.display())]
    SplitTensorCount {
        /// The file.
        path: PathBuf,
        /// What was expected.
        expected: u64,
        /// What was found.
        found: u64,
    },
}

impl GgufError {
    /// The file problem, when this is an `Invalid` error.
    pub fn problem(&self) -> Option<&GgufProblem> {
        match self {
            GgufError::Invalid { problem, .. } => Some(problem),
            _ => None,
        }
    }
}
