//! Checkpoint -> GGUF, following llama.cpp's converter: GGUF tensor names, dims
//! innermost-first (the GGUF writer reverses our numpy-order shapes), alignment 32, LLaMA
//! metadata and the SentencePiece vocabulary. Meta q/k stay interleaved (llama.cpp's
//! rotary layout); HF input was already un-permuted by the checkpoint reader.

use std::io::Write;

use super::{extra_plan, out_bytes, Encoder, ExportError, ExportSummary, Progress};
use crate::checkpoint::Checkpoint;
use crate::dtype::DType;
use crate::gguf::GgufWriter;
use crate::gguf_llama::{llama_metadata, GgufNaming, LlamaGgufMeta};
use crate::llama::naming::Layout;
use crate::llama::{ModelParams, Role, TensorName};
use crate::quant::{ModelHints, Preset};
use crate::sentencepiece::SpModel;
use crate::tensor::TensorInfo;

/// How to write the GGUF.
pub struct GgufOptions<'a> {
    /// `general.name` when given (`--name`); else derived from `model_ids` as llama.cpp's
    /// converter does.
    pub name: Option<String>,
    /// The model's ids, most trusted first (config.json's `_name_or_path`, the input's
    /// folder or file name): `general.name`, `basename`, `finetune`, `size_label`... come
    /// from them ([`GgufNaming::derive`]).
    pub model_ids: Vec<String>,
    /// `llama.context_length`.
    pub context_length: u64,
    /// Output type: F32/F16/BF16 or a quantization preset.
    pub preset: Preset,
    /// The vocabulary (required by llama.cpp to run the file).
    pub tokenizer: Option<&'a SpModel>,
    /// Write tensors that are not LLaMA tensors unchanged after the model's own
    /// (`--allow-extra`); without it their presence is an error.
    pub allow_extra: bool,
    /// Write the metadata and vocabulary only, no tensors (llama.cpp's `--vocab-only`): a
    /// small file tokenizers read (`llama-tool tokenize`, llama.cpp with `vocab_only`).
    pub vocab_only: bool,
}

/// Each LLaMA tensor's source dtype and output (GGUF name, dtype, numpy-order shape), in
/// write order.
pub fn plan(
    ck: &Checkpoint,
    params: &ModelParams,
    preset: Preset,
) -> Result<Vec<(TensorName, DType, TensorInfo)>, ExportError> {
    let hints = ModelHints {
        n_layer: params.n_layers as usize,
        n_head: params.n_heads as u32,
        n_head_kv: params.n_kv_heads as u32,
        n_expert: 0,
        tied_embeddings: false,
    };
    let mut out = Vec::new();
    for t in ck.llama_tensors() {
        if t.role == Role::RopeFreqs {
            continue;
        }
        let (src, shape) = ck.tensor_info(t)?;
        let name = t.to_layout(Layout::Gguf).unwrap_or_default();
        // llama.cpp's converter keeps 1-D tensors (norms) in F32 whatever the output type.
        let dtype = if shape.len() <= 1 {
            DType::F32
        } else {
            preset.tensor_type(&name, &shape, src, &hints)
        };
        out.push((t, src, TensorInfo { name, dtype, shape }));
    }
    Ok(out)
}

/// Write the checkpoint as GGUF into `out`.
pub fn write_gguf<W: Write>(
    ck: &Checkpoint,
    out: W,
    opts: &GgufOptions<'_>,
    progress: &dyn Progress,
) -> Result<(W, ExportSummary), ExportError> {
    let params = ck.params()?;
    if opts.vocab_only && opts.tokenizer.is_none() {
        return Err(ExportError::Invalid(format!(
            "{}: no tokenizer.model found, so there is no vocabulary to write",
            ck.path().display()
        )));
    }
    let plan = if opts.vocab_only {
        Vec::new()
    } else {
        plan(ck, &params, opts.preset)?
    };
    let quantized = plan.iter().any(|(_, _, i)| i.dtype.is_quantized());
    let names: Vec<&str> = plan.iter().map(|(_, _, i)| i.name.as_str()).collect();
    let extras = if opts.vocab_only {
        Vec::new()
    } else {
        extra_plan(ck, opts.allow_extra, &names)?
    };
    // gguf-py counts every element of every tensor written.
    let total_params: u64 = plan
        .iter()
        .map(|(_, _, i)| i)
        .chain(extras.iter())
        .map(|i| i.shape.iter().product::<u64>())
        .sum();
    let ids: Vec<&str> = opts.model_ids.iter().map(String::as_str).collect();
    let meta = llama_metadata(&LlamaGgufMeta {
        naming: GgufNaming::derive(&ids, total_params, opts.name.as_deref()),
        params: &params,
        file_type: opts.preset.file_type(),
        quantized,
        context_length: opts.context_length,
        tokenizer: opts.tokenizer,
    });
    let infos: Vec<TensorInfo> = plan
        .iter()
        .map(|(_, _, i)| i.clone())
        .chain(extras.iter().cloned())
        .collect();
    for i in &infos {
        out_bytes(&i.name, i.dtype, &i.shape)?;
    }
    let mut w = GgufWriter::new(out, meta, infos, 32)?;
    let mut summary = ExportSummary::default();
    let mut enc = Encoder::default();
    for (t, src_dtype, info) in &plan {
        let shape = &info.shape;
        let n_per_row = shape.last().copied().unwrap_or(1) as usize;
        w.start_tensor(&info.name)?;
        let consumed = enc.stream_tensor(ck, *t, None, *src_dtype, info.dtype, n_per_row, |b| {
            Ok(w.write_chunk(b)?)
        })?;
        w.end_tensor()?;
        ck.release(*t);
        let n: u64 = shape.iter().product();
        summary.count(info.dtype, n, out_bytes(&info.name, info.dtype, shape)?);
        progress.advance(consumed, &info.name);
    }
    for info in &extras {
        w.start_tensor(&info.name)?;
        ck.stream_extra(&info.name, |b| Ok::<_, ExportError>(w.write_chunk(b)?))?;
        w.end_tensor()?;
        ck.release_extra(&info.name);
        let bytes = out_bytes(&info.name, info.dtype, &info.shape)?;
        summary.count(info.dtype, info.shape.iter().product(), bytes);
        progress.advance(bytes, &info.name);
    }
    Ok((w.finish()?, summary))
}
