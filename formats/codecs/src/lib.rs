//! llama-codecs: the checkpoint containers, read and written without executing code and
//! without loading a whole file.
//!
//! torch `.pth` ([`pth`]: zip + an allow-listed pickle machine), [`safetensors`], [`gguf`]
//! and SentencePiece `tokenizer.model` ([`sentencepiece`]); every reader checks each count,
//! length and offset against the file before it allocates, and hands out
//! [`TensorView`]s into a memory map. The LLaMA meaning of the tensors (names, split axes,
//! hyper-parameters) lives one layer up, in `llama-formats`.
#![deny(missing_docs)]

pub mod gguf;
pub mod mmap;
pub mod pth;
pub mod reader;
pub mod safe_read;
pub mod safetensors;
pub mod sentencepiece;
pub mod sequence;
pub mod tensor;
pub mod text;

// The element types and float conversions of `llama-ggml`, named as modules of this crate for
// its own code only (callers import them from `llama_ggml`).
use llama_ggml::dtype;

pub use reader::{ReaderError, TensorReader};
pub use tensor::{TensorInfo, TensorView};
