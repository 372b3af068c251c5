//! Tensor-by-tensor comparison of two checkpoints of any formats (`llama-tool diff`).
//!
//! Both sides are read through [`Checkpoint`], which maps every layout's names to Meta's
//! (`blk.N.attn_q` and `model.layers.N.self_attn.q_proj` are both `layers.N.attention.wq`),
//! merges Meta shards and un-permutes Hugging Face q/k back to Meta's interleaved rotary
//! layout, so tensors are compared in one layout. For each tensor: presence on both sides,
//! shape, dtype, the format-independent identity hash of its values ([`crate::tensors`],
//! floats widened exactly to f32, quant blocks dequantized), and the largest absolute and
//! relative difference of the values.
//!
//! Memory stays bounded whatever the model size: the two sides of one tensor are streamed
//! in lockstep (the candidate on a second thread through a channel of a few
//! [`DECODE_STEP`]-value pieces), never whole.

use std::collections::BTreeMap;
use std::sync::mpsc;

use llama_formats::checkpoint::{Checkpoint, CheckpointError};
use llama_formats::llama::TensorName;
use llama_ggml::DType;

use crate::tensors::{TensorDigest, TensorHashError};

/// Values decoded and compared per step.
pub(crate) const DECODE_STEP: usize = 1 << 20;

/// Pieces in flight from the second side.
const IN_FLIGHT: usize = 4;

/// Why two checkpoints could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A checkpoint could not be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A tensor of a type whose values cannot be decoded.
    #[error("{path}: tensor `{name}`: cannot decode {dtype} values")]
    Undecodable {
        /// The checkpoint.
        path: String,
        /// Meta name.
        name: String,
        /// Its type.
        dtype: DType,
    },
    /// A tensor's bytes could not be decoded to f32.
    #[error("{path}: tensor `{name}`: {error}")]
    Decode {
        /// The checkpoint.
        path: String,
        /// Meta name.
        name: String,
        /// The dequantizer's error.
        error: llama_ggml::QuantError,
    },
    /// Side B's reader stopped because side A failed first (whose error is reported).
    #[error("{path}: tensor `{name}`: comparison stopped")]
    Stopped {
        /// The checkpoint.
        path: String,
        /// Meta name.
        name: String,
    },
    /// Side B's reader thread panicked.
    #[error("{path}: tensor `{name}`: reader thread panicked")]
    ReaderPanicked {
        /// The checkpoint.
        path: String,
        /// Meta name.
        name: String,
    },
    /// Hashing failed (a value count disagreeing with the shape).
    #[error(transparent)]
    Hash(#[from] TensorHashError),
    /// One side delivered fewer values than its shape holds.
    #[error("{path}: tensor `{name}` ended after {got} of {expected} values")]
    Short {
        /// The checkpoint.
        path: String,
        /// Meta name.
        name: String,
        /// Values received.
        got: u64,
        /// Values the shape holds.
        expected: u64,
    },
}

/// How one tensor compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeltaStatus {
    /// Same shape, same dtype, same values.
    Identical,
    /// Same shape and values, stored in another dtype (f16 values in an f32 file).
    Dtype,
    /// Same shape, different values.
    Values,
    /// Different shapes (values not compared).
    Shape,
    /// Only in A.
    Missing,
    /// Only in B.
    Extra,
}

impl DeltaStatus {
    /// The word shown in tables.
    pub fn word(self) -> &'static str {
        match self {
            DeltaStatus::Identical => "identical",
            DeltaStatus::Dtype => "dtype",
            DeltaStatus::Values => "values",
            DeltaStatus::Shape => "shape",
            DeltaStatus::Missing => "missing",
            DeltaStatus::Extra => "extra",
        }
    }
}

/// One side of a tensor.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TensorSide {
    /// Stored dtype (`f16`, `q4_k`, ...).
    pub dtype: String,
    /// Shape, Meta orientation, shards merged.
    pub shape: Vec<u64>,
    /// Identity hash of the values (`llama-tool-tensor-v1`); None when not read (shapes differ).
    pub sha256: Option<String>,
}

/// One tensor of the union of both sides.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TensorDelta {
    /// Meta name.
    pub name: String,
    /// The verdict.
    pub status: DeltaStatus,
    /// In A.
    pub a: Option<TensorSide>,
    /// In B.
    pub b: Option<TensorSide>,
    /// Largest |a - b| (when shapes agree).
    pub max_abs: Option<f64>,
    /// `max |a - b| / max |a|` (0 when both are all zero).
    pub max_rel: Option<f64>,
    /// `||a - b|| / ||a||`.
    pub rel_rms: Option<f64>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DiffReport {
    /// Every LLaMA tensor of either side, in Meta state-dict order.
    pub tensors: Vec<TensorDelta>,
    /// Stored names of A that are not LLaMA tensors (reported, not compared).
    pub unmapped_a: Vec<String>,
    /// Stored names of B that are not LLaMA tensors.
    pub unmapped_b: Vec<String>,
    /// Same tensors, shapes and values (dtype differences allowed: a GGUF export keeps
    /// norms in f32, a `dtype` tensor holds exactly the same values) and the unmapped names
    /// alike.
    pub equal: bool,
}

impl DiffReport {
    /// The verdict: [`equal`](Self::equal), and with `strict_dtype` no dtype differences.
    pub fn is_equal(&self, strict_dtype: bool) -> bool {
        self.equal && (!strict_dtype || self.count(DeltaStatus::Dtype) == 0)
    }

    /// Whether tensor `t` counts as a difference under `strict_dtype`.
    pub fn differs(t: &TensorDelta, strict_dtype: bool) -> bool {
        match t.status {
            DeltaStatus::Identical => false,
            DeltaStatus::Dtype => strict_dtype,
            _ => true,
        }
    }

    /// How many tensors have `status`.
    pub fn count(&self, status: DeltaStatus) -> usize {
        self.tensors.iter().filter(|t| t.status == status).count()
    }
}

/// Compare `a` with `b`; `on_tensor(name, done, total)` after each tensor.
pub fn diff(
    a: &Checkpoint,
    b: &Checkpoint,
    on_tensor: &mut dyn FnMut(&str, usize, usize),
) -> Result<DiffReport, DiffError> {
    let mut names: BTreeMap<TensorName, (bool, bool)> = BTreeMap::new();
    for t in a.llama_tensors() {
        names.entry(t).or_default().0 = true;
    }
    for t in b.llama_tensors() {
        names.entry(t).or_default().1 = true;
    }
    let total = names.len();
    let mut tensors = Vec::with_capacity(total);
    for (i, (&t, &(in_a, in_b))) in names.iter().enumerate() {
        let name = t.meta();
        let side = |ck: &Checkpoint| -> Result<(DType, TensorSide), DiffError> {
            let (dtype, shape) = ck.tensor_info(t)?;
            Ok((
                dtype,
                TensorSide {
                    dtype: dtype.name().to_string(),
                    shape,
                    sha256: None,
                },
            ))
        };
        let delta = match (in_a, in_b) {
            (true, false) => TensorDelta {
                name: name.clone(),
                status: DeltaStatus::Missing,
                a: Some(side(a)?.1),
                b: None,
                max_abs: None,
                max_rel: None,
                rel_rms: None,
            },
            (false, true) => TensorDelta {
                name: name.clone(),
                status: DeltaStatus::Extra,
                a: None,
                b: Some(side(b)?.1),
                max_abs: None,
                max_rel: None,
                rel_rms: None,
            },
            _ => {
                let (da, mut sa) = side(a)?;
                let (db, mut sb) = side(b)?;
                if sa.shape != sb.shape {
                    TensorDelta {
                        name: name.clone(),
                        status: DeltaStatus::Shape,
                        a: Some(sa),
                        b: Some(sb),
                        max_abs: None,
                        max_rel: None,
                        rel_rms: None,
                    }
                } else {
                    let c = compare_tensor(a, b, t, (da, db), &sa.shape)?;
                    let same_values = c.hash_a == c.hash_b;
                    sa.sha256 = Some(c.hash_a);
                    sb.sha256 = Some(c.hash_b);
                    let status = match (same_values, da == db) {
                        (true, true) => DeltaStatus::Identical,
                        (true, false) => DeltaStatus::Dtype,
                        _ => DeltaStatus::Values,
                    };
                    TensorDelta {
                        name: name.clone(),
                        status,
                        a: Some(sa),
                        b: Some(sb),
                        max_abs: Some(c.max_abs),
                        max_rel: Some(c.max_rel),
                        rel_rms: Some(c.rel_rms),
                    }
                }
            }
        };
        tensors.push(delta);
        on_tensor(&name, i + 1, total);
    }
    let mut unmapped_a = a.extra_tensors().to_vec();
    let mut unmapped_b = b.extra_tensors().to_vec();
    unmapped_a.sort();
    unmapped_a.dedup();
    unmapped_b.sort();
    unmapped_b.dedup();
    let equal = tensors
        .iter()
        .all(|t| matches!(t.status, DeltaStatus::Identical | DeltaStatus::Dtype))
        && unmapped_a == unmapped_b;
    Ok(DiffReport {
        tensors,
        unmapped_a,
        unmapped_b,
        equal,
    })
}

struct Compared {
    hash_a: String,
    hash_b: String,
    max_abs: f64,
    max_rel: f64,
    rel_rms: f64,
}

/// Feed `ck`'s tensor `t` to `f` as f32 pieces of at most [`DECODE_STEP`] values.
fn decode_stream(
    ck: &Checkpoint,
    t: TensorName,
    dtype: DType,
    f: &mut dyn FnMut(Vec<f32>) -> Result<(), DiffError>,
) -> Result<(), DiffError> {
    let name = t.meta();
    let path = ck.path().display().to_string();
    let block = dtype.block_size().max(1);
    let step_vals = (DECODE_STEP / block).max(1) * block;
    let step_bytes = dtype.bytes_for(step_vals as u64).unwrap_or(0) as usize;
    if step_bytes == 0 || dtype.block_bytes() == 0 {
        return Err(DiffError::Undecodable { path, name, dtype });
    }
    let r = ck.stream(t, None, |bytes: &[u8]| -> Result<(), DiffError> {
        for piece in bytes.chunks(step_bytes) {
            let n = piece.len() / dtype.block_bytes() * block;
            let vals = llama_ggml::quant::dequantize(dtype, piece, n).map_err(|error| {
                DiffError::Decode {
                    path: path.clone(),
                    name: name.clone(),
                    error,
                }
            })?;
            f(vals)?;
        }
        Ok(())
    });
    ck.release(t);
    r
}

/// Stream both sides of one tensor in lockstep: hashes and differences.
fn compare_tensor(
    a: &Checkpoint,
    b: &Checkpoint,
    t: TensorName,
    (da, db): (DType, DType),
    shape: &[u64],
) -> Result<Compared, DiffError> {
    let name = t.meta();
    let expected: u64 = shape.iter().product();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Vec<f32>>(IN_FLIGHT);
        let worker = scope.spawn(move || -> Result<String, DiffError> {
            let mut d = TensorDigest::new(&t.meta(), shape)?;
            decode_stream(b, t, db, &mut |vals| {
                d.update(&vals);
                // The receiver hung up: side A failed, and its error is the one reported.
                tx.send(vals).map_err(|_| DiffError::Stopped {
                    path: b.path().display().to_string(),
                    name: t.meta(),
                })
            })?;
            Ok(d.finish()?.sha256)
        });
        let mut da_digest = TensorDigest::new(&name, shape)?;
        // The current piece of B and how much of it was used.
        let (mut piece, mut used): (Vec<f32>, usize) = (Vec::new(), 0);
        let (mut max_abs, mut max_a, mut diff_sq, mut a_sq) = (0f64, 0f64, 0f64, 0f64);
        let mut got_b: u64 = 0;
        let res_a = decode_stream(a, t, da, &mut |vals| {
            da_digest.update(&vals);
            let mut rest = vals.as_slice();
            while !rest.is_empty() {
                if used == piece.len() {
                    match rx.recv() {
                        Ok(more) => {
                            got_b += more.len() as u64;
                            (piece, used) = (more, 0);
                            continue;
                        }
                        // B ended early: its worker says why (or the count check below).
                        Err(_) => return Ok(()),
                    }
                }
                let n = rest.len().min(piece.len() - used);
                for (&x, &y) in rest[..n].iter().zip(&piece[used..used + n]) {
                    let (x, y) = (x as f64, y as f64);
                    let d = (x - y).abs();
                    if d > max_abs || (d.is_nan() && !max_abs.is_nan()) {
                        max_abs = d;
                    }
                    max_a = max_a.max(x.abs());
                    diff_sq += d * d;
                    a_sq += x * x;
                }
                rest = &rest[n..];
                used += n;
            }
            Ok(())
        });
        drop(rx);
        let res_b = worker.join().map_err(|_| DiffError::ReaderPanicked {
            path: b.path().display().to_string(),
            name: name.clone(),
        })?;
        res_a?;
        let hash_b = res_b?;
        let hash_a = da_digest.finish()?.sha256;
        if got_b != expected {
            return Err(DiffError::Short {
                path: b.path().display().to_string(),
                name: name.clone(),
                got: got_b,
                expected,
            });
        }
        let ratio = |num: f64, den: f64| {
            if den > 0.0 {
                num / den
            } else if num == 0.0 {
                0.0
            } else {
                f64::INFINITY
            }
        };
        Ok(Compared {
            hash_a,
            hash_b,
            max_rel: ratio(max_abs, max_a),
            rel_rms: ratio(diff_sq.sqrt(), a_sq.sqrt()),
            max_abs,
        })
    })
}
