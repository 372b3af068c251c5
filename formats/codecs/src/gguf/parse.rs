//! Parsing and validation of a GGUF file's header, metadata and tensor infos
//! (<https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>), from a byte slice.
//!
//! Every count, length and offset read from the file is checked against the bytes that are
//! left before anything is allocated; checks follow ggml's `gguf.cpp` (at most 4
//! dimensions, `general.alignment` a u32 power of two, innermost dimension a whole number
//! of blocks, aligned offsets, no duplicate keys or tensor names, data inside the file and
//! not overlapping).

use std::collections::HashMap;
use std::path::Path;

use super::reader::GgufTensor;
use super::value::{GgufArray, GgufValue, GgufValueType};
use super::{GgufError, GgufProblem, DEFAULT_ALIGNMENT, GGUF_MAGIC, MAX_DIMS, MAX_HEADER_MEMORY};
use crate::dtype::DType;
use crate::tensor::TensorInfo;

/// Nested arrays deeper than this are refused (bounds the parser's recursion).
const MAX_ARRAY_DEPTH: u32 = 16;

/// Everything before the tensor data, parsed and validated.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub version: u32,
    pub alignment: u64,
    pub metadata: Vec<(String, GgufValue)>,
    pub tensors: Vec<GgufTensor>,
    /// Absolute offset of the data section (aligned).
    pub(crate) data_start: u64,
    pub(crate) kv_index: HashMap<String, usize>,
    pub(crate) tensor_index: HashMap<String, usize>,
}

/// Parse and validate the header of a GGUF file held in `buf`. `path` only names the file
/// in errors.
pub(crate) fn parse(buf: &[u8], path: &Path) -> Result<Header, GgufError> {
    let mut p = Parser {
        buf,
        pos: 0,
        path,
        ctx: String::from("the header"),
        mem: 0,
    };
    let magic = p.take(4)?;
    if magic != GGUF_MAGIC {
        let m = [magic[0], magic[1], magic[2], magic[3]];
        return Err(p.err(0, GgufProblem::BadMagic(m)));
    }
    let version = p.u32()?;
    match version {
        2 | 3 => {}
        1 => return Err(p.err(4, GgufProblem::Version1)),
        v => return Err(p.err(4, GgufProblem::UnsupportedVersion(v))),
    }
    let n_tensors = p.u64()?;
    let n_kv = p.u64()?;
    // A key/value pair takes at least 13 bytes, a tensor info at least 24.
    p.check_count(n_kv, 13, "key/value pairs")?;
    p.check_count(n_tensors, 24, "tensor infos")?;

    let mut metadata = Vec::with_capacity(n_kv.min(1024) as usize);
    let mut kv_index = HashMap::new();
    for i in 0..n_kv {
        p.ctx = format!("key #{i}");
        let at = p.pos;
        let key = p.string()?;
        p.ctx = format!("key \"{}\"", crate::text::shown(&key));
        // The entry, its index slot and the key's copy in the index.
        p.charge(
            std::mem::size_of::<(String, GgufValue)>()
                + std::mem::size_of::<(String, usize)>()
                + 16
                + key.len(),
        )?;
        let ty = p.value_type()?;
        let value = p.value(ty, 0)?;
        if kv_index.insert(key.clone(), metadata.len()).is_some() {
            return Err(p.err(at, GgufProblem::DuplicateKey(key)));
        }
        metadata.push((key, value));
    }

    let alignment = match kv_index.get("general.alignment").map(|&i| &metadata[i].1) {
        None => DEFAULT_ALIGNMENT,
        Some(GgufValue::U32(a)) if a.is_power_of_two() => u64::from(*a),
        Some(v) => return Err(p.err(0, GgufProblem::BadAlignment(format!("{v:?}")))),
    };

    let mut tensors = Vec::with_capacity(n_tensors.min(1024) as usize);
    let mut tensor_index = HashMap::new();
    for i in 0..n_tensors {
        p.ctx = format!("tensor info #{i}");
        let at = p.pos;
        let t = p.tensor_info(alignment)?;
        p.charge(
            std::mem::size_of::<GgufTensor>()
                + std::mem::size_of::<(String, usize)>()
                + 16
                + t.info.name.len()
                + 8 * t.info.shape.len(),
        )?;
        if tensor_index
            .insert(t.info.name.clone(), tensors.len())
            .is_some()
        {
            return Err(p.err(at, GgufProblem::DuplicateTensor(t.info.name)));
        }
        tensors.push(t);
    }

    let data_start = (p.pos as u64).next_multiple_of(alignment);
    check_data_ranges(&p, &tensors, data_start)?;
    Ok(Header {
        version,
        alignment,
        metadata,
        tensors,
        data_start,
        kv_index,
        tensor_index,
    })
}

/// Every tensor's data lies inside the file and no two overlap.
fn check_data_ranges(
    p: &Parser<'_>,
    tensors: &[GgufTensor],
    data_start: u64,
) -> Result<(), GgufError> {
    let file_len = p.buf.len() as u64;
    let mut ranges = Vec::with_capacity(tensors.len());
    for t in tensors {
        let out = || {
            p.err(
                data_start as usize,
                GgufProblem::DataOutOfBounds {
                    name: t.info.name.clone(),
                    offset: t.offset,
                    file_len,
                },
            )
        };
        // n_bytes was checked while parsing the tensor info.
        let n = t.info.n_bytes().ok_or_else(out)?;
        let start = data_start.checked_add(t.offset).ok_or_else(out)?;
        let end = start.checked_add(n).ok_or_else(out)?;
        if end > file_len {
            return Err(out());
        }
        if n > 0 {
            ranges.push((start, end, &t.info.name));
        }
    }
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        if w[0].1 > w[1].0 {
            return Err(p.err(
                data_start as usize,
                GgufProblem::Overlap {
                    a: w[0].2.clone(),
                    b: w[1].2.clone(),
                },
            ));
        }
    }
    Ok(())
}

/// A cursor over the file's bytes that knows what it is reading, for errors.
struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a Path,
    ctx: String,
    /// Memory the parsed header takes so far, against [`MAX_HEADER_MEMORY`].
    mem: u64,
}

macro_rules! read_le {
    ($p:expr, $t:ty) => {{
        let b = $p.take(std::mem::size_of::<$t>() as u64)?;
        <$t>::from_le_bytes(b.try_into().unwrap_or_default())
    }};
}

impl<'a> Parser<'a> {
    fn err(&self, offset: usize, problem: GgufProblem) -> GgufError {
        GgufError::Invalid {
            path: self.path.to_path_buf(),
            offset: offset as u64,
            problem,
        }
    }

    /// Count `n` bytes of memory the parsed header holds.
    fn charge(&mut self, n: usize) -> Result<(), GgufError> {
        self.mem = self.mem.saturating_add(n as u64);
        if self.mem > MAX_HEADER_MEMORY {
            return Err(self.err(
                self.pos,
                GgufProblem::HeaderTooLarge {
                    what: self.ctx.clone(),
                    limit: MAX_HEADER_MEMORY,
                },
            ));
        }
        Ok(())
    }

    fn left(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], GgufError> {
        if n > self.left() {
            return Err(self.err(
                self.pos,
                GgufProblem::Truncated {
                    what: self.ctx.clone(),
                    need: n,
                    left: self.left(),
                },
            ));
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    /// Refuse a count whose elements (each at least `min` bytes) cannot fit in what is left.
    fn check_count(&self, count: u64, min: u64, what: &str) -> Result<(), GgufError> {
        if count.checked_mul(min).is_none_or(|n| n > self.left()) {
            return Err(self.err(
                self.pos,
                GgufProblem::CountTooLarge {
                    what: format!("{}: {what}", self.ctx),
                    count,
                    min,
                    left: self.left(),
                },
            ));
        }
        Ok(())
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(read_le!(self, u32))
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(read_le!(self, u64))
    }

    fn string(&mut self) -> Result<String, GgufError> {
        let at = self.pos;
        let len = self.u64()?;
        let bytes = self.take(len)?;
        self.charge(std::mem::size_of::<String>() + bytes.len())?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(self.err(at, GgufProblem::BadUtf8(self.ctx.clone()))),
        }
    }

    fn value_type(&mut self) -> Result<GgufValueType, GgufError> {
        let at = self.pos;
        let id = self.u32()?;
        GgufValueType::from_id(id).ok_or_else(|| {
            self.err(
                at,
                GgufProblem::UnknownValueType {
                    what: self.ctx.clone(),
                    id,
                },
            )
        })
    }

    fn bool(&mut self) -> Result<bool, GgufError> {
        let at = self.pos;
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.err(
                at,
                GgufProblem::BadBool {
                    what: self.ctx.clone(),
                    byte: b,
                },
            )),
        }
    }

    fn value(&mut self, ty: GgufValueType, depth: u32) -> Result<GgufValue, GgufError> {
        use GgufValueType as T;
        Ok(match ty {
            T::U8 => GgufValue::U8(read_le!(self, u8)),
            T::I8 => GgufValue::I8(read_le!(self, i8)),
            T::U16 => GgufValue::U16(read_le!(self, u16)),
            T::I16 => GgufValue::I16(read_le!(self, i16)),
            T::U32 => GgufValue::U32(read_le!(self, u32)),
            T::I32 => GgufValue::I32(read_le!(self, i32)),
            T::F32 => GgufValue::F32(read_le!(self, f32)),
            T::Bool => GgufValue::Bool(self.bool()?),
            T::String => GgufValue::String(self.string()?),
            T::Array => GgufValue::Array(self.array(depth)?),
            T::U64 => GgufValue::U64(read_le!(self, u64)),
            T::I64 => GgufValue::I64(read_le!(self, i64)),
            T::F64 => GgufValue::F64(read_le!(self, f64)),
        })
    }

    /// An array body: element type, count, elements.
    fn array(&mut self, depth: u32) -> Result<GgufArray, GgufError> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(self.err(
                self.pos,
                GgufProblem::ArrayTooDeep {
                    what: self.ctx.clone(),
                    max: MAX_ARRAY_DEPTH,
                },
            ));
        }
        let ty = self.value_type()?;
        let count = self.u64()?;
        self.check_count(count, ty.min_size() as u64, "array elements")?;
        let n = count as usize; // fits: count * min_size <= bytes left
                                // Strings and nested arrays charge themselves as they are read.
        let elem = match ty {
            GgufValueType::String | GgufValueType::Array => 0,
            GgufValueType::Bool => 1,
            t => t.fixed_size().unwrap_or(8),
        };
        self.charge(std::mem::size_of::<GgufArray>() + n.saturating_mul(elem))?;
        macro_rules! fixed {
            ($t:ty, $variant:ident) => {{
                let bytes = self.take(count * std::mem::size_of::<$t>() as u64)?;
                GgufArray::$variant(
                    bytes
                        .chunks_exact(std::mem::size_of::<$t>())
                        .map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or_default()))
                        .collect(),
                )
            }};
        }
        use GgufValueType as T;
        Ok(match ty {
            T::U8 => GgufArray::U8(self.take(count)?.to_vec()),
            T::I8 => fixed!(i8, I8),
            T::U16 => fixed!(u16, U16),
            T::I16 => fixed!(i16, I16),
            T::U32 => fixed!(u32, U32),
            T::I32 => fixed!(i32, I32),
            T::F32 => fixed!(f32, F32),
            T::U64 => fixed!(u64, U64),
            T::I64 => fixed!(i64, I64),
            T::F64 => fixed!(f64, F64),
            T::Bool => GgufArray::Bool((0..n).map(|_| self.bool()).collect::<Result<_, _>>()?),
            T::String => {
                GgufArray::String((0..n).map(|_| self.string()).collect::<Result<_, _>>()?)
            }
            T::Array => GgufArray::Array(
                (0..n)
                    .map(|_| self.array(depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    fn tensor_info(&mut self, alignment: u64) -> Result<GgufTensor, GgufError> {
        let name = self.string()?;
        self.ctx = format!("tensor \"{}\"", crate::text::shown(&name));
        let at = self.pos;
        let n_dims = self.u32()?;
        if n_dims as usize > MAX_DIMS {
            return Err(self.err(at, GgufProblem::TooManyDims { name, n_dims }));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64()?);
        }
        let at_type = self.pos;
        let type_id = self.u32()?;
        let offset = self.u64()?;
        let Some(dtype) = DType::from_ggml_id(type_id) else {
            return Err(self.err(at_type, GgufProblem::UnknownGgmlType { name, id: type_id }));
        };
        // GGUF lists dims innermost first; numpy order is the reverse.
        let shape: Vec<u64> = dims.iter().rev().copied().collect();
        let info = TensorInfo { name, dtype, shape };
        // ggml keeps element counts in int64.
        let n = info.n_elements().filter(|&n| i64::try_from(n).is_ok());
        if n.is_none() || dims.iter().any(|&d| i64::try_from(d).is_err()) {
            return Err(self.err(
                at,
                GgufProblem::ShapeOverflow {
                    name: info.name,
                    dims,
                },
            ));
        }
        let inner = dims.first().copied().unwrap_or(1);
        if inner % dtype.block_size() as u64 != 0 {
            return Err(self.err(
                at,
                GgufProblem::PartialBlock {
                    name: info.name,
                    dim: inner,
                    dtype,
                },
            ));
        }
        if info.n_bytes().is_none() {
            return Err(self.err(
                at,
                GgufProblem::ShapeOverflow {
                    name: info.name,
                    dims,
                },
            ));
        }
        if offset % alignment != 0 {
            return Err(self.err(
                at_type + 4,
                GgufProblem::Misaligned {
                    name: info.name,
                    offset,
                    alignment,
                },
            ));
        }
        Ok(GgufTensor { info, offset })
    }
}
