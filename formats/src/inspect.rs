//! What a checkpoint holds, as one serialisable report: format, shards, parameter count,
//! detected size, hyper-parameters (or why they are unavailable), the source's own metadata
//! (GGUF keys, `params.json` or `config.json`), a tokenizer summary and the tensor table.
//! `llama-tool inspect` prints it as text or as JSON (docs/JSON.md: the JSON keys are these
//! field names).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::checkpoint::{Checkpoint, Kind};
use crate::gguf::GgufValue;
use crate::llama::{MetaParams, ModelParams, Role};
use crate::sentencepiece::SpModel;

/// Everything `inspect` shows of a checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    /// The path as opened.
    pub path: PathBuf,
    /// The layout.
    pub format: Kind,
    /// The layout's human name.
    pub format_name: &'static str,
    /// Number of files the tensors are in.
    pub shards: usize,
    /// "7B", "custom (7B-shaped, 2 of 32 layers)", "custom" or "unknown".
    pub size: String,
    /// Weights of the LLaMA tensors (without `rope.freqs`), or of every tensor when the
    /// hyper-parameters are unavailable.
    pub parameters: u64,
    /// The normalized hyper-parameters.
    pub params: Option<ModelParams>,
    /// Why `params` is absent.
    pub params_error: Option<String>,
    /// The source's own metadata.
    pub metadata: Metadata,
    /// The vocabulary, when one was found.
    pub tokenizer: Option<TokenizerSummary>,
    /// Number of tensors stored.
    pub tensor_count: usize,
    /// Tensors per stored dtype name.
    pub dtypes: BTreeMap<String, usize>,
    /// Names of the tensors that are not LLaMA tensors.
    pub extra_tensors: Vec<String>,
    /// Every tensor, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tensors: Option<Vec<TensorRow>>,
}

/// The source's own metadata.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Metadata {
    /// GGUF key/value pairs (arrays summarised as `[N x TYPE]`).
    Gguf(BTreeMap<String, MetaValue>),
    /// Meta's `params.json`.
    Meta(MetaParams),
    /// Hugging Face `config.json`, as written.
    HfConfig(serde_json::Value),
    /// None (a lone safetensors or .pth file).
    None,
}

/// One GGUF metadata value, summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MetaValue {
    /// A string, or an array summarised as `[N x TYPE]`.
    Text(String),
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer too large for `i64`.
    UInt(u64),
    /// A float (f32 values as their shortest decimal form).
    Float(f64),
    /// Anything else.
    Unknown,
}

impl MetaValue {
    fn of(v: &GgufValue) -> MetaValue {
        match v {
            GgufValue::Array(a) => MetaValue::Text(format!("[{} x {}]", a.len(), a.elem_type())),
            GgufValue::String(s) => MetaValue::Text(s.clone()),
            GgufValue::Bool(b) => MetaValue::Bool(*b),
            GgufValue::F32(x) => {
                MetaValue::Float(x.to_string().parse::<f64>().unwrap_or(*x as f64))
            }
            GgufValue::F64(x) => MetaValue::Float(*x),
            other => other
                .as_i64()
                .map(MetaValue::Int)
                .or_else(|| other.as_u64().map(MetaValue::UInt))
                .unwrap_or(MetaValue::Unknown),
        }
    }
}

/// The vocabulary a checkpoint carries.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum TokenizerSummary {
    /// A GGUF's `tokenizer.ggml.*` keys.
    Gguf {
        /// Always "GGUF metadata".
        source: &'static str,
        /// `tokenizer.ggml.model` (`llama`).
        model: Option<String>,
        /// Number of tokens.
        vocab_size: usize,
        /// Beginning-of-sequence id.
        bos_id: Option<u64>,
        /// End-of-sequence id.
        eos_id: Option<u64>,
        /// Unknown-token id.
        unk_id: Option<u64>,
    },
    /// A SentencePiece `tokenizer.model` beside the checkpoint.
    SentencePiece {
        /// The file.
        source: PathBuf,
        /// Number of pieces.
        vocab_size: usize,
        /// Beginning-of-sequence id.
        bos_id: Option<u32>,
        /// End-of-sequence id.
        eos_id: Option<u32>,
        /// Unknown-token id.
        unk_id: Option<u32>,
    },
    /// A `tokenizer.model` that could not be read.
    Unreadable {
        /// The file.
        source: PathBuf,
        /// Why.
        error: String,
    },
}

/// One stored tensor.
#[derive(Debug, Clone, Serialize)]
pub struct TensorRow {
    /// Name as stored.
    pub name: String,
    /// Stored dtype name.
    pub dtype: &'static str,
    /// Shape as stored.
    pub shape: Vec<u64>,
    /// Bytes, when the size is known.
    pub bytes: Option<u64>,
    /// Shard index (Meta folders).
    pub shard: Option<usize>,
}

fn tokenizer_summary(ck: &Checkpoint) -> Option<TokenizerSummary> {
    if let Some(g) = ck.gguf() {
        let n = g
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.as_array())
            .map(|a| a.len())?;
        let id = |k: &str| g.get(k).and_then(|v| v.as_u64());
        return Some(TokenizerSummary::Gguf {
            source: "GGUF metadata",
            model: g
                .get("tokenizer.ggml.model")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            vocab_size: n,
            bos_id: id("tokenizer.ggml.bos_token_id"),
            eos_id: id("tokenizer.ggml.eos_token_id"),
            unk_id: id("tokenizer.ggml.unknown_token_id"),
        });
    }
    let p = ck.tokenizer_path()?;
    Some(match SpModel::read(p) {
        Ok(sp) => TokenizerSummary::SentencePiece {
            source: p.to_path_buf(),
            vocab_size: sp.pieces.len(),
            bos_id: sp.bos_id,
            eos_id: sp.eos_id,
            unk_id: sp.unk_id,
        },
        Err(e) => TokenizerSummary::Unreadable {
            source: p.to_path_buf(),
            error: e.to_string(),
        },
    })
}

/// Inspect an opened checkpoint (`with_tensors`: list every tensor too). Nothing here
/// fails: what cannot be read is reported in the report (`params_error`, an unreadable
/// tokenizer).
pub fn inspect(ck: &Checkpoint, with_tensors: bool) -> InspectReport {
    let raw = ck.raw_tensors();
    let params = ck.params();
    let (parameters, size) = match &params {
        Ok(p) => {
            let n: u64 = ck
                .llama_tensors()
                .into_iter()
                .filter(|t| t.role != Role::RopeFreqs)
                .filter_map(|t| ck.tensor_info(t).ok())
                .map(|(_, s)| s.iter().product::<u64>())
                .sum();
            (n, p.size_label())
        }
        Err(_) => (
            raw.iter().filter_map(|t| t.info.n_elements()).sum(),
            "unknown".to_string(),
        ),
    };
    let mut dtypes = BTreeMap::<String, usize>::new();
    for t in &raw {
        *dtypes.entry(t.info.dtype.name().to_string()).or_default() += 1;
    }
    let metadata = match (ck.kind(), ck.gguf()) {
        (Kind::Gguf, Some(g)) => Metadata::Gguf(
            g.metadata()
                .iter()
                .map(|(k, v)| (k.clone(), MetaValue::of(v)))
                .collect(),
        ),
        _ => match (ck.meta_params(), ck.hf_config()) {
            (Some(m), _) => Metadata::Meta(m.clone()),
            (None, Some(c)) => Metadata::HfConfig(c.clone()),
            (None, None) => Metadata::None,
        },
    };
    let tensors = with_tensors.then(|| {
        raw.iter()
            .map(|t| TensorRow {
                name: t.info.name.clone(),
                dtype: t.info.dtype.name(),
                shape: t.info.shape.clone(),
                bytes: t.info.n_bytes(),
                shard: t.shard,
            })
            .collect()
    });
    let (params, params_error) = match params {
        Ok(p) => (Some(p), None),
        Err(e) => (None, Some(e.to_string())),
    };
    InspectReport {
        path: ck.path().to_path_buf(),
        format: ck.kind(),
        format_name: ck.kind().name(),
        shards: ck.shard_count(),
        size,
        parameters,
        params,
        params_error,
        metadata,
        tokenizer: tokenizer_summary(ck),
        tensor_count: raw.len(),
        dtypes,
        extra_tensors: ck.extra_tensors().to_vec(),
        tensors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{synth, SynthShape, SynthSpec};
    use llama_ggml::DType;

    #[test]
    fn a_meta_folder_report_serialises_with_the_documented_keys() {
        let t = tempfile::tempdir().unwrap();
        let spec = SynthSpec {
            shape: SynthShape::Tiny,
            layers: None,
            mp: Some(2),
            dtype: DType::F16,
            seed: 1,
            kv_heads: None,
            ffn_dim_multiplier: None,
        };
        synth(t.path(), &spec).unwrap();
        let ck = Checkpoint::open(t.path()).unwrap();
        let r = inspect(&ck, false);
        assert_eq!(
            (r.format, r.shards, r.params_error.as_deref()),
            (Kind::Meta, 2, None)
        );
        assert!(matches!(r.metadata, Metadata::Meta(_)));
        assert!(matches!(
            r.tokenizer,
            Some(TokenizerSummary::SentencePiece {
                vocab_size: 512,
                ..
            })
        ));
        let v = serde_json::to_value(&r).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "dtypes",
                "extra_tensors",
                "format",
                "format_name",
                "metadata",
                "parameters",
                "params",
                "params_error",
                "path",
                "shards",
                "size",
                "tensor_count",
                "tokenizer",
            ]
        );
        assert_eq!(v["metadata"]["dim"], 256);
        assert_eq!(v["tokenizer"]["vocab_size"], 512);
        assert!(inspect(&ck, true)
            .tensors
            .is_some_and(|t| t.len() == r.tensor_count));
    }
}
