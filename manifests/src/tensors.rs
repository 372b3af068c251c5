//! Per-tensor content hashes: a format-independent identity of each tensor's values, so a GGUF
//! f16 export can be shown to hold exactly the tensors of the original `.pth` shards.
//!
//! Scheme `llama-tool-tensor-v1` (specified in `docs/MANIFEST.md`): SHA-256 over
//! `"llama-tool-tensor-v1\0"`, the canonical (Meta) name as u64-LE length + UTF-8, the rank as
//! u64 LE, each dimension (outermost first) as u64 LE, then every value in row-major order as
//! an IEEE f32 little-endian (f16 and bf16 widen exactly; every NaN is written as
//! `0x7fc00000`). The caller gives values in canonical layout (Meta shards merged, HF q/k
//! un-permuted, GGUF names mapped back): the checkpoint reader does that, this module only
//! hashes.

use std::collections::BTreeMap;

use sha2::Digest as _;

use crate::json::{TensorHash, TensorSet};

/// The identity scheme this module implements.
pub(crate) const SCHEME: &str = "llama-tool-tensor-v1";

/// Errors of tensor hashing.
#[derive(Debug, thiserror::Error)]
pub enum TensorHashError {
    /// More or fewer values than the shape holds.
    #[error("tensor {name}: shape {shape:?} holds {expected} values, got {got}")]
    ValueCount {
        /// Tensor name.
        name: String,
        /// Its shape.
        shape: Vec<u64>,
        /// Values the shape holds.
        expected: u64,
        /// Values given.
        got: u64,
    },
    /// The shape's element count overflows u64.
    #[error("tensor {name}: shape {shape:?} overflows")]
    ShapeOverflow {
        /// Tensor name.
        name: String,
        /// Its shape.
        shape: Vec<u64>,
    },
    /// The same name twice.
    #[error("tensor {0} given twice")]
    Duplicate(String),
    /// The checkpoint could not be read.
    #[error(transparent)]
    Checkpoint(#[from] llama_formats::checkpoint::CheckpointError),
    /// A tensor of a type whose blocks cannot be sized for decoding.
    #[error("tensor {name}: cannot size {dtype} blocks")]
    Undecodable {
        /// Tensor name.
        name: String,
        /// Its type.
        dtype: llama_ggml::DType,
    },
    /// A tensor's bytes could not be decoded to f32.
    #[error("tensor {name}: {error}")]
    Decode {
        /// Tensor name.
        name: String,
        /// The dequantizer's error.
        error: llama_ggml::QuantError,
    },
}

/// The running hash of one tensor, fed its values in order, in pieces of any size.
pub(crate) struct TensorDigest {
    name: String,
    shape: Vec<u64>,
    expected: u64,
    got: u64,
    hasher: sha2::Sha256,
}

impl TensorDigest {
    /// Start hashing tensor `name` of `shape`.
    pub fn new(name: &str, shape: &[u64]) -> Result<TensorDigest, TensorHashError> {
        let expected = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| TensorHashError::ShapeOverflow {
                name: name.into(),
                shape: shape.to_vec(),
            })?;
        let mut hasher = sha2::Sha256::new();
        hasher.update(SCHEME.as_bytes());
        hasher.update([0u8]);
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((shape.len() as u64).to_le_bytes());
        for d in shape {
            hasher.update(d.to_le_bytes());
        }
        Ok(TensorDigest {
            name: name.into(),
            shape: shape.to_vec(),
            expected,
            got: 0,
            hasher,
        })
    }

    /// Feed the next values.
    pub fn update(&mut self, values: &[f32]) {
        let mut buf = [0u8; 4096];
        for chunk in values.chunks(buf.len() / 4) {
            for (o, v) in buf.chunks_exact_mut(4).zip(chunk) {
                let bits = if v.is_nan() { 0x7fc0_0000 } else { v.to_bits() };
                o.copy_from_slice(&bits.to_le_bytes());
            }
            self.hasher.update(&buf[..chunk.len() * 4]);
        }
        self.got += values.len() as u64;
    }

    /// The identity, once every value was fed.
    pub fn finish(self) -> Result<TensorHash, TensorHashError> {
        if self.got != self.expected {
            return Err(TensorHashError::ValueCount {
                name: self.name,
                shape: self.shape,
                expected: self.expected,
                got: self.got,
            });
        }
        Ok(TensorHash {
            name: self.name,
            shape: self.shape,
            sha256: hex::encode(self.hasher.finalize().as_slice()),
        })
    }
}

/// Collects the identities of a checkpoint's tensors.
#[derive(Default)]
pub(crate) struct TensorHasher {
    done: BTreeMap<String, TensorHash>,
}

impl TensorHasher {
    /// An empty set.
    pub fn new() -> TensorHasher {
        TensorHasher::default()
    }

    /// Hash one whole tensor.
    #[cfg(test)]
    pub fn add(
        &mut self,
        name: &str,
        shape: &[u64],
        values: &[f32],
    ) -> Result<(), TensorHashError> {
        let mut d = TensorDigest::new(name, shape)?;
        d.update(values);
        self.add_digest(d)
    }

    /// Add a tensor hashed piecewise with [`TensorDigest`].
    #[cfg(test)]
    pub(crate) fn add_digest(&mut self, d: TensorDigest) -> Result<(), TensorHashError> {
        let h = d.finish()?;
        if self.done.contains_key(&h.name) {
            return Err(TensorHashError::Duplicate(h.name));
        }
        self.done.insert(h.name.clone(), h);
        Ok(())
    }

    /// The set, tensors sorted by name.
    pub fn finish(self, checkpoint: &str) -> TensorSet {
        TensorSet {
            checkpoint: checkpoint.into(),
            scheme: SCHEME.into(),
            tensors: self.done.into_values().collect(),
        }
    }
}

/// Values decoded per step when hashing a checkpoint (bounded memory beside the stored bytes).
const DECODE_STEP: usize = 1 << 20;

/// Hash every LLaMA tensor of `ck` (canonical Meta names, Meta orientation and rotary
/// layout, shards merged: what [`llama_formats::checkpoint::Checkpoint::read`] gives),
/// decoding floats and ggml quant blocks to f32. Tensors are hashed in parallel on the
/// current rayon pool; `on_tensor(name, stored_bytes)` is called after each.
pub fn hash_checkpoint(
    ck: &llama_formats::checkpoint::Checkpoint,
    label: &str,
    on_tensor: &(dyn Fn(&str, u64) + Sync),
) -> Result<TensorSet, TensorHashError> {
    use rayon::prelude::*;
    let names = ck.llama_tensors();
    let hashes: Vec<Result<TensorHash, TensorHashError>> = names
        .par_iter()
        .map(|&t| {
            let name = t.meta();
            let (dtype, shape) = ck.tensor_info(t)?;
            let bytes = ck.read(t)?;
            let mut d = TensorDigest::new(&name, &shape)?;
            let block = dtype.block_size().max(1);
            let step_vals = (DECODE_STEP / block).max(1) * block;
            let step_bytes = dtype.bytes_for(step_vals as u64).unwrap_or(0) as usize;
            if step_bytes == 0 {
                return Err(TensorHashError::Undecodable { name, dtype });
            }
            for piece in bytes.chunks(step_bytes) {
                let n = piece.len() / dtype.block_bytes().max(1) * block;
                let vals = llama_ggml::quant::dequantize(dtype, piece, n).map_err(|error| {
                    TensorHashError::Decode {
                        name: name.clone(),
                        error,
                    }
                })?;
                d.update(&vals);
            }
            drop(bytes);
            ck.release(t);
            let h = d.finish()?;
            on_tensor(
                &name,
                ck.tensor_info(t)
                    .map(|(dt, s)| dt.bytes_for(s.iter().product()).unwrap_or(0))
                    .unwrap_or(0),
            );
            Ok(h)
        })
        .collect();
    let mut set = TensorHasher::new();
    for h in hashes {
        let h = h?;
        if set.done.insert(h.name.clone(), h.clone()).is_some() {
            return Err(TensorHashError::Duplicate(h.name));
        }
    }
    Ok(set.finish(label))
}

/// One difference between two tensor sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TensorDiff {
    /// In the expected set only.
    Missing(String),
    /// In the actual set only.
    Unexpected(String),
    /// Shapes differ.
    Shape {
        /// Tensor name.
        name: String,
        /// Expected shape.
        expected: Vec<u64>,
        /// Actual shape.
        actual: Vec<u64>,
    },
    /// Same shape, different values.
    Values(String),
}

impl std::fmt::Display for TensorDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TensorDiff::Missing(n) => write!(f, "{n}: MISSING"),
            TensorDiff::Unexpected(n) => write!(f, "{n}: UNLISTED"),
            TensorDiff::Shape {
                name,
                expected,
                actual,
            } => {
                write!(f, "{name}: SHAPE expected {expected:?}, actual {actual:?}")
            }
            TensorDiff::Values(n) => write!(f, "{n}: VALUES differ"),
        }
    }
}

/// Every difference between `expected` and `actual` (empty: same tensors, same values).
pub fn compare(expected: &TensorSet, actual: &TensorSet) -> Vec<TensorDiff> {
    let a: BTreeMap<&str, &TensorHash> = actual
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let e: BTreeMap<&str, &TensorHash> = expected
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let mut out = Vec::new();
    for (name, et) in &e {
        match a.get(name) {
            None => out.push(TensorDiff::Missing(name.to_string())),
            Some(at) if at.shape != et.shape => out.push(TensorDiff::Shape {
                name: name.to_string(),
                expected: et.shape.clone(),
                actual: at.shape.clone(),
            }),
            Some(at) if !at.sha256.eq_ignore_ascii_case(&et.sha256) => {
                out.push(TensorDiff::Values(name.to_string()))
            }
            Some(_) => {}
        }
    }
    for name in a.keys() {
        if !e.contains_key(name) {
            out.push(TensorDiff::Unexpected(name.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piecewise_equals_whole_and_f16_widening_agrees() {
        let vals: Vec<f32> = (0..5000)
            .map(|i| ((i % 256) as f32) * 0.125 - 8.0)
            .collect();
        let mut whole = TensorHasher::new();
        whole
            .add("layers.0.attention.wq.weight", &[50, 100], &vals)
            .unwrap();
        let mut d = TensorDigest::new("layers.0.attention.wq.weight", &[50, 100]).unwrap();
        d.update(&vals[..1234]);
        d.update(&vals[1234..]);
        let mut pieces = TensorHasher::new();
        pieces.add_digest(d).unwrap();
        let (a, b) = (whole.finish("."), pieces.finish("."));
        assert!(compare(&a, &b).is_empty());
        // Same values via f16 (exactly representable) hash the same.
        let via_f16: Vec<f32> = vals
            .iter()
            .map(|v| half::f16::from_f32(*v).to_f32())
            .collect();
        let mut h = TensorHasher::new();
        h.add("layers.0.attention.wq.weight", &[50, 100], &via_f16)
            .unwrap();
        assert!(compare(&a, &h.finish(".")).is_empty());
    }

    #[test]
    fn name_shape_and_values_all_count() {
        let v = [1.0f32, 2.0, 3.0, 4.0];
        let mut base = TensorHasher::new();
        base.add("t", &[2, 2], &v).unwrap();
        let base = base.finish(".");
        let mut other = TensorHasher::new();
        other.add("t", &[4, 1], &v).unwrap();
        assert!(matches!(
            compare(&base, &other.finish("."))[0],
            TensorDiff::Shape { .. }
        ));
        let mut other = TensorHasher::new();
        other.add("t", &[2, 2], &[1.0, 2.0, 3.0, 4.5]).unwrap();
        assert_eq!(
            compare(&base, &other.finish(".")),
            vec![TensorDiff::Values("t".into())]
        );
        let mut bad = TensorHasher::new();
        assert!(bad.add("t", &[3], &v).is_err());
    }
}
