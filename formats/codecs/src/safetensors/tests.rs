//! safetensors reader/writer tests: round trips through our writer and hostile inputs.
//! Interop with the Python package lives in `formats/tests/gguf_st_interop.rs`.

use std::collections::BTreeMap;
use std::path::Path;

use super::reader::parse;
use super::*;
use crate::sequence::SequenceError;
use crate::tensor::TensorInfo;

fn t(name: &str, dtype: DType, shape: &[u64]) -> TensorInfo {
    TensorInfo {
        name: name.into(),
        dtype,
        shape: shape.to_vec(),
    }
}

fn small() -> Vec<(TensorInfo, Vec<u8>)> {
    vec![
        (t("b.weight", DType::BF16, &[2, 3]), (0u8..12).collect()),
        (t("a.weight", DType::F32, &[3]), (20u8..32).collect()),
        (t("s", DType::F16, &[]), vec![0, 0x3c]),
        (t("empty", DType::F32, &[0, 4]), vec![]),
    ]
}

fn write(ts: &[(TensorInfo, Vec<u8>)], meta: Option<BTreeMap<String, String>>) -> Vec<u8> {
    let infos = ts.iter().map(|(t, _)| t.clone()).collect();
    let mut w = SafetensorsWriter::new(Vec::new(), infos, meta).unwrap();
    for (t, d) in ts {
        w.start_tensor(&t.name).unwrap();
        for c in d.chunks(5) {
            w.write_chunk(c).unwrap();
        }
        w.end_tensor().unwrap();
    }
    w.finish().unwrap()
}

fn err(bytes: &[u8]) -> SafetensorsError {
    let e = parse(bytes, Path::new("m.safetensors")).unwrap_err();
    let line = e.to_string();
    assert!(
        !line.contains('\n') && line.starts_with("m.safetensors: "),
        "{line}"
    );
    e
}

fn pt() -> Option<BTreeMap<String, String>> {
    Some(BTreeMap::from([("format".to_string(), "pt".to_string())]))
}

#[test]
fn writer_output_reads_back_in_order() {
    let bytes = write(&small(), pt());
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0);
    assert!(bytes[8..].starts_with(b"{\"__metadata__\":{\"format\":\"pt\"}"));
    let (tensors, ranges, meta) = parse(&bytes, Path::new("m")).unwrap();
    assert_eq!(meta.unwrap()["format"], "pt");
    for ((info, r), (want, data)) in tensors.iter().zip(&ranges).zip(small()) {
        assert_eq!(*info, want);
        assert_eq!(&bytes[r.clone()], &data[..]);
    }
    assert!(parse(&write(&[], None), Path::new("m"))
        .unwrap()
        .0
        .is_empty());
}

#[test]
fn writer_refuses_misuse() {
    let infos: Vec<TensorInfo> = small().into_iter().map(|(t, _)| t).collect();
    let mut w = SafetensorsWriter::new(Vec::new(), infos, None).unwrap();
    assert!(matches!(
        w.start_tensor("a.weight"),
        Err(SafetensorsError::Sequence(SequenceError::OutOfOrder { .. }))
    ));
    w.start_tensor("b.weight").unwrap();
    assert!(matches!(
        w.write_chunk(&[0; 13]),
        Err(SafetensorsError::Sequence(SequenceError::WrongSize { .. }))
    ));
    assert!(matches!(
        w.end_tensor(),
        Err(SafetensorsError::Sequence(SequenceError::WrongSize {
            got: 0,
            ..
        }))
    ));
    assert!(matches!(
        w.start_tensor("a.weight"),
        Err(SafetensorsError::Sequence(SequenceError::TensorNotEnded(_)))
    ));
    let one = |t: TensorInfo| SafetensorsWriter::new(Vec::new(), vec![t], None).unwrap_err();
    assert!(matches!(
        one(t("q", DType::Q4_0, &[32])),
        SafetensorsError::NotInSafetensors { .. }
    ));
    assert!(matches!(
        one(t("__metadata__", DType::F32, &[1])),
        SafetensorsError::BadTensorName(_)
    ));
    assert!(matches!(
        one(t("x", DType::F32, &[1 << 62, 4])),
        SafetensorsError::BadShape { .. }
    ));
}

#[test]
fn hostile_header_lengths_are_one_clean_error() {
    // 2^60-byte header in a 16-byte file.
    let mut f = (1u64 << 60).to_le_bytes().to_vec();
    f.extend(b"{}      ");
    assert!(
        matches!(err(&f), SafetensorsError::BadHeaderLength { header_len, .. } if header_len == 1 << 60)
    );
    let mut f = u64::MAX.to_le_bytes().to_vec();
    f.extend(b"{}      ");
    assert!(matches!(err(&f), SafetensorsError::BadHeaderLength { .. }));
    // Just over the cap, and past the end of a small file.
    let mut f = (MAX_HEADER_LEN + 8).to_le_bytes().to_vec();
    f.extend(b"{}      ");
    assert!(matches!(err(&f), SafetensorsError::BadHeaderLength { .. }));
    let mut f = 9u64.to_le_bytes().to_vec();
    f.extend(b"{}      ");
    assert!(matches!(err(&f), SafetensorsError::BadHeaderLength { .. }));
    assert!(matches!(
        err(b"\x02\0\0"),
        SafetensorsError::TooShort { len: 3, .. }
    ));
}

fn with_header(json: &str, data: usize) -> Vec<u8> {
    let mut h = json.as_bytes().to_vec();
    h.resize(h.len().next_multiple_of(8), b' ');
    let mut f = (h.len() as u64).to_le_bytes().to_vec();
    f.extend(h);
    f.resize(f.len() + data, 0);
    f
}

#[test]
fn hostile_headers_are_refused() {
    let ok = with_header(
        r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        8,
    );
    assert!(parse(&ok, Path::new("m")).is_ok());
    // Offsets pointing outside the file, overflowing, overlapping, disagreeing with the shape.
    for (json, data) in [
        (
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            4,
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
            8,
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
            16,
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}}"#,
            8,
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#,
            8,
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
            12,
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
            8,
        ),
        (
            r#"{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}"#,
            8,
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#,
            8,
        ),
        ("\u{ff}\u{fe}", 0),
    ] {
        assert!(
            matches!(
                err(&with_header(json, data)),
                SafetensorsError::Invalid { .. }
            ),
            "{json}"
        );
    }
    let f = with_header(
        r#"{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#,
        2,
    );
    assert!(matches!(err(&f), SafetensorsError::UnsupportedDtype { .. }));
}

#[test]
fn every_truncation_of_a_valid_file_is_a_clean_error() {
    let bytes = write(&small(), pt());
    for n in 0..bytes.len() {
        err(&bytes[..n]);
    }
}

#[test]
fn folder_with_index_checks_every_placement() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ts = small();
    std::fs::write(d.join("m-1.safetensors"), write(&ts[..2], pt())).unwrap();
    std::fs::write(d.join("m-2.safetensors"), write(&ts[2..], pt())).unwrap();
    let index = |pairs: &[(&str, &str)]| {
        let map: BTreeMap<&str, &str> = pairs.iter().copied().collect();
        let j = serde_json::json!({"metadata": {"total_size": 26}, "weight_map": map});
        std::fs::write(d.join(INDEX_NAME), j.to_string()).unwrap();
    };
    let good = [
        ("b.weight", "m-1.safetensors"),
        ("a.weight", "m-1.safetensors"),
        ("s", "m-2.safetensors"),
        ("empty", "m-2.safetensors"),
    ];
    index(&good);
    let f = SafetensorsFolder::open(d).unwrap();
    let names: Vec<String> = f.tensors().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["b.weight", "a.weight", "s", "empty"]);
    assert_eq!(&*f.view("s").unwrap().data(), &[0, 0x3c]);
    f.release("s");
    assert!(matches!(
        f.view("nope"),
        Err(SafetensorsError::NotFound { .. })
    ));

    let mut wrong = good;
    wrong[2].1 = "m-1.safetensors";
    index(&wrong);
    assert!(matches!(
        SafetensorsFolder::open(d),
        Err(SafetensorsError::MissingFromShard { .. })
    ));
    index(&good[..3]);
    assert!(matches!(
        SafetensorsFolder::open(d),
        Err(SafetensorsError::NotInIndex { .. })
    ));
    let mut missing = good;
    missing[3].1 = "m-3.safetensors";
    index(&missing);
    let e = SafetensorsFolder::open(d).unwrap_err();
    assert!(
        matches!(e, SafetensorsError::Io { .. }) && e.to_string().contains("m-3"),
        "{e}"
    );
    let mut escape = good;
    escape[0].1 = "../m-1.safetensors";
    index(&escape);
    assert!(matches!(
        SafetensorsFolder::open(d),
        Err(SafetensorsError::BadShardName { .. })
    ));
    std::fs::write(d.join(INDEX_NAME), b"{\"weight_map\": 3}").unwrap();
    assert!(matches!(
        SafetensorsFolder::open(d),
        Err(SafetensorsError::BadIndex { .. })
    ));

    std::fs::remove_file(d.join(INDEX_NAME)).unwrap();
    assert!(matches!(
        SafetensorsFolder::open(d),
        Err(SafetensorsError::NoCheckpoint { found: 2, .. })
    ));
    std::fs::remove_file(d.join("m-2.safetensors")).unwrap();
    assert_eq!(SafetensorsFolder::open(d).unwrap().tensors().len(), 2);
    std::fs::write(d.join("empty.bin"), b"").unwrap();
    let e = SafetensorsFile::open(&d.join("empty.bin")).unwrap_err();
    assert!(
        matches!(e, SafetensorsError::TooShort { len: 0, .. }),
        "{e}"
    );
    let single = SafetensorsFolder::open(&d.join("m-1.safetensors")).unwrap();
    assert_eq!(single.shards()[0].metadata().unwrap()["format"], "pt");
}
