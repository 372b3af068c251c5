//! SentencePiece `tokenizer.model` reader and writer.
//!
//! The file is a serialized protobuf `ModelProto` as defined in sentencepiece's
//! `src/sentencepiece_model.proto`
//! (<https://github.com/google/sentencepiece/blob/master/src/sentencepiece_model.proto>):
//! repeated `SentencePiece pieces = 1` (`piece = 1`, `score = 2`, `type = 3`),
//! `TrainerSpec trainer_spec = 2`, `NormalizerSpec normalizer_spec = 3`. We keep the fields
//! that decide how text is encoded (model type, special ids, byte fallback, whitespace rules);
//! other fields are skipped on read and not written back. Proto2 defaults apply to absent
//! fields (`unk_id` 0, `bos_id` 1, `eos_id` 2, `pad_id` -1, `add_dummy_prefix`,
//! `remove_extra_whitespaces` and `escape_whitespaces` true).
//!
//! Parsing is hand-written and bounds-checked: garbage gives an [`SpError`] naming the byte
//! offset, never a panic or an allocation larger than the input.

mod proto;
mod synthetic;

use std::path::{Path, PathBuf};

use proto::{expect_f32, expect_i32, expect_len, expect_string, expect_varint, Reader};

/// Largest `tokenizer.model` we read (real ones are 0.5-5 MB).
pub(crate) const MAX_MODEL_BYTES: u64 = 256 << 20;

/// Most pieces a model may have (LLaMA has 32,000, Gemma 256,000). Each piece costs about
/// 64 bytes in memory whatever its size in the file (a 2-byte piece takes 6 bytes there), so
/// this bounds the vocabulary to ~64 MiB however the file's 256 MiB are spent.
pub const MAX_PIECES: usize = 1 << 20;

/// What went wrong reading a SentencePiece model.
#[derive(Debug, thiserror::Error)]
pub enum SpError {
    /// The file could not be read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The file is larger than [`MAX_MODEL_BYTES`].
    #[error("{}: {size} bytes is too large for a tokenizer.model (limit {MAX_MODEL_BYTES})", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// A parse error inside a named file.
    #[error("{}: not a valid SentencePiece model: {inner}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        inner: Box<SpError>,
    },
    /// The data ends inside a field.
    #[error("protobuf data truncated at byte {offset}")]
    Truncated {
        /// Byte offset where the field started.
        offset: usize,
    },
    /// A varint longer than 10 bytes.
    #[error("malformed varint at byte {offset}")]
    BadVarint {
        /// Byte offset.
        offset: usize,
    },
    /// Field number 0 or out of range.
    #[error("invalid protobuf field number {field} at byte {offset}")]
    BadField {
        /// The field number read.
        field: u64,
        /// Byte offset of the key.
        offset: usize,
    },
    /// An unsupported wire type (groups) or a reserved one.
    #[error("unsupported protobuf wire type {wire} for field {field} at byte {offset}")]
    BadWireType {
        /// Wire type.
        wire: u8,
        /// Field number.
        field: u32,
        /// Byte offset of the key.
        offset: usize,
    },
    /// A known field with the wrong wire type.
    #[error("field `{what}` at byte {offset} has the wrong protobuf wire type")]
    WrongType {
        /// Field name.
        what: &'static str,
        /// Byte offset.
        offset: usize,
    },
    /// A string field that is not UTF-8.
    #[error("field `{what}` at byte {offset} is not valid UTF-8")]
    BadUtf8 {
        /// Field name.
        what: &'static str,
        /// Byte offset.
        offset: usize,
    },
    /// An enum value outside the proto's range.
    #[error("field `{what}` has unknown value {value}")]
    BadEnum {
        /// Field name.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// More pieces than [`MAX_PIECES`].
    #[error("invalid SentencePiece model: more than {max} pieces (the most llama-tool reads)")]
    TooManyPieces {
        /// The limit.
        max: usize,
    },
    /// The same piece twice among the normal (or among the reserved) pieces.
    #[error("invalid SentencePiece model: piece {id} {piece:?} is defined twice")]
    DuplicatePiece {
        /// Its id (the second occurrence).
        id: usize,
        /// The piece.
        piece: String,
    },
    /// A piece with no text.
    #[error("invalid SentencePiece model: piece {id} is empty")]
    EmptyPiece {
        /// Its id.
        id: usize,
    },
    /// More than one UNKNOWN piece.
    #[error("invalid SentencePiece model: second UNKNOWN piece at id {id}")]
    SecondUnknown {
        /// The second one's id.
        id: usize,
    },
    /// No UNKNOWN piece.
    #[error("invalid SentencePiece model: no UNKNOWN piece (<unk>)")]
    NoUnknown,
    /// BYTE pieces in a model without byte fallback.
    #[error("invalid SentencePiece model: BYTE pieces present but byte_fallback is false")]
    BytesWithoutFallback,
    /// Byte fallback without exactly 256 BYTE pieces.
    #[error("invalid SentencePiece model: byte_fallback needs 256 BYTE pieces, found {found}")]
    ByteFallbackCount {
        /// BYTE pieces found.
        found: usize,
    },
    /// A special id (`unk_id`, `bos_id`, `eos_id`, `pad_id`) outside the vocabulary.
    #[error("invalid SentencePiece model: {name} {id} is outside the vocabulary of {vocab}")]
    SpecialIdOutOfRange {
        /// Which id.
        name: &'static str,
        /// Its value.
        id: u32,
        /// Number of pieces.
        vocab: usize,
    },
}

/// `SentencePiece.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PieceType {
    /// A normal piece (type 1).
    Normal,
    /// The unknown piece `<unk>` (type 2).
    Unknown,
    /// A control symbol such as `<s>` (type 3).
    Control,
    /// A user-defined symbol, always matched whole (type 4).
    UserDefined,
    /// Unused (type 5).
    Unused,
    /// A byte-fallback piece `<0xNN>` (type 6).
    Byte,
}

impl PieceType {
    /// The protobuf / GGUF `token_type` number.
    pub fn id(self) -> u32 {
        match self {
            PieceType::Normal => 1,
            PieceType::Unknown => 2,
            PieceType::Control => 3,
            PieceType::UserDefined => 4,
            PieceType::Unused => 5,
            PieceType::Byte => 6,
        }
    }

    /// From the protobuf / GGUF `token_type` number.
    pub fn from_id(v: u64) -> Option<PieceType> {
        Some(match v {
            1 => PieceType::Normal,
            2 => PieceType::Unknown,
            3 => PieceType::Control,
            4 => PieceType::UserDefined,
            5 => PieceType::Unused,
            6 => PieceType::Byte,
            _ => return None,
        })
    }
}

/// One vocabulary entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// The piece text (`▁` stands for a space).
    pub piece: String,
    /// Its score (BPE: merge priority, higher first; unigram: log probability).
    pub score: f32,
    /// Its type.
    pub kind: PieceType,
}

/// `TrainerSpec.ModelType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelType {
    /// Unigram language model (1, the proto default).
    Unigram,
    /// Byte-pair encoding (2, LLaMA's).
    Bpe,
    /// Whitespace-delimited words (3).
    Word,
    /// Characters (4).
    Char,
}

impl ModelType {
    /// The protobuf number.
    pub fn id(self) -> u64 {
        match self {
            ModelType::Unigram => 1,
            ModelType::Bpe => 2,
            ModelType::Word => 3,
            ModelType::Char => 4,
        }
    }
}

/// A SentencePiece model: the vocabulary and the settings that decide encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct SpModel {
    /// The vocabulary; a piece's index is its token id.
    pub pieces: Vec<Piece>,
    /// Unigram or BPE (trainer_spec 3).
    pub model_type: ModelType,
    /// trainer_spec.vocab_size as stored (4); usually `pieces.len()`.
    pub vocab_size: u32,
    /// trainer_spec.unk_id (40); None when negative.
    pub unk_id: Option<u32>,
    /// trainer_spec.bos_id (41).
    pub bos_id: Option<u32>,
    /// trainer_spec.eos_id (42).
    pub eos_id: Option<u32>,
    /// trainer_spec.pad_id (43).
    pub pad_id: Option<u32>,
    /// trainer_spec.byte_fallback (35): unknown characters become `<0xNN>` pieces.
    pub byte_fallback: bool,
    /// trainer_spec.treat_whitespace_as_suffix (24).
    pub treat_whitespace_as_suffix: bool,
    /// trainer_spec.unk_surface (44): what `<unk>` decodes to (default " ⁇ ").
    pub unk_surface: String,
    /// normalizer_spec.name (1), e.g. "identity" or "nmt_nfkc".
    pub normalizer_name: String,
    /// normalizer_spec.precompiled_charsmap (2); empty for LLaMA ("identity").
    pub precompiled_charsmap: Vec<u8>,
    /// normalizer_spec.add_dummy_prefix (3): prepend `▁` to the text.
    pub add_dummy_prefix: bool,
    /// normalizer_spec.remove_extra_whitespaces (4).
    pub remove_extra_whitespaces: bool,
    /// normalizer_spec.escape_whitespaces (5): spaces become `▁`.
    pub escape_whitespaces: bool,
}

fn opt_id(v: i32) -> Option<u32> {
    u32::try_from(v).ok()
}

fn id_i32(v: Option<u32>) -> i32 {
    v.and_then(|x| i32::try_from(x).ok()).unwrap_or(-1)
}

impl SpModel {
    /// A byte-fallback BPE model with LLaMA's settings (identity normalizer, dummy prefix,
    /// escaped whitespace, `unk_surface` " ⁇ "), `vocab_size` the number of pieces, and no
    /// special ids yet: set `unk_id`/`bos_id`/`eos_id`/`pad_id` with struct update syntax.
    pub fn llama_bpe(pieces: Vec<Piece>) -> SpModel {
        SpModel {
            vocab_size: pieces.len() as u32,
            pieces,
            model_type: ModelType::Bpe,
            unk_id: None,
            bos_id: None,
            eos_id: None,
            pad_id: None,
            byte_fallback: true,
            treat_whitespace_as_suffix: false,
            unk_surface: " \u{2047} ".to_string(),
            normalizer_name: "identity".to_string(),
            precompiled_charsmap: Vec::new(),
            add_dummy_prefix: true,
            remove_extra_whitespaces: false,
            escape_whitespaces: true,
        }
    }

    /// Read `tokenizer.model` from disk. Errors name the file.
    pub fn read(path: &Path) -> Result<SpModel, SpError> {
        let io = |source| SpError::Io {
            path: path.to_path_buf(),
            error: source,
        };
        // Open, then fstat the handle: only a regular file, within the cap.
        let (f, size) = crate::safe_read::open_regular(path).map_err(io)?;
        if size > MAX_MODEL_BYTES {
            return Err(SpError::TooLarge {
                path: path.to_path_buf(),
                size,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_MODEL_BYTES + 1), &mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_MODEL_BYTES {
            return Err(SpError::TooLarge {
                path: path.to_path_buf(),
                size: bytes.len() as u64,
            });
        }
        SpModel::from_bytes(&bytes).map_err(|e| SpError::InFile {
            path: path.to_path_buf(),
            inner: Box::new(e),
        })
    }

    /// Parse a serialized `ModelProto`. Structural check only; see [`SpModel::validate`].
    pub fn from_bytes(b: &[u8]) -> Result<SpModel, SpError> {
        let mut m = SpModel {
            pieces: Vec::new(),
            model_type: ModelType::Unigram,
            vocab_size: 8000,
            unk_id: Some(0),
            bos_id: Some(1),
            eos_id: Some(2),
            pad_id: None,
            byte_fallback: false,
            treat_whitespace_as_suffix: false,
            unk_surface: " \u{2047} ".to_string(),
            normalizer_name: String::new(),
            precompiled_charsmap: Vec::new(),
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            escape_whitespaces: true,
        };
        let mut r = Reader::new(b, 0);
        while let Some((field, at, v)) = r.next_field()? {
            match field {
                1 => {
                    if m.pieces.len() >= MAX_PIECES {
                        return Err(SpError::TooManyPieces { max: MAX_PIECES });
                    }
                    m.pieces
                        .push(parse_piece(expect_len(v, "pieces", at)?, at)?)
                }
                2 => parse_trainer(&mut m, expect_len(v, "trainer_spec", at)?, at)?,
                3 => parse_normalizer(&mut m, expect_len(v, "normalizer_spec", at)?, at)?,
                _ => {}
            }
        }
        Ok(m)
    }

    /// Check the rules sentencepiece's loader enforces: unique pieces per kind, exactly one
    /// UNKNOWN piece, 256 BYTE pieces iff byte fallback, special ids in range.
    pub fn validate(&self) -> Result<(), SpError> {
        use std::collections::HashSet;
        let mut normal = HashSet::new();
        let mut reserved = HashSet::new();
        let mut unk = None;
        let mut bytes = 0usize;
        for (i, p) in self.pieces.iter().enumerate() {
            let set = match p.kind {
                PieceType::Normal | PieceType::UserDefined | PieceType::Unused => &mut normal,
                _ => &mut reserved,
            };
            if !set.insert(p.piece.as_str()) {
                return Err(SpError::DuplicatePiece {
                    id: i,
                    piece: p.piece.clone(),
                });
            }
            if p.piece.is_empty() {
                return Err(SpError::EmptyPiece { id: i });
            }
            match p.kind {
                PieceType::Unknown if unk.is_some() => {
                    return Err(SpError::SecondUnknown { id: i })
                }
                PieceType::Unknown => unk = Some(i),
                PieceType::Byte => bytes += 1,
                _ => {}
            }
        }
        if unk.is_none() {
            return Err(SpError::NoUnknown);
        }
        if bytes > 0 && !self.byte_fallback {
            return Err(SpError::BytesWithoutFallback);
        }
        if self.byte_fallback && bytes != 256 {
            return Err(SpError::ByteFallbackCount { found: bytes });
        }
        for (name, id) in [
            ("unk_id", self.unk_id),
            ("bos_id", self.bos_id),
            ("eos_id", self.eos_id),
            ("pad_id", self.pad_id),
        ] {
            if let Some(id) = id {
                if id as usize >= self.pieces.len() {
                    return Err(SpError::SpecialIdOutOfRange {
                        name,
                        id,
                        vocab: self.pieces.len(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Serialize as a `ModelProto` that sentencepiece loads.
    pub fn to_bytes(&self) -> Vec<u8> {
        use proto::*;
        let mut out = Vec::with_capacity(self.pieces.len() * 24 + 256);
        let mut buf = Vec::new();
        for p in &self.pieces {
            buf.clear();
            put_bytes(&mut buf, 1, p.piece.as_bytes());
            put_f32(&mut buf, 2, p.score);
            put_uint(&mut buf, 3, u64::from(p.kind.id()));
            put_bytes(&mut out, 1, &buf);
        }
        buf.clear();
        put_uint(&mut buf, 3, self.model_type.id());
        put_uint(&mut buf, 4, u64::from(self.vocab_size));
        put_bool(&mut buf, 24, self.treat_whitespace_as_suffix);
        put_bool(&mut buf, 35, self.byte_fallback);
        put_i32(&mut buf, 40, id_i32(self.unk_id));
        put_i32(&mut buf, 41, id_i32(self.bos_id));
        put_i32(&mut buf, 42, id_i32(self.eos_id));
        put_i32(&mut buf, 43, id_i32(self.pad_id));
        put_bytes(&mut buf, 44, self.unk_surface.as_bytes());
        put_bytes(&mut out, 2, &buf);
        buf.clear();
        put_bytes(&mut buf, 1, self.normalizer_name.as_bytes());
        if !self.precompiled_charsmap.is_empty() {
            put_bytes(&mut buf, 2, &self.precompiled_charsmap);
        }
        put_bool(&mut buf, 3, self.add_dummy_prefix);
        put_bool(&mut buf, 4, self.remove_extra_whitespaces);
        put_bool(&mut buf, 5, self.escape_whitespaces);
        put_bytes(&mut out, 3, &buf);
        out
    }

    /// A LLaMA-like BPE model of exactly `vocab_size` pieces (at least 262): `<unk>`, `<s>`,
    /// `</s>`, the 256 byte pieces, then normal pieces with descending scores.
    pub fn synthetic(vocab_size: usize) -> SpModel {
        synthetic::synthetic(vocab_size)
    }

    /// Id of a piece of the given text, if any (linear scan; for tests and tools).
    pub fn piece_id(&self, piece: &str) -> Option<u32> {
        self.pieces
            .iter()
            .position(|p| p.piece == piece)
            .and_then(|i| u32::try_from(i).ok())
    }
}

fn parse_piece(b: &[u8], base: usize) -> Result<Piece, SpError> {
    let mut p = Piece {
        piece: String::new(),
        score: 0.0,
        kind: PieceType::Normal,
    };
    let mut r = Reader::new(b, base);
    while let Some((field, at, v)) = r.next_field()? {
        match field {
            1 => p.piece = expect_string(v, "piece", at)?,
            2 => p.score = expect_f32(v, "score", at)?,
            3 => {
                let t = expect_varint(v, "type", at)?;
                p.kind = PieceType::from_id(t).ok_or(SpError::BadEnum {
                    what: "type",
                    value: t,
                })?;
            }
            _ => {}
        }
    }
    Ok(p)
}

fn parse_trainer(m: &mut SpModel, b: &[u8], base: usize) -> Result<(), SpError> {
    let mut r = Reader::new(b, base);
    while let Some((field, at, v)) = r.next_field()? {
        match field {
            3 => {
                let t = expect_varint(v, "model_type", at)?;
                m.model_type = match t {
                    1 => ModelType::Unigram,
                    2 => ModelType::Bpe,
                    3 => ModelType::Word,
                    4 => ModelType::Char,
                    _ => {
                        return Err(SpError::BadEnum {
                            what: "model_type",
                            value: t,
                        })
                    }
                };
            }
            4 => m.vocab_size = expect_i32(v, "vocab_size", at)?.max(0) as u32,
            24 => {
                m.treat_whitespace_as_suffix =
                    expect_varint(v, "treat_whitespace_as_suffix", at)? != 0
            }
            35 => m.byte_fallback = expect_varint(v, "byte_fallback", at)? != 0,
            40 => m.unk_id = opt_id(expect_i32(v, "unk_id", at)?),
            41 => m.bos_id = opt_id(expect_i32(v, "bos_id", at)?),
            42 => m.eos_id = opt_id(expect_i32(v, "eos_id", at)?),
            43 => m.pad_id = opt_id(expect_i32(v, "pad_id", at)?),
            44 => m.unk_surface = expect_string(v, "unk_surface", at)?,
            _ => {}
        }
    }
    Ok(())
}

fn parse_normalizer(m: &mut SpModel, b: &[u8], base: usize) -> Result<(), SpError> {
    let mut r = Reader::new(b, base);
    while let Some((field, at, v)) = r.next_field()? {
        match field {
            1 => m.normalizer_name = expect_string(v, "normalizer_spec.name", at)?,
            2 => m.precompiled_charsmap = expect_len(v, "precompiled_charsmap", at)?.to_vec(),
            3 => m.add_dummy_prefix = expect_varint(v, "add_dummy_prefix", at)? != 0,
            4 => {
                m.remove_extra_whitespaces = expect_varint(v, "remove_extra_whitespaces", at)? != 0
            }
            5 => m.escape_whitespaces = expect_varint(v, "escape_whitespaces", at)? != 0,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
