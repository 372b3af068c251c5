//! Checkpoint -> GGUF, following llama.cpp's converter: GGUF tensor names, dims
//! innermost-first (the GGUF writer reverses our numpy-order shapes), alignment 32, LLaMA
//! metadata and the SentencePiece vocabulary. Meta q/k stay interleaved (llama.cpp's
//! rotary layout); HF input was already un-permuted by the checkpoint reader.

use std::io::Write;

use super::{encode_chunks, out_bytes, ExportError, ExportSummary, Progress};
use crate::checkpoint::Checkpoint;
use crate::dtype::DType;
use crate::gguf::GgufWriter;
use crate::gguf_llama::{llama_metadata, LlamaGgufMeta};
use crate::llama::naming::Layout;
use crate::llama::{Role, TensorName};
use crate::quant::{ModelHints, Preset};
use crate::sentencepiece::SpModel;
use crate::tensor::TensorInfo;

/// How to write the GGUF.
pub struct GgufOptions<'a> {
    /// `general.name`.
    pub name: String,
    /// `llama.context_length`.
    pub context_length: u64,
    /// Output type: F32/F16/BF16 or a quantization preset.
    pub preset: Preset,
    /// The vocabulary (required by llama.cpp to run the file).
    pub tokenizer: Option<&'a SpModel>,
}

/// The output type of each tensor (GGUF name, dtype, numpy-order shape), in write order.
pub fn plan(ck: &Checkpoint, preset: Preset) -> Result<Vec<(TensorName, TensorInfo)>, ExportError> {
    let params = ck.params()?;
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
        let shape = ck.tensor_info(t)?.1;
        let name = t.to_layout(Layout::Gguf).unwrap_or_default();
        let (src, _) = ck.tensor_info(t)?;
        // llama.cpp's converter keeps 1-D tensors (norms) in F32 whatever the output type.
        let dtype = if shape.len() <= 1 {
            DType::F32
        } else {
            preset.tensor_type(&name, &shape, src, &hints)
        };
        out.push((t, TensorInfo { name, dtype, shape }));
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
    let plan = plan(ck, opts.preset)?;
    let quantized = plan.iter().any(|(_, i)| i.dtype.is_quantized());
    let meta = llama_metadata(&LlamaGgufMeta {
        name: opts.name.clone(),
        params: &params,
        file_type: opts.preset.file_type(),
        quantized,
        context_length: opts.context_length,
        tokenizer: opts.tokenizer,
    });
    let infos: Vec<TensorInfo> = plan.iter().map(|(_, i)| i.clone()).collect();
    for i in &infos {
        out_bytes(&i.name, i.dtype, &i.shape)?;
    }
    let mut w = GgufWriter::new(out, meta, infos, 32)?;
    let mut summary = ExportSummary::default();
    let mut buf = Vec::new();
    for (t, info) in &plan {
        let (src_dtype, shape) = ck.tensor_info(*t)?;
        buf.clear();
        ck.read_range(*t, None, &mut buf)?;
        let n_per_row = shape.last().copied().unwrap_or(1) as usize;
        w.start_tensor(&info.name)?;
        encode_chunks(src_dtype, info.dtype, &buf, n_per_row, |b| {
            Ok(w.write_chunk(b)?)
        })?;
        w.end_tensor()?;
        ck.release(*t);
        let n: u64 = shape.iter().product();
        summary.count(info.dtype, n, out_bytes(&info.name, info.dtype, &shape)?);
        progress.advance(buf.len() as u64, &info.name);
    }
    Ok((w.finish()?, summary))
}
