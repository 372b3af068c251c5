//! Strict bencode ([BEP 3](https://www.bittorrent.org/beps/bep_0003.html), "bencoding"):
//! integers without leading zeros or `-0`, byte strings with a bounded length, dictionaries
//! with keys in strictly increasing byte order; nesting depth, element count and total size
//! are capped so a hostile file cannot exhaust memory or the stack. The decoder remembers the
//! raw byte span of every dictionary value so the info-hash is taken over the exact bytes of
//! the `info` dictionary as the file holds them; the encoder writes canonical bencode.

use std::collections::BTreeMap;

/// Deepest nesting accepted (BEP 52 file trees nest one level per path component).
pub(crate) const MAX_DEPTH: usize = 64;
/// Most values (integers, strings, lists, dictionaries) in one document.
pub(crate) const MAX_VALUES: usize = 4_000_000;

/// A decoded value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `i...e`.
    Int(i64),
    /// `N:bytes`.
    Bytes(Vec<u8>),
    /// `l...e`.
    List(Vec<Value>),
    /// `d...e`, keys sorted.
    Dict(BTreeMap<Vec<u8>, Value>),
}

/// Why bytes are not strict bencode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BencodeError {
    /// The input ended inside a value.
    #[error("truncated at byte {0}")]
    Truncated(usize),
    /// A byte that cannot start or continue a value here.
    #[error("unexpected byte {byte:#04x} at byte {at}")]
    Unexpected {
        /// The byte.
        byte: u8,
        /// Its offset.
        at: usize,
    },
    /// An integer with a leading zero, `-0`, no digits, or out of i64 range.
    #[error("bad integer at byte {0}")]
    BadInt(usize),
    /// A string length past the end of the input.
    #[error("string of {len} bytes at byte {at} runs past the end")]
    StringTooLong {
        /// Declared length.
        len: u64,
        /// Its offset.
        at: usize,
    },
    /// Dictionary keys out of order or repeated.
    #[error("dictionary key at byte {0} is not in strictly increasing order")]
    KeyOrder(usize),
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("nested deeper than {MAX_DEPTH} at byte {0}")]
    TooDeep(usize),
    /// More than [`MAX_VALUES`] values.
    #[error("more than {MAX_VALUES} values")]
    TooMany,
    /// Bytes after the top-level value.
    #[error("{0} trailing bytes after the value")]
    Trailing(usize),
}

/// A decoded document plus the raw span of each top-level dictionary value.
#[derive(Debug)]
pub struct Document {
    /// The value.
    pub value: Value,
    /// For a top-level dictionary: key -> byte range of its value in the input.
    pub(crate) spans: BTreeMap<Vec<u8>, std::ops::Range<usize>>,
}

struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    values: usize,
}

/// Decode one complete value; nothing may follow it.
pub fn decode(data: &[u8]) -> Result<Document, BencodeError> {
    let mut d = Decoder {
        data,
        pos: 0,
        values: 0,
    };
    let mut spans = BTreeMap::new();
    let value = d.value(0, Some(&mut spans))?;
    if d.pos != data.len() {
        return Err(BencodeError::Trailing(data.len() - d.pos));
    }
    Ok(Document { value, spans })
}

impl Decoder<'_> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.data
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::Truncated(self.pos))
    }

    fn value(
        &mut self,
        depth: usize,
        spans: Option<&mut BTreeMap<Vec<u8>, std::ops::Range<usize>>>,
    ) -> Result<Value, BencodeError> {
        if depth > MAX_DEPTH {
            return Err(BencodeError::TooDeep(self.pos));
        }
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(BencodeError::TooMany);
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let start = self.pos;
                let end = self.find(b'e')?;
                let n = parse_int(&self.data[start..end]).ok_or(BencodeError::BadInt(start))?;
                self.pos = end + 1;
                Ok(Value::Int(n))
            }
            b'0'..=b'9' => Ok(Value::Bytes(self.bytes()?.to_vec())),
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1, None)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                self.pos += 1;
                let mut map = BTreeMap::new();
                let mut spans = spans;
                let mut last: Option<Vec<u8>> = None;
                while self.peek()? != b'e' {
                    let at = self.pos;
                    if !self.peek()?.is_ascii_digit() {
                        return Err(BencodeError::Unexpected {
                            byte: self.peek()?,
                            at,
                        });
                    }
                    let key = self.bytes()?.to_vec();
                    if last.as_ref().is_some_and(|l| *l >= key) {
                        return Err(BencodeError::KeyOrder(at));
                    }
                    let vstart = self.pos;
                    let v = self.value(depth + 1, None)?;
                    if let Some(s) = spans.as_deref_mut() {
                        s.insert(key.clone(), vstart..self.pos);
                    }
                    map.insert(key.clone(), v);
                    last = Some(key);
                }
                self.pos += 1;
                Ok(Value::Dict(map))
            }
            byte => Err(BencodeError::Unexpected { byte, at: self.pos }),
        }
    }

    fn find(&self, byte: u8) -> Result<usize, BencodeError> {
        // Integers and lengths are short: look at most 24 bytes ahead.
        let window = &self.data[self.pos..self.data.len().min(self.pos + 24)];
        match window.iter().position(|&b| b == byte) {
            Some(i) => Ok(self.pos + i),
            None if self.pos + 24 >= self.data.len() => {
                Err(BencodeError::Truncated(self.data.len()))
            }
            None => Err(BencodeError::BadInt(self.pos)),
        }
    }

    fn bytes(&mut self) -> Result<&[u8], BencodeError> {
        let start = self.pos;
        let colon = self.find(b':')?;
        let digits = &self.data[start..colon];
        if digits.is_empty()
            || (digits.len() > 1 && digits[0] == b'0')
            || !digits.iter().all(u8::is_ascii_digit)
        {
            return Err(BencodeError::BadInt(start));
        }
        let len: u64 = std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(BencodeError::BadInt(start))?;
        let body = colon + 1;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| body.checked_add(l))
            .filter(|&e| e <= self.data.len())
            .ok_or(BencodeError::StringTooLong { len, at: start })?;
        self.pos = end;
        Ok(&self.data[body..end])
    }
}

fn parse_int(s: &[u8]) -> Option<i64> {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits.len() > 1 && digits[0] == b'0')
        || (s[0] == b'-' && digits == b"0")
    {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Canonical bencode of `v` (dictionary keys sorted, as `BTreeMap` keeps them).
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(v, &mut out);
    out
}

fn encode_into(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Int(n) => {
            out.push(b'i');
            out.extend_from_slice(n.to_string().as_bytes());
            out.push(b'e');
        }
        Value::Bytes(b) => {
            out.extend_from_slice(b.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(b);
        }
        Value::List(items) => {
            out.push(b'l');
            for i in items {
                encode_into(i, out);
            }
            out.push(b'e');
        }
        Value::Dict(map) => {
            out.push(b'd');
            for (k, v) in map {
                encode_into(&Value::Bytes(k.clone()), out);
                encode_into(v, out);
            }
            out.push(b'e');
        }
    }
}

impl Value {
    /// A byte-string value from text.
    pub fn str(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    /// The dictionary, if this is one.
    pub(crate) fn as_dict(&self) -> Option<&BTreeMap<Vec<u8>, Value>> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The bytes, if this is a string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub(crate) fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The list, if this is one.
    pub(crate) fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_canonical_input_and_keeps_info_span() {
        let raw = b"d8:announce3:url4:infod6:lengthi5e4:name1:xee";
        let doc = decode(raw).unwrap();
        assert_eq!(encode(&doc.value), raw.to_vec());
        let span = doc.spans[b"info".as_slice()].clone();
        assert_eq!(&raw[span], b"d6:lengthi5e4:name1:xe");
    }

    #[test]
    fn refuses_non_canonical_and_hostile_input() {
        for (bad, what) in [
            (&b"i03e"[..], "leading zero"),
            (b"i-0e", "minus zero"),
            (b"ie", "empty int"),
            (b"i99999999999999999999e", "overflow"),
            (b"03:abc", "leading zero length"),
            (b"5:abc", "string past end"),
            (b"d1:b0:1:a0:e", "unsorted keys"),
            (b"d1:a0:1:a0:e", "repeated key"),
            (b"di1e0:e", "integer key"),
            (b"l", "truncated list"),
            (b"i1ei2e", "trailing"),
            (b"x", "junk"),
            (b"99999999999999999999999:", "absurd length"),
        ] {
            assert!(decode(bad).is_err(), "{what} accepted");
        }
        let deep = format!("{}{}", "l".repeat(MAX_DEPTH + 2), "e".repeat(MAX_DEPTH + 2));
        assert!(matches!(
            decode(deep.as_bytes()),
            Err(BencodeError::TooDeep(_))
        ));
    }
}
