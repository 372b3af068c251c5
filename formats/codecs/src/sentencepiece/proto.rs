//! Minimal protobuf wire-format reader and writer (varints, fixed32/64, length-delimited),
//! enough for SentencePiece's `ModelProto`. Follows
//! <https://protobuf.dev/programming-guides/encoding/>. Every read is bounds-checked; nothing
//! allocates more than the input holds.

use super::SpError;

/// Protobuf wire types.
pub(crate) const WIRE_VARINT: u8 = 0;
pub(crate) const WIRE_FIXED64: u8 = 1;
pub(crate) const WIRE_LEN: u8 = 2;
pub(crate) const WIRE_FIXED32: u8 = 5;

/// One field's value as it sits on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64,
    Len(&'a [u8]),
    Fixed32(u32),
}

/// A cursor over one message's bytes. `base` is the message's offset in the whole file, so
/// errors can name absolute offsets.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    /// Absolute offset of the cursor.
    pub(crate) fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    fn varint(&mut self) -> Result<u64, SpError> {
        let start = self.offset();
        let mut v: u64 = 0;
        for i in 0..10u32 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(SpError::Truncated { offset: start });
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(SpError::BadVarint { offset: start });
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(SpError::BadVarint { offset: start })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], SpError> {
        let start = self.offset();
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(SpError::Truncated { offset: start });
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next field: `(field number, absolute offset of its value, value)`, or None at the end.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, usize, Value<'a>)>, SpError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key_offset = self.offset();
        let key = self.varint()?;
        let wire = (key & 7) as u8;
        let field = key >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(SpError::BadField {
                field,
                offset: key_offset,
            });
        }
        let field = field as u32;
        let at = self.offset();
        let value = match wire {
            WIRE_VARINT => Value::Varint(self.varint()?),
            WIRE_FIXED64 => {
                self.take(8)?;
                Value::Fixed64
            }
            WIRE_LEN => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| SpError::Truncated { offset: at })?;
                Value::Len(self.take(n)?)
            }
            WIRE_FIXED32 => {
                let b = self.take(4)?;
                let mut a = [0u8; 4];
                a.copy_from_slice(b);
                Value::Fixed32(u32::from_le_bytes(a))
            }
            w => {
                return Err(SpError::BadWireType {
                    wire: w,
                    field,
                    offset: key_offset,
                })
            }
        };
        Ok(Some((field, at, value)))
    }
}

/// Check a field's wire type; returns the expected-kind error otherwise.
pub(crate) fn expect_varint(
    v: Value<'_>,
    what: &'static str,
    offset: usize,
) -> Result<u64, SpError> {
    match v {
        Value::Varint(x) => Ok(x),
        _ => Err(SpError::WrongType { what, offset }),
    }
}

pub(crate) fn expect_len<'a>(
    v: Value<'a>,
    what: &'static str,
    offset: usize,
) -> Result<&'a [u8], SpError> {
    match v {
        Value::Len(x) => Ok(x),
        _ => Err(SpError::WrongType { what, offset }),
    }
}

pub(crate) fn expect_f32(v: Value<'_>, what: &'static str, offset: usize) -> Result<f32, SpError> {
    match v {
        Value::Fixed32(x) => Ok(f32::from_bits(x)),
        _ => Err(SpError::WrongType { what, offset }),
    }
}

/// An int32 field (negative values are sign-extended 64-bit varints on the wire).
pub(crate) fn expect_i32(v: Value<'_>, what: &'static str, offset: usize) -> Result<i32, SpError> {
    let x = expect_varint(v, what, offset)?;
    // Truncation to the low 32 bits is protobuf's own rule for int32.
    Ok(x as u32 as i32)
}

pub(crate) fn expect_string(
    v: Value<'_>,
    what: &'static str,
    offset: usize,
) -> Result<String, SpError> {
    let b = expect_len(v, what, offset)?;
    String::from_utf8(b.to_vec()).map_err(|_| SpError::BadUtf8 { what, offset })
}

/// Protobuf writer helpers.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

pub(crate) fn put_uint(out: &mut Vec<u8>, field: u32, v: u64) {
    put_key(out, field, WIRE_VARINT);
    put_varint(out, v);
}

pub(crate) fn put_i32(out: &mut Vec<u8>, field: u32, v: i32) {
    // int32 negatives are written as sign-extended 64-bit varints.
    put_uint(out, field, i64::from(v) as u64);
}

pub(crate) fn put_bool(out: &mut Vec<u8>, field: u32, v: bool) {
    put_uint(out, field, u64::from(v));
}

pub(crate) fn put_f32(out: &mut Vec<u8>, field: u32, v: f32) {
    put_key(out, field, WIRE_FIXED32);
    out.extend_from_slice(&v.to_bits().to_le_bytes());
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, field: u32, v: &[u8]) {
    put_key(out, field, WIRE_LEN);
    put_varint(out, v.len() as u64);
    out.extend_from_slice(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips_and_rejects_overlong() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_uint(&mut b, 1, v);
            let mut r = Reader::new(&b, 0);
            let (f, _, val) = r.next_field().unwrap().unwrap();
            assert_eq!(f, 1);
            assert!(matches!(val, Value::Varint(x) if x == v));
        }
        let bad = [
            0x08u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ];
        assert!(matches!(
            Reader::new(&bad, 0).next_field(),
            Err(SpError::BadVarint { .. })
        ));
        let short = [0x08u8, 0xff];
        assert!(matches!(
            Reader::new(&short, 0).next_field(),
            Err(SpError::Truncated { .. })
        ));
    }

    #[test]
    fn length_past_end_is_truncated_not_allocated() {
        let mut b = Vec::new();
        put_key(&mut b, 1, WIRE_LEN);
        put_varint(&mut b, u64::MAX);
        assert!(matches!(
            Reader::new(&b, 0).next_field(),
            Err(SpError::Truncated { .. })
        ));
    }

    #[test]
    fn negative_int32_round_trips() {
        let mut b = Vec::new();
        put_i32(&mut b, 43, -1);
        assert_eq!(b.len(), 2 + 10);
        let mut r = Reader::new(&b, 0);
        let (_, at, v) = r.next_field().unwrap().unwrap();
        assert_eq!(expect_i32(v, "pad_id", at).unwrap(), -1);
    }
}
