//! Reading a [`Checkpoint`](super::Checkpoint)'s LLaMA tensors: whole (`read_range`, for small tensors and
//! the HF q/k permutation) or streamed in bounded blocks of whole rows (`stream`).
//!
//! A writer asks for a LLaMA tensor (optionally one shard's range along its split axis)
//! and receives it as a sequence of byte blocks, each a whole number of rows in Meta
//! orientation and rotary layout. Rows that lie contiguously in a memory map (one file,
//! or a Meta merge along dim 0) are handed out straight from the map without a copy;
//! column-split merges go through one reusable block buffer of about [`BLOCK_BYTES`]; HF
//! q/k (a head permutation) and strided or 1-D tensors come as one block. Peak memory is
//! one block plus the mapped pages of the tensor in flight, which the caller drops with
//! [`Checkpoint::release`](super::Checkpoint::release).
//!
//! Tensors that are not LLaMA tensors (`--allow-extra`) are streamed unchanged from the
//! first file that holds them ([`stream_extra`](super::Checkpoint::stream_extra)).

use std::ops::Range;

use super::CheckpointError;
use crate::llama::naming::Layout;
use crate::llama::{permute, Role, TensorName};
use crate::merge;
use crate::tensor::{TensorInfo, TensorView};

/// Target size of one block handed to a sink.
pub(crate) const BLOCK_BYTES: usize = 32 << 20;

impl super::Checkpoint {
    /// The bytes of a LLaMA tensor restricted to `range` along its split axis (the whole
    /// tensor for `None` and for replicated tensors), row-major, in Meta orientation and
    /// rotary layout.
    pub(crate) fn read_range(
        &self,
        t: TensorName,
        range: Option<std::ops::Range<u64>>,
        out: &mut Vec<u8>,
    ) -> Result<(), CheckpointError> {
        let stored = self.stored_name(t)?;
        let parts = self.parts(stored)?;
        let axis = t.split_axis();
        if parts.len() > 1 && axis.is_none() {
            merge::check_replicated(stored, &parts)?;
        }
        if self.layout == Layout::Hf && matches!(t.role, Role::Wq | Role::Wk) {
            let p = self.params_unchecked()?;
            let heads = if t.role == Role::Wq {
                p.n_heads
            } else {
                p.n_kv_heads
            };
            let rows = parts[0].shape().first().copied().unwrap_or(0) as usize;
            let meta = permute::permute_rows(&parts[0].data(), rows, heads as usize, false)
                .ok_or_else(|| CheckpointError::HeadSplit {
                    path: self.path.clone(),
                    tensor: stored.to_string(),
                    rows,
                    heads,
                })?;
            let row_bytes = meta.len() / rows.max(1);
            let r = range.unwrap_or(0..rows as u64);
            let slice = meta
                .get(r.start as usize * row_bytes..r.end as usize * row_bytes)
                .ok_or_else(|| CheckpointError::RowRange {
                    path: self.path.clone(),
                    tensor: stored.to_string(),
                    start: r.start,
                    end: r.end,
                    rows,
                })?;
            out.extend_from_slice(slice);
            return Ok(());
        }
        match (axis, range) {
            (Some(a), Some(r)) => merge::gather_into(stored, &parts, Some(a), r, out)?,
            (Some(a), None) if parts.len() > 1 => {
                let len = merge::merged_shape(stored, &parts, Some(a))?[a];
                merge::gather_into(stored, &parts, Some(a), 0..len, out)?
            }
            _ => out.extend_from_slice(&parts[0].data()),
        }
        Ok(())
    }

    /// The whole LLaMA tensor (see [`read_range`](Self::read_range)).
    pub fn read(&self, t: TensorName) -> Result<Vec<u8>, CheckpointError> {
        let mut out = Vec::new();
        self.read_range(t, None, &mut out)?;
        Ok(out)
    }

    /// Feed the bytes of LLaMA tensor `t` (restricted to `range` along its split axis when
    /// given; replicated tensors are always whole) to `sink` in blocks of whole rows,
    /// row-major, Meta orientation and rotary layout. Equivalent to
    /// [`read_range`](Self::read_range) without materializing the tensor.
    pub fn stream<E: From<CheckpointError>>(
        &self,
        t: TensorName,
        range: Option<Range<u64>>,
        mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let stored = self.stored_name(t)?;
        let parts = self.parts(stored)?;
        let axis = t.split_axis();
        if parts.len() > 1 && axis.is_none() {
            merge::check_replicated(stored, &parts).map_err(CheckpointError::from)?;
        }
        let shape = merge::merged_shape(stored, &parts, axis.filter(|_| parts.len() > 1))
            .map_err(CheckpointError::from)?;
        let all_contiguous = parts.iter().all(|p| p.is_contiguous());
        let hf_qk = self.layout == Layout::Hf && matches!(t.role, Role::Wq | Role::Wk);
        if parts.len() == 1 && !all_contiguous && !hf_qk && shape.len() >= 2 {
            // A strided single-file tensor: gather a bounded block of rows at a time, so a
            // transposed view never exists whole in memory.
            let rows = match (range.clone().filter(|_| axis.is_some()), axis) {
                (None, _) => Some(0..shape[0]),
                (Some(r), Some(0)) => Some(r),
                _ => None,
            };
            if let Some(r) = rows {
                if r.start > r.end || r.end > shape[0] {
                    return Err(CheckpointError::from(merge::MergeError::OutOfRange {
                        name: stored.to_string(),
                        axis: 0,
                        lo: r.start,
                        hi: r.end,
                        len: shape[0],
                    })
                    .into());
                }
                let per_row: u64 = shape[1..].iter().product();
                let row_bytes = (per_row * parts[0].dtype().block_bytes() as u64).max(1);
                let rows_per_block = (BLOCK_BYTES as u64 / row_bytes).max(1);
                let mut buf = Vec::new();
                let mut lo = r.start;
                while lo < r.end {
                    let hi = (lo + rows_per_block).min(r.end);
                    buf.clear();
                    parts[0].gather_rows_into(lo..hi, &mut buf);
                    sink(&buf)?;
                    lo = hi;
                }
                return Ok(());
            }
        }
        if shape.len() != 2 || !all_contiguous || hf_qk {
            // Small (1-D), strided or permuted tensors: one block.
            let mut out = Vec::new();
            self.read_range(t, range, &mut out)?;
            return sink(&out);
        }
        let row_bytes = self.row_bytes(stored, &parts[0], shape[1])?;
        let rows_per_block = (BLOCK_BYTES / row_bytes.max(1)).max(1) as u64;
        let axis = axis.unwrap_or(0);
        let range = range.filter(|_| t.split_axis().is_some());
        let bad_range = |r: &Range<u64>, len: u64| {
            CheckpointError::from(merge::MergeError::OutOfRange {
                name: stored.to_string(),
                axis,
                lo: r.start,
                hi: r.end,
                len,
            })
        };
        if axis == 0 || parts.len() == 1 && range.is_none() {
            // Rows are contiguous in each part: slice them straight out of the maps.
            let r = range.unwrap_or(0..shape[0]);
            if axis == 0 && (r.start > r.end || r.end > shape[0]) {
                return Err(bad_range(&r, shape[0]).into());
            }
            let r = if axis == 0 { r } else { 0..shape[0] };
            let mut base = 0u64;
            for p in &parts {
                let len = p.shape()[0];
                let (lo, hi) = (r.start.max(base), r.end.min(base + len));
                if lo < hi {
                    let data = p.data();
                    let bytes = data
                        .get((lo - base) as usize * row_bytes..(hi - base) as usize * row_bytes)
                        .ok_or_else(|| bad_range(&(lo..hi), base + len))?;
                    for block in bytes.chunks(rows_per_block as usize * row_bytes) {
                        sink(block)?;
                    }
                }
                base += len;
            }
            return Ok(());
        }
        // Split along the columns (or one file asked for a column range): gather blocks
        // of rows.
        let cols = range.unwrap_or(0..shape[1]);
        let out_row = self.row_bytes(stored, &parts[0], cols.end.saturating_sub(cols.start))?;
        let rows_per_block = (BLOCK_BYTES / out_row.max(1)).max(1) as u64;
        let mut buf = Vec::with_capacity((rows_per_block as usize * out_row).min(BLOCK_BYTES));
        let mut row = 0;
        while row < shape[0] {
            let end = (row + rows_per_block).min(shape[0]);
            buf.clear();
            merge::gather_block_into(
                stored,
                &parts,
                Some(1),
                cols.clone(),
                Some(row..end),
                &mut buf,
            )
            .map_err(CheckpointError::from)?;
            sink(&buf)?;
            row = end;
        }
        Ok(())
    }

    fn row_bytes(
        &self,
        stored: &str,
        part: &TensorView<'_>,
        n: u64,
    ) -> Result<usize, CheckpointError> {
        part.dtype()
            .bytes_for(n)
            .map(|b| b as usize)
            .ok_or_else(|| CheckpointError::PartialBlocks {
                path: self.path.clone(),
                tensor: stored.to_string(),
                n,
                dtype: part.dtype(),
            })
    }

    /// The view of a stored tensor in the first file that holds it.
    fn first_view(&self, stored: &str) -> Result<TensorView<'_>, CheckpointError> {
        let missing = || CheckpointError::NotFound {
            path: self.path.clone(),
            tensor: stored.to_string(),
        };
        Ok(self
            .readers
            .iter()
            .find_map(|r| r.view_tensor(stored))
            .ok_or_else(missing)??)
    }

    /// dtype and shape, as stored, of a tensor that is not a LLaMA tensor (from the first
    /// file holding it: shard 0 for Meta folders).
    pub(crate) fn extra_info(&self, name: &str) -> Result<TensorInfo, CheckpointError> {
        let v = self.first_view(name)?;
        Ok(TensorInfo {
            name: name.to_string(),
            dtype: v.dtype(),
            shape: v.shape().to_vec(),
        })
    }

    /// Feed a non-LLaMA tensor's bytes, unchanged, to `sink` in blocks.
    pub(crate) fn stream_extra<E: From<CheckpointError>>(
        &self,
        name: &str,
        mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let v = self.first_view(name)?;
        let data = v.data();
        if data.is_empty() {
            return sink(&data);
        }
        for block in data.chunks(BLOCK_BYTES) {
            sink(block)?;
        }
        Ok(())
    }

    /// Drop the mapped pages of a non-LLaMA tensor once written.
    pub(crate) fn release_extra(&self, name: &str) {
        self.release_stored(name);
    }
}

#[cfg(test)]
mod tests {
    use crate::checkpoint::Checkpoint;
    use crate::dtype::DType;
    use crate::llama::TensorName;
    use crate::synth::{synth, SynthShape, SynthSpec};

    fn spec(mp: usize) -> SynthSpec {
        SynthSpec {
            shape: SynthShape::Tiny,
            layers: Some(1),
            mp: Some(mp),
            dtype: DType::F16,
            seed: 4,
            kv_heads: Some(2),
            ffn_dim_multiplier: None,
        }
    }

    /// A tensor that only shard 1 holds is still seen as an extra (and read from there),
    /// never dropped unseen.
    #[test]
    fn extra_tensor_in_a_later_shard_is_seen() {
        use crate::pth::{PthFile, PthWriter};
        use crate::tensor::TensorInfo;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("m");
        synth(&d, &spec(2)).unwrap();
        let shard1 = d.join("consolidated.01.pth");
        let bytes = {
            let f = PthFile::open(&shard1).unwrap();
            let mut infos: Vec<TensorInfo> = f.tensors().iter().map(|t| t.info.clone()).collect();
            infos.push(TensorInfo {
                name: "extra.bias".into(),
                dtype: DType::F32,
                shape: vec![2],
            });
            let mut w =
                PthWriter::new(std::io::Cursor::new(Vec::new()), "consolidated.01", infos).unwrap();
            for t in f.tensors() {
                w.write_tensor(&t.info.name, &f.view(t).unwrap().data())
                    .unwrap();
            }
            let extra: Vec<u8> = [0.5f32, -1.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            w.write_tensor("extra.bias", &extra).unwrap();
            w.finish().unwrap().into_inner()
        };
        std::fs::write(&shard1, bytes).unwrap();
        let ck = Checkpoint::open(&d).unwrap();
        assert_eq!(ck.extra_tensors(), ["extra.bias".to_string()]);
        let info = ck.extra_info("extra.bias").unwrap();
        assert_eq!((info.dtype, info.shape), (DType::F32, vec![2]));
        let mut got = Vec::new();
        ck.stream_extra::<crate::checkpoint::CheckpointError>("extra.bias", |b| {
            got.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(got.len(), 8);
        assert_eq!(f32::from_le_bytes(got[4..8].try_into().unwrap()), -1.0);
    }

    /// Streaming in blocks gives exactly what `read_range` gives, whole and by shard
    /// range, for row- and column-split merges and single files.
    #[test]
    fn streamed_blocks_equal_read_range() {
        let dir = tempfile::tempdir().unwrap();
        for mp in [1, 2] {
            let d = dir.path().join(format!("m{mp}"));
            synth(&d, &spec(mp)).unwrap();
            let ck = Checkpoint::open(&d).unwrap();
            for t in ck.llama_tensors() {
                let mut want = Vec::new();
                ck.read_range(t, None, &mut want).unwrap();
                let mut got = Vec::new();
                ck.stream::<crate::checkpoint::CheckpointError>(t, None, |b| {
                    got.extend_from_slice(b);
                    Ok(())
                })
                .unwrap();
                assert_eq!(got, want, "{t} mp {mp}");
                if let Some(a) = t.split_axis() {
                    let len = ck.tensor_info(t).unwrap().1[a];
                    let r = len / 4..len / 2;
                    let mut want = Vec::new();
                    ck.read_range(t, Some(r.clone()), &mut want).unwrap();
                    let mut got = Vec::new();
                    ck.stream::<crate::checkpoint::CheckpointError>(t, Some(r), |b| {
                        got.extend_from_slice(b);
                        Ok(())
                    })
                    .unwrap();
                    assert_eq!(got, want, "{t} mp {mp} range");
                }
            }
            let emb = TensorName::global(crate::llama::Role::TokEmbeddings);
            let mut n = 0;
            ck.stream::<crate::checkpoint::CheckpointError>(emb, None, |b| {
                n += b.len();
                Ok(())
            })
            .unwrap();
            assert_eq!(n, 512 * 256 * 2);
        }
    }
}
