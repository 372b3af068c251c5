//! llama-ggml: the ggml tensor types and llama.cpp's block quantization.
//!
//! The lowest layer of llama-tool: [`DType`] (every element type a checkpoint may hold,
//! with ggml's type ids and block sizes), conversion between the float types ([`cast`]),
//! and the quantizers and dequantizers of [`quant`], byte-identical to llama.cpp's
//! reference path, with its per-tensor mixes ([`quant::Preset`]). Nothing here knows about
//! files or about LLaMA: the codecs (`llama-codecs`) and the model layer (`llama-formats`)
//! build on it.
#![deny(missing_docs)]

pub mod cast;
pub mod dtype;
pub mod quant;

pub use dtype::DType;
pub use quant::{Preset, QuantError};
