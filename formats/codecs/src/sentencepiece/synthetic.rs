//! A deterministic LLaMA-like SentencePiece BPE model for synthetic checkpoints: the same
//! special and byte pieces as LLaMA's `tokenizer.model` (`<unk>` 0, `<s>` 1, `</s>` 2,
//! `<0x00>`..`<0xFF>` at 3..258), then merged pieces with descending scores and the single
//! characters last, like a model sentencepiece's BPE trainer writes.

use std::collections::HashSet;

use super::{Piece, PieceType, SpModel};

/// The smallest vocabulary [`SpModel::synthetic`] makes (specials, bytes and `▁`).
pub(crate) const MIN_SYNTHETIC_VOCAB: usize = 260;

const SPACE: char = '\u{2581}';

const CHARS: &str = "\u{2581}etaoinshrdlcumwfgypbvkjxqzTAISCMBPDRHWFLNEGO0123456789.,'-:;!?\"()/UVKJYQXZ%&*+=$@#éüößàçñ中文日本語的一是不了人我在有他这";

const SUBWORDS: &[&str] = &[
    "er", "in", "on", "re", "at", "en", "es", "or", "an", "ed", "ing", "ion", "tion", "ation",
    "al", "ar", "is", "le", "it", "ou", "st", "th", "he", "nd", "ent", "ter", "ly", "ment", "ness",
    "able", "ers", "est", "ic", "ive", "ous", "ate", "ity", "ist", "ful", "less", "ro", "ce", "ll",
    "ve",
];

const WORDS: &str = "the of and to in is that for it as with was on be by at this are from or have an \
they which one you were her all she there would their we him been has when who will more no if out \
so said what up its about into than them can only other new some could time these two may then do \
first any my now such like our over man me even most made after also did many before must through \
back years where much your way well down should because each just those people how too little state \
good very make world still own see men work long get here between both life being under never day \
same another know while last might us great old year off come since against go came right used take \
three hello quick brown fox jumps lazy dog model token weight number data The It In This A I He We";

/// Build the model; see [`SpModel::synthetic`]. Sizes below [`MIN_SYNTHETIC_VOCAB`] are
/// raised to it.
pub(crate) fn synthetic(vocab_size: usize) -> SpModel {
    let n = vocab_size.max(MIN_SYNTHETIC_VOCAB);
    let mut pieces = Vec::with_capacity(n);
    let special = |piece: &str, kind| Piece {
        piece: piece.to_string(),
        score: 0.0,
        kind,
    };
    pieces.push(special("<unk>", PieceType::Unknown));
    pieces.push(special("<s>", PieceType::Control));
    pieces.push(special("</s>", PieceType::Control));
    for b in 0..=255u8 {
        pieces.push(special(&format!("<0x{b:02X}>"), PieceType::Byte));
    }
    let slots = n - pieces.len();
    let chars: Vec<String> = CHARS.chars().map(String::from).collect();
    let n_chars = chars.len().min(slots);
    let merges = merged_pieces(slots - n_chars, &chars);
    for (i, text) in merges
        .into_iter()
        .chain(chars.into_iter().take(n_chars))
        .enumerate()
    {
        pieces.push(Piece {
            piece: text,
            score: -(i as f32),
            kind: PieceType::Normal,
        });
    }
    SpModel {
        vocab_size: n as u32,
        unk_id: Some(0),
        bos_id: Some(1),
        eos_id: Some(2),
        ..SpModel::llama_bpe(pieces)
    }
}

/// `count` multi-character pieces, prefix-closed in order (every piece's prefixes come
/// before it), so BPE can reach each one by merging pieces already in the vocabulary.
fn merged_pieces(count: usize, chars: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(count);
    let mut seen: HashSet<String> = chars.iter().cloned().collect();
    let mut push = |s: String, out: &mut Vec<String>| {
        if out.len() < count && s.chars().count() >= 2 && seen.insert(s.clone()) {
            out.push(s);
        }
    };
    let with_prefixes =
        |w: &str, out: &mut Vec<String>, push: &mut dyn FnMut(String, &mut Vec<String>)| {
            let cs: Vec<char> = w.chars().collect();
            for len in 2..=cs.len() {
                push(cs[..len].iter().collect(), out);
            }
        };
    for ws in [
        "\u{2581}\u{2581}",
        "\u{2581}\u{2581}\u{2581}\u{2581}",
        "\u{2581}\u{2581}\u{2581}",
    ] {
        push(ws.to_string(), &mut out);
    }
    for w in SUBWORDS {
        with_prefixes(w, &mut out, &mut push);
    }
    for w in WORDS.split_whitespace() {
        with_prefixes(&format!("{SPACE}{w}"), &mut out, &mut push);
        with_prefixes(w, &mut out, &mut push);
    }
    // Then generated lowercase combinations, level by level (2, 3, 4 characters).
    let letters: Vec<char> = ('a'..='z').collect();
    let mut level: Vec<String> = letters.iter().map(|c| c.to_string()).collect();
    while out.len() < count {
        let mut next = Vec::with_capacity(level.len() * letters.len());
        for s in &level {
            for &c in &letters {
                let mut t = s.clone();
                t.push(c);
                next.push(t);
            }
        }
        for s in &level {
            push(format!("{SPACE}{s}"), &mut out);
        }
        for s in &next {
            push(s.clone(), &mut out);
        }
        level = next;
    }
    out
}
