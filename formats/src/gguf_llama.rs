//! LLaMA's GGUF metadata: the `general.*`, `llama.*` and `tokenizer.ggml.*` keys llama.cpp's
//! converter writes (`convert_hf_to_gguf.py`, `gguf-py/gguf/constants.py`), and the model
//! parameters read back from them.

use crate::gguf::{GgufArray, GgufFile, GgufValue};
pub use crate::gguf_naming::GgufNaming;
use crate::llama::ModelParams;
use crate::sentencepiece::{PieceType, SpModel};

/// `general.quantization_version` llama.cpp writes for quantized files.
pub(crate) const QUANTIZATION_VERSION: u32 = 2;

/// The `<unk>` id llama.cpp assumes for a SentencePiece (`llama`) vocabulary without
/// `tokenizer.ggml.unknown_token_id`.
pub(crate) const DEFAULT_UNK_ID: u32 = 0;

/// GGUF token type of a SentencePiece piece (the numbering is the same).
pub fn token_type(kind: PieceType) -> i32 {
    kind.id() as i32
}

/// What goes into a LLaMA GGUF besides the tensors.
pub(crate) struct LlamaGgufMeta<'a> {
    /// `general.name` and the other naming keys ([`GgufNaming::derive`]).
    pub naming: GgufNaming,
    /// Model parameters.
    pub params: &'a ModelParams,
    /// `general.file_type` (0 F32, 1 F16, 32 BF16, 15 Q4_K_M, ...).
    pub file_type: u32,
    /// Whether any tensor is block-quantized: `general.quantization_version` and
    /// `general.file_type` then come last, where llama.cpp's quantizer puts them.
    pub quantized: bool,
    /// `llama.context_length`.
    pub context_length: u64,
    /// The tokenizer, when one was found.
    pub tokenizer: Option<&'a SpModel>,
}

/// The metadata key/value list, with the keys, types, values and order llama.cpp's
/// `convert_hf_to_gguf.py` writes for a LLaMA (`general.type`, the naming keys,
/// `general.quantization_version` also for float files, `llama.attention.key_length` /
/// `value_length`, `tokenizer.ggml.pre`), as `tests/e2e/gguf_parity.rs` checks against it.
pub(crate) fn llama_metadata(m: &LlamaGgufMeta<'_>) -> Vec<(String, GgufValue)> {
    let p = m.params;
    let mut kv: Vec<(String, GgufValue)> = Vec::new();
    let mut put = |k: &str, v: GgufValue| kv.push((k.to_string(), v));
    let text = |s: &str| GgufValue::String(s.to_string());
    put("general.architecture", text("llama"));
    put("general.type", text("model"));
    let n = &m.naming;
    put("general.name", text(&n.name));
    for (key, value) in [
        ("general.version", &n.version),
        ("general.organization", &n.organization),
        ("general.finetune", &n.finetune),
        ("general.basename", &n.basename),
        ("general.size_label", &n.size_label),
    ] {
        if let Some(v) = value {
            put(key, text(v));
        }
    }
    let u32_of = |x: u64| GgufValue::U32(x as u32);
    put("llama.block_count", u32_of(p.n_layers));
    put("llama.context_length", u32_of(m.context_length));
    put("llama.embedding_length", u32_of(p.dim));
    put("llama.feed_forward_length", u32_of(p.hidden_dim));
    put("llama.attention.head_count", u32_of(p.n_heads));
    put("llama.attention.head_count_kv", u32_of(p.n_kv_heads));
    put("llama.rope.freq_base", GgufValue::F32(p.rope_theta as f32));
    put(
        "llama.attention.layer_norm_rms_epsilon",
        GgufValue::F32(p.norm_eps as f32),
    );
    put("llama.attention.key_length", u32_of(p.head_dim()));
    put("llama.attention.value_length", u32_of(p.head_dim()));
    if !m.quantized {
        put("general.file_type", GgufValue::U32(m.file_type));
    }
    put("llama.vocab_size", u32_of(p.vocab_size));
    put("llama.rope.dimension_count", u32_of(p.head_dim()));
    if !m.quantized {
        put(
            "general.quantization_version",
            GgufValue::U32(QUANTIZATION_VERSION),
        );
    }
    if let Some(sp) = m.tokenizer {
        let n = p.vocab_size as usize;
        let mut tokens = Vec::with_capacity(n);
        let mut scores = Vec::with_capacity(n);
        let mut types = Vec::with_capacity(n);
        for piece in sp.pieces.iter().take(n) {
            tokens.push(piece.piece.clone());
            scores.push(piece.score);
            types.push(token_type(piece.kind));
        }
        // Embedding rows beyond the tokenizer are padded as llama.cpp's converter does.
        for id in tokens.len()..n {
            tokens.push(format!("[PAD{id}]"));
            scores.push(-10000.0);
            types.push(token_type(PieceType::Unused));
        }
        put("tokenizer.ggml.model", text("llama"));
        put("tokenizer.ggml.pre", text("default"));
        put(
            "tokenizer.ggml.tokens",
            GgufValue::Array(GgufArray::String(tokens)),
        );
        put(
            "tokenizer.ggml.scores",
            GgufValue::Array(GgufArray::F32(scores)),
        );
        put(
            "tokenizer.ggml.token_type",
            GgufValue::Array(GgufArray::I32(types)),
        );
        // llama.cpp's converter takes special ids from config.json (bos, eos) and would need
        // a tokenizer.json for `<unk>`; llama.cpp reads an absent unknown id as 0 for a
        // SentencePiece vocabulary, so it is written only when it is not 0.
        for (key, id) in [
            ("tokenizer.ggml.bos_token_id", sp.bos_id),
            ("tokenizer.ggml.eos_token_id", sp.eos_id),
            (
                "tokenizer.ggml.unknown_token_id",
                sp.unk_id.filter(|&u| u != DEFAULT_UNK_ID),
            ),
        ] {
            if let Some(id) = id {
                put(key, GgufValue::U32(id));
            }
        }
        put("tokenizer.ggml.add_bos_token", GgufValue::Bool(true));
        put("tokenizer.ggml.add_eos_token", GgufValue::Bool(false));
    }
    if m.quantized {
        // llama.cpp's quantizer removes both and appends them: a direct quantized export
        // reads like quantizing the float export.
        put(
            "general.quantization_version",
            GgufValue::U32(QUANTIZATION_VERSION),
        );
        put("general.file_type", GgufValue::U32(m.file_type));
    }
    kv
}

/// Why a GGUF's metadata does not give a LLaMA model's hyper-parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GgufParamsError {
    /// `general.architecture` is not `llama`.
    #[error("general.architecture is `{0}`, not `llama`")]
    NotLlama(String),
    /// A required key is absent (or not an unsigned integer).
    #[error("metadata lacks `{0}`")]
    MissingKey(&'static str),
    /// No `token_embd.weight` and no `llama.vocab_size` to size the vocabulary.
    #[error("no token_embd.weight tensor")]
    NoEmbedding,
}

/// Model parameters from a LLaMA GGUF's metadata and tensor shapes.
pub fn params_from_gguf(g: &GgufFile) -> Result<ModelParams, GgufParamsError> {
    let arch = g
        .get("general.architecture")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if arch != "llama" {
        return Err(GgufParamsError::NotLlama(crate::text::shown(arch)));
    }
    let int = |k: &str| g.get(k).and_then(|v| v.as_u64());
    let need = |k: &'static str| int(k).ok_or(GgufParamsError::MissingKey(k));
    let n_heads = need("llama.attention.head_count")?;
    let vocab = g
        .get_tensor("token_embd.weight")
        .and_then(|t| t.info.shape.first().copied())
        .or_else(|| int("llama.vocab_size"))
        .ok_or(GgufParamsError::NoEmbedding)?;
    Ok(ModelParams {
        dim: need("llama.embedding_length")?,
        n_layers: need("llama.block_count")?,
        n_heads,
        n_kv_heads: int("llama.attention.head_count_kv").unwrap_or(n_heads),
        vocab_size: vocab,
        hidden_dim: need("llama.feed_forward_length")?,
        norm_eps: g
            .get("llama.attention.layer_norm_rms_epsilon")
            .and_then(|v| v.as_f32())
            .map(shortest_f64)
            .unwrap_or(1e-6),
        rope_theta: g
            .get("llama.rope.freq_base")
            .and_then(|v| v.as_f64())
            .unwrap_or(10000.0),
        context_length: int("llama.context_length"),
    })
}

/// The f64 an f32 was written from, as its shortest decimal spells it (1e-6 stays 1e-6
/// instead of becoming 9.99999997e-7 on the way through a GGUF's f32 field).
fn shortest_f64(x: f32) -> f64 {
    format!("{x}").parse().unwrap_or(x as f64)
}

/// Rebuild a SentencePiece model from a LLaMA GGUF's vocabulary (`tokenizer.ggml.*`), so a
/// GGUF converted to Meta or Hugging Face layout gets a `tokenizer.model` again. Settings
/// are LLaMA's (BPE, byte fallback, dummy prefix, identity normalizer). `None` when the file
/// carries no `llama` vocabulary.
pub fn sp_model_from_gguf(g: &GgufFile) -> Option<SpModel> {
    use crate::sentencepiece::Piece;
    if g.get("tokenizer.ggml.model").and_then(|v| v.as_str()) != Some("llama") {
        return None;
    }
    let tokens = g.get("tokenizer.ggml.tokens")?.as_array()?.as_strings()?;
    let scores = g
        .get("tokenizer.ggml.scores")
        .and_then(|v| v.as_array())
        .and_then(|a| a.as_f32s());
    let types = g
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.as_array())
        .and_then(|a| a.as_i32s());
    let kind = |t: i32| {
        u64::try_from(t)
            .ok()
            .and_then(PieceType::from_id)
            .unwrap_or(PieceType::Normal)
    };
    let pieces: Vec<Piece> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| Piece {
            piece: t.clone(),
            score: scores.and_then(|s| s.get(i)).copied().unwrap_or(0.0),
            kind: kind(types.and_then(|s| s.get(i)).copied().unwrap_or(1)),
        })
        .collect();
    let id = |k: &str| {
        g.get(k)
            .and_then(|v| v.as_u64())
            .and_then(|x| u32::try_from(x).ok())
    };
    // llama.cpp's converter writes `add_space_prefix` when the tokenizer config says so;
    // absent means LLaMA's dummy prefix.
    let add_dummy_prefix = g
        .get("tokenizer.ggml.add_space_prefix")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    let unk_id = id("tokenizer.ggml.unknown_token_id").or_else(|| {
        let default = DEFAULT_UNK_ID as usize;
        (pieces.get(default).map(|p| p.kind) == Some(PieceType::Unknown)).then_some(DEFAULT_UNK_ID)
    });
    Some(SpModel {
        add_dummy_prefix,
        unk_id,
        bos_id: id("tokenizer.ggml.bos_token_id"),
        eos_id: id("tokenizer.ggml.eos_token_id"),
        pad_id: id("tokenizer.ggml.padding_token_id"),
        ..SpModel::llama_bpe(pieces)
    })
}
