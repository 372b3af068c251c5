//! A streaming writer of torch zip checkpoints: the layout `torch.save` produces (records
//! `data.pkl`, `.format_version`, `.storage_alignment`, `byteorder`, `data/<key>`, `version`,
//! `.data/serialization_id`, each stored uncompressed with its data 64-byte aligned through
//! an `FB` padding extra field, zip64 records once sizes or offsets pass 4 GiB). Tensor bytes
//! are streamed chunk by chunk, so memory use does not depend on tensor size.
//!
//! Zip layout: PKWARE APPNOTE 4.3/4.5.3 (zip64)
//! (<https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT>); torch's writer:
//! `caffe2/serialize/inline_container.cc` (`PyTorchStreamWriter`).

use std::io::{Seek, SeekFrom, Write};

use super::globals::Global;
use super::pickle_writer::state_dict_pickle;
use super::PthError;
use crate::sequence::TensorSequence;
use crate::tensor::TensorInfo;

const ALIGN: u64 = 64;
const U32_MAX: u64 = 0xFFFF_FFFF;
/// Bit 11: names are UTF-8.
const FLAGS: u16 = 0x0800;

/// Options for [`PthWriter::with_options`].
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterOptions {
    /// Write zip64 extra fields and end records even for small files (tests the >4 GiB
    /// path without writing 4 GiB).
    pub force_zip64: bool,
}

struct CentralEntry {
    name: String,
    crc: u32,
    size: u64,
    offset: u64,
}

/// The open tensor's record: its CRC so far, where its local header starts, and the CRC
/// already written into that header when the caller knew it up front.
struct Current {
    crc: crc32fast::Hasher,
    header: u64,
    promised: Option<u32>,
}

/// Streams a state dict into `out` in torch's zip layout; see the module docs.
pub struct PthWriter<W: Write + Seek> {
    out: W,
    prefix: String,
    seq: TensorSequence,
    current: Option<Current>,
    pos: u64,
    central: Vec<CentralEntry>,
    opts: WriterOptions,
}

impl<W: Write + Seek> PthWriter<W> {
    /// Start a checkpoint whose records live under `archive_name/` (torch uses the file
    /// stem, e.g. `consolidated.00`), holding `tensors` in this order, each in its own
    /// contiguous storage. Writes `data.pkl` and the small leading records at once.
    pub fn new(out: W, archive_name: &str, tensors: Vec<TensorInfo>) -> Result<Self, PthError> {
        Self::with_options(out, archive_name, tensors, WriterOptions::default())
    }

    /// [`PthWriter::new`] with options.
    pub fn with_options(
        mut out: W,
        archive_name: &str,
        tensors: Vec<TensorInfo>,
        opts: WriterOptions,
    ) -> Result<Self, PthError> {
        if archive_name.is_empty()
            || archive_name.len() > 1024
            || archive_name.contains(['/', '\\'])
        {
            return Err(PthError::BadArchiveName(archive_name.to_string()));
        }
        let mut sizes = Vec::with_capacity(tensors.len());
        let mut seen = std::collections::HashSet::new();
        for t in &tensors {
            if Global::storage_name(t.dtype).is_none() {
                return Err(PthError::NoTorchDtype {
                    tensor: t.name.clone(),
                    dtype: t.dtype,
                });
            }
            let n = t
                .n_bytes()
                .ok_or_else(|| PthError::SizeOverflow(t.name.clone()))?;
            if !seen.insert(t.name.as_str()) {
                return Err(PthError::DeclaredTwice(t.name.clone()));
            }
            sizes.push(n);
        }
        let pos = out.stream_position()?;
        let pickle = state_dict_pickle(&tensors);
        let mut w = PthWriter {
            out,
            prefix: format!("{archive_name}/"),
            seq: TensorSequence::new(tensors, sizes),
            current: None,
            pos,
            central: Vec::new(),
            opts,
        };
        w.record("data.pkl", &pickle)?;
        w.record(".format_version", b"1")?;
        w.record(".storage_alignment", b"64")?;
        w.record("byteorder", b"little")?;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> Result<(), PthError> {
        self.out.write_all(b)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Local file header for `name` holding `size` stored bytes, padded so the data starts
    /// on a 64-byte boundary. The CRC is patched in once the data is written.
    fn begin(&mut self, name: &str, size: u64, crc: u32) -> Result<u64, PthError> {
        let full = format!("{}{name}", self.prefix);
        let header = self.pos;
        let zip64 = self.opts.force_zip64 || size >= U32_MAX;
        let mut extra = Vec::new();
        if zip64 {
            extra.extend_from_slice(&1u16.to_le_bytes());
            extra.extend_from_slice(&16u16.to_le_bytes());
            extra.extend_from_slice(&size.to_le_bytes());
            extra.extend_from_slice(&size.to_le_bytes());
        }
        let unpadded = header + 30 + full.len() as u64 + extra.len() as u64 + 4;
        let pad = (ALIGN - unpadded % ALIGN) % ALIGN;
        extra.extend_from_slice(b"FB");
        extra.extend_from_slice(&(pad as u16).to_le_bytes());
        extra.resize(extra.len() + pad as usize, b'Z');
        let size32 = if zip64 { U32_MAX as u32 } else { size as u32 };
        let mut h = Vec::with_capacity(30 + full.len() + extra.len());
        h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        h.extend_from_slice(&(if zip64 { 45u16 } else { 20 }).to_le_bytes());
        h.extend_from_slice(&FLAGS.to_le_bytes());
        h.extend_from_slice(&[0; 6]); // method stored, time, date
        h.extend_from_slice(&crc.to_le_bytes());
        h.extend_from_slice(&size32.to_le_bytes());
        h.extend_from_slice(&size32.to_le_bytes());
        h.extend_from_slice(&(full.len() as u16).to_le_bytes());
        h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        h.extend_from_slice(full.as_bytes());
        h.extend_from_slice(&extra);
        self.write(&h)?;
        debug_assert_eq!(self.pos % ALIGN, 0);
        self.central.push(CentralEntry {
            name: full,
            crc,
            size,
            offset: header,
        });
        Ok(header)
    }

    /// A whole small record.
    fn record(&mut self, name: &str, data: &[u8]) -> Result<(), PthError> {
        self.begin(name, data.len() as u64, crc32fast::hash(data))?;
        self.write(data)
    }

    /// Begin the next tensor's storage; `name` must be the next declared tensor. Its CRC
    /// is patched into the local header by [`PthWriter::end_tensor`] (a seek back).
    pub fn start_tensor(&mut self, name: &str) -> Result<(), PthError> {
        self.start(name, None)
    }

    /// [`PthWriter::start_tensor`] for a tensor whose data CRC-32 is known before it is
    /// written: the header is final at once and the file is written strictly sequentially
    /// (no seek back), so it can be hashed as it is written. `end_tensor` fails when the
    /// bytes written do not have this CRC.
    pub fn start_tensor_with_crc(&mut self, name: &str, crc: u32) -> Result<(), PthError> {
        self.start(name, Some(crc))
    }

    fn start(&mut self, name: &str, promised: Option<u32>) -> Result<(), PthError> {
        let index = self.seq.start(name)?;
        let header = self.begin(
            &format!("data/{index}"),
            self.seq.size(index),
            promised.unwrap_or(0),
        )?;
        self.current = Some(Current {
            crc: crc32fast::Hasher::new(),
            header,
            promised,
        });
        Ok(())
    }

    /// Append bytes to the current tensor (little-endian, row-major).
    pub fn write_chunk(&mut self, bytes: &[u8]) -> Result<(), PthError> {
        self.seq.chunk(bytes.len() as u64)?;
        if let Some(c) = &mut self.current {
            c.crc.update(bytes);
        }
        self.out.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Finish the current tensor: its byte count must match its declared shape and dtype.
    pub fn end_tensor(&mut self) -> Result<(), PthError> {
        self.seq.end()?;
        let Some(c) = self.current.take() else {
            return Ok(());
        };
        let crc = c.crc.finalize();
        match c.promised {
            Some(p) if p != crc => return Err(PthError::CrcChanged { crc, promised: p }),
            Some(_) => {}
            None => {
                self.out.seek(SeekFrom::Start(c.header + 14))?;
                self.out.write_all(&crc.to_le_bytes())?;
                self.out.seek(SeekFrom::Start(self.pos))?;
            }
        }
        if let Some(e) = self.central.last_mut() {
            e.crc = crc;
        }
        Ok(())
    }

    /// `start_tensor` + one `write_chunk` + `end_tensor`.
    pub fn write_tensor(&mut self, name: &str, bytes: &[u8]) -> Result<(), PthError> {
        self.start_tensor(name)?;
        self.write_chunk(bytes)?;
        self.end_tensor()
    }

    /// Write the trailing records and the central directory; every declared tensor must
    /// have been written. Returns the output (flushed).
    pub fn finish(mut self) -> Result<W, PthError> {
        self.seq.finish()?;
        self.record("version", b"3\n")?;
        // torch writes a random number and a hash; ours is deterministic: the CRC of all
        // record CRCs and the byte count, each as 20 decimal digits.
        let mut h = crc32fast::Hasher::new();
        for e in &self.central {
            h.update(&e.crc.to_le_bytes());
        }
        let id = format!("{:020}{:020}", h.finalize(), self.pos);
        self.record(".data/serialization_id", id.as_bytes())?;
        self.central_directory()?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn central_directory(&mut self) -> Result<(), PthError> {
        let cd_start = self.pos;
        let force = self.opts.force_zip64;
        let entries = std::mem::take(&mut self.central);
        for e in &entries {
            let big_size = force || e.size >= U32_MAX;
            let big_off = force || e.offset >= U32_MAX;
            let mut extra = Vec::new();
            if big_size {
                extra.extend_from_slice(&e.size.to_le_bytes());
                extra.extend_from_slice(&e.size.to_le_bytes());
            }
            if big_off {
                extra.extend_from_slice(&e.offset.to_le_bytes());
            }
            if !extra.is_empty() {
                let mut head = 1u16.to_le_bytes().to_vec();
                head.extend_from_slice(&(extra.len() as u16).to_le_bytes());
                extra.splice(0..0, head);
            }
            let version: u16 = if extra.is_empty() { 20 } else { 45 };
            let size32 = if big_size {
                U32_MAX as u32
            } else {
                e.size as u32
            };
            let off32 = if big_off {
                U32_MAX as u32
            } else {
                e.offset as u32
            };
            let mut h = Vec::with_capacity(46 + e.name.len() + extra.len());
            h.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            h.extend_from_slice(&version.to_le_bytes()); // made by (MS-DOS host, as torch)
            h.extend_from_slice(&version.to_le_bytes()); // needed
            h.extend_from_slice(&FLAGS.to_le_bytes());
            h.extend_from_slice(&[0; 6]); // method stored, time, date
            h.extend_from_slice(&e.crc.to_le_bytes());
            h.extend_from_slice(&size32.to_le_bytes());
            h.extend_from_slice(&size32.to_le_bytes());
            h.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
            h.extend_from_slice(&[0; 10]); // comment len, disk, internal + external attrs
            h.extend_from_slice(&off32.to_le_bytes());
            h.extend_from_slice(e.name.as_bytes());
            h.extend_from_slice(&extra);
            self.write(&h)?;
        }
        let cd_size = self.pos - cd_start;
        let n = entries.len() as u64;
        let zip64 = force || n >= 0xFFFF || cd_start >= U32_MAX || cd_size >= U32_MAX;
        let mut t = Vec::new();
        if zip64 {
            let eocd64 = self.pos;
            t.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
            t.extend_from_slice(&44u64.to_le_bytes());
            t.extend_from_slice(&45u16.to_le_bytes());
            t.extend_from_slice(&45u16.to_le_bytes());
            t.extend_from_slice(&[0; 8]); // this disk, disk with the directory
            t.extend_from_slice(&n.to_le_bytes());
            t.extend_from_slice(&n.to_le_bytes());
            t.extend_from_slice(&cd_size.to_le_bytes());
            t.extend_from_slice(&cd_start.to_le_bytes());
            t.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
            t.extend_from_slice(&0u32.to_le_bytes());
            t.extend_from_slice(&eocd64.to_le_bytes());
            t.extend_from_slice(&1u32.to_le_bytes());
        }
        let n16 = if zip64 { 0xFFFF } else { n as u16 };
        let clamp = |v: u64| if zip64 { U32_MAX as u32 } else { v as u32 };
        t.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        t.extend_from_slice(&[0; 4]);
        t.extend_from_slice(&n16.to_le_bytes());
        t.extend_from_slice(&n16.to_le_bytes());
        t.extend_from_slice(&clamp(cd_size).to_le_bytes());
        t.extend_from_slice(&clamp(cd_start).to_le_bytes());
        t.extend_from_slice(&0u16.to_le_bytes());
        self.write(&t)
    }
}
