//! llama-formats: the bottom layer of llama-tool.
//!
//! Readers and writers for LLaMA checkpoints that never execute code and never load a whole
//! model: torch `.pth` (zip + an allow-listed pickle machine), safetensors, GGUF and
//! SentencePiece `tokenizer.model`; the LLaMA layout (Meta / Hugging Face / GGUF naming,
//! split axes, rotary permutation); merge and reshard; ggml quantization.
//!
//! Data flows one way: reader -> [`llama_codecs::TensorView`] stream -> transform -> writer.
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

/// Whole-file quantization of a GGUF (`quantize IN OUT TYPE`): the plan and the quantizer,
/// built on the kernels and presets of [`llama_ggml::quant`] and the GGUF codec.
pub mod quant {
    mod file;

    pub use file::{plan, quantize_gguf, QuantFileError, QuantReport, TensorPlan};
}

// The layers below, named as modules of this crate for its own code only (callers import
// them from `llama_codecs` and `llama_ggml`).
use llama_codecs::{gguf, pth, safe_read, safetensors, sentencepiece, tensor, text};
use llama_ggml::{cast, dtype};

pub use checkpoint::{Checkpoint, CheckpointError};
pub use export::gguf::write_gguf;
pub use export::hf::write_hf;
pub use export::meta::write_meta;
pub use export::{ExportError, ExportSummary, Progress};
pub use inspect::{inspect, InspectReport};
pub use llama::{ModelParams, TensorName};
pub use quant::quantize_gguf;
