//! Unit tests of the pickle machine on inline byte pickles, and of the writer's pickle.

use super::pickle::{load_state_dict, load_state_dict_with, Limits, PickleError};
use super::pickle_writer::state_dict_pickle;
use crate::dtype::DType;
use crate::tensor::TensorInfo;

fn x(s: &str) -> Vec<u8> {
    let mut v = vec![b'X'];
    v.extend_from_slice(&(s.len() as u32).to_le_bytes());
    v.extend_from_slice(s.as_bytes());
    v
}

/// A state dict `{name: tensor}` the way torch writes it, with one f16 storage "0" of 12
/// elements viewed with the given offset/shape/stride bytes.
fn one_tensor(view: &[u8]) -> Vec<u8> {
    let mut p = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(".to_vec();
    p.extend(x("w"));
    p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((");
    p.extend(x("storage"));
    p.extend_from_slice(b"ctorch\nHalfStorage\n");
    p.extend(x("0"));
    p.extend(x("cpu"));
    p.extend_from_slice(b"K\x0ctQ");
    p.extend_from_slice(view);
    p.extend_from_slice(b"\x89h\x00)RtRu.");
    p
}

#[test]
fn reads_a_torch_style_tensor_record() {
    // offset 4, size (2, 4), stride (4, 1)
    let sd = load_state_dict(&one_tensor(b"K\x04K\x02K\x04\x86K\x04K\x01\x86")).unwrap();
    assert_eq!(sd.len(), 1);
    let (name, t) = &sd[0];
    assert_eq!(name, "w");
    assert_eq!(t.storage.key, "0");
    assert_eq!(t.storage.dtype, DType::F16);
    assert_eq!(t.storage.numel, 12);
    assert_eq!(
        (t.offset, &t.shape[..], &t.strides[..]),
        (4, &[2, 4][..], &[4, 1][..])
    );
}

#[test]
fn negative_stride_or_rank_mismatch_is_refused() {
    let e = load_state_dict(&one_tensor(b"K\x00K\x02\x85J\xff\xff\xff\xff\x85")).unwrap_err();
    assert!(e.to_string().contains("negative -1"), "{e}");
    let e = load_state_dict(&one_tensor(b"K\x00K\x02K\x02\x86K\x01\x85")).unwrap_err();
    assert!(e.to_string().contains("2 dims but stride has 1"), "{e}");
}

#[test]
fn refused_global_is_named_and_nothing_runs() {
    let p = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R.";
    let e = load_state_dict(p).unwrap_err();
    assert_eq!(
        e.to_string(),
        "refused pickle global `os.system` (not on the allow-list; nothing was executed)"
    );
}

#[test]
fn storage_types_cannot_be_called() {
    let e = load_state_dict(b"\x80\x02ctorch\nFloatStorage\n)R.").unwrap_err();
    assert!(
        matches!(
            e,
            PickleError::RefusedCall {
                opcode: "REDUCE",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("`torch.FloatStorage`"));
}

#[test]
fn deep_nesting_hits_the_depth_cap() {
    let mut p = b"\x80\x02)".to_vec();
    p.extend(std::iter::repeat_n(0x85u8, 10_000));
    p.push(b'.');
    let e = load_state_dict(&p).unwrap_err();
    assert!(
        matches!(
            e,
            PickleError::Limit {
                what: "nesting depth",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn caps_apply() {
    let small = Limits {
        stack: 4,
        ..Limits::default()
    };
    let e = load_state_dict_with(b"\x80\x02NNNNN.", small).unwrap_err();
    assert!(
        matches!(
            e,
            PickleError::Limit {
                what: "stack values",
                ..
            }
        ),
        "{e}"
    );
    let small = Limits {
        memo: 2,
        ..Limits::default()
    };
    let e = load_state_dict_with(b"\x80\x02Nq\x00q\x01q\x02.", small).unwrap_err();
    assert!(
        matches!(
            e,
            PickleError::Limit {
                what: "memo entries",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn malformed_pickles_give_errors() {
    for (p, want) in [
        (&b"\x80\x02"[..], "truncated"),
        (b"\x80\x02X\xff\xff\x00\x00ab.", "truncated"),
        (b"\x80\x02.", "empty stack"),
        (b"\x80\x02t.", "no MARK"),
        (b"\x80\x02h\x05.", "memo index 5"),
        (b"\x80\x02N.", "holds None"),
        (b"\x80\x02}X\x01\x00\x00\x00aK\x01s.", "entry `a` is an int"),
        (b"\x80\x02\x8f.", "EMPTY_SET"),
        (
            b"\x80\x02\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09.",
            "wider than 64 bits",
        ),
        (b"\x80\x02(N0.", "empty stack"),
    ] {
        let e = load_state_dict(p).unwrap_err().to_string();
        assert!(e.contains(want), "{p:?}: {e}");
    }
}

#[test]
fn later_setitem_replaces_value_but_keeps_position() {
    let t = one_tensor(b"K\x00K\x02\x85K\x01\x85");
    // Replace the final "u." with a second SETITEM of key "w" to a None, then "v" -> w again.
    let body = &t[..t.len() - 2];
    let mut p = body.to_vec();
    p.push(b'u');
    p.extend(x("v"));
    p.extend_from_slice(b"h\x00)Rs"); // v -> OrderedDict() (not a tensor)
    p.push(b'.');
    let e = load_state_dict(&p).unwrap_err();
    assert_eq!(
        e.to_string(),
        "state dict entry `v` is an OrderedDict, not a tensor"
    );
}

#[test]
fn codecs_encode_builds_bytes() {
    let mut p = b"\x80\x02]c_codecs\nencode\n".to_vec();
    p.extend(x("\u{ff}a"));
    p.extend(x("latin1"));
    p.extend_from_slice(b"\x86Ra.");
    let e = load_state_dict(&p).unwrap_err();
    assert_eq!(e, PickleError::NotStateDict { found: "a list" });
}

#[test]
fn writer_pickle_reads_back() {
    let infos: Vec<TensorInfo> = (0..1003)
        .map(|i| TensorInfo {
            name: format!("t{i}"),
            dtype: [DType::F32, DType::F16, DType::BF16, DType::I64, DType::Bool][i % 5],
            shape: match i % 4 {
                0 => vec![],
                1 => vec![3],
                2 => vec![70_000, 40_000],
                _ => vec![2, 3, 4, 5],
            },
        })
        .collect();
    let pkl = state_dict_pickle(&infos);
    let sd = load_state_dict(&pkl).unwrap();
    assert_eq!(sd.len(), infos.len());
    for (i, ((name, t), info)) in sd.iter().zip(&infos).enumerate() {
        assert_eq!(name, &info.name);
        assert_eq!(t.storage.key, i.to_string());
        assert_eq!(t.storage.dtype, info.dtype);
        assert_eq!(t.storage.numel, info.n_elements().unwrap());
        assert_eq!(t.shape, info.shape);
        assert_eq!(t.strides, crate::tensor::contiguous_strides(&info.shape));
        assert_eq!(t.offset, 0);
    }
}
