//! Writers of whole LLaMA checkpoints from a [`Checkpoint`]:
//! GGUF (llama.cpp), a Hugging Face safetensors folder, and Meta `.pth` shards with any
//! model-parallel count. Each plans its tensors (names, types, shapes: the output's header is
//! computed up front), then [`pipeline::write_tensors`] streams one tensor at a time from the
//! memory-mapped source through the [`pipeline::Encoder`] into the format's
//! [`pipeline::TensorWriter`], releasing the source pages as it goes. `quantize` uses the
//! same loop ([`crate::quant::quantize_gguf`]).
#![deny(missing_docs)]

pub mod gguf;
pub mod hf;
pub mod meta;
pub mod piped;
pub(crate) mod pipeline;

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::atomic::AtomicFile;
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::dtype::DType;
use pipeline::{Job, Part};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the checkpoint failed.
    #[error(transparent)]
    /// Reading the source failed.
    Checkpoint(#[from] CheckpointError),
    /// Reading or writing a GGUF failed.
    #[error(transparent)]
    /// Writing GGUF failed.
    Gguf(#[from] crate::gguf::GgufError),
    /// Writing a safetensors file failed.
    #[error(transparent)]
    /// Writing safetensors failed.
    Safetensors(#[from] crate::safetensors::SafetensorsError),
    /// Writing a torch `.pth` file failed.
    #[error(transparent)]
    /// Writing `.pth` failed.
    Pth(#[from] crate::pth::PthError),
    /// Slicing a tensor into model-parallel shards failed.
    #[error(transparent)]
    /// Merging or splitting shards failed.
    Merge(#[from] crate::merge::MergeError),
    /// A float cast failed.
    #[error(transparent)]
    /// A float conversion failed.
    Cast(#[from] crate::cast::CastError),
    /// Quantization failed (outside a named tensor).
    #[error(transparent)]
    /// Quantization failed.
    Quant(#[from] llama_ggml::quant::QuantError),
    /// A tensor's data could not be quantized or converted to the output type.
    #[error("tensor {tensor:?}: {error}")]
    Encode {
        /// The output tensor's name.
        tensor: String,
        /// Why.
        error: llama_ggml::quant::QuantError,
    },
    /// Writing the output failed.
    #[error("{path}: {error}")]
    Io {
        /// The output file.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
    /// The request cannot be met for this model.
    #[error("{0}")]
    Invalid(String),
}

/// A buffered output file at `path`, kept under a temporary name until [`commit_output`].
pub(crate) fn create_output(path: &Path) -> Result<BufWriter<AtomicFile>, ExportError> {
    let file = AtomicFile::create(path).map_err(io_at(path))?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}

/// Flush the output a writer's `finish` handed back and move it to its final name `path`,
/// which is returned.
pub(crate) fn commit_output(
    out: BufWriter<AtomicFile>,
    path: &Path,
) -> Result<PathBuf, ExportError> {
    let file = out.into_inner().map_err(|e| ExportError::Io {
        path: path.to_path_buf(),
        error: e.into_error(),
    })?;
    file.commit().map_err(io_at(path))
}

/// Map an io::Error to one naming `path`.
pub(crate) fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        error: source,
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

/// [`pipeline::write_tensors`]' per-tensor callback reporting to `progress`.
fn advance(progress: &dyn Progress) -> impl FnMut(&Job<Part>, u64) + '_ {
    move |j, read| progress.advance(read, &j.out.name)
}

/// A progress sink that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _bytes: u64, _tensor: &str) {}
}

/// The checkpoint's tensors that are not LLaMA tensors, as stored, to be written unchanged
/// under their own names when `pass` (`--allow-extra`); refused when present otherwise, so
/// nothing is dropped silently. `taken` are the output's own tensor names.
pub(crate) fn extra_jobs(
    ck: &Checkpoint,
    pass: bool,
    taken: &[&str],
) -> Result<Vec<Job<Part>>, ExportError> {
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
            let out = ck.extra_info(name)?;
            Ok(Job {
                key: Part::Extra(name.clone()),
                src: out.dtype,
                out,
            })
        })
        .collect()
}

/// Output bytes of a tensor of `shape` in `dtype`.
pub(crate) fn out_bytes(name: &str, dtype: DType, shape: &[u64]) -> Result<u64, ExportError> {
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
