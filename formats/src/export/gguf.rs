//! Checkpoint -> GGUF, following llama.cpp's converter: GGUF tensor names, dims
//! innermost-first (the GGUF writer reverses our numpy-order shapes), alignment 32, LLaMA
//! metadata and the SentencePiece vocabulary. Meta q/k stay interleaved (llama.cpp's
//! rotary layout); HF input was already un-permuted by the checkpoint reader.

use std::io::Write;

use super::pipeline::{write_tensors, Encoder, Job, Part, TensorWriter};
use super::{advance, extra_jobs, out_bytes, ExportError, ExportSummary, Progress};
use crate::checkpoint::Checkpoint;
use crate::dtype::DType;
use crate::gguf::GgufWriter;
use crate::gguf_llama::{llama_metadata, GgufNaming, LlamaGgufMeta};
use crate::llama::naming::Layout;
use crate::llama::{ModelParams, Role};
use crate::sentencepiece::SpModel;
use crate::tensor::TensorInfo;
use llama_ggml::quant::{plan_types, ModelHints, Preset};

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

/// Each LLaMA tensor as written, in write order: GGUF name, numpy-order shape, and the type
/// `preset` gives it in the quantization plan `quantize` uses ([`plan_types`]); 1-D tensors
/// (norms) stay F32 whatever the output type, as llama.cpp's converter keeps them.
fn plan(
    ck: &Checkpoint,
    params: &ModelParams,
    preset: Preset,
) -> Result<Vec<Job<Part>>, ExportError> {
    let hints = ModelHints {
        n_layer: params.n_layers as usize,
        n_head: params.n_heads as u32,
        n_head_kv: params.n_kv_heads as u32,
        n_expert: 0,
        tied_embeddings: false,
    };
    let mut jobs = Vec::new();
    for t in ck.llama_tensors() {
        if t.role == Role::RopeFreqs {
            continue;
        }
        let (src, shape) = ck.tensor_info(t)?;
        let name = t.to_layout(Layout::Gguf).unwrap_or_default();
        jobs.push(Job {
            key: Part::Llama {
                tensor: t,
                range: None,
            },
            src,
            out: TensorInfo {
                name,
                dtype: DType::F32,
                shape,
            },
        });
    }
    let matrices: Vec<(&str, &[u64], DType)> = jobs
        .iter()
        .filter(|j| j.out.shape.len() > 1)
        .map(|j| (j.out.name.as_str(), j.out.shape.as_slice(), j.src))
        .collect();
    let (types, _) = plan_types(preset, hints, &matrices);
    let mut types = types.into_iter();
    for j in jobs.iter_mut().filter(|j| j.out.shape.len() > 1) {
        j.out.dtype = types.next().unwrap_or(j.src);
    }
    Ok(jobs)
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
        return Err(ExportError::NoVocabulary {
            path: ck.path().to_path_buf(),
        });
    }
    let mut jobs = if opts.vocab_only {
        Vec::new()
    } else {
        plan(ck, &params, opts.preset)?
    };
    let quantized = jobs.iter().any(|j| j.out.dtype.is_quantized());
    if !opts.vocab_only {
        let names: Vec<&str> = jobs.iter().map(|j| j.out.name.as_str()).collect();
        let extras = extra_jobs(ck, opts.allow_extra, &names)?;
        jobs.extend(extras);
    }
    // gguf-py counts every element of every tensor written.
    let total_params: u64 = jobs
        .iter()
        .map(|j| j.out.shape.iter().product::<u64>())
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
    for j in &jobs {
        out_bytes(&j.out.name, j.out.dtype, &j.out.shape)?;
    }
    let infos = jobs.iter().map(|j| j.out.clone()).collect();
    let mut w = GgufWriter::new(out, meta, infos, 32)?;
    let mut summary = ExportSummary::default();
    write_tensors(
        ck,
        &jobs,
        &mut w,
        &mut Encoder::default(),
        &mut summary,
        &mut advance(progress),
    )?;
    Ok((TensorWriter::finish(w)?, summary))
}
