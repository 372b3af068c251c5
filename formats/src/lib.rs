//! llama-formats: the bottom layer of llama-tool.
//!
//! Readers and writers for LLaMA checkpoints that never execute code and never load a whole
//! model: torch `.pth` (zip + an allow-listed pickle machine), safetensors, GGUF and
//! SentencePiece `tokenizer.model`; the LLaMA layout (Meta / Hugging Face / GGUF naming,
//! split axes, rotary permutation); merge and reshard; ggml quantization.
//!
//! Data flows one way: reader -> [`tensor::TensorView`] stream -> transform -> writer.

pub mod atomic;
pub mod cast;
pub mod checkpoint;
pub mod dtype;
pub mod export;
pub mod gguf;
pub mod gguf_llama;
pub mod gguf_naming;
pub mod inspect;
pub mod llama;
pub mod merge;
pub mod mmap;
pub mod pth;
pub mod quant;
pub mod safe_read;
pub mod safetensors;
pub mod sentencepiece;
pub mod sequence;
pub mod synth;
pub mod tensor;
pub mod text;
pub mod vocab;

pub use dtype::DType;
pub use tensor::{TensorInfo, TensorView};
