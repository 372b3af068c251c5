//! [`WeightSource`] for every checkpoint `llama_formats::checkpoint::Checkpoint` opens:
//! Meta shards (merged on the fly), Hugging Face folders (q/k un-permuted back to Meta's
//! interleaved rotary layout by the checkpoint), GGUF (float and quantized blocks).
//! Each tensor is read whole, then its mapped pages are released.

use std::borrow::Cow;

use llama_formats::checkpoint::Checkpoint;
use llama_formats::llama::naming::Layout;
use llama_formats::llama::TensorName;

use crate::weights::{InferError, LlamaConfig, WeightSource, WeightTensor};

impl WeightSource for Checkpoint {
    fn config(&self) -> Result<LlamaConfig, InferError> {
        let p = self.params().map_err(InferError::source)?;
        let us = |v: u64, what: &str| {
            usize::try_from(v).map_err(|_| InferError::Config(format!("{what} {v} is too large")))
        };
        Ok(LlamaConfig {
            dim: us(p.dim, "dim")?,
            n_layers: us(p.n_layers, "n_layers")?,
            n_heads: us(p.n_heads, "n_heads")?,
            n_kv_heads: us(p.n_kv_heads, "n_kv_heads")?,
            vocab_size: us(p.vocab_size, "vocab_size")?,
            hidden_dim: us(p.hidden_dim, "hidden_dim")?,
            norm_eps: p.norm_eps,
            rope_theta: p.rope_theta,
        })
    }

    fn tensor(&self, meta_name: &str) -> Result<WeightTensor<'_>, InferError> {
        let t = TensorName::parse(meta_name, Layout::Meta)
            .ok_or_else(|| InferError::MissingTensor(meta_name.to_string()))?;
        let (dtype, shape) = self.tensor_info(t).map_err(InferError::source)?;
        let data = self.read(t).map_err(InferError::source)?;
        self.release(t);
        Ok(WeightTensor {
            dtype,
            shape,
            data: Cow::Owned(data),
        })
    }
}

/// The dtype that holds most of a checkpoint's 2-D layer weights (by element count): the
/// candidate "type" `check` picks its default thresholds by (Q4_K for a q4_k_m preset).
pub fn main_weight_dtype(ck: &Checkpoint) -> Result<llama_formats::DType, InferError> {
    use std::collections::BTreeMap;
    let mut by_type: BTreeMap<llama_formats::DType, u64> = BTreeMap::new();
    for t in ck.llama_tensors() {
        if t.layer.is_none() {
            continue;
        }
        let (dtype, shape) = ck.tensor_info(t).map_err(InferError::source)?;
        if shape.len() == 2 {
            *by_type.entry(dtype).or_default() += shape.iter().product::<u64>();
        }
    }
    by_type
        .into_iter()
        .max_by_key(|&(_, n)| n)
        .map(|(d, _)| d)
        .ok_or_else(|| InferError::MissingTensor("layers.0.attention.wq.weight".into()))
}
