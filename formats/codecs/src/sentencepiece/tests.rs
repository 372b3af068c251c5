//! Unit tests of the SentencePiece model reader, writer and synthetic model.

use super::*;

#[test]
fn synthetic_round_trips_through_bytes() {
    for n in [262, 300, 512, 32000] {
        let m = SpModel::synthetic(n);
        assert_eq!(m.pieces.len(), n);
        m.validate().unwrap();
        let back = SpModel::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(back, m);
    }
}

#[test]
fn synthetic_has_llama_layout() {
    let m = SpModel::synthetic(32000);
    assert_eq!(m.pieces[0].piece, "<unk>");
    assert_eq!(m.pieces[0].kind, PieceType::Unknown);
    assert_eq!(m.pieces[1].piece, "<s>");
    assert_eq!(m.pieces[2].kind, PieceType::Control);
    assert_eq!(m.pieces[3].piece, "<0x00>");
    assert_eq!(m.pieces[258].piece, "<0xFF>");
    assert_eq!(m.pieces[258].kind, PieceType::Byte);
    assert_eq!(m.pieces[259].kind, PieceType::Normal);
    assert!(m.pieces[259..].windows(2).all(|w| w[0].score > w[1].score));
    assert_eq!(m.model_type, ModelType::Bpe);
    assert!(m.byte_fallback && m.add_dummy_prefix && !m.remove_extra_whitespaces);
    assert_eq!(m.piece_id("\u{2581}"), m.piece_id("\u{2581}"));
    assert!(m.piece_id("\u{2581}the").is_some());
}

#[test]
fn garbage_never_panics() {
    let good = SpModel::synthetic(300).to_bytes();
    // Every truncation and a spread of single-byte corruptions must return, not panic.
    for cut in (0..good.len()).step_by(7) {
        let _ = SpModel::from_bytes(&good[..cut]);
    }
    let mut state = 0x1234_5678u32;
    for _ in 0..2000 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let mut b = good.clone();
        let i = state as usize % b.len();
        b[i] = (state >> 8) as u8;
        if let Ok(m) = SpModel::from_bytes(&b) {
            let _ = m.validate();
        }
    }
    assert!(SpModel::from_bytes(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    assert!(SpModel::from_bytes(&[0x0b]).is_err()); // group wire type
}

#[test]
fn absent_fields_take_proto_defaults() {
    let m = SpModel::from_bytes(&[]).unwrap();
    assert_eq!(m.unk_id, Some(0));
    assert_eq!(m.bos_id, Some(1));
    assert_eq!(m.pad_id, None);
    assert_eq!(m.model_type, ModelType::Unigram);
    assert!(m.add_dummy_prefix && m.remove_extra_whitespaces && m.escape_whitespaces);
}

#[test]
fn validate_rejects_what_sentencepiece_rejects() {
    let mut m = SpModel::synthetic(300);
    m.pieces[280].piece = m.pieces[281].piece.clone();
    assert!(m.validate().is_err());
    let mut m = SpModel::synthetic(300);
    m.pieces[0].kind = PieceType::Control;
    assert!(m.validate().is_err());
    let mut m = SpModel::synthetic(300);
    m.byte_fallback = false;
    assert!(m.validate().is_err());
}
