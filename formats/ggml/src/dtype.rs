//! Element types of every format llama-tool reads or writes: torch's dtypes, safetensors'
//! dtypes and ggml's types (plain and block-quantized) in one enum.
//!
//! ggml type ids and block sizes follow ggml's `ggml.h` / `ggml-common.h`
//! (<https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>).

use std::fmt;

/// An element type. Block-quantized types store `block_size()` weights in `block_bytes()`.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// IEEE 754 double.
    F64,
    /// IEEE 754 single.
    F32,
    /// IEEE 754 half.
    F16,
    /// bfloat16 (the top half of an f32).
    BF16,
    /// Signed 64-bit integer.
    I64,
    /// Signed 32-bit integer.
    I32,
    /// Signed 16-bit integer.
    I16,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned byte.
    U8,
    /// One byte, 0 or 1.
    Bool,
    /// ggml Q4_0: 32 weights, f16 scale, 4-bit values.
    Q4_0,
    /// ggml Q4_1: 32 weights, f16 scale and min, 4-bit values.
    Q4_1,
    /// ggml Q5_0: 32 weights, f16 scale, 5-bit values.
    Q5_0,
    /// ggml Q5_1: 32 weights, f16 scale and min, 5-bit values.
    Q5_1,
    /// ggml Q8_0: 32 weights, f16 scale, 8-bit values.
    Q8_0,
    /// ggml Q8_1: 32 weights, f32 scale and sum, 8-bit values (activations only).
    Q8_1,
    /// ggml Q2_K: 256-weight super-block, 2-bit values.
    Q2_K,
    /// ggml Q3_K: 256-weight super-block, 3-bit values.
    Q3_K,
    /// ggml Q4_K: 256-weight super-block, 4-bit values, 6-bit sub-block scales and mins.
    Q4_K,
    /// ggml Q5_K: 256-weight super-block, 5-bit values.
    Q5_K,
    /// ggml Q6_K: 256-weight super-block, 6-bit values, 8-bit sub-block scales.
    Q6_K,
    /// ggml Q8_K: 256-weight super-block, 8-bit values (activations only).
    Q8_K,
}

/// Every dtype, for tables and tests.
pub(crate) const ALL_DTYPES: [DType; 22] = [
    DType::F64,
    DType::F32,
    DType::F16,
    DType::BF16,
    DType::I64,
    DType::I32,
    DType::I16,
    DType::I8,
    DType::U8,
    DType::Bool,
    DType::Q4_0,
    DType::Q4_1,
    DType::Q5_0,
    DType::Q5_1,
    DType::Q8_0,
    DType::Q8_1,
    DType::Q2_K,
    DType::Q3_K,
    DType::Q4_K,
    DType::Q5_K,
    DType::Q6_K,
    DType::Q8_K,
];

impl DType {
    /// Weights per block (1 for plain types).
    pub fn block_size(self) -> usize {
        use DType::*;
        match self {
            Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q8_1 => 32,
            Q2_K | Q3_K | Q4_K | Q5_K | Q6_K | Q8_K => 256,
            _ => 1,
        }
    }

    /// Bytes per block (the element size for plain types).
    pub fn block_bytes(self) -> usize {
        use DType::*;
        match self {
            F64 | I64 => 8,
            F32 | I32 => 4,
            F16 | BF16 | I16 => 2,
            I8 | U8 | Bool => 1,
            Q4_0 => 18,
            Q4_1 => 20,
            Q5_0 => 22,
            Q5_1 => 24,
            Q8_0 => 34,
            Q8_1 => 36,
            Q2_K => 84,
            Q3_K => 110,
            Q4_K => 144,
            Q5_K => 176,
            Q6_K => 210,
            Q8_K => 292,
        }
    }

    /// True for ggml's block-quantized types.
    pub fn is_quantized(self) -> bool {
        self.block_size() > 1
    }

    /// True for F64/F32/F16/BF16.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F64 | DType::F32 | DType::F16 | DType::BF16)
    }

    /// Bytes needed for `n` elements, or `None` on overflow or when `n` is not a whole
    /// number of blocks.
    pub fn bytes_for(self, n: u64) -> Option<u64> {
        let bs = self.block_size() as u64;
        if !n.is_multiple_of(bs) {
            return None;
        }
        (n / bs).checked_mul(self.block_bytes() as u64)
    }

    /// ggml's type id (`enum ggml_type`), where ggml has one.
    pub fn ggml_id(self) -> Option<u32> {
        use DType::*;
        Some(match self {
            F32 => 0,
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q5_0 => 6,
            Q5_1 => 7,
            Q8_0 => 8,
            Q8_1 => 9,
            Q2_K => 10,
            Q3_K => 11,
            Q4_K => 12,
            Q5_K => 13,
            Q6_K => 14,
            Q8_K => 15,
            I8 => 24,
            I16 => 25,
            I32 => 26,
            I64 => 27,
            F64 => 28,
            BF16 => 30,
            U8 | Bool => return None,
        })
    }

    /// The dtype of a ggml type id.
    pub fn from_ggml_id(id: u32) -> Option<DType> {
        ALL_DTYPES.iter().copied().find(|d| d.ggml_id() == Some(id))
    }

    /// The name as llama.cpp / ggml spell it (`F16`, `Q4_K`, ...).
    pub fn name(self) -> &'static str {
        use DType::*;
        match self {
            F64 => "F64",
            F32 => "F32",
            F16 => "F16",
            BF16 => "BF16",
            I64 => "I64",
            I32 => "I32",
            I16 => "I16",
            I8 => "I8",
            U8 => "U8",
            Bool => "BOOL",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q8_1 => "Q8_1",
            Q2_K => "Q2_K",
            Q3_K => "Q3_K",
            Q4_K => "Q4_K",
            Q5_K => "Q5_K",
            Q6_K => "Q6_K",
            Q8_K => "Q8_K",
        }
    }

    /// Parse a name case-insensitively (`f16`, `Q4_K`, `bool`).
    pub fn from_name(s: &str) -> Option<DType> {
        ALL_DTYPES
            .iter()
            .copied()
            .find(|d| d.name().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ggml_ids_round_trip() {
        for d in ALL_DTYPES {
            if let Some(id) = d.ggml_id() {
                assert_eq!(DType::from_ggml_id(id), Some(d));
            }
        }
        assert_eq!(DType::from_ggml_id(4), None);
    }

    #[test]
    fn bytes_for_checks_blocks_and_overflow() {
        assert_eq!(DType::Q4_0.bytes_for(64), Some(36));
        assert_eq!(DType::Q4_0.bytes_for(33), None);
        assert_eq!(DType::F32.bytes_for(u64::MAX), None);
        assert_eq!(DType::Q6_K.bytes_for(256), Some(210));
    }

    #[test]
    fn names_parse_case_insensitively() {
        assert_eq!(DType::from_name("q4_k"), Some(DType::Q4_K));
        assert_eq!(DType::from_name("bf16"), Some(DType::BF16));
        assert_eq!(DType::from_name("q4_k_m"), None);
    }
}
