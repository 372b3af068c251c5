//! The errors of the inference crate: one enum, each variant saying what was wrong and with
//! which tensor, parameter or token.

use llama_formats::checkpoint::CheckpointError;
use llama_formats::llama::TensorName;
use llama_ggml::DType;

/// Errors of the inference crate.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The checkpoint could not be read (file unreadable, tensor missing, bad parameters).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Another [`WeightSource`](crate::WeightSource) failed.
    #[error(transparent)]
    Source(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A tensor's shape disagrees with the model's hyper-parameters.
    #[error(
        "tensor `{name}` has shape {got:?}, expected {expected:?} from the model's parameters"
    )]
    BadShape {
        /// The tensor.
        name: TensorName,
        /// Shape found.
        got: Vec<u64>,
        /// Shape the parameters imply.
        expected: Vec<u64>,
    },
    /// A linear-layer or embedding tensor that is not 2-D.
    #[error("tensor `{name}` has shape {shape:?}, expected a matrix")]
    NotAMatrix {
        /// The tensor.
        name: TensorName,
        /// Its shape.
        shape: Vec<u64>,
    },
    /// A tensor's byte count disagrees with its dtype and shape.
    #[error("tensor `{name}` holds {got} bytes, but {dtype} {shape:?} needs {expected}")]
    BadSize {
        /// The tensor.
        name: TensorName,
        /// Its dtype.
        dtype: DType,
        /// Its shape.
        shape: Vec<u64>,
        /// Bytes present.
        got: usize,
        /// Bytes needed.
        expected: u64,
    },
    /// A dtype the forward pass cannot compute with.
    #[error("tensor `{name}` has dtype {dtype}, which the forward pass does not support")]
    UnsupportedDType {
        /// The tensor.
        name: TensorName,
        /// Its dtype.
        dtype: DType,
    },
    /// Float bytes that could not be widened.
    #[error(transparent)]
    Cast(#[from] llama_ggml::cast::CastError),
    /// `norm_eps` outside (0, 1): RMSNorm would divide by zero or flatten every activation.
    #[error("norm_eps {0} is outside (0, 1)")]
    NormEps(f64),
    /// `rope_theta` not a finite number above 1: the rotary frequencies would be degenerate.
    #[error("rope_theta {0} is not a finite number above 1")]
    RopeTheta(f64),
    /// The checkpoint has no 2-D per-layer weight to judge its type by.
    #[error("the checkpoint has no per-layer weight matrices")]
    NoLayerWeights,
    /// A token id outside the vocabulary.
    #[error("token id {token} at position {position} is outside the vocabulary of {vocab}")]
    TokenOutOfRange {
        /// The id.
        token: u32,
        /// Its position in the sequence.
        position: usize,
        /// Vocabulary size.
        vocab: usize,
    },
    /// No tokens to evaluate.
    #[error("no tokens to evaluate")]
    NoTokens,
    /// Two models compared layer by layer differ in width or depth.
    #[error("per-layer comparison needs the same shape: reference dim {reference_dim} x {reference_layers} layers, candidate dim {candidate_dim} x {candidate_layers} layers")]
    ShapesDiffer {
        /// Reference width.
        reference_dim: u64,
        /// Reference blocks.
        reference_layers: u64,
        /// Candidate width.
        candidate_dim: u64,
        /// Candidate blocks.
        candidate_layers: u64,
    },
    /// Hidden states compared after a block are not the same size.
    #[error("hidden states of layer {layer}: {reference} vs {candidate} values, width {dim} (the models' dims or sequences differ)")]
    HiddenStates {
        /// The block.
        layer: usize,
        /// Reference values (or sequences, when their counts differ).
        reference: usize,
        /// Candidate values (or sequences).
        candidate: usize,
        /// The width they are compared at.
        dim: usize,
    },
    /// `--device cuda` in a build without the `cuda` feature.
    #[error("this llama-tool was built without CUDA support; rebuild with `cargo build --release -p llama-tool --features cuda` (needs a CUDA toolkit; see docs/CUDA.md) or use --device cpu")]
    CudaNotBuilt,
    /// A device name other than `cpu`, `cuda`, `cuda:N`.
    #[error("unknown device `{0}` (expected cpu, cuda or cuda:N)")]
    UnknownDevice(String),
    /// The tensor backend failed (out of memory, no such GPU, a kernel error).
    #[error("tensor computation failed")]
    Compute(#[source] ComputeError),
}

impl InferError {
    /// Wrap any error of a custom [`WeightSource`](crate::WeightSource).
    pub fn source<E: std::error::Error + Send + Sync + 'static>(e: E) -> Self {
        InferError::Source(Box::new(e))
    }

    /// [`InferError::BadSize`] for tensor `name` of `dtype` and `shape`, which needs
    /// `expected` bytes, given the bytes found.
    pub(crate) fn bad_size(
        name: TensorName,
        dtype: DType,
        shape: &[u64],
        expected: u64,
    ) -> impl Fn(usize) -> InferError + '_ {
        move |got| InferError::BadSize {
            name,
            dtype,
            shape: shape.to_vec(),
            got,
            expected,
        }
    }
}

/// What the tensor backend reported (its message; the backend's types stay private).
#[derive(Debug)]
pub struct ComputeError(candle_core::Error);

impl std::fmt::Display for ComputeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ComputeError {}

/// `.compute()?` on a backend result: its error becomes [`InferError::Compute`]. A crate-private
/// trait rather than a public `From` impl, so the backend's error type stays out of the API.
pub(crate) trait OrCompute<T> {
    /// The result, with the backend's error wrapped.
    fn compute(self) -> Result<T, InferError>;
}

impl<T> OrCompute<T> for Result<T, candle_core::Error> {
    fn compute(self) -> Result<T, InferError> {
        self.map_err(|e| InferError::Compute(ComputeError(e)))
    }
}
