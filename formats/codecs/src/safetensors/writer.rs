//! Streaming safetensors writer (<https://github.com/huggingface/safetensors#format>).
//!
//! The header is computed up front from the declared [`TensorInfo`]s in the given order
//! (offsets contiguous, no padding between tensors), written as the Python package writes
//! it (compact JSON, `__metadata__` first, spaces up to a multiple of 8 bytes), then tensor
//! data streams through in that order.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use super::{dtype_to_st_name, SafetensorsError, MAX_HEADER_LEN};
use crate::sequence::TensorSequence;
use crate::tensor::TensorInfo;

/// Writes one safetensors file to `W` as tensors arrive.
#[derive(Debug)]
pub struct SafetensorsWriter<W: Write> {
    out: W,
    seq: TensorSequence,
    pos: u64,
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The header bytes (JSON padded with spaces to a multiple of 8) and each tensor's size.
fn header(
    tensors: &[TensorInfo],
    metadata: Option<&BTreeMap<String, String>>,
) -> Result<(Vec<u8>, Vec<u64>), SafetensorsError> {
    let mut json = String::from("{");
    if let Some(m) = metadata {
        json.push_str("\"__metadata__\":{");
        let items: Vec<String> = m
            .iter()
            .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
            .collect();
        json.push_str(&items.join(","));
        json.push('}');
    }
    let mut names = HashSet::new();
    let mut sizes = Vec::with_capacity(tensors.len());
    let mut offset = 0u64;
    for t in tensors {
        if t.name == "__metadata__" || !names.insert(t.name.as_str()) {
            return Err(SafetensorsError::BadTensorName(t.name.clone()));
        }
        let Some(dtype) = dtype_to_st_name(t.dtype) else {
            return Err(SafetensorsError::NotInSafetensors {
                name: t.name.clone(),
                dtype: t.dtype,
            });
        };
        let bad_shape = || SafetensorsError::BadShape {
            name: t.name.clone(),
            shape: t.shape.clone(),
        };
        let size = t.n_bytes().ok_or_else(bad_shape)?;
        let end = offset.checked_add(size).ok_or_else(bad_shape)?;
        if json.len() > 1 {
            json.push(',');
        }
        let shape: Vec<String> = t.shape.iter().map(u64::to_string).collect();
        json.push_str(&format!(
            "{}:{{\"dtype\":\"{dtype}\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
            json_str(&t.name),
            shape.join(",")
        ));
        sizes.push(size);
        offset = end;
    }
    json.push('}');
    let mut bytes = json.into_bytes();
    bytes.resize(bytes.len().next_multiple_of(8), b' ');
    if bytes.len() as u64 > MAX_HEADER_LEN {
        return Err(SafetensorsError::HeaderTooLarge(bytes.len() as u64));
    }
    Ok((bytes, sizes))
}

impl<W: Write> SafetensorsWriter<W> {
    /// Check the tensors and write the header. Data must follow in the order given.
    pub fn new(
        mut out: W,
        tensors: Vec<TensorInfo>,
        metadata: Option<BTreeMap<String, String>>,
    ) -> Result<Self, SafetensorsError> {
        let (head, sizes) = header(&tensors, metadata.as_ref())?;
        out.write_all(&(head.len() as u64).to_le_bytes())?;
        out.write_all(&head)?;
        Ok(SafetensorsWriter {
            out,
            seq: TensorSequence::new(tensors, sizes),
            pos: 8 + head.len() as u64,
        })
    }

    /// Begin the data of `name`, which must be the next declared tensor.
    pub fn start_tensor(&mut self, name: &str) -> Result<(), SafetensorsError> {
        self.seq.start(name)?;
        Ok(())
    }

    /// Append bytes to the current tensor.
    pub fn write_chunk(&mut self, bytes: &[u8]) -> Result<(), SafetensorsError> {
        self.seq.chunk(bytes.len() as u64)?;
        self.out.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Finish the current tensor, checking its byte count.
    pub fn end_tensor(&mut self) -> Result<(), SafetensorsError> {
        self.seq.end()?;
        Ok(())
    }

    /// `start_tensor`, one `write_chunk` and `end_tensor`.
    pub fn write_tensor(&mut self, name: &str, bytes: &[u8]) -> Result<(), SafetensorsError> {
        self.start_tensor(name)?;
        self.write_chunk(bytes)?;
        self.end_tensor()
    }

    /// Check that every tensor was written, flush, and hand back the output.
    pub fn finish(mut self) -> Result<W, SafetensorsError> {
        self.seq.finish()?;
        self.out.flush()?;
        Ok(self.out)
    }
}
