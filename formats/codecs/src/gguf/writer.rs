//! Streaming GGUF v3 writer (<https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>).
//!
//! The header, metadata and every tensor info are written up front from the declared
//! [`TensorInfo`]s (offsets follow from dtype and shape), then tensor data streams through
//! in declared order, chunk by chunk, so no tensor need ever be whole in memory. The layout
//! is gguf-py's `GGUFWriter`: zero padding to the alignment after the tensor infos and after
//! every tensor, and `general.alignment` (UINT32) added only when the alignment is not 32.

use std::collections::HashSet;
use std::io::Write;

use super::value::{encode_str, GgufValue};
use super::{GgufError, DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION, MAX_DIMS};
use crate::sequence::TensorSequence;
use crate::tensor::TensorInfo;

/// Writes one GGUF file to `W` as tensors arrive.
#[derive(Debug)]
pub struct GgufWriter<W: Write> {
    out: W,
    seq: TensorSequence,
    alignment: u64,
    /// Bytes written so far.
    pos: u64,
}

impl<W: Write> GgufWriter<W> {
    /// Check the tensors and metadata, then write the header, metadata and tensor infos.
    /// `tensors` carry numpy-order shapes; their data must follow in this order.
    pub fn new(
        mut out: W,
        mut metadata: Vec<(String, GgufValue)>,
        tensors: Vec<TensorInfo>,
        alignment: u64,
    ) -> Result<Self, GgufError> {
        let align32 = u32::try_from(alignment)
            .ok()
            .filter(|a| a.is_power_of_two())
            .ok_or(GgufError::BadAlignment(alignment))?;
        let mut keys = HashSet::new();
        for (k, v) in &metadata {
            if !keys.insert(k.as_str()) {
                return Err(GgufError::DuplicateKey(k.clone()));
            }
            if k == "general.alignment" && *v != GgufValue::U32(align32) {
                return Err(GgufError::AlignmentMismatch {
                    metadata: format!("{v:?}"),
                    alignment,
                });
            }
        }
        if alignment != DEFAULT_ALIGNMENT && !keys.contains("general.alignment") {
            metadata.push(("general.alignment".into(), GgufValue::U32(align32)));
        }

        let mut names = HashSet::new();
        let mut sizes = Vec::with_capacity(tensors.len());
        for t in &tensors {
            if !names.insert(t.name.as_str()) {
                return Err(GgufError::DuplicateTensorName(t.name.clone()));
            }
            sizes.push(check_tensor(t)?);
        }

        let mut head = Vec::new();
        head.extend_from_slice(&GGUF_MAGIC);
        head.extend_from_slice(&GGUF_VERSION.to_le_bytes());
        head.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        head.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        for (k, v) in &metadata {
            encode_str(k, &mut head);
            head.extend_from_slice(&v.value_type().id().to_le_bytes());
            v.encode(&mut head);
        }
        let mut offset = 0u64;
        for (t, &size) in tensors.iter().zip(&sizes) {
            encode_str(&t.name, &mut head);
            head.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
            for d in t.shape.iter().rev() {
                head.extend_from_slice(&d.to_le_bytes());
            }
            // check_tensor proved the id exists.
            let id = t.dtype.ggml_id().unwrap_or(u32::MAX);
            head.extend_from_slice(&id.to_le_bytes());
            head.extend_from_slice(&offset.to_le_bytes());
            offset = size
                .checked_next_multiple_of(alignment)
                .and_then(|s| offset.checked_add(s))
                .ok_or_else(|| GgufError::BadShape {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                })?;
        }
        let pad = padding(head.len() as u64, alignment);
        head.resize(head.len() + pad as usize, 0);
        out.write_all(&head)?;
        Ok(GgufWriter {
            out,
            seq: TensorSequence::new(tensors, sizes),
            alignment,
            pos: head.len() as u64,
        })
    }

    /// Begin the data of `name`, which must be the next declared tensor.
    pub fn start_tensor(&mut self, name: &str) -> Result<(), GgufError> {
        self.seq.start(name)?;
        Ok(())
    }

    /// Append bytes to the current tensor.
    pub fn write_chunk(&mut self, bytes: &[u8]) -> Result<(), GgufError> {
        self.seq.chunk(bytes.len() as u64)?;
        self.out.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Finish the current tensor: check its byte count and pad to the alignment.
    pub fn end_tensor(&mut self) -> Result<(), GgufError> {
        self.seq.end()?;
        let pad = padding(self.pos, self.alignment);
        self.out.write_all(&vec![0u8; pad as usize])?;
        self.pos += pad;
        Ok(())
    }

    /// `start_tensor`, one `write_chunk` and `end_tensor`.
    pub fn write_tensor(&mut self, name: &str, bytes: &[u8]) -> Result<(), GgufError> {
        self.start_tensor(name)?;
        self.write_chunk(bytes)?;
        self.end_tensor()
    }

    /// Check that every tensor was written, flush, and hand back the output.
    pub fn finish(mut self) -> Result<W, GgufError> {
        self.seq.finish()?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The data size of a tensor GGUF can hold, or why it cannot.
fn check_tensor(t: &TensorInfo) -> Result<u64, GgufError> {
    if t.dtype.ggml_id().is_none() {
        return Err(GgufError::NotInGguf {
            name: t.name.clone(),
            dtype: t.dtype,
        });
    }
    if t.shape.len() > MAX_DIMS {
        return Err(GgufError::BadShape {
            name: t.name.clone(),
            shape: t.shape.clone(),
        });
    }
    let inner = t.shape.last().copied().unwrap_or(1);
    let size = t
        .n_bytes()
        .filter(|_| inner % t.dtype.block_size() as u64 == 0)
        .filter(|_| t.shape.iter().all(|&d| i64::try_from(d).is_ok()));
    size.ok_or_else(|| GgufError::BadShape {
        name: t.name.clone(),
        shape: t.shape.clone(),
    })
}

/// Zero bytes needed after `pos` to reach a multiple of `alignment`.
fn padding(pos: u64, alignment: u64) -> u64 {
    pos.next_multiple_of(alignment) - pos
}
