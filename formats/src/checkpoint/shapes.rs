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
        let path = || self.path.clone();
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
                return Err(CheckpointError::VocabMismatch {
                    path: path(),
                    params: mp.vocab_size,
                    rows: vocab,
                });
            }
            if mp.hidden_dim() != hidden {
                let mult = mp
                    .ffn_dim_multiplier
                    .map_or("none".to_string(), |m| m.to_string());
                return Err(CheckpointError::HiddenMismatch {
                    path: path(),
                    implied: mp.hidden_dim(),
                    dim: mp.dim,
                    multiple_of: mp.multiple_of,
                    multiplier: mult,
                    rows: hidden,
                });
            }
            p
        } else if let Some(cfg) = &self.hf_config {
            ModelParams::from_hf_config(&self.path.join("config.json"), cfg)?
        } else if let Some(g) = self.gguf() {
            crate::gguf_llama::params_from_gguf(g)
                .map_err(|kind| CheckpointError::GgufParams { path: path(), kind })?
        } else {
            return Err(CheckpointError::NoParams { path: path() });
        };
        p.check(&self.path)?;
        Ok(p)
    }

    /// Check every LLaMA tensor's presence and shape against the parameters.
    fn check_shapes(&self, p: &ModelParams) -> Result<()> {
        let n_layers = self
            .llama_tensors()
            .iter()
            .filter_map(|t| t.layer)
            .max()
            .map(|l| l as u64 + 1)
            .unwrap_or(0);
        if n_layers != p.n_layers {
            return Err(CheckpointError::LayerCount {
                path: self.path.clone(),
                params: p.n_layers,
                tensors: n_layers,
            });
        }
        for t in self.llama_tensors() {
            if t.role == Role::RopeFreqs {
                continue;
            }
            let (_, shape) = self.tensor_info(t)?;
            let want = t.expected_shape(p);
            if shape != want {
                return Err(CheckpointError::Shape {
                    path: self.path.clone(),
                    tensor: t.meta(),
                    shape,
                    want,
                });
            }
        }
        for t in TensorName::all(p.n_layers) {
            if !self.names.contains_key(&t) {
                return Err(CheckpointError::LlamaTensorMissing {
                    path: self.path.clone(),
                    tensor: t.meta(),
                });
            }
        }
        Ok(())
    }
}
