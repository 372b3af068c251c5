//! SentencePiece BPE encoding and decoding, as the `sentencepiece` library does it for
//! LLaMA's `tokenizer.model` (<https://github.com/google/sentencepiece>: `normalizer.cc`,
//! `bpe_model.cc`, `sentencepiece_processor.cc`):
//!
//! 1. normalize: identity character map; optional removal of extra spaces; a dummy `▁`
//!    prefix; spaces become `▁`;
//! 2. split into characters (user-defined symbols kept whole), then repeatedly merge the
//!    adjacent pair whose concatenation is the vocabulary piece with the highest score
//!    (ties: leftmost); UNUSED pieces are split back into the pieces that formed them;
//! 3. symbols without a piece become `<0xNN>` byte pieces (byte fallback) or `<unk>`.
//!
//! Only BPE models with the identity normalizer (no precompiled character map) are
//! supported; anything else is refused rather than encoded differently.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::path::Path;

use llama_codecs::sentencepiece::{ModelType, PieceType, SpError, SpModel};

const SPACE: &str = "\u{2581}";

/// Why a tokenizer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The model file is unreadable or invalid.
    #[error(transparent)]
    Model(#[from] SpError),
    /// A model kind we do not encode.
    #[error("unsupported SentencePiece model: {0}")]
    Unsupported(Unsupported),
}

/// A SentencePiece model this tokenizer refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// Not a BPE model (unigram, word, char).
    #[error("{model_type:?} model (only BPE, as LLaMA uses)")]
    ModelType {
        /// The model's type.
        model_type: ModelType,
    },
    /// A normalizer with a precompiled character map.
    #[error("normalizer `{name}` with a precompiled character map (only identity, as LLaMA uses)")]
    Normalizer {
        /// The normalizer's name.
        name: String,
    },
}

/// A SentencePiece BPE tokenizer.
pub struct Tokenizer {
    model: SpModel,
    /// NORMAL, USER_DEFINED and UNUSED pieces (merge candidates).
    pieces: HashMap<String, u32>,
    /// UNKNOWN, CONTROL and BYTE pieces.
    reserved: HashMap<String, u32>,
    unk_id: u32,
    byte_ids: Vec<Option<u32>>,
    /// User-defined symbols, longest first.
    user_defined: Vec<String>,
}

#[derive(Debug)]
struct Pair {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl PartialEq for Pair {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Pair {}
impl PartialOrd for Pair {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pair {
    /// Max-heap order: higher score first, then the leftmost pair.
    fn cmp(&self, o: &Self) -> Ordering {
        self.score
            .total_cmp(&o.score)
            .then_with(|| o.left.cmp(&self.left))
    }
}

struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
    frozen: bool,
}

impl Tokenizer {
    /// Load `tokenizer.model`.
    pub fn open(path: &Path) -> Result<Tokenizer, TokenizerError> {
        Tokenizer::new(SpModel::read(path)?)
    }

    /// Build from a parsed model (validated like sentencepiece's loader).
    pub fn new(model: SpModel) -> Result<Tokenizer, TokenizerError> {
        model.validate()?;
        if model.model_type != ModelType::Bpe {
            return Err(TokenizerError::Unsupported(Unsupported::ModelType {
                model_type: model.model_type,
            }));
        }
        if !model.precompiled_charsmap.is_empty() {
            return Err(TokenizerError::Unsupported(Unsupported::Normalizer {
                name: model.normalizer_name.clone(),
            }));
        }
        let mut pieces = HashMap::new();
        let mut reserved = HashMap::new();
        let mut unk_id = 0;
        let mut byte_ids = vec![None; 256];
        let mut user_defined = Vec::new();
        for (i, p) in model.pieces.iter().enumerate() {
            let id = i as u32;
            match p.kind {
                PieceType::Normal | PieceType::Unused => {
                    pieces.insert(p.piece.clone(), id);
                }
                PieceType::UserDefined => {
                    pieces.insert(p.piece.clone(), id);
                    user_defined.push(p.piece.clone());
                }
                PieceType::Unknown | PieceType::Control | PieceType::Byte => {
                    reserved.insert(p.piece.clone(), id);
                    if p.kind == PieceType::Unknown {
                        unk_id = id;
                    }
                    if p.kind == PieceType::Byte {
                        if let Some(b) = byte_of_piece(&p.piece) {
                            byte_ids[b as usize] = Some(id);
                        }
                    }
                }
            }
        }
        user_defined.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Ok(Tokenizer {
            model,
            pieces,
            reserved,
            unk_id,
            byte_ids,
            user_defined,
        })
    }

    /// The model.
    pub fn model(&self) -> &SpModel {
        &self.model
    }

    /// Number of pieces.
    pub fn vocab_size(&self) -> usize {
        self.model.pieces.len()
    }

    /// `<s>`.
    pub fn bos_id(&self) -> Option<u32> {
        self.model.bos_id
    }

    /// `</s>`.
    pub fn eos_id(&self) -> Option<u32> {
        self.model.eos_id
    }

    /// A piece's text.
    pub fn piece(&self, id: u32) -> Option<&str> {
        self.model.pieces.get(id as usize).map(|p| p.piece.as_str())
    }

    /// Length of the prefix sentencepiece's matcher takes: a user-defined symbol, or one
    /// character. Returns (bytes, is_user_defined).
    fn prefix(&self, s: &str) -> (usize, bool) {
        for u in &self.user_defined {
            if s.starts_with(u.as_str()) {
                return (u.len(), true);
            }
        }
        (s.chars().next().map_or(0, char::len_utf8), false)
    }

    /// `normalizer.cc` with an identity character map.
    fn normalize(&self, text: &str) -> String {
        let m = &self.model;
        let mut input = text;
        if m.remove_extra_whitespaces {
            while let Some(rest) = input.strip_prefix(' ') {
                input = rest;
            }
        }
        let mut out = String::with_capacity(text.len() * 3 + 3);
        if input.is_empty() {
            return out;
        }
        let space = if m.escape_whitespaces { SPACE } else { " " };
        let suffix = m.treat_whitespace_as_suffix;
        if !suffix && m.add_dummy_prefix {
            out.push_str(space);
        }
        let mut prev_space = m.remove_extra_whitespaces;
        while !input.is_empty() {
            let (n, _) = self.prefix(input);
            let mut sp = &input[..n];
            if prev_space {
                sp = sp.trim_start_matches(' ');
            }
            if !sp.is_empty() {
                for c in sp.chars() {
                    if m.escape_whitespaces && c == ' ' {
                        out.push_str(SPACE);
                    } else {
                        out.push(c);
                    }
                }
                prev_space = sp.ends_with(' ');
            }
            input = &input[n..];
            if !m.remove_extra_whitespaces {
                prev_space = false;
            }
        }
        if m.remove_extra_whitespaces {
            while out.ends_with(space) {
                out.truncate(out.len() - space.len());
            }
        }
        if suffix && m.add_dummy_prefix {
            out.push_str(space);
        }
        out
    }

    fn piece_to_id(&self, s: &str) -> u32 {
        self.reserved
            .get(s)
            .or_else(|| self.pieces.get(s))
            .copied()
            .unwrap_or(self.unk_id)
    }

    fn is_unused(&self, id: u32) -> bool {
        self.model
            .pieces
            .get(id as usize)
            .is_some_and(|p| p.kind == PieceType::Unused)
    }

    /// `bpe::Model::Encode`: the normalized text as (piece text, id) pairs.
    fn bpe<'a>(&self, s: &'a str) -> Vec<(&'a str, u32)> {
        let mut syms: Vec<Symbol> = Vec::new();
        let mut pos = 0;
        while pos < s.len() {
            let (n, frozen) = self.prefix(&s[pos..]);
            let i = syms.len();
            syms.push(Symbol {
                start: pos,
                len: n,
                prev: i.checked_sub(1),
                next: None,
                frozen,
            });
            pos += n;
            if pos < s.len() {
                syms[i].next = Some(i + 1);
            }
        }
        let mut heap = BinaryHeap::new();
        let mut rev_merge: HashMap<&'a str, (&'a str, &'a str)> = HashMap::new();
        let try_pair = |l: Option<usize>,
                        r: Option<usize>,
                        syms: &[Symbol],
                        heap: &mut BinaryHeap<Pair>,
                        rev: &mut HashMap<&'a str, (&'a str, &'a str)>| {
            let (Some(l), Some(r)) = (l, r) else { return };
            let (a, b) = (&syms[l], &syms[r]);
            if a.frozen || b.frozen {
                return;
            }
            let text = &s[a.start..a.start + a.len + b.len];
            if let Some(&id) = self.pieces.get(text) {
                let score = self.model.pieces[id as usize].score;
                heap.push(Pair {
                    score,
                    left: l,
                    right: r,
                    size: text.len(),
                });
                if self.is_unused(id) {
                    rev.insert(
                        text,
                        (&s[a.start..a.start + a.len], &s[b.start..b.start + b.len]),
                    );
                }
            }
        };
        for i in 1..syms.len() {
            try_pair(Some(i - 1), Some(i), &syms, &mut heap, &mut rev_merge);
        }
        while let Some(top) = heap.pop() {
            let (l, r) = (top.left, top.right);
            if syms[l].len == 0 || syms[r].len == 0 || syms[l].len + syms[r].len != top.size {
                continue;
            }
            syms[l].len += syms[r].len;
            syms[l].next = syms[r].next;
            if let Some(n) = syms[r].next {
                syms[n].prev = Some(l);
            }
            syms[r].len = 0;
            try_pair(syms[l].prev, Some(l), &syms, &mut heap, &mut rev_merge);
            try_pair(Some(l), syms[l].next, &syms, &mut heap, &mut rev_merge);
        }
        let mut out = Vec::new();
        let mut i = if syms.is_empty() { None } else { Some(0) };
        while let Some(k) = i {
            let w = &s[syms[k].start..syms[k].start + syms[k].len];
            self.resegment(w, &rev_merge, &mut out);
            i = syms[k].next;
        }
        out
    }

    fn resegment<'a>(
        &self,
        w: &'a str,
        rev: &HashMap<&'a str, (&'a str, &'a str)>,
        out: &mut Vec<(&'a str, u32)>,
    ) {
        let id = self.piece_to_id(w);
        match rev.get(w) {
            Some(&(a, b)) if self.is_unused(id) => {
                self.resegment(a, rev, out);
                self.resegment(b, rev, out);
            }
            _ => out.push((w, id)),
        }
    }

    /// Token ids of `text`, with `<s>` first when `add_bos` (LLaMA's `encode(s, bos=True)`).
    pub fn encode(&self, text: &str, add_bos: bool) -> Vec<u32> {
        let normalized = self.normalize(text);
        let mut ids = Vec::with_capacity(normalized.len() / 2 + 1);
        if add_bos {
            if let Some(b) = self.model.bos_id {
                ids.push(b);
            }
        }
        let mut prev_unk = false;
        for (w, id) in self.bpe(&normalized) {
            let is_unk = id == self.unk_id;
            if is_unk && self.model.byte_fallback {
                ids.extend(
                    w.bytes()
                        .map(|b| self.byte_ids[b as usize].unwrap_or(self.unk_id)),
                );
            } else if !(is_unk && prev_unk) {
                // sentencepiece merges a run of unknown symbols into one <unk>.
                ids.push(id);
            }
            prev_unk = is_unk;
        }
        ids
    }

    /// Text of `ids`, as sentencepiece's `Decode` does it: control pieces vanish, `<unk>`
    /// shows as the unk surface, runs of byte pieces are reassembled as UTF-8 (each invalid
    /// byte as U+FFFD), `▁` is a space, and the dummy-prefix `▁` of the first piece is dropped
    /// (every leading one with `remove_extra_whitespaces`).
    pub fn decode(&self, ids: &[u32]) -> String {
        let m = &self.model;
        let mut text = String::new();
        let mut bytes: Vec<u8> = Vec::new();
        let mut is_bos_ws = true;
        let mut bos_ws_seen = false;
        for &id in ids {
            let Some(p) = m.pieces.get(id as usize) else {
                continue;
            };
            if p.kind == PieceType::Byte {
                if let Some(b) = byte_of_piece(&p.piece) {
                    bytes.push(b);
                }
                continue;
            }
            push_bytes_lossy(&mut bytes, &mut text);
            if bos_ws_seen || !text.is_empty() {
                is_bos_ws = false;
            }
            bos_ws_seen = false;
            match p.kind {
                PieceType::Control => continue,
                PieceType::Unknown => {
                    text.push_str(&m.unk_surface);
                    continue;
                }
                _ => {}
            }
            let mut piece = p.piece.as_str();
            if is_bos_ws && (m.add_dummy_prefix || m.remove_extra_whitespaces) {
                if let Some(rest) = piece.strip_prefix(SPACE) {
                    piece = rest;
                    bos_ws_seen = !m.remove_extra_whitespaces;
                }
            }
            text.push_str(&piece.replace(SPACE, " "));
        }
        push_bytes_lossy(&mut bytes, &mut text);
        text
    }
}

/// Append `bytes` as UTF-8, each byte that does not start a valid character becoming
/// U+FFFD (sentencepiece's rule), and clear them.
fn push_bytes_lossy(bytes: &mut Vec<u8>, text: &mut String) {
    let mut rest: &[u8] = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                text.push_str(s);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                text.push('\u{FFFD}');
                rest = after.get(1..).unwrap_or_default();
            }
        }
    }
    bytes.clear();
}

/// `<0xNN>` -> NN.
fn byte_of_piece(p: &str) -> Option<u8> {
    let hex = p.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> Tokenizer {
        Tokenizer::new(SpModel::synthetic(32000)).unwrap()
    }

    #[test]
    fn encodes_words_with_the_dummy_prefix_and_bos() {
        let t = tok();
        let ids = t.encode("the world", true);
        assert_eq!(ids[0], 1);
        let pieces: Vec<&str> = ids[1..].iter().map(|&i| t.piece(i).unwrap()).collect();
        assert_eq!(pieces, ["\u{2581}the", "\u{2581}world"]);
        assert_eq!(t.decode(&ids), "the world");
    }

    #[test]
    fn unknown_characters_fall_back_to_bytes() {
        let t = tok();
        let ids = t.encode("\n😀", false);
        let pieces: Vec<&str> = ids.iter().map(|&i| t.piece(i).unwrap()).collect();
        assert_eq!(
            pieces,
            ["\u{2581}", "<0x0A>", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>"]
        );
        assert_eq!(t.decode(&ids), "\n😀");
    }

    #[test]
    fn empty_text_is_empty() {
        assert!(tok().encode("", false).is_empty());
        assert_eq!(tok().encode("", true), vec![1]);
    }
}
