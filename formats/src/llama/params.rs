//! Model hyper-parameters: Meta's `params.json`, Hugging Face's `config.json` and the
//! normalized [`ModelParams`] every converter works from.
//!
//! FFN hidden size (Meta model.py): `hidden = int(2 * 4 * dim / 3)`, then
//! `int(ffn_dim_multiplier * hidden)` when given (Llama 2), rounded up to `multiple_of`.
//! The release writes `vocab_size: -1`: the vocabulary comes from `tok_embeddings`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why parameters could not be read or do not fit the tensors.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    /// The file could not be read.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The JSON is malformed or misses a field.
    #[error("{path}: not a valid {what}: {error}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What was being read.
        what: &'static str,
        /// The underlying error.
        error: serde_json::Error,
    },
    /// `dim` is not a positive multiple of `2 * n_heads` (whole, even heads).
    #[error("{path}: dim {dim} must be a positive multiple of 2 * n_heads ({n_heads})")]
    HeadDim {
        /// The file.
        path: PathBuf,
        /// Model width.
        dim: u64,
        /// Attention heads.
        n_heads: u64,
    },
    /// `n_kv_heads` does not divide `n_heads`.
    #[error("{path}: n_kv_heads {n_kv_heads} must divide n_heads {n_heads}")]
    KvHeads {
        /// The file.
        path: PathBuf,
        /// Key/value heads.
        n_kv_heads: u64,
        /// Attention heads.
        n_heads: u64,
    },
    /// `ffn_dim_multiplier` outside (0, 16].
    #[error("{path}: ffn_dim_multiplier {value} must be in (0, 16]")]
    FfnMultiplier {
        /// The file.
        path: PathBuf,
        /// The value found.
        value: f64,
    },
    /// `multiple_of` is 0 or absurd.
    #[error("{path}: multiple_of {value} out of range")]
    MultipleOf {
        /// The file.
        path: PathBuf,
        /// The value found.
        value: u64,
    },
    /// `dim`, `n_layers` or `norm_eps` is absurd.
    #[error("{path}: dim, n_layers or norm_eps out of range")]
    OutOfRange {
        /// The file.
        path: PathBuf,
        /// Model width.
        dim: u64,
        /// Layers.
        n_layers: u64,
        /// RMS norm epsilon.
        norm_eps: f64,
    },
    /// `config.json` lacks an integer field the model needs.
    #[error("{path}: config.json lacks integer `{key}`")]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The field.
        key: &'static str,
    },
    /// Parameters that do not describe a LLaMA model (heads do not divide the width, kv
    /// heads do not divide the heads, a size is zero or absurd).
    #[error("{path}: inconsistent model parameters: {params:?}")]
    Inconsistent {
        /// The file.
        path: PathBuf,
        /// The parameters.
        params: Box<ModelParams>,
    },
}

/// Meta's `params.json`, as released (LLaMA 1 and Llama 2). Unknown fields are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaParams {
    /// Model width (embedding size).
    pub dim: u64,
    /// Number of transformer layers.
    pub n_layers: u64,
    /// Attention heads.
    pub n_heads: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Key/value heads (grouped-query attention; equal to `n_heads` without it).
    pub n_kv_heads: Option<u64>,
    #[serde(default = "default_vocab")]
    /// Vocabulary size (-1 in LLaMA 1 releases: taken from the tokenizer).
    pub vocab_size: i64,
    #[serde(default = "default_multiple_of")]
    /// The feed-forward width is rounded up to a multiple of this.
    pub multiple_of: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Llama 2 70B: multiplier on the feed-forward width before rounding.
    pub ffn_dim_multiplier: Option<f64>,
    /// RMS norm epsilon.
    pub norm_eps: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Rotary base frequency (10000 unless given).
    pub rope_theta: Option<f64>,
    /// Anything else the file holds, written back unchanged.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn default_vocab() -> i64 {
    -1
}
fn default_multiple_of() -> u64 {
    256
}

/// Compute Meta's FFN hidden size.
pub(crate) fn ffn_hidden(dim: u64, multiple_of: u64, ffn_dim_multiplier: Option<f64>) -> u64 {
    let mut hidden = (2 * 4 * dim) / 3; // int(2 * (4*dim) / 3)
    if let Some(m) = ffn_dim_multiplier {
        hidden = (m * hidden as f64) as u64;
    }
    let m = multiple_of.max(1);
    m * hidden.div_ceil(m)
}

impl MetaParams {
    /// Read and check `params.json`.
    pub fn read(path: &Path) -> Result<MetaParams, ParamsError> {
        let text = crate::safe_read::read_capped_string(path, crate::safe_read::MAX_CONFIG_BYTES)
            .map_err(|source| ParamsError::Io {
            path: path.to_path_buf(),
            error: source,
        })?;
        let p: MetaParams = serde_json::from_str(&text).map_err(|source| ParamsError::Json {
            path: path.to_path_buf(),
            what: "params.json",
            error: source,
        })?;
        let path = path.to_path_buf();
        if p.dim == 0
            || p.n_layers == 0
            || p.n_heads == 0
            || !p.dim.is_multiple_of(p.n_heads)
            || !(p.dim / p.n_heads).is_multiple_of(2)
        {
            return Err(ParamsError::HeadDim {
                path,
                dim: p.dim,
                n_heads: p.n_heads,
            });
        }
        if let Some(kv) = p.n_kv_heads {
            if kv == 0 || !p.n_heads.is_multiple_of(kv) {
                return Err(ParamsError::KvHeads {
                    path,
                    n_kv_heads: kv,
                    n_heads: p.n_heads,
                });
            }
        }
        if let Some(m) = p.ffn_dim_multiplier {
            if !(m.is_finite() && m > 0.0 && m <= 16.0) {
                return Err(ParamsError::FfnMultiplier { path, value: m });
            }
        }
        if p.multiple_of == 0 || p.multiple_of > 1 << 20 {
            return Err(ParamsError::MultipleOf {
                path,
                value: p.multiple_of,
            });
        }
        if p.dim > 1 << 20 || p.n_layers > 1 << 12 || !(p.norm_eps > 0.0 && p.norm_eps < 1.0) {
            return Err(ParamsError::OutOfRange {
                path,
                dim: p.dim,
                n_layers: p.n_layers,
                norm_eps: p.norm_eps,
            });
        }
        Ok(p)
    }

    /// The FFN hidden size these parameters imply.
    pub fn hidden_dim(&self) -> u64 {
        ffn_hidden(self.dim, self.multiple_of, self.ffn_dim_multiplier)
    }

    /// Pretty JSON as Meta writes it (one line, like the release's files).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The normalized hyper-parameters of a LLaMA model, whatever layout it came in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelParams {
    /// Model width (embedding size).
    pub dim: u64,
    /// Number of transformer layers.
    pub n_layers: u64,
    /// Attention heads.
    pub n_heads: u64,
    /// Key/value heads (grouped-query attention; equal to `n_heads` without it).
    pub n_kv_heads: u64,
    /// Vocabulary size (-1 in LLaMA 1 releases: taken from the tokenizer).
    pub vocab_size: u64,
    /// Feed-forward width.
    pub hidden_dim: u64,
    /// RMS norm epsilon.
    pub norm_eps: f64,
    /// Rotary base frequency (10000 unless given).
    pub rope_theta: f64,
    /// Training context length, when known (2048 LLaMA 1, 4096 Llama 2).
    pub context_length: Option<u64>,
}

impl ModelParams {
    /// Per-head size.
    pub fn head_dim(&self) -> u64 {
        self.dim / self.n_heads
    }

    /// From `params.json` plus the vocabulary and hidden size read off the tensors.
    pub(crate) fn from_meta(p: &MetaParams, vocab_size: u64, hidden_dim: u64) -> ModelParams {
        ModelParams {
            dim: p.dim,
            n_layers: p.n_layers,
            n_heads: p.n_heads,
            n_kv_heads: p.n_kv_heads.unwrap_or(p.n_heads),
            vocab_size,
            hidden_dim,
            norm_eps: p.norm_eps,
            rope_theta: p.rope_theta.unwrap_or(10000.0),
            context_length: None,
        }
    }

    /// From a Hugging Face `config.json` value.
    pub fn from_hf_config(path: &Path, v: &serde_json::Value) -> Result<ModelParams, ParamsError> {
        let get = |k: &str| v.get(k).and_then(|x| x.as_u64());
        let need = |k: &'static str| {
            get(k).ok_or_else(|| ParamsError::MissingKey {
                path: path.to_path_buf(),
                key: k,
            })
        };
        let n_heads = need("num_attention_heads")?;
        let p = ModelParams {
            dim: need("hidden_size")?,
            n_layers: need("num_hidden_layers")?,
            n_heads,
            n_kv_heads: get("num_key_value_heads").unwrap_or(n_heads),
            vocab_size: need("vocab_size")?,
            hidden_dim: need("intermediate_size")?,
            norm_eps: v
                .get("rms_norm_eps")
                .and_then(|x| x.as_f64())
                .unwrap_or(1e-6),
            rope_theta: v
                .get("rope_theta")
                .and_then(|x| x.as_f64())
                .unwrap_or(10000.0),
            context_length: get("max_position_embeddings"),
        };
        p.check(path)?;
        Ok(p)
    }

    /// Structural sanity: heads divide dim, kv heads divide heads, nothing absurd.
    pub fn check(&self, path: &Path) -> Result<(), ParamsError> {
        let ok = self.dim > 0
            && self.n_heads > 0
            && self.dim.is_multiple_of(self.n_heads)
            && self.head_dim().is_multiple_of(2)
            && self.n_kv_heads > 0
            && self.n_heads.is_multiple_of(self.n_kv_heads)
            && self.n_layers > 0
            && self.n_layers <= 1 << 12
            && self.dim <= 1 << 20
            && self.vocab_size > 0
            && self.vocab_size <= 1 << 24
            && self.hidden_dim > 0
            && self.hidden_dim <= 1 << 22;
        if ok {
            Ok(())
        } else {
            Err(ParamsError::Inconsistent {
                path: path.to_path_buf(),
                params: Box::new(self.clone()),
            })
        }
    }

    /// Meta `params.json` for these parameters (`multiple_of` chosen so the hidden size is
    /// reproduced; vocab written as -1 like the release).
    pub(crate) fn to_meta(&self) -> MetaParams {
        let mut multiple_of = 256;
        while multiple_of > 1 && ffn_hidden(self.dim, multiple_of, None) != self.hidden_dim {
            multiple_of /= 2;
        }
        let mut ffn_dim_multiplier = None;
        if ffn_hidden(self.dim, multiple_of, None) != self.hidden_dim {
            // Llama 2 style: a multiplier, and the largest power of two up to 4096 that
            // divides the hidden size as multiple_of; nudge the multiplier up past float
            // rounding so Meta's formula gives the hidden size back exactly.
            multiple_of = 1;
            while multiple_of < 4096 && self.hidden_dim.is_multiple_of(multiple_of * 2) {
                multiple_of *= 2;
            }
            let base = ((2 * 4 * self.dim) / 3).max(1) as f64;
            let mut m = self.hidden_dim as f64 / base;
            for _ in 0..8 {
                if ffn_hidden(self.dim, multiple_of, Some(m)) == self.hidden_dim {
                    break;
                }
                m *= 1.0 + 1e-12;
            }
            ffn_dim_multiplier = Some(m);
        }
        MetaParams {
            dim: self.dim,
            n_layers: self.n_layers,
            n_heads: self.n_heads,
            n_kv_heads: (self.n_kv_heads != self.n_heads).then_some(self.n_kv_heads),
            vocab_size: -1,
            multiple_of,
            ffn_dim_multiplier,
            norm_eps: self.norm_eps,
            rope_theta: (self.rope_theta != 10000.0).then_some(self.rope_theta),
            extra: Default::default(),
        }
    }

    /// Which released LLaMA size these parameters are, if any.
    pub fn known_size(&self) -> Option<KnownSize> {
        KnownSize::ALL.into_iter().find(|k| {
            let (dim, heads, layers, hidden) = k.shape();
            dim == self.dim
                && heads == self.n_heads
                && layers == self.n_layers
                && hidden == self.hidden_dim
                && self.n_kv_heads == heads
        })
    }

    /// "7B", or "custom (7B-shaped, 2 of 32 layers)", or "custom".
    pub fn size_label(&self) -> String {
        if let Some(k) = self.known_size() {
            return k.name().to_string();
        }
        for k in KnownSize::ALL {
            let (dim, heads, layers, hidden) = k.shape();
            if dim == self.dim && heads == self.n_heads && hidden == self.hidden_dim {
                return format!(
                    "custom ({}-shaped, {} of {layers} layers)",
                    k.name(),
                    self.n_layers
                );
            }
        }
        "custom".to_string()
    }
}

/// The four released LLaMA 1 sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownSize {
    /// LLaMA 7B.
    B7,
    /// LLaMA 13B.
    B13,
    /// LLaMA 30B (33B).
    B30,
    /// LLaMA 65B.
    B65,
}

impl KnownSize {
    /// All sizes, smallest first.
    pub const ALL: [KnownSize; 4] = [
        KnownSize::B7,
        KnownSize::B13,
        KnownSize::B30,
        KnownSize::B65,
    ];

    /// (dim, n_heads, n_layers, ffn hidden).
    pub fn shape(self) -> (u64, u64, u64, u64) {
        match self {
            KnownSize::B7 => (4096, 32, 32, 11008),
            KnownSize::B13 => (5120, 40, 40, 13824),
            KnownSize::B30 => (6656, 52, 60, 17920),
            KnownSize::B65 => (8192, 64, 80, 22016),
        }
    }

    /// `norm_eps` of the release (65B differs).
    pub fn norm_eps(self) -> f64 {
        if self == KnownSize::B65 {
            1e-5
        } else {
            1e-6
        }
    }

    /// Model-parallel shard count of the release.
    pub fn shards(self) -> usize {
        match self {
            KnownSize::B7 => 1,
            KnownSize::B13 => 2,
            KnownSize::B30 => 4,
            KnownSize::B65 => 8,
        }
    }

    /// "7B" etc.
    pub fn name(self) -> &'static str {
        match self {
            KnownSize::B7 => "7B",
            KnownSize::B13 => "13B",
            KnownSize::B30 => "30B",
            KnownSize::B65 => "65B",
        }
    }

    /// Parse "7B" (case-insensitive).
    pub fn from_name(s: &str) -> Option<KnownSize> {
        KnownSize::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffn_hidden_matches_the_release() {
        for k in KnownSize::ALL {
            let (dim, _, _, hidden) = k.shape();
            assert_eq!(ffn_hidden(dim, 256, None), hidden, "{}", k.name());
        }
        // Llama 2 70B: dim 8192, multiplier 1.3, multiple_of 4096 -> 28672.
        assert_eq!(ffn_hidden(8192, 4096, Some(1.3)), 28672);
    }

    #[test]
    fn llama2_params_with_kv_heads_and_ffn_multiplier_validate_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("params.json");
        // Llama 2 70B's params.json as released.
        std::fs::write(&p, r#"{"dim": 8192, "multiple_of": 4096, "ffn_dim_multiplier": 1.3, "n_heads": 64, "n_kv_heads": 8, "n_layers": 80, "norm_eps": 1e-05, "vocab_size": -1}"#).unwrap();
        let m = MetaParams::read(&p).unwrap();
        assert_eq!(m.hidden_dim(), 28672);
        let mp = ModelParams::from_meta(&m, 32000, m.hidden_dim());
        assert_eq!((mp.n_kv_heads, mp.hidden_dim), (8, 28672));
        assert!(mp.check(&p).is_ok());
        assert_eq!(mp.known_size(), None);
        // Written back (e.g. from an HF or GGUF source) it still gives 28672.
        let back = mp.to_meta();
        assert_eq!(back.hidden_dim(), 28672);
        assert_eq!(back.n_kv_heads, Some(8));
        // Hidden sizes no power-of-two multiple_of reproduces round-trip too.
        for (dim, hidden) in [
            (8192u64, 28672u64),
            (4096, 14336),
            (256, 1000),
            (256, 777),
            (5120, 13824),
        ] {
            let q = ModelParams {
                dim,
                hidden_dim: hidden,
                ..mp.clone()
            };
            assert_eq!(
                q.to_meta().hidden_dim(),
                hidden,
                "dim {dim} hidden {hidden}"
            );
        }
        std::fs::write(&p, r#"{"dim": 8192, "n_heads": 64, "ffn_dim_multiplier": -1.3, "n_layers": 80, "norm_eps": 1e-05}"#).unwrap();
        let e = MetaParams::read(&p).unwrap_err().to_string();
        assert!(e.contains("ffn_dim_multiplier -1.3"), "{e}");
        // kv heads must divide the heads.
        std::fs::write(
            &p,
            r#"{"dim": 8192, "n_heads": 64, "n_kv_heads": 6, "n_layers": 80, "norm_eps": 1e-05}"#,
        )
        .unwrap();
        let e = MetaParams::read(&p).unwrap_err().to_string();
        assert!(e.contains("n_kv_heads 6 must divide n_heads 64"), "{e}");
    }

    #[test]
    fn params_json_of_the_release_parses_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("params.json");
        std::fs::write(&p, r#"{"dim": 8192, "multiple_of": 256, "n_heads": 64, "n_layers": 80, "norm_eps": 1e-05, "vocab_size": -1}"#).unwrap();
        let m = MetaParams::read(&p).unwrap();
        assert_eq!(m.norm_eps, 1e-5);
        let mp = ModelParams::from_meta(&m, 32000, m.hidden_dim());
        assert_eq!(mp.known_size(), Some(KnownSize::B65));
        let back = mp.to_meta();
        assert_eq!(back.multiple_of, 256);
        assert_eq!(back.hidden_dim(), 22016);
        std::fs::write(
            &p,
            r#"{"dim": 10, "n_heads": 3, "n_layers": 1, "norm_eps": 1e-6}"#,
        )
        .unwrap();
        assert!(MetaParams::read(&p)
            .unwrap_err()
            .to_string()
            .contains("params.json"));
    }
}
