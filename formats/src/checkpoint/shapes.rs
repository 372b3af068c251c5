//! The model's hyper-parameters as a [`Checkpoint`] states them (`params.json`,
//! `config.json` or GGUF metadata, plus the vocabulary and FFN size read off the tensors),
//! and the check of every LLaMA tensor's presence and shape against them.

use super::{Checkpoint, CheckpointError, Result};
use crate::llama::{ModelParams, Role, TensorName};

impl Checkpoint {
    /// The model's hyper-parameters, from params.json / config.json / GGUF metadata plus
    /// the tensor shapes; checked against every LLaMA tensor's shape.
    /// Validated once per checkpoint; later calls return the same parameters.
    pub fn params(&self) -> Result<ModelParams> {
        if let Some(p) = self.params.get() {
            return Ok(p.clone());
        }
        let p = self.params_unchecked()?;
        self.check_shapes(&p)?;
        Ok(self.params.get_or_init(|| p).clone())
    }

    /// Parameters from the metadata and the embedding / w1 shapes, without checking every
    /// tensor (the validated ones when [`params`](Self::params) has run).
    pub(super) fn params_unchecked(&self) -> Result<ModelParams> {
        if let Some(p) = self.params.get() {
            return Ok(p.clone());
        }
        let bad = |msg: String| CheckpointError::Tensor {
            path: self.path.clone(),
            msg,
        };
        let shape_of = |t: TensorName| self.tensor_info(t).map(|(_, s)| s);
        let emb = shape_of(TensorName::global(Role::TokEmbeddings))?;
        let w1 = shape_of(TensorName::layer(0, Role::W1))?;
        let (vocab, hidden) = (
            emb.first().copied().unwrap_or(0),
            w1.first().copied().unwrap_or(0),
        );
        let p = if let Some(mp) = &self.meta_params {
            let p = ModelParams::from_meta(mp, vocab, hidden);
            if mp.vocab_size > 0 && mp.vocab_size as u64 != vocab {
                return Err(bad(format!(
                    "params.json says vocab_size {} but tok_embeddings has {vocab} rows",
                    mp.vocab_size
                )));
            }
            if mp.hidden_dim() != hidden {
                let mult = mp
                    .ffn_dim_multiplier
                    .map_or("none".to_string(), |m| m.to_string());
                return Err(bad(format!(
                    "params.json implies FFN hidden size {} (dim {}, multiple_of {}, ffn_dim_multiplier {mult}) but w1 has {hidden} rows",
                    mp.hidden_dim(),
                    mp.dim,
                    mp.multiple_of,
                )));
            }
            p
        } else if let Some(cfg) = &self.hf_config {
            ModelParams::from_hf_config(&self.path.join("config.json"), cfg)?
        } else if let Some(g) = self.gguf() {
            crate::gguf_llama::params_from_gguf(g).map_err(bad)?
        } else {
            return Err(bad(
                "no params.json, config.json or GGUF metadata to take the model's parameters from"
                    .into(),
            ));
        };
        p.check(&self.path)?;
        Ok(p)
    }

    /// Check every LLaMA tensor's presence and shape against the parameters.
    fn check_shapes(&self, p: &ModelParams) -> Result<()> {
        let bad = |msg: String| CheckpointError::Tensor {
            path: self.path.clone(),
            msg,
        };
        let n_layers = self
            .llama_tensors()
            .iter()
            .filter_map(|t| t.layer)
            .max()
            .map(|l| l as u64 + 1)
            .unwrap_or(0);
        if n_layers != p.n_layers {
            return Err(bad(format!(
                "parameters say {} layers but the tensors hold {n_layers}",
                p.n_layers
            )));
        }
        for t in self.llama_tensors() {
            if t.role == Role::RopeFreqs {
                continue;
            }
            let (_, shape) = self.tensor_info(t)?;
            let want = t.expected_shape(p);
            if shape != want {
                return Err(bad(format!(
                    "tensor `{}` has shape {shape:?} but the parameters imply {want:?}",
                    t.meta()
                )));
            }
        }
        for t in TensorName::all(p.n_layers) {
            if !self.names.contains_key(&t) {
                return Err(bad(format!("LLaMA tensor `{}` is missing", t.meta())));
            }
        }
        Ok(())
    }
}
