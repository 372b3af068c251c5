//! LLaMA's GGUF metadata: the `general.*`, `llama.*` and `tokenizer.ggml.*` keys llama.cpp's
//! converter writes (`convert_hf_to_gguf.py`, `gguf-py/gguf/constants.py`), and the model
//! parameters read back from them.

use crate::gguf::{GgufArray, GgufFile, GgufValue};
use crate::llama::ModelParams;
use crate::sentencepiece::{PieceType, SpModel};

/// `general.quantization_version` llama.cpp writes for quantized files.
pub const QUANTIZATION_VERSION: u32 = 2;

/// GGUF token type of a SentencePiece piece (the numbering is the same).
pub fn token_type(kind: PieceType) -> i32 {
    kind.id() as i32
}

/// What goes into a LLaMA GGUF besides the tensors.
pub struct LlamaGgufMeta<'a> {
    /// `general.name`.
    pub name: String,
    /// Model parameters.
    pub params: &'a ModelParams,
    /// `general.file_type` (0 F32, 1 F16, 32 BF16, 15 Q4_K_M, ...).
    pub file_type: u32,
    /// Whether any tensor is block-quantized (adds `general.quantization_version`).
    pub quantized: bool,
    /// `llama.context_length`.
    pub context_length: u64,
    /// The tokenizer, when one was found.
    pub tokenizer: Option<&'a SpModel>,
}

/// The metadata key/value list, in llama.cpp's order.
pub fn llama_metadata(m: &LlamaGgufMeta<'_>) -> Vec<(String, GgufValue)> {
    let p = m.params;
    let mut kv: Vec<(String, GgufValue)> = Vec::new();
    let mut put = |k: &str, v: GgufValue| kv.push((k.to_string(), v));
    put("general.architecture", GgufValue::String("llama".into()));
    put("general.name", GgufValue::String(m.name.clone()));
    put("llama.block_count", GgufValue::U32(p.n_layers as u32));
    put(
        "llama.context_length",
        GgufValue::U32(m.context_length as u32),
    );
    put("llama.embedding_length", GgufValue::U32(p.dim as u32));
    put(
        "llama.feed_forward_length",
        GgufValue::U32(p.hidden_dim as u32),
    );
    put(
        "llama.attention.head_count",
        GgufValue::U32(p.n_heads as u32),
    );
    put(
        "llama.attention.head_count_kv",
        GgufValue::U32(p.n_kv_heads as u32),
    );
    put("llama.rope.freq_base", GgufValue::F32(p.rope_theta as f32));
    put(
        "llama.attention.layer_norm_rms_epsilon",
        GgufValue::F32(p.norm_eps as f32),
    );
    put("general.file_type", GgufValue::U32(m.file_type));
    put("llama.vocab_size", GgufValue::U32(p.vocab_size as u32));
    put(
        "llama.rope.dimension_count",
        GgufValue::U32(p.head_dim() as u32),
    );
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
            scores.push(-1000.0);
            types.push(token_type(PieceType::Unused));
        }
        put("tokenizer.ggml.model", GgufValue::String("llama".into()));
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
        for (key, id) in [
            ("tokenizer.ggml.bos_token_id", sp.bos_id),
            ("tokenizer.ggml.eos_token_id", sp.eos_id),
            ("tokenizer.ggml.unknown_token_id", sp.unk_id),
        ] {
            if let Some(id) = id {
                put(key, GgufValue::U32(id));
            }
        }
        put("tokenizer.ggml.add_bos_token", GgufValue::Bool(true));
        put("tokenizer.ggml.add_eos_token", GgufValue::Bool(false));
    }
    if m.quantized {
        put(
            "general.quantization_version",
            GgufValue::U32(QUANTIZATION_VERSION),
        );
    }
    kv
}

/// Model parameters from a LLaMA GGUF's metadata and tensor shapes.
pub fn params_from_gguf(g: &GgufFile) -> Result<ModelParams, String> {
    let arch = g
        .get("general.architecture")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if arch != "llama" {
        return Err(format!("general.architecture is `{arch}`, not `llama`"));
    }
    let int = |k: &str| g.get(k).and_then(|v| v.as_u64());
    let need = |k: &str| int(k).ok_or_else(|| format!("metadata lacks `{k}`"));
    let n_heads = need("llama.attention.head_count")?;
    let vocab = g
        .get_tensor("token_embd.weight")
        .and_then(|t| t.info.shape.first().copied())
        .or_else(|| int("llama.vocab_size"))
        .ok_or("no token_embd.weight tensor")?;
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
    Some(SpModel {
        unk_id: id("tokenizer.ggml.unknown_token_id"),
        bos_id: id("tokenizer.ggml.bos_token_id"),
        eos_id: id("tokenizer.ggml.eos_token_id"),
        pad_id: id("tokenizer.ggml.padding_token_id"),
        ..SpModel::llama_bpe(pieces)
    })
}
