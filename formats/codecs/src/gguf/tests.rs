//! GGUF reader/writer tests: round trips through our writer, and hostile inputs built byte
//! by byte. Interop with gguf-py lives in `formats/tests/gguf_st_interop.rs`.

use std::path::Path;

use super::parse::parse;
use super::*;
use crate::dtype::DType;
use crate::sequence::SequenceError;
use crate::tensor::TensorInfo;

fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}
fn le64(v: u64) -> [u8; 8] {
    v.to_le_bytes()
}

/// Builds GGUF bytes by hand.
struct B(Vec<u8>);
impl B {
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> B {
        let mut v = b"GGUF".to_vec();
        v.extend(le32(version));
        v.extend(le64(n_tensors));
        v.extend(le64(n_kv));
        B(v)
    }
    fn str(mut self, s: &str) -> B {
        self.0.extend(le64(s.len() as u64));
        self.0.extend(s.as_bytes());
        self
    }
    fn u32(mut self, x: u32) -> B {
        self.0.extend(le32(x));
        self
    }
    fn u64(mut self, x: u64) -> B {
        self.0.extend(le64(x));
        self
    }
    fn bytes(mut self, b: &[u8]) -> B {
        self.0.extend(b);
        self
    }
    /// A tensor info: name, dims (file order), type id, offset.
    fn ti(self, name: &str, dims: &[u64], ty: u32, offset: u64) -> B {
        let mut b = self.str(name).u32(dims.len() as u32);
        for &d in dims {
            b = b.u64(d);
        }
        b.u32(ty).u64(offset)
    }
    /// Pad to 32 and append `n` data bytes.
    fn data(mut self, n: usize) -> B {
        let pad = self.0.len().next_multiple_of(32);
        self.0.resize(pad + n, 0);
        self
    }
}

fn problem(bytes: &[u8]) -> GgufProblem {
    match parse(bytes, Path::new("t.gguf")) {
        Ok(_) => panic!("parse accepted a hostile file"),
        Err(e) => {
            let line = e.to_string();
            assert!(!line.contains('\n'), "error is not one line: {line}");
            assert!(
                line.starts_with("t.gguf: "),
                "error does not name the file: {line}"
            );
            e.problem().cloned().expect("an Invalid error")
        }
    }
}

fn all_values() -> Vec<(String, GgufValue)> {
    vec![
        (
            "general.architecture".into(),
            GgufValue::String("llama".into()),
        ),
        ("u8".into(), GgufValue::U8(200)),
        ("i8".into(), GgufValue::I8(-100)),
        ("u16".into(), GgufValue::U16(60000)),
        ("i16".into(), GgufValue::I16(-30000)),
        ("u32".into(), GgufValue::U32(4_000_000_000)),
        ("i32".into(), GgufValue::I32(-2_000_000_000)),
        ("f32".into(), GgufValue::F32(1e-5)),
        ("bool".into(), GgufValue::Bool(true)),
        ("u64".into(), GgufValue::U64(u64::MAX)),
        ("i64".into(), GgufValue::I64(i64::MIN)),
        ("f64".into(), GgufValue::F64(-2.5e300)),
        (
            "tokens".into(),
            GgufValue::Array(GgufArray::String(vec![
                "<unk>".into(),
                "▁the".into(),
                "".into(),
            ])),
        ),
        (
            "scores".into(),
            GgufValue::Array(GgufArray::F32(vec![0.0, -1.5])),
        ),
        ("empty".into(), GgufValue::Array(GgufArray::I32(vec![]))),
        (
            "nested".into(),
            GgufValue::Array(GgufArray::Array(vec![
                GgufArray::U8(vec![1, 2]),
                GgufArray::String(vec!["x".into()]),
                GgufArray::Array(vec![GgufArray::Bool(vec![true, false])]),
            ])),
        ),
    ]
}

fn small_tensors() -> Vec<(TensorInfo, Vec<u8>)> {
    vec![
        (
            TensorInfo {
                name: "a".into(),
                dtype: DType::F32,
                shape: vec![2, 3],
            },
            (0u8..24).collect(),
        ),
        (
            TensorInfo {
                name: "q".into(),
                dtype: DType::Q8_0,
                shape: vec![1, 32],
            },
            (100u8..134).collect(),
        ),
        (
            TensorInfo {
                name: "h".into(),
                dtype: DType::F16,
                shape: vec![3],
            },
            vec![1, 2, 3, 4, 5, 6],
        ),
    ]
}

fn write_small(alignment: u64) -> Vec<u8> {
    let ts = small_tensors();
    let infos = ts.iter().map(|(t, _)| t.clone()).collect();
    let mut w = GgufWriter::new(Vec::new(), all_values(), infos, alignment).unwrap();
    for (t, d) in &ts {
        w.start_tensor(&t.name).unwrap();
        for c in d.chunks(5) {
            w.write_chunk(c).unwrap();
        }
        w.end_tensor().unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn writer_output_reads_back_identically() {
    for alignment in [32, 64, 1] {
        let bytes = write_small(alignment);
        assert_eq!(bytes.len() as u64 % alignment, 0);
        let h = parse(&bytes, Path::new("t.gguf")).unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(h.alignment, alignment);
        let mut want = all_values();
        if alignment != 32 {
            want.push(("general.alignment".into(), GgufValue::U32(alignment as u32)));
        }
        assert_eq!(h.metadata, want);
        for (t, (info, data)) in h.tensors.iter().zip(small_tensors()) {
            assert_eq!(t.info, info);
            assert_eq!(t.offset % alignment, 0);
            let s = (h.data_start + t.offset) as usize;
            assert_eq!(&bytes[s..s + data.len()], &data[..]);
        }
    }
}

#[test]
fn writer_refuses_misuse() {
    let ts = small_tensors();
    let infos: Vec<TensorInfo> = ts.iter().map(|(t, _)| t.clone()).collect();
    let mut w = GgufWriter::new(Vec::new(), vec![], infos.clone(), 32).unwrap();
    assert!(matches!(
        w.start_tensor("q"),
        Err(GgufError::Sequence(SequenceError::OutOfOrder { .. }))
    ));
    assert!(matches!(
        w.write_chunk(&[0]),
        Err(GgufError::Sequence(SequenceError::NoTensorStarted))
    ));
    w.start_tensor("a").unwrap();
    assert!(matches!(
        w.write_chunk(&[0; 25]),
        Err(GgufError::Sequence(SequenceError::WrongSize { .. }))
    ));
    w.write_chunk(&[0; 23]).unwrap();
    assert!(matches!(
        w.end_tensor(),
        Err(GgufError::Sequence(SequenceError::WrongSize {
            expected: 24,
            got: 23,
            ..
        }))
    ));
    w.write_chunk(&[0]).unwrap();
    w.end_tensor().unwrap();
    assert!(matches!(
        w.finish(),
        Err(GgufError::Sequence(SequenceError::Unwritten {
            remaining: 2,
            ..
        }))
    ));

    let bad = |t: TensorInfo| GgufWriter::new(Vec::new(), vec![], vec![t], 32).unwrap_err();
    let t = |dtype, shape: &[u64]| TensorInfo {
        name: "t".into(),
        dtype,
        shape: shape.to_vec(),
    };
    assert!(matches!(
        bad(t(DType::Bool, &[2])),
        GgufError::NotInGguf { .. }
    ));
    assert!(matches!(
        bad(t(DType::Q4_0, &[2, 16])),
        GgufError::BadShape { .. }
    ));
    assert!(matches!(
        bad(t(DType::F32, &[1, 1, 1, 1, 1])),
        GgufError::BadShape { .. }
    ));
    assert!(matches!(
        bad(t(DType::F32, &[1 << 40, 1 << 40])),
        GgufError::BadShape { .. }
    ));
    let dup = vec![t(DType::F32, &[1]), t(DType::F32, &[1])];
    assert!(matches!(
        GgufWriter::new(Vec::new(), vec![], dup, 32),
        Err(GgufError::DuplicateTensorName(_))
    ));
    assert!(matches!(
        GgufWriter::new(Vec::new(), vec![], vec![], 48),
        Err(GgufError::BadAlignment(48))
    ));
    let kv = vec![("general.alignment".to_string(), GgufValue::U32(64))];
    assert!(matches!(
        GgufWriter::new(Vec::new(), kv, vec![], 32),
        Err(GgufError::AlignmentMismatch { .. })
    ));
}

#[test]
fn every_truncation_of_a_valid_file_is_a_clean_error() {
    let bytes = write_small(32);
    assert!(parse(&bytes, Path::new("t.gguf")).is_ok());
    // The last tensor is padded: cutting only padding leaves a valid file.
    let h = parse(&bytes, Path::new("t.gguf")).unwrap();
    let last = h.tensors.last().unwrap();
    let data_end = (h.data_start + last.offset + last.info.n_bytes().unwrap()) as usize;
    for n in 0..data_end {
        let p = problem(&bytes[..n]);
        assert!(
            matches!(
                p,
                GgufProblem::Truncated { .. }
                    | GgufProblem::CountTooLarge { .. }
                    | GgufProblem::DataOutOfBounds { .. }
            ),
            "prefix {n}: {p}"
        );
    }
}

#[test]
fn absurd_counts_are_refused_before_allocation() {
    // 40-ish byte files claiming 2^60 tensors / key-value pairs.
    let f = B::header(3, 1 << 60, 0).bytes(&[0; 16]).0;
    assert!(matches!(problem(&f), GgufProblem::CountTooLarge { count, .. } if count == 1 << 60));
    let f = B::header(3, 0, 1 << 60).bytes(&[0; 16]).0;
    assert!(matches!(problem(&f), GgufProblem::CountTooLarge { .. }));
    let f = B::header(3, 0, u64::MAX).0;
    assert!(matches!(problem(&f), GgufProblem::CountTooLarge { .. }));
    // A 2^60-byte key and a 2^60-byte string value.
    let f = B::header(3, 0, 1).u64(1 << 60).bytes(&[b'a'; 16]).0;
    assert!(matches!(problem(&f), GgufProblem::Truncated { need, .. } if need == 1 << 60));
    let f = B::header(3, 0, 1).str("k").u32(8).u64(u64::MAX).0;
    assert!(matches!(problem(&f), GgufProblem::Truncated { .. }));
    // Arrays of 2^60 u8 / strings / arrays.
    for ty in [0, 8, 9] {
        let f = B::header(3, 0, 1).str("k").u32(9).u32(ty).u64(1 << 60).0;
        assert!(
            matches!(problem(&f), GgufProblem::CountTooLarge { .. }),
            "type {ty}"
        );
    }
    // A string array whose count fits the file but whose strings claim too much.
    let f = B::header(3, 0, 1)
        .str("k")
        .u32(9)
        .u32(8)
        .u64(2)
        .u64(1 << 60)
        .u64(0)
        .0;
    assert!(matches!(problem(&f), GgufProblem::Truncated { .. }));
}

#[test]
fn hostile_values_are_refused() {
    let kv = |ty: u32, body: &[u8]| B::header(3, 0, 1).str("k").u32(ty).bytes(body).0;
    assert!(matches!(
        problem(&kv(13, &[0; 8])),
        GgufProblem::UnknownValueType { id: 13, .. }
    ));
    assert!(matches!(
        problem(&kv(7, &[2])),
        GgufProblem::BadBool { byte: 2, .. }
    ));
    assert!(matches!(
        problem(&kv(8, &[2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe])),
        GgufProblem::BadUtf8(_)
    ));
    // An array element type that is unknown.
    assert!(matches!(
        problem(&kv(9, &[99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
        GgufProblem::UnknownValueType { id: 99, .. }
    ));
    // Arrays nested 100 deep, each claiming one element.
    let mut body = Vec::new();
    for _ in 0..100 {
        body.extend(le32(9));
        body.extend(le64(1));
    }
    body.extend(le32(0));
    body.extend(le64(0));
    assert!(matches!(
        problem(&kv(9, &body)),
        GgufProblem::ArrayTooDeep { .. }
    ));
    // Duplicate keys.
    let f = B::header(3, 0, 2)
        .str("k")
        .u32(0)
        .bytes(&[1])
        .str("k")
        .u32(0)
        .bytes(&[2])
        .0;
    assert!(matches!(problem(&f), GgufProblem::DuplicateKey(k) if k == "k"));
    // general.alignment of the wrong type or not a power of two.
    let f = B::header(3, 0, 1).str("general.alignment").u32(4).u32(48).0;
    assert!(matches!(problem(&f), GgufProblem::BadAlignment(_)));
    let f = B::header(3, 0, 1)
        .str("general.alignment")
        .u32(10)
        .u64(32)
        .0;
    assert!(matches!(problem(&f), GgufProblem::BadAlignment(_)));
}

#[test]
fn hostile_headers_are_refused() {
    assert!(matches!(
        problem(b"GGML\x03\0\0\0"),
        GgufProblem::BadMagic(_)
    ));
    assert!(matches!(
        problem(&B::header(1, 0, 0).0),
        GgufProblem::Version1
    ));
    assert!(matches!(
        problem(&B::header(0x0300_0000, 0, 0).0),
        GgufProblem::UnsupportedVersion(_)
    ));
    assert!(parse(&B::header(2, 0, 0).0, Path::new("v2")).is_ok());
}

#[test]
fn hostile_tensor_infos_are_refused() {
    let one = |dims: &[u64], ty: u32, offset: u64, data: usize| {
        B::header(3, 1, 0).ti("w", dims, ty, offset).data(data).0
    };
    assert!(parse(&one(&[4, 2], 0, 0, 32), Path::new("ok")).is_ok());
    let f = B::header(3, 1, 0).str("w").u32(1000).bytes(&[0; 32]).0;
    assert!(matches!(
        problem(&f),
        GgufProblem::TooManyDims { n_dims: 1000, .. }
    ));
    assert!(matches!(
        problem(&one(&[1 << 40, 1 << 40], 0, 0, 32)),
        GgufProblem::ShapeOverflow { .. }
    ));
    assert!(matches!(
        problem(&one(&[u64::MAX], 0, 0, 32)),
        GgufProblem::ShapeOverflow { .. }
    ));
    assert!(matches!(
        problem(&one(&[1 << 62], 0, 0, 32)),
        GgufProblem::ShapeOverflow { .. }
    ));
    assert!(matches!(
        problem(&one(&[1 << 61], 0, 0, 32)),
        GgufProblem::DataOutOfBounds { .. }
    ));
    assert!(matches!(
        problem(&one(&[4, 2], 4, 0, 32)),
        GgufProblem::UnknownGgmlType { id: 4, .. }
    ));
    assert!(matches!(
        problem(&one(&[16], 8, 0, 32)),
        GgufProblem::PartialBlock { .. }
    ));
    assert!(matches!(
        problem(&one(&[4, 2], 0, 8, 64)),
        GgufProblem::Misaligned { offset: 8, .. }
    ));
    assert!(matches!(
        problem(&one(&[4, 2], 0, 32, 32)),
        GgufProblem::DataOutOfBounds { .. }
    ));
    assert!(matches!(
        problem(&one(&[4, 2], 0, 1 << 63, 32)),
        GgufProblem::DataOutOfBounds { .. }
    ));
    assert!(matches!(
        problem(&one(&[4, 2], 0, u64::MAX - 31, 32)),
        GgufProblem::DataOutOfBounds { .. }
    ));
    assert!(matches!(
        problem(&one(&[4, 2], 0, 0, 31)),
        GgufProblem::DataOutOfBounds { .. }
    ));
    let two = |name2: &str, off2: u64| {
        B::header(3, 2, 0)
            .ti("a", &[16], 0, 0)
            .ti(name2, &[16], 0, off2)
            .data(128)
            .0
    };
    assert!(parse(&two("b", 64), Path::new("ok")).is_ok());
    assert!(matches!(
        problem(&two("b", 32)),
        GgufProblem::Overlap { .. }
    ));
    assert!(matches!(
        problem(&two("a", 64)),
        GgufProblem::DuplicateTensor(_)
    ));
}

#[test]
fn open_view_and_release_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    std::fs::write(&p, write_small(32)).unwrap();
    let f = GgufFile::open(&p).unwrap();
    assert_eq!(
        f.get("general.architecture").and_then(|v| v.as_str()),
        Some("llama")
    );
    assert_eq!(f.get("u32").and_then(|v| v.as_u64()), Some(4_000_000_000));
    assert_eq!(f.get("i8").and_then(|v| v.as_u64()), None);
    let q = f.get_tensor("q").unwrap();
    let v = f.view(q).unwrap();
    assert_eq!(v.shape(), &[1, 32]);
    assert_eq!(&*v.data(), &(100u8..134).collect::<Vec<_>>()[..]);
    f.release(q);
    assert_eq!(
        &*f.view(q).unwrap().data(),
        &(100u8..134).collect::<Vec<_>>()[..]
    );
    std::fs::write(dir.path().join("empty.gguf"), b"").unwrap();
    let e = GgufFile::open(&dir.path().join("empty.gguf")).unwrap_err();
    assert!(
        matches!(e.problem(), Some(GgufProblem::Truncated { .. })),
        "{e}"
    );
    let e = GgufFile::open(dir.path()).unwrap_err();
    assert!(matches!(e, GgufError::Io { .. }), "{e}");
    let e = GgufFile::open(&dir.path().join("missing.gguf")).unwrap_err();
    assert!(e.to_string().contains("missing.gguf"));
}
