//! llama-formats: the bottom layer of llama-tool.
//!
//! Readers and writers for LLaMA checkpoints that never execute code and never load a whole
//! model: torch `.pth` (zip + an allow-listed pickle machine), safetensors, GGUF and
//! SentencePiece `tokenizer.model`; the LLaMA layout (Meta / Hugging Face / GGUF naming,
//! split axes, rotary permutation); merge and reshard; ggml quantization.
//!
//! Data flows one way: reader -> [`tensor::TensorView`] stream -> transform -> writer.
#![deny(missing_docs)]

pub mod atomic;
pub mod checkpoint;
pub mod convert;
pub mod export;
pub mod gguf_llama;
pub mod gguf_naming;
pub mod inspect;
pub mod llama;
pub mod merge;
pub mod output;
pub mod prompt;
pub mod synth;
pub mod vocab;

// The layers below, re-exported under their old paths (`llama_formats::gguf::GgufFile`,
// `crate::dtype::DType`): the codecs of `llama-codecs` and the ggml types of `llama-ggml`.
pub use llama_codecs::{
    gguf, mmap, pth, safe_read, safetensors, sentencepiece, sequence, tensor, text,
};
pub use llama_ggml::{cast, dtype};

/// ggml quantization: the kernels and presets of `llama-ggml` ([`llama_ggml::quant`]) plus
/// the whole-file quantizer of a GGUF (`quantize IN OUT TYPE`), which needs the GGUF codec.
pub mod quant {
    pub use llama_ggml::quant::*;

    mod file;

    pub use file::{plan, quantize_gguf, QuantFileError, QuantReport, TensorPlan};
}

pub use dtype::DType;
pub use tensor::{TensorInfo, TensorView};
