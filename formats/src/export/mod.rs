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
use crate::llama::naming::Layout;
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
    /// A tensor the plan names is not in the source file.
    #[error("tensor {tensor:?} is not in the file")]
    NotInFile {
        /// The tensor's name.
        tensor: String,
    },
    /// A q or k matrix whose rows do not split into its heads (for the HF permutation).
    #[error("{tensor}: rows do not split into {heads} heads")]
    HeadsSplit {
        /// The tensor (Meta name).
        tensor: String,
        /// The heads it should split into.
        heads: u64,
    },
    /// Quantized data asked for another type: only float data is converted.
    #[error("cannot convert quantized {from} data to {to}; convert from a float checkpoint")]
    QuantizedInput {
        /// The source type.
        from: DType,
        /// The output type asked for.
        to: DType,
    },
    /// A block of source data that is not whole rows.
    #[error("{bytes} bytes of {dtype} are not whole rows of {n_per_row}")]
    PartialRows {
        /// Bytes in the block.
        bytes: usize,
        /// The source type.
        dtype: DType,
        /// Values per row.
        n_per_row: usize,
    },
    /// The checkpoint has tensors that are not LLaMA tensors and `--allow-extra` was not
    /// given.
    #[error(
        "{}: {} tensors are not LLaMA tensors ({}); pass them through with --allow-extra",
        path.display(),
        names.len(),
        names.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
    )]
    ExtraTensors {
        /// The checkpoint.
        path: PathBuf,
        /// The tensors' names (the message shows the first five).
        names: Vec<String>,
    },
    /// An extra tensor passed through would have the name of an output LLaMA tensor.
    #[error("extra tensor `{name}` has the name of a converted LLaMA tensor in the output")]
    ExtraNameTaken {
        /// The name.
        name: String,
    },
    /// A tensor's element count overflows.
    #[error("{tensor}: shape {shape:?} overflows")]
    ShapeOverflow {
        /// The tensor.
        tensor: String,
        /// Its shape.
        shape: Vec<u64>,
    },
    /// A tensor's element count is not a whole number of its type's blocks.
    #[error("{tensor}: {elements} elements do not fill whole {dtype} blocks")]
    PartialBlocks {
        /// The tensor.
        tensor: String,
        /// Its element count.
        elements: u64,
        /// The (block) type.
        dtype: DType,
    },
    /// A format that stores float tensors only was given quantized ones.
    #[error("{tensor}: {} output needs float tensors, found {found}", layout_output(*output))]
    NotFloat {
        /// The tensor (Meta name).
        tensor: String,
        /// The output's layout (HF or Meta).
        output: Layout,
        /// The tensor's type.
        found: DType,
    },
    /// `vocab_only` without a tokenizer.
    #[error("{}: no tokenizer.model found, so there is no vocabulary to write", path.display())]
    NoVocabulary {
        /// The checkpoint.
        path: PathBuf,
    },
    /// `--mp 0`.
    #[error("--mp must be at least 1")]
    ZeroShards,
    /// A model-parallel count that does not divide one of the model's sizes.
    #[error("cannot split into {mp} shards: {what} {n} is not divisible by {mp}")]
    ShardSplit {
        /// The shard count.
        mp: usize,
        /// Which size (`n_heads`, `dim`, ...).
        what: &'static str,
        /// Its value.
        n: u64,
    },
    /// `synth` asked for a type it does not write.
    #[error("synth writes f16, bf16 or f32, not {0}")]
    SynthDType(DType),
    /// `synth --kv-heads` that does not divide the heads.
    #[error("--kv-heads {kv_heads} must divide the {heads} heads")]
    SynthKvHeads {
        /// Key/value heads asked for.
        kv_heads: u64,
        /// Attention heads.
        heads: u64,
    },
    /// `synth --ffn-dim-multiplier` out of range.
    #[error("--ffn-dim-multiplier must be in (0, 16]")]
    SynthFfnMultiplier,
    /// `synth --mp` that does not divide one of the model's sizes.
    #[error("--mp {mp} does not divide {what} {n}")]
    SynthShards {
        /// The shard count.
        mp: usize,
        /// Which size (`n_heads`, `dim`, ...).
        what: &'static str,
        /// Its value.
        n: u64,
    },
}

/// How [`ExportError::NotFloat`] names an output layout.
fn layout_output(l: Layout) -> &'static str {
    match l {
        Layout::Hf => "Hugging Face",
        Layout::Meta => "Meta .pth",
        Layout::Gguf => "GGUF",
    }
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
        return Err(ExportError::ExtraTensors {
            path: ck.path().to_path_buf(),
            names: extra.to_vec(),
        });
    }
    extra
        .iter()
        .map(|name| {
            if taken.contains(&name.as_str()) {
                return Err(ExportError::ExtraNameTaken { name: name.clone() });
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
        .ok_or_else(|| ExportError::ShapeOverflow {
            tensor: name.to_string(),
            shape: shape.to_vec(),
        })?;
    dtype
        .bytes_for(n)
        .ok_or_else(|| ExportError::PartialBlocks {
            tensor: name.to_string(),
            elements: n,
            dtype,
        })
}
