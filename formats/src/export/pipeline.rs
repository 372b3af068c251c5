//! The one export loop: every file of tensors llama-tool writes (GGUF from `convert` and
//! from `quantize`, safetensors, torch `.pth`) goes through [`write_tensors`], which drives
//! plan -> stream -> encode -> write -> release -> progress for each planned tensor.
//!
//! - A [`TensorSource`] hands out one tensor's bytes in blocks of whole rows and drops its
//!   pages afterwards (a [`Checkpoint`] for `convert`, a [`GgufFile`] for `quantize`).
//! - An [`Encoder`] turns each block from the source type into the output type: untouched
//!   when they agree, a float cast, or ggml block quantization ([`llama_ggml::quant`]).
//! - A [`TensorWriter`] is a file format's writer of tensors declared up front.
//!
//! So a new output format is one [`TensorWriter`] implementation plus its plan, and a new
//! quantization type is one kernel in [`llama_ggml::quant`] plus its preset rules: the loop, the
//! encoder and the page release are shared.

use std::io::{Seek, Write};
use std::ops::Range;

use rayon::prelude::*;

use super::{out_bytes, ExportError, ExportSummary};
use crate::checkpoint::Checkpoint;
use crate::dtype::DType;
use crate::gguf::{GgufFile, GgufWriter};
use crate::llama::{permute, TensorName};
use crate::pth::PthWriter;
use crate::safetensors::SafetensorsWriter;
use crate::tensor::TensorInfo;

/// A format's writer of a file whose tensors (names, types, shapes) were declared when it
/// was created; they are then written one after another, in the declared order.
pub(crate) trait TensorWriter {
    /// What [`finish`](Self::finish) hands back (the output stream).
    type Output;

    /// Whether [`start_tensor`](Self::start_tensor) needs the CRC-32 of the tensor's data
    /// (torch zip records written strictly sequentially); [`write_tensors`] then encodes
    /// each tensor twice, once for the CRC and once to write it.
    fn needs_crc(&self) -> bool {
        false
    }

    /// Begin the next declared tensor; `crc` is its data's CRC-32 when
    /// [`needs_crc`](Self::needs_crc) asked for it.
    fn start_tensor(&mut self, name: &str, crc: Option<u32>) -> Result<(), ExportError>;

    /// Append bytes to the current tensor.
    fn write_chunk(&mut self, bytes: &[u8]) -> Result<(), ExportError>;

    /// Finish the current tensor (its byte count is checked against its declaration).
    fn end_tensor(&mut self) -> Result<(), ExportError>;

    /// Check that every declared tensor was written and hand back the output.
    fn finish(self) -> Result<Self::Output, ExportError>;
}

impl<W: Write> TensorWriter for GgufWriter<W> {
    type Output = W;
    fn start_tensor(&mut self, name: &str, _crc: Option<u32>) -> Result<(), ExportError> {
        Ok(GgufWriter::start_tensor(self, name)?)
    }
    fn write_chunk(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        Ok(GgufWriter::write_chunk(self, bytes)?)
    }
    fn end_tensor(&mut self) -> Result<(), ExportError> {
        Ok(GgufWriter::end_tensor(self)?)
    }
    fn finish(self) -> Result<W, ExportError> {
        Ok(GgufWriter::finish(self)?)
    }
}

impl<W: Write> TensorWriter for SafetensorsWriter<W> {
    type Output = W;
    fn start_tensor(&mut self, name: &str, _crc: Option<u32>) -> Result<(), ExportError> {
        Ok(SafetensorsWriter::start_tensor(self, name)?)
    }
    fn write_chunk(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        Ok(SafetensorsWriter::write_chunk(self, bytes)?)
    }
    fn end_tensor(&mut self) -> Result<(), ExportError> {
        Ok(SafetensorsWriter::end_tensor(self)?)
    }
    fn finish(self) -> Result<W, ExportError> {
        Ok(SafetensorsWriter::finish(self)?)
    }
}

impl<W: Write + Seek> TensorWriter for PthWriter<W> {
    type Output = W;
    /// The CRC goes into the record's header before its data, so the shard is written
    /// strictly sequentially and can be hashed as it is written.
    fn needs_crc(&self) -> bool {
        true
    }
    fn start_tensor(&mut self, name: &str, crc: Option<u32>) -> Result<(), ExportError> {
        match crc {
            Some(crc) => self.start_tensor_with_crc(name, crc)?,
            None => PthWriter::start_tensor(self, name)?,
        }
        Ok(())
    }
    fn write_chunk(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        Ok(PthWriter::write_chunk(self, bytes)?)
    }
    fn end_tensor(&mut self) -> Result<(), ExportError> {
        Ok(PthWriter::end_tensor(self)?)
    }
    fn finish(self) -> Result<W, ExportError> {
        Ok(PthWriter::finish(self)?)
    }
}

/// Where the bytes of planned tensors come from.
pub(crate) trait TensorSource {
    /// How one planned tensor is found in the source.
    type Key;

    /// Feed the tensor's bytes to `sink` in blocks of whole rows, row-major; returns the
    /// bytes of the source read (for progress reports).
    fn blocks(
        &self,
        key: &Self::Key,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), ExportError>,
    ) -> Result<u64, ExportError>;

    /// Drop the source's mapped pages of the tensor once it is written.
    fn release_pages(&self, key: &Self::Key);
}

/// One tensor of a [`Checkpoint`] as a writer wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// A LLaMA tensor in Meta orientation and rotary layout, restricted to `range` along its
    /// split axis (one model-parallel shard's slice) when given.
    Llama {
        /// The tensor.
        tensor: TensorName,
        /// Slice along [`TensorName::split_axis`].
        range: Option<Range<u64>>,
    },
    /// A LLaMA q or k projection permuted to Hugging Face's half-split rotary layout; the
    /// permutation moves rows within each of `heads` heads, so the tensor is read whole.
    HfRotary {
        /// The tensor (`Wq` or `Wk`).
        tensor: TensorName,
        /// Its head count (`n_heads` for q, `n_kv_heads` for k).
        heads: u64,
    },
    /// A tensor that is not a LLaMA tensor, unchanged, by its stored name (`--allow-extra`).
    Extra(String),
}

impl TensorSource for Checkpoint {
    type Key = Part;

    fn blocks(
        &self,
        key: &Part,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), ExportError>,
    ) -> Result<u64, ExportError> {
        let mut consumed = 0u64;
        let counted = |b: &[u8]| {
            consumed += b.len() as u64;
            sink(b)
        };
        match key {
            Part::Llama { tensor, range } => self.stream(*tensor, range.clone(), counted)?,
            Part::HfRotary { tensor, heads } => {
                let meta = self.read(*tensor)?;
                let rows = self.tensor_info(*tensor)?.1.first().copied().unwrap_or(0);
                let hf = permute::permute_rows(&meta, rows as usize, *heads as usize, true)
                    .ok_or_else(|| ExportError::HeadsSplit {
                        tensor: tensor.meta(),
                        heads: *heads,
                    })?;
                sink(&hf)?;
                consumed = meta.len() as u64;
            }
            Part::Extra(name) => self.stream_extra(name, counted)?,
        }
        Ok(consumed)
    }

    fn release_pages(&self, key: &Part) {
        match key {
            Part::Llama { tensor, .. } | Part::HfRotary { tensor, .. } => {
                Checkpoint::release(self, *tensor)
            }
            Part::Extra(name) => self.release_extra(name),
        }
    }
}

/// A GGUF file's tensors by name, as stored (what `quantize` reads).
impl TensorSource for GgufFile {
    type Key = String;

    fn blocks(
        &self,
        name: &String,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), ExportError>,
    ) -> Result<u64, ExportError> {
        let t = self
            .get_tensor(name)
            .ok_or_else(|| ExportError::NotInFile {
                tensor: name.clone(),
            })?;
        let view = self.view(t)?;
        let data = view.data();
        sink(&data)?;
        Ok(data.len() as u64)
    }

    fn release_pages(&self, name: &String) {
        if let Some(t) = self.get_tensor(name) {
            GgufFile::release(self, t);
        }
    }
}

/// One planned output tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job<K> {
    /// Where its bytes are in the source.
    pub key: K,
    /// The type the source holds.
    pub src: DType,
    /// What is written: output name, type and shape (numpy order).
    pub out: TensorInfo,
}

/// Write every job's tensor, in order, from `src` into `w`: stream its bytes, encode them to
/// the output type, write them, release the source pages, count it in `summary` and call
/// `on_tensor` with the job and the source bytes read. Encoding errors name the tensor.
pub(crate) fn write_tensors<S: TensorSource + ?Sized, W: TensorWriter>(
    src: &S,
    jobs: &[Job<S::Key>],
    w: &mut W,
    enc: &mut Encoder,
    summary: &mut ExportSummary,
    on_tensor: &mut dyn FnMut(&Job<S::Key>, u64),
) -> Result<(), ExportError> {
    for job in jobs {
        let (from, to) = (job.src, job.out.dtype);
        let n_per_row = job.out.shape.last().copied().unwrap_or(1) as usize;
        let named = |e: ExportError| match e {
            ExportError::Quant(source) => ExportError::Encode {
                tensor: job.out.name.clone(),
                error: source,
            },
            e => e,
        };
        let crc = if w.needs_crc() {
            let mut crc = crc32fast::Hasher::new();
            src.blocks(&job.key, &mut |b| {
                enc.encode(from, to, b, n_per_row, |o| {
                    crc.update(o);
                    Ok(())
                })
            })
            .map_err(named)?;
            Some(crc.finalize())
        } else {
            None
        };
        w.start_tensor(&job.out.name, crc)?;
        let consumed = src
            .blocks(&job.key, &mut |b| {
                enc.encode(from, to, b, n_per_row, |o| w.write_chunk(o))
            })
            .map_err(named)?;
        w.end_tensor()?;
        src.release_pages(&job.key);
        let bytes = out_bytes(&job.out.name, to, &job.out.shape)?;
        summary.count(to, job.out.shape.iter().product(), bytes);
        on_tensor(job, consumed);
    }
    Ok(())
}

/// Values quantized per call of the quantizer (bounds the output buffer of a huge tensor).
const QUANT_SLAB_VALUES: usize = 1 << 24;
/// Values cast per chunk of a float conversion (about 16 MiB of f32).
const CAST_CHUNK_VALUES: usize = 4 << 20;

/// Turns blocks of whole rows from one type into another, keeping its buffers between
/// calls. Float targets are cast as numpy/torch cast (the converters' rule: NaN and
/// infinities pass through) unless made with [`Encoder::ggml`]; quantized targets go through
/// [`llama_ggml::quant`] slab by slab, so a large tensor never exists as f32 all at once.
#[derive(Default)]
pub(crate) struct Encoder {
    ggml_floats: bool,
    f32s: Vec<f32>,
    out: Vec<u8>,
}

impl Encoder {
    /// An encoder following `llama-quantize` for every type it writes, floats included:
    /// ggml's conversions, NaN and infinities refused.
    pub fn ggml() -> Encoder {
        Encoder {
            ggml_floats: true,
            ..Encoder::default()
        }
    }

    /// Encode `data` (whole rows of `n_per_row` elements of `from`) as `to` into `sink`;
    /// the bytes pass through untouched when the types agree.
    pub fn encode(
        &mut self,
        from: DType,
        to: DType,
        data: &[u8],
        n_per_row: usize,
        mut sink: impl FnMut(&[u8]) -> Result<(), ExportError>,
    ) -> Result<(), ExportError> {
        if from == to {
            return sink(data);
        }
        if from.is_quantized() {
            return Err(ExportError::QuantizedInput { from, to });
        }
        let row_bytes = from.bytes_for(n_per_row as u64).unwrap_or(0) as usize;
        if row_bytes == 0 || !data.len().is_multiple_of(row_bytes) {
            return Err(ExportError::PartialRows {
                bytes: data.len(),
                dtype: from,
                n_per_row,
            });
        }
        if to.is_quantized() || self.ggml_floats {
            // The quantizer decodes and encodes the blocks of a slab on the rayon pool.
            let rows = (QUANT_SLAB_VALUES / n_per_row.max(1)).max(1);
            for slab in data.chunks(rows * row_bytes) {
                if matches!(from, DType::F32 | DType::F16 | DType::BF16) {
                    llama_ggml::quant::quantize_raw_into(from, slab, to, n_per_row, &mut self.out)?;
                } else {
                    // F64: widened (narrowed) to f32 first.
                    crate::cast::to_f32_into(from, slab, &mut self.f32s)?;
                    llama_ggml::quant::quantize_into(to, &self.f32s, n_per_row, &mut self.out)?;
                }
                sink(&self.out)?;
            }
            return Ok(());
        }
        // Float casts: one slice of whole rows per worker, concatenated in order.
        let rows = (CAST_CHUNK_VALUES / n_per_row.max(1)).max(1);
        let per_task = (rows / rayon::current_num_threads().max(1)).max(1);
        for chunk in data.chunks(rows * row_bytes) {
            self.out.clear();
            let pieces = chunk
                .par_chunks(per_task * row_bytes)
                .map(|piece| {
                    let mut out = Vec::new();
                    crate::cast::from_f32_into(to, &crate::cast::to_f32(from, piece)?, &mut out)?;
                    Ok(out)
                })
                .collect::<Result<Vec<Vec<u8>>, crate::cast::CastError>>()?;
            pieces.iter().for_each(|p| self.out.extend_from_slice(p));
            sink(&self.out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parallel cast gives exactly the sequential cast's bytes, over several chunks.
    #[test]
    fn encoder_casts_like_the_sequential_cast() {
        let n_per_row = 1000;
        let vals: Vec<f32> = (0..(5 << 20) / 1000 * 1000)
            .map(|i| ((i % 977) as f32 - 488.0) * 0.37)
            .collect();
        let mut src = Vec::new();
        crate::cast::from_f32_into(DType::F16, &vals, &mut src).unwrap();
        for to in [DType::F32, DType::BF16, DType::F16] {
            let mut want = Vec::new();
            crate::cast::from_f32_into(
                to,
                &crate::cast::to_f32(DType::F16, &src).unwrap(),
                &mut want,
            )
            .unwrap();
            let mut got = Vec::new();
            let mut calls = 0;
            Encoder::default()
                .encode(DType::F16, to, &src, n_per_row, |b| {
                    calls += 1;
                    got.extend_from_slice(b);
                    Ok(())
                })
                .unwrap();
            assert_eq!(got, want, "{to}");
            assert!(to == DType::F16 || calls > 1, "{to}: {calls} chunk(s)");
        }
        assert!(Encoder::default()
            .encode(DType::F16, DType::F32, &src[..10], n_per_row, |_| Ok(()))
            .is_err());
    }

    /// Quantized output is the quantizer's, whatever the slab size, and the ggml rule
    /// refuses what the cast passes through.
    #[test]
    fn encoder_quantizes_like_the_quantizer_and_ggml_floats_refuse_nan() {
        let n_per_row = 256;
        let vals: Vec<f32> = (0..n_per_row * 64)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 1e3)
            .collect();
        let mut src = Vec::new();
        crate::cast::from_f32_into(DType::F32, &vals, &mut src).unwrap();
        let want = llama_ggml::quant::quantize(DType::Q4_K, &vals, n_per_row).unwrap();
        let mut got = Vec::new();
        Encoder::default()
            .encode(DType::F32, DType::Q4_K, &src, n_per_row, |b| {
                got.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        assert_eq!(got, want);
        let mut nan = src.clone();
        nan[..4].copy_from_slice(&f32::NAN.to_le_bytes());
        let cast = Encoder::default().encode(DType::F32, DType::F16, &nan, n_per_row, |_| Ok(()));
        assert!(cast.is_ok());
        let ggml = Encoder::ggml().encode(DType::F32, DType::F16, &nan, n_per_row, |_| Ok(()));
        assert!(matches!(ggml, Err(ExportError::Quant(_))), "{ggml:?}");
    }
}
