//! llama-infer: a LLaMA forward pass on candle-core, the SentencePiece BPE encoder LLaMA
//! uses, and the logits comparison behind `llama-tool check`.
//!
//! Weights come through [`WeightSource`] (any checkpoint reader, by Meta tensor name);
//! [`logits`] computes next-token logits for every position in f32.

pub mod checkpoint_source;
pub mod compare;
pub mod layers;
pub mod model;
pub mod npy;
pub mod policy;
pub mod safetensors_source;
pub mod tokenizer;
pub mod weights;

pub use candle_core::Device;
pub use model::{logits, logits_batch};
pub use weights::{InferError, LlamaConfig, WeightSource, WeightTensor};

/// Whether this build can run on CUDA (`--features cuda`).
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// A device by name: `cpu`, `cuda` (GPU 0) or `cuda:N`. Asking for CUDA in a CPU-only
/// build is [`InferError::CudaNotBuilt`].
pub fn device(name: &str) -> Result<Device, InferError> {
    let name = name.trim().to_ascii_lowercase();
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match name.strip_prefix("cuda") {
        Some("") => 0,
        Some(rest) => rest
            .strip_prefix(':')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| InferError::UnknownDevice(name.clone()))?,
        None => return Err(InferError::UnknownDevice(name)),
    };
    if !CUDA_BUILT {
        return Err(InferError::CudaNotBuilt);
    }
    Ok(Device::new_cuda(ordinal)?)
}
