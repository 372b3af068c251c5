//! Writers of whole LLaMA checkpoints from a [`Checkpoint`](crate::checkpoint::Checkpoint):
//! GGUF (llama.cpp), a Hugging Face safetensors folder, and Meta `.pth` shards with any
//! model-parallel count. Each streams one tensor at a time from the memory-mapped source
//! into an output whose header is computed up front, releasing the source pages as it goes.

pub mod gguf;
pub mod hf;
pub mod meta;
pub mod piped;

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::atomic::AtomicFile;
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::dtype::DType;
use crate::llama::TensorName;
use crate::tensor::TensorInfo;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    /// Reading the source failed.
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    /// Writing GGUF failed.
    Gguf(#[from] crate::gguf::GgufError),
    #[error(transparent)]
    /// Writing safetensors failed.
    Safetensors(#[from] crate::safetensors::SafetensorsError),
    #[error(transparent)]
    /// Writing `.pth` failed.
    Pth(#[from] crate::pth::PthError),
    #[error(transparent)]
    /// Merging or splitting shards failed.
    Merge(#[from] crate::merge::MergeError),
    #[error(transparent)]
    /// A float conversion failed.
    Cast(#[from] crate::cast::CastError),
    #[error(transparent)]
    /// Quantization failed.
    Quant(#[from] crate::quant::QuantError),
    /// Writing the output failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The request cannot be met for this model.
    #[error("{0}")]
    Invalid(String),
}

/// A buffered output file at `path`, kept under a temporary name until [`commit_output`].
pub fn create_output(path: &Path) -> Result<BufWriter<AtomicFile>, ExportError> {
    let file = AtomicFile::create(path).map_err(io_at(path))?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}

/// Flush the output a writer's `finish` handed back and move it to its final name `path`,
/// which is returned.
pub fn commit_output(out: BufWriter<AtomicFile>, path: &Path) -> Result<PathBuf, ExportError> {
    let file = out.into_inner().map_err(|e| ExportError::Io {
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    file.commit().map_err(io_at(path))
}

/// Map an io::Error to one naming `path`.
pub fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What was written, for summaries and `--json`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ExportSummary {
    /// Files written (final paths).
    pub files: Vec<PathBuf>,
    /// Tensors written.
    pub tensors: usize,
    /// Bytes of tensor data written.
    pub tensor_bytes: u64,
    /// Elements written (parameters).
    pub parameters: u64,
    /// Tensor count per output type.
    pub types: std::collections::BTreeMap<String, usize>,
    /// Digests of written files computed while writing them (see [`piped`]), by final path:
    /// (algorithm name, lowercase hex).
    #[serde(skip)]
    pub digests: std::collections::BTreeMap<PathBuf, Vec<(String, String)>>,
}

impl ExportSummary {
    fn count(&mut self, dtype: DType, elements: u64, bytes: u64) {
        self.tensors += 1;
        self.tensor_bytes += bytes;
        self.parameters += elements;
        *self.types.entry(dtype.name().to_string()).or_default() += 1;
    }
}

/// Progress reports: called after each tensor with the bytes of source data consumed.
pub trait Progress: Sync {
    /// `bytes` more of the source have been converted (`tensor` just finished).
    fn advance(&self, bytes: u64, tensor: &str);
}

/// A progress sink that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _bytes: u64, _tensor: &str) {}
}

/// Convert float bytes of `from` to `to` in row chunks, feeding each chunk to `sink`.
/// Float targets are cast; quantized targets go through [`crate::quant`] row by row so a
/// large tensor never exists as f32 all at once.
pub fn encode_chunks(
    from: DType,
    to: DType,
    data: &[u8],
    n_per_row: usize,
    sink: impl FnMut(&[u8]) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    Encoder::default().encode(from, to, data, n_per_row, sink)
}

/// [`encode_chunks`] with buffers kept between calls, for streaming a tensor block by block.
#[derive(Default)]
pub struct Encoder {
    f32s: Vec<f32>,
    out: Vec<u8>,
}

impl Encoder {
    /// Stream LLaMA tensor `t` (restricted to `range` along its split axis) out of `ck`,
    /// encode it from `from` to `to` and feed the result to `sink`. Returns the source bytes
    /// read, for progress reports.
    #[allow(clippy::too_many_arguments)]
    pub fn stream_tensor(
        &mut self,
        ck: &Checkpoint,
        t: TensorName,
        range: Option<std::ops::Range<u64>>,
        from: DType,
        to: DType,
        n_per_row: usize,
        mut sink: impl FnMut(&[u8]) -> Result<(), ExportError>,
    ) -> Result<u64, ExportError> {
        let mut consumed = 0u64;
        ck.stream(t, range, |block| {
            consumed += block.len() as u64;
            self.encode(from, to, block, n_per_row, &mut sink)
        })?;
        Ok(consumed)
    }

    /// Encode `data` (whole rows of `n_per_row` elements of `from`) as `to` into `sink`;
    /// the bytes pass through untouched when the types agree.
    pub fn encode(
        &mut self,
        from: DType,
        to: DType,
        data: &[u8],
        n_per_row: usize,
        mut sink: impl FnMut(&[u8]) -> Result<(), ExportError>,
    ) -> Result<(), ExportError> {
        if from == to {
            return sink(data);
        }
        if from.is_quantized() {
            return Err(ExportError::Invalid(format!(
                "cannot convert quantized {from} data to {to}; convert from a float checkpoint"
            )));
        }
        let row_bytes = from.bytes_for(n_per_row as u64).unwrap_or(0) as usize;
        if row_bytes == 0 || !data.len().is_multiple_of(row_bytes) {
            return Err(ExportError::Invalid(format!(
                "{} bytes of {from} are not whole rows of {n_per_row}",
                data.len()
            )));
        }
        // About 16 MiB of f32 per chunk.
        let rows_per_chunk = ((4 << 20) / n_per_row.max(1)).max(1);
        for chunk in data.chunks(rows_per_chunk * row_bytes) {
            self.out.clear();
            if to.is_quantized() {
                // The quantizers spread rows over the rayon pool themselves.
                crate::cast::to_f32_into(from, chunk, &mut self.f32s)?;
                crate::quant::quantize_into(to, &self.f32s, n_per_row, &mut self.out)?;
            } else {
                // Float casts: one slice of whole rows per worker, concatenated in order.
                let per_task = (rows_per_chunk / rayon::current_num_threads().max(1)).max(1);
                let pieces = chunk
                    .par_chunks(per_task * row_bytes)
                    .map(|piece| {
                        let mut out = Vec::new();
                        crate::cast::from_f32_into(
                            to,
                            &crate::cast::to_f32(from, piece)?,
                            &mut out,
                        )?;
                        Ok(out)
                    })
                    .collect::<Result<Vec<Vec<u8>>, crate::cast::CastError>>()?;
                pieces.iter().for_each(|p| self.out.extend_from_slice(p));
            }
            sink(&self.out)?;
        }
        Ok(())
    }
}

/// The checkpoint's tensors that are not LLaMA tensors, as stored, to be written unchanged
/// under their own names when `pass` (`--allow-extra`); refused when present otherwise, so
/// nothing is dropped silently. `taken` are the output's own tensor names.
pub fn extra_plan(
    ck: &Checkpoint,
    pass: bool,
    taken: &[&str],
) -> Result<Vec<TensorInfo>, ExportError> {
    let extra = ck.extra_tensors();
    if extra.is_empty() {
        return Ok(Vec::new());
    }
    if !pass {
        return Err(ExportError::Invalid(format!(
            "{}: {} tensors are not LLaMA tensors ({}); pass them through with --allow-extra",
            ck.path().display(),
            extra.len(),
            extra.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    extra
        .iter()
        .map(|name| {
            if taken.contains(&name.as_str()) {
                return Err(ExportError::Invalid(format!(
                    "extra tensor `{name}` has the name of a converted LLaMA tensor in the output"
                )));
            }
            Ok(ck.extra_info(name)?)
        })
        .collect()
}

/// Output bytes of a tensor of `shape` in `dtype`.
pub fn out_bytes(name: &str, dtype: DType, shape: &[u64]) -> Result<u64, ExportError> {
    let n = shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| ExportError::Invalid(format!("{name}: shape {shape:?} overflows")))?;
    dtype.bytes_for(n).ok_or_else(|| {
        ExportError::Invalid(format!(
            "{name}: {n} elements do not fill whole {dtype} blocks"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parallel cast gives exactly the sequential cast's bytes, over several chunks.
    #[test]
    fn encoder_casts_like_the_sequential_cast() {
        let n_per_row = 1000;
        let vals: Vec<f32> = (0..(5 << 20) / 1000 * 1000)
            .map(|i| ((i % 977) as f32 - 488.0) * 0.37)
            .collect();
        let mut src = Vec::new();
        crate::cast::from_f32_into(DType::F16, &vals, &mut src).unwrap();
        for to in [DType::F32, DType::BF16, DType::F16] {
            let mut want = Vec::new();
            crate::cast::from_f32_into(
                to,
                &crate::cast::to_f32(DType::F16, &src).unwrap(),
                &mut want,
            )
            .unwrap();
            let mut got = Vec::new();
            let mut calls = 0;
            Encoder::default()
                .encode(DType::F16, to, &src, n_per_row, |b| {
                    calls += 1;
                    got.extend_from_slice(b);
                    Ok(())
                })
                .unwrap();
            assert_eq!(got, want, "{to}");
            assert!(to == DType::F16 || calls > 1, "{to}: {calls} chunk(s)");
        }
        assert!(Encoder::default()
            .encode(DType::F16, DType::F32, &src[..10], n_per_row, |_| Ok(()))
            .is_err());
    }
}
