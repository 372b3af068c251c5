//! llama-infer: a LLaMA forward pass, the SentencePiece BPE encoder LLaMA uses, and the
//! logits comparison behind `llama-tool check`.
//!
//! Weights come through [`WeightSource`] (implemented by llama-formats'
//! [`Checkpoint`](llama_formats::checkpoint::Checkpoint) for every layout it opens), keyed by
//! typed [`TensorName`](llama_formats::llama::TensorName)s, with the model's one
//! [`ModelParams`](llama_formats::llama::ModelParams); [`logits`] computes next-token logits
//! for every position in f32 on a [`Device`]. The tensor backend (candle) is an
//! implementation detail: no candle type appears in this API.

#![deny(missing_docs)]

pub mod compare;
mod dense;
mod device;
mod error;
pub mod layers;
mod model;
pub mod npy;
pub mod policy;
pub mod tokenizer;
mod weights;

pub use compare::{Comparator, Comparison};
pub use device::{device, Device, CUDA_BUILT};
pub use error::{ComputeError, InferError};
pub use layers::{run_lockstep, LayerDivergence, Lockstep};
pub use model::{logits, logits_batch, ForwardPass};
pub use tokenizer::Tokenizer;
pub use weights::{main_weight_dtype, WeightSource, WeightTensor};
