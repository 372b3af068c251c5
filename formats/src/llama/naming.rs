//! Tensor names: one [`TensorName`] per LLaMA tensor, spelt in each of the three layouts.
//!
//! | Meta | Hugging Face | GGUF |
//! |---|---|---|
//! | `tok_embeddings.weight` | `model.embed_tokens.weight` | `token_embd.weight` |
//! | `norm.weight` | `model.norm.weight` | `output_norm.weight` |
//! | `output.weight` | `lm_head.weight` | `output.weight` |
//! | `layers.N.attention.wq.weight` | `model.layers.N.self_attn.q_proj.weight` | `blk.N.attn_q.weight` |
//! | `layers.N.attention.wk/wv/wo` | `k_proj/v_proj/o_proj` | `attn_k/attn_v/attn_output` |
//! | `layers.N.feed_forward.w1/w2/w3` | `mlp.gate_proj/down_proj/up_proj` | `ffn_gate/ffn_down/ffn_up` |
//! | `layers.N.attention_norm` | `input_layernorm` | `attn_norm` |
//! | `layers.N.ffn_norm` | `post_attention_layernorm` | `ffn_norm` |
//!
//! `rope.freqs` (a buffer in Meta shards) has no HF or GGUF name and is dropped on export.

use std::fmt;

/// What a tensor is, independent of layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The token embedding table (`tok_embeddings.weight`, vocab x dim).
    TokEmbeddings,
    /// A layer's RMS norm before attention (`attention_norm.weight`).
    AttnNorm,
    /// Attention query projection (`attention.wq.weight`).
    Wq,
    /// Attention key projection (`attention.wk.weight`).
    Wk,
    /// Attention value projection (`attention.wv.weight`).
    Wv,
    /// Attention output projection (`attention.wo.weight`).
    Wo,
    /// A layer's RMS norm before the feed-forward block (`ffn_norm.weight`).
    FfnNorm,
    /// Feed-forward gate projection (`feed_forward.w1.weight`).
    W1,
    /// Feed-forward down projection (`feed_forward.w2.weight`).
    W2,
    /// Feed-forward up projection (`feed_forward.w3.weight`).
    W3,
    /// The final RMS norm (`norm.weight`).
    Norm,
    /// The output projection to logits (`output.weight`).
    Output,
    /// Rotary frequencies (`rope.freqs`, not a weight).
    RopeFreqs,
}

/// A LLaMA tensor: its role and, for per-layer tensors, its layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorName {
    /// Layer index for per-layer tensors.
    pub layer: Option<usize>,
    /// What the tensor is.
    pub role: Role,
}

const LAYER_ROLES: [(Role, &str, &str, &str); 9] = [
    (Role::Wq, "attention.wq", "self_attn.q_proj", "attn_q"),
    (Role::Wk, "attention.wk", "self_attn.k_proj", "attn_k"),
    (Role::Wv, "attention.wv", "self_attn.v_proj", "attn_v"),
    (Role::Wo, "attention.wo", "self_attn.o_proj", "attn_output"),
    (Role::W1, "feed_forward.w1", "mlp.gate_proj", "ffn_gate"),
    (Role::W2, "feed_forward.w2", "mlp.down_proj", "ffn_down"),
    (Role::W3, "feed_forward.w3", "mlp.up_proj", "ffn_up"),
    (
        Role::AttnNorm,
        "attention_norm",
        "input_layernorm",
        "attn_norm",
    ),
    (
        Role::FfnNorm,
        "ffn_norm",
        "post_attention_layernorm",
        "ffn_norm",
    ),
];

const GLOBAL_ROLES: [(Role, &str, &str, &str); 3] = [
    (
        Role::TokEmbeddings,
        "tok_embeddings",
        "model.embed_tokens",
        "token_embd",
    ),
    (Role::Norm, "norm", "model.norm", "output_norm"),
    (Role::Output, "output", "lm_head", "output"),
];

/// Which layout a name is spelt in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Meta's names (`layers.0.attention.wq.weight`).
    Meta,
    /// Hugging Face transformers names (`model.layers.0.self_attn.q_proj.weight`).
    Hf,
    /// llama.cpp's GGUF names (`blk.0.attn_q.weight`).
    Gguf,
}

impl TensorName {
    /// A global tensor.
    pub fn global(role: Role) -> TensorName {
        TensorName { layer: None, role }
    }

    /// A per-layer tensor.
    pub fn layer(layer: usize, role: Role) -> TensorName {
        TensorName {
            layer: Some(layer),
            role,
        }
    }

    /// Parse a name in the given layout; `None` for names that are not LLaMA tensors.
    pub fn parse(name: &str, layout: Layout) -> Option<TensorName> {
        if layout == Layout::Meta && name == "rope.freqs" {
            return Some(TensorName::global(Role::RopeFreqs));
        }
        let stem = name.strip_suffix(".weight")?;
        let pick = |t: &(Role, &'static str, &'static str, &'static str)| match layout {
            Layout::Meta => t.1,
            Layout::Hf => t.2,
            Layout::Gguf => t.3,
        };
        if let Some(t) = GLOBAL_ROLES.iter().find(|t| pick(t) == stem) {
            return Some(TensorName::global(t.0));
        }
        let prefix = match layout {
            Layout::Meta => "layers.",
            Layout::Hf => "model.layers.",
            Layout::Gguf => "blk.",
        };
        let rest = stem.strip_prefix(prefix)?;
        let (idx, role) = rest.split_once('.')?;
        if idx.is_empty()
            || !idx.bytes().all(|b| b.is_ascii_digit())
            || (idx.len() > 1 && idx.starts_with('0'))
        {
            return None;
        }
        let layer: usize = idx.parse().ok()?;
        let t = LAYER_ROLES.iter().find(|t| pick(t) == role)?;
        Some(TensorName::layer(layer, t.0))
    }

    /// The name in the given layout (`None` for `rope.freqs` outside Meta).
    pub fn to_layout(&self, layout: Layout) -> Option<String> {
        if self.role == Role::RopeFreqs {
            return (layout == Layout::Meta).then(|| "rope.freqs".to_string());
        }
        let pick = |t: &(Role, &'static str, &'static str, &'static str)| match layout {
            Layout::Meta => t.1,
            Layout::Hf => t.2,
            Layout::Gguf => t.3,
        };
        match self.layer {
            None => GLOBAL_ROLES
                .iter()
                .find(|t| t.0 == self.role)
                .map(|t| format!("{}.weight", pick(t))),
            Some(l) => {
                let t = LAYER_ROLES.iter().find(|t| t.0 == self.role)?;
                let prefix = match layout {
                    Layout::Meta => "layers",
                    Layout::Hf => "model.layers",
                    Layout::Gguf => "blk",
                };
                Some(format!("{prefix}.{l}.{}.weight", pick(t)))
            }
        }
    }

    /// Meta name (always defined).
    pub fn meta(&self) -> String {
        self.to_layout(Layout::Meta).unwrap_or_default()
    }

    /// Dimension along which Meta's model-parallel shards split this tensor
    /// (`None`: replicated in every shard). ColumnParallelLinear (wq wk wv w1 w3 output) on 0,
    /// RowParallelLinear (wo w2) and ParallelEmbedding (tok_embeddings) on 1.
    pub(crate) fn split_axis(&self) -> Option<usize> {
        match self.role {
            Role::Wq | Role::Wk | Role::Wv | Role::W1 | Role::W3 | Role::Output => Some(0),
            Role::Wo | Role::W2 | Role::TokEmbeddings => Some(1),
            Role::AttnNorm | Role::FfnNorm | Role::Norm | Role::RopeFreqs => None,
        }
    }

    /// The expected shape (numpy order, Meta orientation) for a model.
    pub fn expected_shape(&self, p: &super::ModelParams) -> Vec<u64> {
        let (d, h, v) = (p.dim, p.hidden_dim, p.vocab_size);
        let kv = p.head_dim() * p.n_kv_heads;
        match self.role {
            Role::TokEmbeddings | Role::Output => vec![v, d],
            Role::Wq | Role::Wo => vec![d, d],
            Role::Wk | Role::Wv => vec![kv, d],
            Role::W1 | Role::W3 => vec![h, d],
            Role::W2 => vec![d, h],
            Role::AttnNorm | Role::FfnNorm | Role::Norm => vec![d],
            Role::RopeFreqs => vec![p.head_dim() / 2],
        }
    }

    /// Every tensor of a model in Meta's state-dict order (as `torch.save` of Meta's
    /// `Transformer` writes it), without `rope.freqs`.
    pub fn all(n_layers: u64) -> Vec<TensorName> {
        let mut v = vec![
            TensorName::global(Role::TokEmbeddings),
            TensorName::global(Role::Norm),
            TensorName::global(Role::Output),
        ];
        for l in 0..n_layers as usize {
            for role in [
                Role::Wq,
                Role::Wk,
                Role::Wv,
                Role::Wo,
                Role::W1,
                Role::W2,
                Role::W3,
                Role::AttnNorm,
                Role::FfnNorm,
            ] {
                v.push(TensorName::layer(l, role));
            }
        }
        v
    }
}

impl fmt::Display for TensorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.meta())
    }
}

/// The kind of a GGUF tensor, its name without the layer: `blk.7.attn_v.weight` ->
/// `attn_v.weight`; a global tensor's name as it is.
pub fn gguf_tensor_kind(name: &str) -> &str {
    match name.strip_prefix("blk.") {
        Some(rest) => rest.split_once('.').map_or(rest, |(_, k)| k),
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gguf_tensor_kind_drops_the_layer() {
        assert_eq!(gguf_tensor_kind("blk.7.attn_v.weight"), "attn_v.weight");
        assert_eq!(gguf_tensor_kind("output_norm.weight"), "output_norm.weight");
        assert_eq!(gguf_tensor_kind("blk.x"), "x");
    }

    #[test]
    fn names_round_trip_through_every_layout() {
        for t in TensorName::all(3) {
            for layout in [Layout::Meta, Layout::Hf, Layout::Gguf] {
                let s = t.to_layout(layout).unwrap();
                assert_eq!(TensorName::parse(&s, layout), Some(t), "{s}");
            }
        }
        assert_eq!(
            TensorName::layer(7, Role::W2)
                .to_layout(Layout::Gguf)
                .unwrap(),
            "blk.7.ffn_down.weight"
        );
        assert_eq!(
            TensorName::layer(0, Role::Wq)
                .to_layout(Layout::Hf)
                .unwrap(),
            "model.layers.0.self_attn.q_proj.weight"
        );
    }

    #[test]
    fn unknown_and_odd_names_are_not_llama_tensors() {
        assert_eq!(
            TensorName::parse("layers.01.attention.wq.weight", Layout::Meta),
            None
        );
        assert_eq!(
            TensorName::parse("layers.x.attention.wq.weight", Layout::Meta),
            None
        );
        assert_eq!(TensorName::parse("lm_head.bias", Layout::Hf), None);
        assert_eq!(
            TensorName::parse("rope.freqs", Layout::Meta),
            Some(TensorName::global(Role::RopeFreqs))
        );
        assert_eq!(TensorName::parse("rope.freqs", Layout::Gguf), None);
    }
}
