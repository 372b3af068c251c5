//! Which LLaMA generation a set of hyper-parameters belongs to, and the context length it
//! was trained with: what a converter writes as `llama.context_length` /
//! `max_position_embeddings` when the source does not say (Meta's `params.json` never does).
//!
//! Meta's `params.json` carries no version, but the releases differ in what it holds
//! (facebookresearch/llama `params.json` of each release; llama.cpp's legacy `convert.py`
//! made the same distinction):
//! - LLaMA 1 (2048 tokens): 7B/13B/30B `norm_eps` 1e-6, 65B 1e-5, no `n_kv_heads`;
//! - Llama 2 (4096 tokens): 7B/13B the LLaMA 1 shapes with `norm_eps` 1e-5, 70B with
//!   grouped-query attention (`n_kv_heads` 8), which LLaMA 1 never had;
//! - Code Llama (16384 tokens): Llama 2 shapes with `rope_theta` 1e6.

use super::params::{KnownSize, ModelParams};

/// A LLaMA generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// LLaMA (February 2023): 2048-token context.
    Llama1,
    /// Llama 2 (July 2023): 4096-token context.
    Llama2,
    /// Code Llama (August 2023): 16384-token context.
    CodeLlama,
}

impl Family {
    /// The context length the family was trained with.
    pub fn context_length(self) -> u64 {
        match self {
            Family::Llama1 => 2048,
            Family::Llama2 => 4096,
            Family::CodeLlama => 16384,
        }
    }
}

impl ModelParams {
    /// The generation these parameters are from, when they say it: `None` for a model that
    /// is not one of the released shapes (a custom or truncated model).
    pub fn family(&self) -> Option<Family> {
        if self.rope_theta == 1_000_000.0 {
            return Some(Family::CodeLlama);
        }
        if self.n_kv_heads != self.n_heads {
            return Some(Family::Llama2);
        }
        let size = self.known_size()?;
        match size {
            KnownSize::B7 | KnownSize::B13 if self.norm_eps == 1e-5 => Some(Family::Llama2),
            _ if self.norm_eps == size.norm_eps() => Some(Family::Llama1),
            _ => None,
        }
    }

    /// The context length to write into a converted model: the source's own when it has
    /// one, else its family's ([`Family::context_length`]), else LLaMA 1's 2048 (a custom
    /// model's forward pass is the same; the value only bounds the prompt length).
    pub fn default_context_length(&self) -> u64 {
        self.context_length
            .unwrap_or_else(|| self.family().unwrap_or(Family::Llama1).context_length())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(size: KnownSize, norm_eps: f64) -> ModelParams {
        let (dim, n_heads, n_layers, hidden_dim) = size.shape();
        ModelParams {
            dim,
            n_layers,
            n_heads,
            n_kv_heads: n_heads,
            vocab_size: 32000,
            hidden_dim,
            norm_eps,
            rope_theta: 10000.0,
            context_length: None,
        }
    }

    #[test]
    fn released_meta_params_get_their_family_context_length() {
        // LLaMA 1 as released: 7B/13B/30B 1e-6, 65B 1e-5.
        for size in KnownSize::ALL {
            let p = params(size, size.norm_eps());
            assert_eq!(p.family(), Some(Family::Llama1), "{}", size.name());
            assert_eq!(p.default_context_length(), 2048, "{}", size.name());
        }
        // Llama 2 7B and 13B: the same shapes with norm_eps 1e-5.
        for size in [KnownSize::B7, KnownSize::B13] {
            let p = params(size, 1e-5);
            assert_eq!(p.family(), Some(Family::Llama2), "{}", size.name());
            assert_eq!(p.default_context_length(), 4096, "{}", size.name());
        }
        // Llama 2 70B: grouped-query attention.
        let mut p70 = params(KnownSize::B65, 1e-5);
        p70.n_kv_heads = 8;
        p70.hidden_dim = 28672;
        assert_eq!(p70.default_context_length(), 4096);
        // Code Llama 7B: rope_theta 1e6.
        let mut code = params(KnownSize::B7, 1e-5);
        code.rope_theta = 1_000_000.0;
        assert_eq!(code.default_context_length(), 16384);
    }

    #[test]
    fn a_known_context_length_wins_and_custom_models_get_2048() {
        let mut p = params(KnownSize::B7, 1e-5);
        p.context_length = Some(1234);
        assert_eq!(p.default_context_length(), 1234);
        let mut custom = params(KnownSize::B7, 1e-6);
        custom.n_layers = 2;
        assert_eq!(custom.family(), None);
        assert_eq!(custom.default_context_length(), 2048);
    }
}
