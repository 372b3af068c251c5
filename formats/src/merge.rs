//! Merge and reshard Meta's model-parallel shards.
//!
//! A tensor split along axis `a` is the concatenation of its shards' pieces along `a`
//! (fairscale's ColumnParallelLinear splits dim 0, RowParallelLinear and ParallelEmbedding
//! dim 1); replicated tensors (norms) must be byte-identical in every shard. Any global
//! range along the split axis can be gathered from the pieces, so N shards become M shards
//! by reading each source byte once, without building the merged model.

use std::ops::Range;

use crate::dtype::DType;
use crate::tensor::TensorView;

/// Why shards could not be merged or split.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    /// Shards disagree on dtype or rank.
    #[error("{name}: shard {shard} has {got} but shard 0 has {want}")]
    Mismatch {
        /// The tensor.
        name: String,
        /// The shard.
        shard: usize,
        /// What was found.
        got: String,
        /// What is wanted.
        want: String,
    },
    /// A replicated tensor differs between shards.
    #[error("{name}: replicated tensor differs between shard 0 and shard {shard} (shards from different models?)")]
    ReplicaDiffers {
        /// The tensor.
        name: String,
        /// The shard.
        shard: usize,
    },
    /// The axis length does not divide into the requested shard count.
    #[error("{name}: dimension {axis} of length {len} does not split into {parts} equal parts")]
    Indivisible {
        /// The tensor.
        name: String,
        /// The axis.
        axis: usize,
        /// Length of that dimension.
        len: u64,
        /// The parts.
        parts: usize,
    },
    /// A requested range lies outside the tensor.
    #[error("{name}: range {lo}..{hi} outside dimension {axis} of length {len}")]
    OutOfRange {
        /// The tensor.
        name: String,
        /// The axis.
        axis: usize,
        /// Start of the range.
        lo: u64,
        /// End of the range.
        hi: u64,
        /// Length of that dimension.
        len: u64,
    },
    /// The merged shape's size does not fit 64 bits (shards lying about their widths).
    #[error("{name}: merged shape {shape} overflows 64 bits")]
    Overflow {
        /// The tensor.
        name: String,
        /// The shape.
        shape: String,
    },
    /// Only 1-D and 2-D tensors are split.
    #[error("{name}: cannot split a {rank}-D tensor along axis {axis}")]
    BadAxis {
        /// The tensor.
        name: String,
        /// The rank.
        rank: usize,
        /// The axis.
        axis: usize,
    },
}

/// The shape of the merged tensor (pieces concatenated along `axis`; `None` = replicated).
pub(crate) fn merged_shape(
    name: &str,
    parts: &[TensorView<'_>],
    axis: Option<usize>,
) -> Result<Vec<u64>, MergeError> {
    let first = parts.first().ok_or_else(|| MergeError::Mismatch {
        name: name.into(),
        shard: 0,
        got: "no shards".into(),
        want: "one or more".into(),
    })?;
    let mut shape = first.shape().to_vec();
    if let Some(a) = axis {
        if a >= shape.len() {
            return Err(MergeError::BadAxis {
                name: name.into(),
                rank: shape.len(),
                axis: a,
            });
        }
    }
    for (i, p) in parts.iter().enumerate().skip(1) {
        let same_rest = p.shape().len() == shape.len()
            && p.shape()
                .iter()
                .zip(first.shape())
                .enumerate()
                .all(|(k, (x, y))| Some(k) == axis || x == y);
        if p.dtype() != first.dtype() || !same_rest {
            return Err(MergeError::Mismatch {
                name: name.into(),
                shard: i,
                got: format!("{} {:?}", p.dtype(), p.shape()),
                want: format!("{} {:?}", first.dtype(), first.shape()),
            });
        }
        if let Some(a) = axis {
            shape[a] = shape[a]
                .checked_add(p.shape()[a])
                .ok_or_else(|| overflow(name, &shape, a, p.shape()[a]))?;
        }
    }
    // Every later product (rows, bytes) is at most this one: check it once, here.
    let fits = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .and_then(|n| first.dtype().bytes_for(n))
        .is_some();
    if !fits {
        return Err(MergeError::Overflow {
            name: name.into(),
            shape: format!("{shape:?}"),
        });
    }
    Ok(shape)
}

fn overflow(name: &str, shape: &[u64], axis: usize, more: u64) -> MergeError {
    MergeError::Overflow {
        name: name.into(),
        shape: format!("{shape:?} + {more} along dimension {axis}"),
    }
}

/// Check that a replicated tensor is identical in every shard.
pub(crate) fn check_replicated(name: &str, parts: &[TensorView<'_>]) -> Result<(), MergeError> {
    merged_shape(name, parts, None)?;
    let first = parts[0].data();
    for (i, p) in parts.iter().enumerate().skip(1) {
        if p.data() != first {
            return Err(MergeError::ReplicaDiffers {
                name: name.into(),
                shard: i,
            });
        }
    }
    Ok(())
}

/// The range along a split axis of length `len` that shard `index` of `count` holds.
pub(crate) fn shard_range(
    name: &str,
    axis: usize,
    len: u64,
    index: usize,
    count: usize,
) -> Result<Range<u64>, MergeError> {
    if count == 0 || !len.is_multiple_of(count as u64) {
        return Err(MergeError::Indivisible {
            name: name.into(),
            axis,
            len,
            parts: count,
        });
    }
    let step = len / count as u64;
    Ok(step * index as u64..step * (index as u64 + 1))
}

/// Append to `out` the bytes of the merged tensor restricted to `range` along `axis`
/// (row-major). Replicated tensors (`axis = None`) yield shard 0's bytes.
pub(crate) fn gather_into(
    name: &str,
    parts: &[TensorView<'_>],
    axis: Option<usize>,
    range: Range<u64>,
    out: &mut Vec<u8>,
) -> Result<(), MergeError> {
    gather_block_into(name, parts, axis, range, None, out)
}

/// [`gather_into`], further restricted to the indices `outer` of the dimensions before
/// `axis` flattened (for a matrix split along its columns: a block of rows), so a large
/// merged tensor can be produced a bounded block at a time.
pub(crate) fn gather_block_into(
    name: &str,
    parts: &[TensorView<'_>],
    axis: Option<usize>,
    range: Range<u64>,
    outer: Option<Range<u64>>,
    out: &mut Vec<u8>,
) -> Result<(), MergeError> {
    let shape = merged_shape(name, parts, axis)?;
    let Some(axis) = axis else {
        out.extend_from_slice(&parts[0].data());
        return Ok(());
    };
    if range.start > range.end || range.end > shape[axis] {
        return Err(MergeError::OutOfRange {
            name: name.into(),
            axis,
            lo: range.start,
            hi: range.end,
            len: shape[axis],
        });
    }
    let dtype: DType = parts[0].dtype();
    // Elements per unit step along `axis` (product of the inner dims) and outer repeat count.
    let inner: u64 = shape[axis + 1..].iter().product();
    let n_outer: u64 = shape[..axis].iter().product();
    let outer = outer.unwrap_or(0..n_outer);
    if outer.start > outer.end || outer.end > n_outer {
        return Err(MergeError::OutOfRange {
            name: name.into(),
            axis: 0,
            lo: outer.start,
            hi: outer.end,
            len: n_outer,
        });
    }
    let unit = |n: u64| dtype.bytes_for(n * inner).unwrap_or(0) as usize;
    let datas: Vec<_> = parts.iter().map(|p| p.data()).collect();
    for o in outer {
        let mut base = 0u64;
        for (p, d) in parts.iter().zip(&datas) {
            let len = p.shape()[axis];
            let lo = range.start.max(base);
            let hi = range.end.min(base + len);
            if lo < hi {
                let row = unit(len);
                let start = o as usize * row + unit(lo - base);
                out.extend_from_slice(&d[start..start + unit(hi - lo)]);
            }
            base += len;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(shape: Vec<u64>, data: &[u8]) -> TensorView<'_> {
        TensorView::contiguous(DType::U8, shape, data).unwrap()
    }

    #[test]
    fn merges_rows_and_columns() {
        // Full 4x4 matrix 0..16, split two ways.
        let full: Vec<u8> = (0..16).collect();
        let rows = [full[..8].to_vec(), full[8..].to_vec()];
        let cols: Vec<Vec<u8>> = (0..2)
            .map(|s| {
                (0..4)
                    .flat_map(|r| full[r * 4 + s * 2..r * 4 + s * 2 + 2].to_vec())
                    .collect()
            })
            .collect();
        let rp: Vec<_> = rows.iter().map(|d| view(vec![2, 4], d)).collect();
        let cp: Vec<_> = cols.iter().map(|d| view(vec![4, 2], d)).collect();
        for (parts, axis) in [(&rp, 0), (&cp, 1)] {
            assert_eq!(merged_shape("t", parts, Some(axis)).unwrap(), vec![4, 4]);
            let mut out = Vec::new();
            gather_into("t", parts, Some(axis), 0..4, &mut out).unwrap();
            assert_eq!(out, full);
        }
        // Reshard 2 -> 4 along columns: shard 1 of 4 is column 1.
        let mut out = Vec::new();
        let r = shard_range("t", 1, 4, 1, 4).unwrap();
        gather_into("t", &cp, Some(1), r, &mut out).unwrap();
        assert_eq!(out, vec![1, 5, 9, 13]);
        // A range straddling two shards along rows.
        let mut out = Vec::new();
        gather_into("t", &rp, Some(0), 1..3, &mut out).unwrap();
        assert_eq!(out, full[4..12].to_vec());
        // Rows 1..3 of the column-split matrix, columns 1..4.
        let mut out = Vec::new();
        gather_block_into("t", &cp, Some(1), 1..4, Some(1..3), &mut out).unwrap();
        assert_eq!(out, vec![5, 6, 7, 9, 10, 11]);
        assert!(gather_block_into("t", &cp, Some(1), 0..4, Some(3..5), &mut out).is_err());
    }

    #[test]
    fn replicas_must_match_and_shapes_must_agree() {
        let a = [1u8, 2, 3];
        let b = [1u8, 2, 4];
        assert!(check_replicated("n", &[view(vec![3], &a), view(vec![3], &a)]).is_ok());
        assert_eq!(
            check_replicated("n", &[view(vec![3], &a), view(vec![3], &b)]).unwrap_err(),
            MergeError::ReplicaDiffers {
                name: "n".into(),
                shard: 1
            }
        );
        let c = [0u8; 4];
        assert!(matches!(
            merged_shape("m", &[view(vec![1, 3], &a), view(vec![2, 2], &c)], Some(0)),
            Err(MergeError::Mismatch { .. })
        ));
        assert!(shard_range("m", 0, 10, 0, 4).is_err());
    }

    /// Issue 10, finding 4: three shards whose merged width overflows u64 used to wrap to a
    /// small number.
    #[test]
    fn merged_widths_that_overflow_are_refused() {
        let e: [u8; 0] = [];
        let parts: Vec<_> = (0..3).map(|_| view(vec![0, 1 << 63], &e)).collect();
        assert!(matches!(
            merged_shape("w", &parts, Some(1)),
            Err(MergeError::Overflow { .. })
        ));
        let parts: Vec<_> = (0..3)
            .map(|_| view(vec![0, 6148914691236517206], &e))
            .collect();
        assert!(matches!(
            merged_shape("w", &parts, Some(1)),
            Err(MergeError::Overflow { .. })
        ));
    }
}
