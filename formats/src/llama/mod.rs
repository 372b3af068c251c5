//! The LLaMA model family: hyper-parameters (`params.json`, HF `config.json`, GGUF keys),
//! tensor naming across Meta / Hugging Face / GGUF, model-parallel split axes and the rotary
//! q/k permutation between Meta's interleaved and HF's half-split layouts.
//!
//! Sources: facebookresearch/llama `llama_v1` model.py (split axes), transformers'
//! `convert_llama_weights_to_hf.py` (names, permutation), llama.cpp `convert_hf_to_gguf.py`
//! (GGUF names). See shared/REFERENCE.md.

pub(crate) mod family;
pub mod naming;
pub(crate) mod params;
pub mod permute;

pub use family::Family;
pub use naming::{Role, TensorName};
pub use params::{KnownSize, MetaParams, ModelParams, ParamsError};
