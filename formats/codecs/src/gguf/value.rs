//! GGUF metadata values: the thirteen value types of the GGUF key/value section
//! (<https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>, `gguf_metadata_value_type`)
//! and their little-endian encoding.
//!
//! Arrays are typed (`GgufArray::String(Vec<String>)`, `GgufArray::F32(Vec<f32>)`, ...) so a
//! 32000-entry tokenizer array costs what its data costs, and nested arrays are arrays of
//! arrays.

use std::fmt;

/// The type id of a GGUF metadata value (`gguf_metadata_value_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgufValueType {
    /// `GGUF_TYPE_UINT8` (0): unsigned 8-bit.
    U8,
    /// `GGUF_TYPE_INT8` (1): signed 8-bit.
    I8,
    /// `GGUF_TYPE_UINT16` (2): unsigned 16-bit.
    U16,
    /// `GGUF_TYPE_INT16` (3): signed 16-bit.
    I16,
    /// `GGUF_TYPE_UINT32` (4): unsigned 32-bit.
    U32,
    /// `GGUF_TYPE_INT32` (5): signed 32-bit.
    I32,
    /// `GGUF_TYPE_FLOAT32` (6): 32-bit float.
    F32,
    /// `GGUF_TYPE_BOOL` (7): bool (one byte, 0 or 1).
    Bool,
    /// `GGUF_TYPE_STRING` (8): UTF-8 string (u64 length + bytes).
    String,
    /// `GGUF_TYPE_ARRAY` (9): array of one element type.
    Array,
    /// `GGUF_TYPE_UINT64` (10): unsigned 64-bit.
    U64,
    /// `GGUF_TYPE_INT64` (11): signed 64-bit.
    I64,
    /// `GGUF_TYPE_FLOAT64` (12): 64-bit float.
    F64,
}

impl GgufValueType {
    /// The type of a wire id (0..=12).
    pub fn from_id(id: u32) -> Option<GgufValueType> {
        use GgufValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// The wire id.
    pub fn id(self) -> u32 {
        use GgufValueType::*;
        match self {
            U8 => 0,
            I8 => 1,
            U16 => 2,
            I16 => 3,
            U32 => 4,
            I32 => 5,
            F32 => 6,
            Bool => 7,
            String => 8,
            Array => 9,
            U64 => 10,
            I64 => 11,
            F64 => 12,
        }
    }

    /// Encoded size of one value of a fixed-size type; `None` for strings and arrays.
    pub(crate) fn fixed_size(self) -> Option<usize> {
        use GgufValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// The smallest number of bytes one element of this type can take (a string is at least
    /// its 8-byte length, an array its 4-byte type and 8-byte count). Used to cap counts by
    /// the bytes left in the file before allocating.
    pub(crate) fn min_size(self) -> usize {
        match self {
            GgufValueType::String => 8,
            GgufValueType::Array => 12,
            t => t.fixed_size().unwrap_or(1),
        }
    }
}

impl fmt::Display for GgufValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use GgufValueType::*;
        f.write_str(match self {
            U8 => "UINT8",
            I8 => "INT8",
            U16 => "UINT16",
            I16 => "INT16",
            U32 => "UINT32",
            I32 => "INT32",
            F32 => "FLOAT32",
            Bool => "BOOL",
            String => "STRING",
            Array => "ARRAY",
            U64 => "UINT64",
            I64 => "INT64",
            F64 => "FLOAT64",
        })
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// A unsigned 8-bit value.
    U8(u8),
    /// A signed 8-bit value.
    I8(i8),
    /// A unsigned 16-bit value.
    U16(u16),
    /// A signed 16-bit value.
    I16(i16),
    /// A unsigned 32-bit value.
    U32(u32),
    /// A signed 32-bit value.
    I32(i32),
    /// A 32-bit float value.
    F32(f32),
    /// A bool (one byte, 0 or 1) value.
    Bool(bool),
    /// A UTF-8 string (u64 length + bytes) value.
    String(String),
    /// An array value.
    Array(GgufArray),
    /// A unsigned 64-bit value.
    U64(u64),
    /// A signed 64-bit value.
    I64(i64),
    /// A 64-bit float value.
    F64(f64),
}

/// A metadata array: every element has the one type the array declares.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufArray {
    /// An array of unsigned 8-bit elements.
    U8(Vec<u8>),
    /// An array of signed 8-bit elements.
    I8(Vec<i8>),
    /// An array of unsigned 16-bit elements.
    U16(Vec<u16>),
    /// An array of signed 16-bit elements.
    I16(Vec<i16>),
    /// An array of unsigned 32-bit elements.
    U32(Vec<u32>),
    /// An array of signed 32-bit elements.
    I32(Vec<i32>),
    /// An array of 32-bit float elements.
    F32(Vec<f32>),
    /// An array of bool (one byte, 0 or 1) elements.
    Bool(Vec<bool>),
    /// An array of UTF-8 string (u64 length + bytes) elements.
    String(Vec<String>),
    /// An array of arrays.
    Array(Vec<GgufArray>),
    /// An array of unsigned 64-bit elements.
    U64(Vec<u64>),
    /// An array of signed 64-bit elements.
    I64(Vec<i64>),
    /// An array of 64-bit float elements.
    F64(Vec<f64>),
}

impl GgufValue {
    /// The value's type.
    pub fn value_type(&self) -> GgufValueType {
        use GgufValue as V;
        use GgufValueType as T;
        match self {
            V::U8(_) => T::U8,
            V::I8(_) => T::I8,
            V::U16(_) => T::U16,
            V::I16(_) => T::I16,
            V::U32(_) => T::U32,
            V::I32(_) => T::I32,
            V::F32(_) => T::F32,
            V::Bool(_) => T::Bool,
            V::String(_) => T::String,
            V::Array(_) => T::Array,
            V::U64(_) => T::U64,
            V::I64(_) => T::I64,
            V::F64(_) => T::F64,
        }
    }

    /// Any integer type as u64 (`None` for negative values and non-integers). gguf-py
    /// writes counts as u32 where the spec says u64: read counts through this.
    pub fn as_u64(&self) -> Option<u64> {
        use GgufValue as V;
        match *self {
            V::U8(x) => Some(x.into()),
            V::U16(x) => Some(x.into()),
            V::U32(x) => Some(x.into()),
            V::U64(x) => Some(x),
            V::I8(x) => u64::try_from(x).ok(),
            V::I16(x) => u64::try_from(x).ok(),
            V::I32(x) => u64::try_from(x).ok(),
            V::I64(x) => u64::try_from(x).ok(),
            _ => None,
        }
    }

    /// Any integer type as i64 (`None` for u64 values above `i64::MAX` and non-integers).
    pub fn as_i64(&self) -> Option<i64> {
        use GgufValue as V;
        match *self {
            V::U8(x) => Some(x.into()),
            V::U16(x) => Some(x.into()),
            V::U32(x) => Some(x.into()),
            V::U64(x) => i64::try_from(x).ok(),
            V::I8(x) => Some(x.into()),
            V::I16(x) => Some(x.into()),
            V::I32(x) => Some(x.into()),
            V::I64(x) => Some(x),
            _ => None,
        }
    }

    /// F32 as is, F64 narrowed.
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            GgufValue::F32(x) => Some(x),
            GgufValue::F64(x) => Some(x as f32),
            _ => None,
        }
    }

    /// F32 widened, F64 as is.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(x) => Some(x.into()),
            GgufValue::F64(x) => Some(x),
            _ => None,
        }
    }

    /// The string of a STRING value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The flag of a BOOL value.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            GgufValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The array of an ARRAY value.
    pub fn as_array(&self) -> Option<&GgufArray> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Append the value's encoding, without its type id, to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        use GgufValue as V;
        match self {
            V::U8(x) => out.push(*x),
            V::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
            V::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
            V::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
            V::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
            V::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
            V::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
            V::Bool(x) => out.push(u8::from(*x)),
            V::String(s) => encode_str(s, out),
            V::Array(a) => a.encode(out),
            V::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
            V::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
            V::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        }
    }
}

/// Append a GGUF string (u64 length, UTF-8 bytes, no NUL).
pub(crate) fn encode_str(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

macro_rules! encode_le {
    ($v:expr, $out:expr) => {
        for x in $v {
            $out.extend_from_slice(&x.to_le_bytes());
        }
    };
}

impl GgufArray {
    /// The element type.
    pub fn elem_type(&self) -> GgufValueType {
        use GgufArray as A;
        use GgufValueType as T;
        match self {
            A::U8(_) => T::U8,
            A::I8(_) => T::I8,
            A::U16(_) => T::U16,
            A::I16(_) => T::I16,
            A::U32(_) => T::U32,
            A::I32(_) => T::I32,
            A::F32(_) => T::F32,
            A::Bool(_) => T::Bool,
            A::String(_) => T::String,
            A::Array(_) => T::Array,
            A::U64(_) => T::U64,
            A::I64(_) => T::I64,
            A::F64(_) => T::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        use GgufArray as A;
        match self {
            A::U8(v) => v.len(),
            A::I8(v) => v.len(),
            A::U16(v) => v.len(),
            A::I16(v) => v.len(),
            A::U32(v) => v.len(),
            A::I32(v) => v.len(),
            A::F32(v) => v.len(),
            A::Bool(v) => v.len(),
            A::String(v) => v.len(),
            A::Array(v) => v.len(),
            A::U64(v) => v.len(),
            A::I64(v) => v.len(),
            A::F64(v) => v.len(),
        }
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The strings of a string array (`tokenizer.ggml.tokens`).
    pub fn as_strings(&self) -> Option<&[String]> {
        match self {
            GgufArray::String(v) => Some(v),
            _ => None,
        }
    }

    /// The floats of an F32 array (`tokenizer.ggml.scores`).
    pub fn as_f32s(&self) -> Option<&[f32]> {
        match self {
            GgufArray::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The integers of an I32 array (`tokenizer.ggml.token_type`).
    pub fn as_i32s(&self) -> Option<&[i32]> {
        match self {
            GgufArray::I32(v) => Some(v),
            _ => None,
        }
    }

    /// Append the array's encoding (element type id, u64 count, elements) to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        use GgufArray as A;
        out.extend_from_slice(&self.elem_type().id().to_le_bytes());
        out.extend_from_slice(&(self.len() as u64).to_le_bytes());
        match self {
            A::U8(v) => out.extend_from_slice(v),
            A::I8(v) => encode_le!(v, out),
            A::U16(v) => encode_le!(v, out),
            A::I16(v) => encode_le!(v, out),
            A::U32(v) => encode_le!(v, out),
            A::I32(v) => encode_le!(v, out),
            A::F32(v) => encode_le!(v, out),
            A::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
            A::String(v) => v.iter().for_each(|s| encode_str(s, out)),
            A::Array(v) => v.iter().for_each(|a| a.encode(out)),
            A::U64(v) => encode_le!(v, out),
            A::I64(v) => encode_le!(v, out),
            A::F64(v) => encode_le!(v, out),
        }
    }
}
