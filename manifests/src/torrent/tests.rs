//! Piece boundaries, padding, v2/hybrid round trips and hostile torrents.

use std::collections::BTreeMap;
use std::path::Path;

use super::bencode::{self, Value};
use super::*;
use crate::verify::{NoProgress, Status};

/// Files named `rel` with `len` bytes of a pattern that differs per file.
fn folder(files: &[(&str, usize)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("model");
    for (k, (rel, len)) in files.iter().enumerate() {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let data: Vec<u8> = (0..*len).map(|i| ((i * 7 + k * 13) % 251) as u8).collect();
        std::fs::write(p, data).unwrap();
    }
    dir
}

fn make(dir: &Path, pl: u64, version: Version) -> Metainfo {
    let opts = CreateOptions {
        piece_length: Some(pl),
        version,
        ..Default::default()
    };
    create(&dir.join("model"), &[], &opts, &|_| {}).unwrap().1
}

fn statuses(meta: &Metainfo, dir: &Path) -> Vec<(String, Status)> {
    let root = content_root(meta, dir);
    verify_content(meta, &root, "model", 2, &NoProgress)
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.status))
        .collect()
}

fn flip(path: &Path, at: u64) {
    let mut data = std::fs::read(path).unwrap();
    data[at as usize] ^= 0x5a;
    std::fs::write(path, data).unwrap();
}

const PL: u64 = 16 << 10;

/// Small files inside one piece, an empty file, a file that ends exactly on a piece boundary
/// and one that spans three pieces.
fn boundary_files() -> Vec<(&'static str, usize)> {
    vec![
        ("a.bin", 1000),          // smaller than a piece
        ("b/empty.bin", 0),       // empty
        ("b/c.bin", 15_384),      // a + c = 16384: ends exactly on the boundary
        ("d.bin", 2 * 16384 + 5), // spans three pieces
        ("e.bin", 7),
    ]
}

#[test]
fn v1_boundaries_all_ok_then_one_bad_piece_names_file_and_range() {
    let dir = folder(&boundary_files());
    let meta = make(dir.path(), PL, Version::V1);
    assert_eq!(meta.pieces.len(), 4); // 16384 + 32773 + 7 = 49164 bytes
    for (name, st) in statuses(&meta, dir.path()) {
        assert_eq!(st, Status::Ok, "{name}");
    }
    // Byte 16384 of the piece space is the first byte of d.bin: piece 1 only.
    flip(&dir.path().join("model/d.bin"), 0);
    let st = statuses(&meta, dir.path());
    let bad: Vec<&(String, Status)> = st.iter().filter(|(_, s)| !s.is_ok()).collect();
    assert_eq!(bad.len(), 1, "{st:?}");
    assert_eq!(bad[0].0, "model/d.bin");
    match &bad[0].1 {
        Status::Mismatch { what, .. } => {
            assert!(what.contains("piece 1 (file bytes 0..16384)"), "{what}")
        }
        s => panic!("{s:?}"),
    }
}

#[test]
fn v1_a_piece_shared_by_two_files_fails_both() {
    let dir = folder(&[("a.bin", 10_000), ("b.bin", 10_000)]);
    let meta = make(dir.path(), PL, Version::V1);
    flip(&dir.path().join("model/b.bin"), 0); // in piece 0, shared with a.bin
    let st = statuses(&meta, dir.path());
    assert!(
        st.iter().all(|(_, s)| matches!(s, Status::Mismatch { .. })),
        "{st:?}"
    );
}

#[test]
fn missing_and_truncated_files_are_reported_without_blaming_neighbours_as_bad() {
    let dir = folder(&boundary_files());
    let meta = make(dir.path(), PL, Version::V1);
    std::fs::remove_file(dir.path().join("model/e.bin")).unwrap();
    let d = dir.path().join("model/d.bin");
    let f = std::fs::OpenOptions::new().write(true).open(&d).unwrap();
    f.set_len(100).unwrap();
    let st: BTreeMap<String, Status> = statuses(&meta, dir.path()).into_iter().collect();
    assert_eq!(st["model/e.bin"], Status::Missing);
    assert_eq!(
        st["model/d.bin"],
        Status::Size {
            expected: 32773,
            actual: 100
        }
    );
    assert_eq!(st["model/a.bin"], Status::Ok);
    assert_eq!(st["model/b/empty.bin"], Status::Ok);
}

#[test]
fn hybrid_has_padding_files_and_verifies_both_hash_kinds() {
    let dir = folder(&boundary_files());
    let meta = make(dir.path(), PL, Version::Hybrid);
    assert_eq!(meta.version, Version::Hybrid);
    assert!(meta.info_hash_v1.is_some() && meta.info_hash_v2.is_some());
    let pads: Vec<u64> = meta
        .files
        .iter()
        .filter(|f| f.padding)
        .map(|f| f.length)
        .collect();
    assert!(!pads.is_empty());
    // Every real file starts on a piece boundary.
    for f in meta.files.iter().filter(|f| !f.padding && f.length > 0) {
        assert_eq!(f.offset % PL, 0, "{}", f.rel());
        assert!(f.pieces_root.is_some());
    }
    for (name, st) in statuses(&meta, dir.path()) {
        assert_eq!(st, Status::Ok, "{name}");
    }
    flip(&dir.path().join("model/d.bin"), 16384 + 3);
    let st: BTreeMap<String, Status> = statuses(&meta, dir.path()).into_iter().collect();
    match &st["model/d.bin"] {
        Status::Mismatch { what, .. } => assert!(what.contains("piece"), "{what}"),
        s => panic!("{s:?}"),
    }
    assert_eq!(st["model/a.bin"], Status::Ok, "padding isolates files");
}

#[test]
fn v2_only_verifies_merkle_roots_and_piece_layers() {
    let dir = folder(&[("big.bin", 3 * 16384 + 100), ("small.bin", 10_000)]);
    let meta = make(dir.path(), PL, Version::V2);
    assert_eq!(meta.version, Version::V2);
    assert!(meta.pieces.is_empty());
    assert_eq!(
        meta.piece_layers.len(),
        1,
        "only big.bin spans several pieces"
    );
    for (name, st) in statuses(&meta, dir.path()) {
        assert_eq!(st, Status::Ok, "{name}");
    }
    flip(&dir.path().join("model/big.bin"), 2 * 16384);
    flip(&dir.path().join("model/small.bin"), 9_999);
    let st: BTreeMap<String, Status> = statuses(&meta, dir.path()).into_iter().collect();
    match &st["model/big.bin"] {
        Status::Mismatch { what, .. } => {
            assert!(what.contains("piece 2 (file bytes 32768..49152)"), "{what}")
        }
        s => panic!("{s:?}"),
    }
    assert!(
        matches!(st["model/small.bin"], Status::Mismatch { .. }),
        "{st:?}"
    );
}

#[test]
fn merkle_root_of_a_known_vector() {
    // One block of 16 KiB zeros: the root is that block's SHA-256.
    use sha2::Digest as _;
    let zeros = vec![0u8; 16384];
    let want: [u8; 32] = sha2::Sha256::digest(&zeros).into();
    assert_eq!(check::merkle_root(check::leaves(&zeros), [0; 32]), want);
    // Three blocks: padded to four leaves with zero hashes.
    let data = vec![1u8; 3 * 16384];
    let l: Vec<[u8; 32]> = check::leaves(&data);
    let node = |a: &[u8; 32], b: &[u8; 32]| -> [u8; 32] {
        let mut h = sha2::Sha256::new();
        h.update(a);
        h.update(b);
        h.finalize().into()
    };
    let want = node(&node(&l[0], &l[1]), &node(&l[2], &[0; 32]));
    assert_eq!(check::merkle_root(l, [0; 32]), want);
}

#[test]
fn creation_is_deterministic_and_round_trips_through_bencode() {
    let dir = folder(&boundary_files());
    let opts = CreateOptions {
        piece_length: Some(PL),
        trackers: vec!["http://127.0.0.1:1/announce".into(), "udp://t2".into()],
        web_seeds: vec!["http://127.0.0.1:2/".into()],
        private: true,
        ..Default::default()
    };
    let (a, ma) = create(&dir.path().join("model"), &[], &opts, &|_| {}).unwrap();
    let (b, _) = create(&dir.path().join("model"), &[], &opts, &|_| {}).unwrap();
    assert_eq!(a, b);
    assert!(!a.windows(13).any(|w| w == b"creation date"));
    assert_eq!(bencode::encode(&bencode::decode(&a).unwrap().value), a);
    assert!(ma.private);
    assert_eq!(ma.trackers.len(), 2);
    assert_eq!(ma.web_seeds, ["http://127.0.0.1:2/"]);
    assert!(ma.magnet().starts_with("magnet:?xt=urn:btih:"));
    let m = Magnet::parse(&ma.magnet()).unwrap();
    assert!(m.matches(ma.info_hash_v1, ma.info_hash_v2));
}

/// A torrent dictionary with `info` replaced.
fn torrent_with(info: Vec<(&str, Value)>) -> Vec<u8> {
    let info: BTreeMap<Vec<u8>, Value> = info
        .into_iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v))
        .collect();
    let mut root = BTreeMap::new();
    root.insert(b"info".to_vec(), Value::Dict(info));
    bencode::encode(&Value::Dict(root))
}

fn files_value(paths: &[(&[&str], i64)]) -> Value {
    Value::List(
        paths
            .iter()
            .map(|(p, len)| {
                let mut d = BTreeMap::new();
                d.insert(b"length".to_vec(), Value::Int(*len));
                d.insert(
                    b"path".to_vec(),
                    Value::List(p.iter().map(|c| Value::str(c)).collect()),
                );
                Value::Dict(d)
            })
            .collect(),
    )
}

#[test]
fn hostile_torrents_are_refused_with_the_reason() {
    let base = |files: Value, pl: i64, pieces: usize| {
        torrent_with(vec![
            ("files", files),
            ("name", Value::str("x")),
            ("piece length", Value::Int(pl)),
            ("pieces", Value::Bytes(vec![0; pieces])),
        ])
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            base(files_value(&[(&["a"], 10)]), 16384, 21),
            "multiple of 20",
        ),
        (base(files_value(&[(&["a"], 10)]), 0, 20), "absurd"),
        (base(files_value(&[(&["a"], 10)]), 1 << 40, 20), "absurd"),
        (base(files_value(&[(&["..", "a"], 10)]), 16384, 20), "`..`"),
        (base(files_value(&[(&["", "a"], 10)]), 16384, 20), "empty"),
        (
            base(files_value(&[(&["/etc/passwd"], 10)]), 16384, 20),
            "separator",
        ),
        (base(files_value(&[(&["a"], -1)]), 16384, 20), "negative"),
        (
            base(
                files_value(&[(&["a"], i64::MAX), (&["b"], i64::MAX), (&["c"], 10)]),
                16384,
                20,
            ),
            "overflow",
        ),
        (
            base(files_value(&[(&["a"], 100_000)]), 16384, 20),
            "expected 7",
        ),
        (base(files_value(&[]), 16384, 0), "empty"),
        (b"d4:infod4:name1:xee".to_vec(), "piece length"),
        (b"not bencode".to_vec(), "not bencode"),
    ];
    for (bytes, want) in cases {
        match Metainfo::parse(&bytes, "t.torrent") {
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.starts_with("t.torrent: "), "{msg}");
                assert!(msg.contains(want), "{msg} lacks {want:?}");
            }
            Ok(m) => panic!("accepted ({want}): {m:?}"),
        }
    }
}

#[test]
fn info_hash_is_taken_over_the_raw_info_bytes() {
    use sha1::Digest as _;
    // A non-canonical key order outside `info` does not matter; info bytes are hashed as is.
    let info = b"d6:lengthi3e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
    let mut t = b"d4:info".to_vec();
    t.extend_from_slice(info);
    t.push(b'e');
    let m = Metainfo::parse(&t, "t").unwrap();
    let want: [u8; 20] = sha1::Sha1::digest(info).into();
    assert_eq!(m.info_hash_v1, Some(want));
    assert!(m.single_file);
}

#[test]
fn models_selects_one_size_plus_tokenizer_and_names_the_sizes_present() {
    let dir = folder(&[
        ("7B/consolidated.00.pth", 100),
        ("7B/params.json", 10),
        ("7B/checklist.chk", 10),
        ("13B/consolidated.00.pth", 100),
        ("13B/consolidated.01.pth", 100),
        ("13B/params.json", 10),
        ("13B/checklist.chk", 10),
        ("tokenizer.model", 10),
        ("tokenizer_checklist.chk", 10),
        ("llama.sh", 10),
    ]);
    let meta = make(dir.path(), PL, Version::V1);
    let sel = models::select(&meta, &["7B".into()]).unwrap();
    let mut names: Vec<String> = sel.iter().map(|&i| meta.files[i].rel()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "7B/checklist.chk",
            "7B/consolidated.00.pth",
            "7B/params.json",
            "tokenizer.model",
            "tokenizer_checklist.chk"
        ]
    );
    let e = models::select(&meta, &["65B".into()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no model 65B (this torrent has: 13B, 7B)"),
        "{e}"
    );
}
