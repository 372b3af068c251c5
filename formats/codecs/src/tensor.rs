//! The one tensor model every reader yields and every writer takes: a name, a dtype, a
//! shape (outermost dimension first, as torch and numpy write it) and bytes borrowed from a
//! memory map, possibly as a strided view (torch checkpoints can hold non-contiguous views).

use std::borrow::Cow;

use crate::dtype::DType;

/// What is known of a tensor before its bytes are touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name in its own format's naming.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape, outermost first (numpy order; GGUF files store the reverse).
    pub shape: Vec<u64>,
}

impl TensorInfo {
    /// Number of elements (product of the shape), `None` on overflow.
    pub fn n_elements(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
    }

    /// Bytes of the contiguous data, `None` on overflow or a partial block.
    pub fn n_bytes(&self) -> Option<u64> {
        self.dtype.bytes_for(self.n_elements()?)
    }
}

/// Why a view was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ViewError {
    /// Shape and strides differ in length.
    #[error("shape has {shape} dimensions but strides has {strides}")]
    RankMismatch {
        /// The shape.
        shape: usize,
        /// The strides.
        strides: usize,
    },
    /// The view reaches past the end of its storage.
    #[error("view needs {needed} bytes of storage but the storage holds {available}")]
    OutOfBounds {
        /// The needed.
        needed: u64,
        /// The available.
        available: u64,
    },
    /// Sizes overflow 64 bits.
    #[error("tensor size overflows")]
    Overflow,
    /// A stride-0 or overlapping view whose elements need more bytes than its storage has:
    /// materialising it would turn a tiny file into a huge allocation.
    #[error("view covers {logical} bytes but its storage holds only {available} (a stride-0 or overlapping view)")]
    Overlapping {
        /// The logical.
        logical: u64,
        /// The available.
        available: u64,
    },
    /// Block-quantized data must be contiguous and a whole number of blocks per row.
    #[error("{dtype} data must be contiguous with rows a multiple of {block} elements")]
    BadQuantizedLayout {
        /// The element type.
        dtype: DType,
        /// The block.
        block: usize,
    },
}

/// A tensor's data: `shape` and `strides` (in elements) over `storage`, starting `offset`
/// elements in. Plain types may be strided; quantized types are always contiguous.
#[derive(Debug, Clone)]
pub struct TensorView<'a> {
    dtype: DType,
    shape: Vec<u64>,
    strides: Vec<u64>,
    offset: u64,
    storage: &'a [u8],
}

/// Row-major (C-contiguous) strides for a shape.
pub(crate) fn contiguous_strides(shape: &[u64]) -> Vec<u64> {
    let mut strides = vec![1u64; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1].saturating_mul(shape[i + 1]);
    }
    strides
}

impl<'a> TensorView<'a> {
    /// A contiguous tensor whose bytes are exactly `data`.
    pub fn contiguous(dtype: DType, shape: Vec<u64>, data: &'a [u8]) -> Result<Self, ViewError> {
        let n = shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or(ViewError::Overflow)?;
        if dtype.is_quantized()
            && shape.last().copied().unwrap_or(0) % dtype.block_size() as u64 != 0
        {
            return Err(ViewError::BadQuantizedLayout {
                dtype,
                block: dtype.block_size(),
            });
        }
        let needed = dtype.bytes_for(n).ok_or(ViewError::Overflow)?;
        if needed != data.len() as u64 {
            return Err(ViewError::OutOfBounds {
                needed,
                available: data.len() as u64,
            });
        }
        let strides = contiguous_strides(&shape);
        Ok(TensorView {
            dtype,
            shape,
            strides,
            offset: 0,
            storage: data,
        })
    }

    /// A strided view into `storage` (torch's `as_strided`): element (i0, i1, ...) lives at
    /// element index `offset + sum(ik * strides[k])`. Every reachable element is checked to
    /// lie inside `storage`.
    pub fn strided(
        dtype: DType,
        shape: Vec<u64>,
        strides: Vec<u64>,
        offset: u64,
        storage: &'a [u8],
    ) -> Result<Self, ViewError> {
        if shape.len() != strides.len() {
            return Err(ViewError::RankMismatch {
                shape: shape.len(),
                strides: strides.len(),
            });
        }
        if dtype.is_quantized() {
            if offset != 0 || strides != contiguous_strides(&shape) {
                return Err(ViewError::BadQuantizedLayout {
                    dtype,
                    block: dtype.block_size(),
                });
            }
            // Quantized storage may be longer than the tensor: take the leading bytes.
            let n = shape
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .ok_or(ViewError::Overflow)?;
            let needed = dtype.bytes_for(n).ok_or(ViewError::Overflow)?;
            let data = usize::try_from(needed)
                .ok()
                .and_then(|n| storage.get(..n))
                .ok_or(ViewError::OutOfBounds {
                    needed,
                    available: storage.len() as u64,
                })?;
            return Self::contiguous(dtype, shape, data);
        }
        let esize = dtype.block_bytes() as u64;
        let empty = shape.contains(&0);
        if !empty {
            // Last element index reachable: offset + sum((d-1)*s).
            let mut last = offset;
            for (&d, &s) in shape.iter().zip(&strides) {
                last = (d - 1)
                    .checked_mul(s)
                    .and_then(|x| last.checked_add(x))
                    .ok_or(ViewError::Overflow)?;
            }
            let needed = last
                .checked_add(1)
                .and_then(|x| x.checked_mul(esize))
                .ok_or(ViewError::Overflow)?;
            if needed > storage.len() as u64 {
                return Err(ViewError::OutOfBounds {
                    needed,
                    available: storage.len() as u64,
                });
            }
            // Never more bytes out than the storage holds (checked: the shape product may
            // overflow even where every reachable index fits).
            let logical = shape
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .and_then(|n| n.checked_mul(esize))
                .ok_or(ViewError::Overflow)?;
            if logical > storage.len() as u64 {
                return Err(ViewError::Overlapping {
                    logical,
                    available: storage.len() as u64,
                });
            }
        }
        Ok(TensorView {
            dtype,
            shape,
            strides,
            // An empty view reaches no element, so its offset means nothing: a file may set
            // it past the end of an empty storage (a fuzz finding), and it must never be
            // used to slice.
            offset: if empty { 0 } else { offset },
            storage,
        })
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Shape, outermost first.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// Strides in elements.
    pub fn strides(&self) -> &[u64] {
        &self.strides
    }

    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Bytes of the data once contiguous.
    pub fn n_bytes(&self) -> u64 {
        self.dtype.bytes_for(self.n_elements()).unwrap_or(0)
    }

    /// True when the elements are stored row-major with no gaps.
    pub fn is_contiguous(&self) -> bool {
        if self.shape.contains(&0) {
            return true;
        }
        self.shape
            .iter()
            .zip(&self.strides)
            .zip(contiguous_strides(&self.shape))
            .all(|((&d, &s), c)| d == 1 || s == c)
    }

    /// The bytes in row-major order: borrowed when contiguous, gathered otherwise.
    pub fn data(&self) -> Cow<'a, [u8]> {
        let esize = self.dtype.block_bytes() as u64;
        let nbytes = self.n_bytes() as usize;
        if self.is_contiguous() {
            let start = (self.offset * esize) as usize;
            if self.dtype.is_quantized() {
                return Cow::Borrowed(&self.storage[..nbytes]);
            }
            return Cow::Borrowed(&self.storage[start..start + nbytes]);
        }
        let mut out = Vec::with_capacity(nbytes);
        self.gather_rows_into(0..self.shape.first().copied().unwrap_or(1), &mut out);
        Cow::Owned(out)
    }

    /// Append the row-major bytes of rows `rows` (indices along the first dimension) of a
    /// plain-typed view to `out`, gathering strided elements; for streaming a strided
    /// tensor a block of rows at a time. Rows past the end are ignored.
    pub fn gather_rows_into(&self, rows: std::ops::Range<u64>, out: &mut Vec<u8>) {
        let esize = self.dtype.block_bytes() as u64;
        let es = esize as usize;
        if self.shape.is_empty() {
            let b = (self.offset * esize) as usize;
            out.extend_from_slice(&self.storage[b..b + es]);
            return;
        }
        let rows = rows.start.min(self.shape[0])..rows.end.min(self.shape[0]);
        if rows.is_empty() || self.shape.contains(&0) {
            return;
        }
        let rank = self.shape.len();
        let mut idx = vec![0u64; rank];
        idx[0] = rows.start;
        let per_row: u64 = self.shape[1..].iter().product();
        let n = (rows.end - rows.start) * per_row;
        out.reserve(n as usize * es);
        for _ in 0..n {
            let e: u64 = self.offset
                + idx
                    .iter()
                    .zip(&self.strides)
                    .map(|(i, s)| i * s)
                    .sum::<u64>();
            let b = (e * esize) as usize;
            out.extend_from_slice(&self.storage[b..b + es]);
            for k in (0..rank).rev() {
                idx[k] += 1;
                if idx[k] < self.shape[k] {
                    break;
                }
                idx[k] = 0;
            }
        }
    }

    /// The storage span this view touches, in bytes (for releasing mapped pages).
    pub(crate) fn storage_span(&self) -> std::ops::Range<usize> {
        let es = self.dtype.block_bytes() as u64;
        if self.is_contiguous() {
            let start = if self.dtype.is_quantized() {
                0
            } else {
                self.offset * es
            };
            return start as usize..(start + self.n_bytes()) as usize;
        }
        let mut last = self.offset;
        for (&d, &s) in self.shape.iter().zip(&self.strides) {
            last += (d.max(1) - 1) * s;
        }
        (self.offset * es) as usize..((last + 1) * es) as usize
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_empty_view_with_an_offset_past_its_storage_reads_as_empty() {
        // torch_zip fuzz finding: shape [0, 4], storage of 0 bytes, storage offset 64.
        let v = TensorView::strided(DType::F32, vec![0, 4], vec![4, 1], 64, &[]).unwrap();
        assert!(v.data().is_empty());
        assert_eq!(v.storage_span(), 0..0);
        let mut out = Vec::new();
        v.gather_rows_into(0..1, &mut out);
        assert!(out.is_empty());
    }

    use super::*;

    #[test]
    fn transposed_view_gathers_in_row_major_order() {
        // storage holds [[0,1,2],[3,4,5]] as f32; view its transpose (3x2).
        let vals: Vec<f32> = (0..6).map(|x| x as f32).collect();
        let bytes: &[u8] = bytemuck::cast_slice(&vals);
        let v = TensorView::strided(DType::F32, vec![3, 2], vec![1, 3], 0, bytes).unwrap();
        assert!(!v.is_contiguous());
        let out: Vec<f32> = llama_ggml::cast::to_f32(DType::F32, &v.data()).unwrap();
        assert_eq!(out, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    fn out_of_bounds_view_is_refused() {
        let bytes = [0u8; 16];
        let e = TensorView::strided(DType::F32, vec![2, 2], vec![2, 1], 1, &bytes).unwrap_err();
        assert_eq!(
            e,
            ViewError::OutOfBounds {
                needed: 20,
                available: 16
            }
        );
        assert_eq!(
            TensorView::strided(DType::F32, vec![u64::MAX, 2], vec![2, 1], 0, &bytes).unwrap_err(),
            ViewError::Overflow
        );
    }

    /// Issue 10, finding 4: a stride-0 view of a few bytes claiming gigabytes is refused
    /// before anything is materialised.
    #[test]
    fn stride_zero_views_larger_than_their_storage_are_refused() {
        let bytes = [0u8; 4];
        let e =
            TensorView::strided(DType::F16, vec![65536, 65536], vec![0, 0], 0, &bytes).unwrap_err();
        assert!(matches!(e, ViewError::Overlapping { .. }), "{e}");
        let e = TensorView::strided(DType::F16, vec![1 << 40, 1 << 40], vec![0, 0], 0, &bytes)
            .unwrap_err();
        assert_eq!(e, ViewError::Overflow);
        // A broadcast that fits its storage is still fine.
        let v = TensorView::strided(DType::F16, vec![2], vec![0], 0, &bytes).unwrap();
        assert_eq!(v.data().len(), 4);
    }

    #[test]
    fn strided_rows_gather_in_blocks() {
        let vals: Vec<f32> = (0..12).map(|x| x as f32).collect();
        let bytes: &[u8] = bytemuck::cast_slice(&vals);
        let v = TensorView::strided(DType::F32, vec![4, 3], vec![1, 4], 0, bytes).unwrap();
        let whole = v.data().into_owned();
        let mut parts = Vec::new();
        v.gather_rows_into(0..3, &mut parts);
        v.gather_rows_into(3..4, &mut parts);
        assert_eq!(parts, whole);
    }

    #[test]
    fn offset_contiguous_view_borrows() {
        let vals: Vec<f32> = (0..6).map(|x| x as f32).collect();
        let bytes: &[u8] = bytemuck::cast_slice(&vals);
        let v = TensorView::strided(DType::F32, vec![2], vec![1], 3, bytes).unwrap();
        assert!(matches!(v.data(), Cow::Borrowed(_)));
        let out: Vec<f32> = llama_ggml::cast::to_f32(DType::F32, &v.data()).unwrap();
        assert_eq!(out, vec![3.0, 4.0]);
    }
}
