//! Integration tests of `llama_codecs::pth` against files made by the real `torch.save`
//! (tests/fixtures/torch/gen_torch_fixtures.py) and hostile or broken files
//! (tests/fixtures/hostile/gen_hostile.py). Writer tests: `pth_writer.rs`.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use llama_codecs::pth::{PthError, PthFile};
use llama_codecs::safetensors::dtype_to_st_name;
use llama_ggml::DType;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("tests/fixtures")
}

/// Every `.pth` under tests/fixtures/torch (but `legacy/`) with its expected safetensors.
fn torch_fixtures() -> Vec<(PathBuf, PathBuf)> {
    let root = fixtures().join("torch");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        let sub = dir.file_name().unwrap().to_str().unwrap().to_string();
        if !dir.is_dir() || sub == "expected" || sub == "legacy" {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "pth") {
                let stem = f.file_stem().unwrap().to_str().unwrap();
                let exp = root
                    .join("expected")
                    .join(&sub)
                    .join(format!("{stem}.safetensors"));
                out.push((f, exp));
            }
        }
    }
    out.sort();
    assert!(
        out.len() >= 10,
        "fixtures missing: run gen_torch_fixtures.py"
    );
    out
}

#[test]
fn every_torch_fixture_reads_bit_exact() {
    for (pth, exp) in torch_fixtures() {
        let f = PthFile::open(&pth).unwrap_or_else(|e| panic!("{e}"));
        let buf = std::fs::read(&exp).unwrap();
        let st = safetensors::SafeTensors::deserialize(&buf).unwrap();
        assert_eq!(f.tensors().len(), st.len(), "{}", pth.display());
        for t in f.tensors() {
            let want = st.tensor(&t.info.name).unwrap();
            // safetensors' Dtype prints as its header spelling.
            let want_dtype = format!("{:?}", want.dtype());
            assert_eq!(
                dtype_to_st_name(t.info.dtype),
                Some(want_dtype.as_str()),
                "{}",
                t.info.name
            );
            let shape: Vec<u64> = want.shape().iter().map(|&d| d as u64).collect();
            assert_eq!(t.info.shape, shape, "{}", t.info.name);
            let v = f.view(t).unwrap();
            assert_eq!(
                &*v.data(),
                want.data(),
                "{} in {}",
                t.info.name,
                pth.display()
            );
            assert!(std::ptr::eq(f.get(&t.info.name).unwrap(), t));
            f.release(t);
            // Released pages fault back in with the same bytes.
            assert_eq!(&*f.view(t).unwrap().data(), want.data());
        }
    }
}

#[test]
fn meta_checkpoints_keep_state_dict_order_and_shard_shapes() {
    let f = PthFile::open(&fixtures().join("torch/tiny-mp2/consolidated.01.pth")).unwrap();
    let names: Vec<&str> = f.tensors().iter().map(|t| t.info.name.as_str()).collect();
    assert_eq!(names[0], "tok_embeddings.weight");
    assert_eq!(names[1], "layers.0.attention.wq.weight");
    assert_eq!(names[names.len() - 1], "rope.freqs");
    let shape = |n: &str| f.get(n).unwrap().info.shape.clone();
    assert_eq!(shape("tok_embeddings.weight"), vec![64, 32]);
    assert_eq!(shape("layers.1.attention.wq.weight"), vec![32, 64]);
    assert_eq!(shape("layers.1.feed_forward.w2.weight"), vec![64, 96]);
    assert_eq!(shape("norm.weight"), vec![64]);
    assert!(f
        .tensors()
        .iter()
        .all(|t| t.info.dtype == DType::F16 || t.info.name == "rope.freqs"));
    assert_eq!(
        f.path(),
        fixtures().join("torch/tiny-mp2/consolidated.01.pth")
    );
}

#[test]
fn views_and_shared_storages_are_exact() {
    let f = PthFile::open(&fixtures().join("torch/views/views.pth")).unwrap();
    let t = f.get("transposed").unwrap();
    assert_eq!(
        (t.info.shape.clone(), t.strides.clone()),
        (vec![8, 6], vec![1, 8])
    );
    assert!(!f.view(t).unwrap().is_contiguous());
    let r = f.get("rows_2_5").unwrap();
    assert_eq!(r.storage_offset, 16);
    assert_eq!(r.storage_key, f.get("base").unwrap().storage_key);
    assert_eq!(t.storage_key, r.storage_key);
    let s = f.get("strided_cols").unwrap();
    assert_eq!((s.storage_offset, s.strides.clone()), (8, vec![8, 3]));
    assert_eq!(f.get("scalar").unwrap().info.shape, Vec::<u64>::new());
    assert_eq!(f.get("empty").unwrap().info.shape, vec![0, 4]);
    assert_eq!(f.get("mask").unwrap().info.dtype, DType::Bool);
    // A contiguous view with an offset is borrowed from the map, not copied.
    assert!(matches!(
        f.view(r).unwrap().data(),
        std::borrow::Cow::Borrowed(_)
    ));
}

#[test]
fn legacy_format_is_named() {
    let p = fixtures().join("torch/legacy/legacy.pth");
    let e = PthFile::open(&p).unwrap_err();
    assert!(matches!(e, PthError::Legacy { .. }));
    assert_eq!(
        e.to_string(),
        format!(
            "{}: legacy torch format (pre-1.6, not a zip) is not supported",
            p.display()
        )
    );
}

const MARKER: &str = "/tmp/llama-tool-hostile-marker";

#[test]
fn hostile_pickles_are_refused_by_name_and_nothing_runs() {
    let _ = std::fs::remove_file(MARKER);
    let cases = [
        (
            "os_system",
            "refused pickle global `os.system` (not on the allow-list; nothing was executed)",
        ),
        ("posix_system", "refused pickle global `posix.system`"),
        ("builtins_eval", "refused pickle global `builtins.eval`"),
        (
            "subprocess_inst",
            "refused pickle global `subprocess.Popen`",
        ),
        ("stack_global", "refused pickle global `os.system`"),
        (
            "numpy_reconstruct",
            "refused pickle global `numpy.core.multiarray._reconstruct`",
        ),
        (
            "newobj_ordereddict",
            "refused pickle NEWOBJ on `collections.OrderedDict`",
        ),
        ("build_on_list", "refused pickle BUILD on a list"),
        ("nested_lists", "cap on nesting depth"),
        ("nested_tuples", "cap on nesting depth"),
        ("mark_flood", "cap on open MARKs"),
        ("memo_huge_index", "pickle holds None"),
    ];
    let dir = fixtures().join("hostile");
    for (name, want) in cases {
        let pkl = std::fs::read(dir.join(format!("{name}.pkl"))).unwrap();
        let e = llama_codecs::pth::pickle::load_state_dict(&pkl).unwrap_err();
        assert!(e.to_string().contains(want), "{name}.pkl: {e}");
        let p = dir.join(format!("{name}.pth"));
        let e = PthFile::open(&p).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(want), "{name}.pth: {msg}");
        assert!(msg.starts_with(&p.display().to_string()), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
    assert!(!Path::new(MARKER).exists(), "a hostile payload ran");
}

#[test]
fn broken_files_give_one_line_errors() {
    let dir = fixtures().join("hostile");
    let err = |n: &str| PthFile::open(&dir.join(n)).unwrap_err();
    let e = err("truncated.pth");
    assert!(matches!(e, PthError::Zip { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("truncated.pth: bad or truncated zip"),
        "{e}"
    );
    let e = err("offset_past_end.pth");
    assert!(
        matches!(e, PthError::View { ref tensor, .. } if tensor == "b"),
        "{e}"
    );
    assert!(e.to_string().contains("tensor `b`: view needs"), "{e}");
    let e = err("missing_storage.pth");
    assert!(
        e.to_string()
            .contains("tensor `a`: storage record `good/data/0` is missing"),
        "{e}"
    );
    let e = err("compressed_storage.pth");
    assert!(matches!(e, PthError::CompressedStorage { .. }), "{e}");
    // A deflated data.pkl is fine (inflated under the cap).
    let f = PthFile::open(&dir.join("compressed_pickle.pth")).unwrap();
    let b = f.get("b").unwrap();
    let vals: Vec<f32> = f
        .view(b)
        .unwrap()
        .data()
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(vals, (4..12).map(|x| x as f32).collect::<Vec<_>>());
    for e in [
        err("truncated.pth"),
        err("offset_past_end.pth"),
        err("missing_storage.pth"),
    ] {
        assert!(!e.to_string().contains('\n'));
    }
    // Not a file at all / empty / random bytes.
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.pth");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        PthFile::open(&empty).unwrap_err(),
        PthError::NotZip { .. }
    ));
    let junk = tmp.path().join("junk.pth");
    std::fs::write(&junk, b"GGUF\x03\x00\x00\x00").unwrap();
    assert!(matches!(
        PthFile::open(&junk).unwrap_err(),
        PthError::NotZip { .. }
    ));
    assert!(matches!(
        PthFile::open(&tmp.path().join("nope.pth")).unwrap_err(),
        PthError::Io { .. }
    ));
}

#[test]
fn every_truncation_of_a_real_checkpoint_errors_without_panic() {
    let raw = std::fs::read(fixtures().join("torch/views/views.pth")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("cut.pth");
    for len in (0..raw.len()).step_by(7) {
        std::fs::write(&p, &raw[..len]).unwrap();
        assert!(PthFile::open(&p).is_err(), "length {len}");
    }
}

/// Deterministic xorshift for the mutation tests.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn mutated_pickles_never_panic() {
    let raw = std::fs::read(fixtures().join("torch/views/views.pth")).unwrap();
    let mut z = zip::ZipArchive::new(Cursor::new(&raw[..])).unwrap();
    let mut pkl = Vec::new();
    std::io::Read::read_to_end(&mut z.by_name("views/data.pkl").unwrap(), &mut pkl).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
        let mut p = pkl.clone();
        for _ in 0..1 + rng(&mut seed) % 4 {
            let i = (rng(&mut seed) % p.len() as u64) as usize;
            match rng(&mut seed) % 3 {
                0 => p[i] = rng(&mut seed) as u8,
                1 => p.truncate(i),
                _ => {
                    p.remove(i);
                }
            }
            if p.is_empty() {
                break;
            }
        }
        let _ = llama_codecs::pth::pickle::load_state_dict(&p);
    }
}

#[test]
fn mutated_files_never_panic() {
    let raw = std::fs::read(fixtures().join("torch/views/views.pth")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.pth");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..400 {
        let mut f = raw.clone();
        // Hit the central directory and end record more often than the data.
        let tail = raw.len() - 700;
        for _ in 0..1 + rng(&mut seed) % 3 {
            let i = if round % 2 == 0 {
                tail + (rng(&mut seed) % 700) as usize
            } else {
                (rng(&mut seed) % raw.len() as u64) as usize
            };
            f[i] = rng(&mut seed) as u8;
        }
        std::fs::write(&path, &f).unwrap();
        if let Ok(pf) = PthFile::open(&path) {
            for t in pf.tensors() {
                let _ = pf.view(t).map(|v| v.data().len());
                pf.release(t);
            }
        }
    }
}

#[test]
fn pth_file_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PthFile>();
    assert_send_sync::<llama_codecs::pth::PthTensor>();
}

#[test]
fn unknown_storage_types_are_named() {
    let p = b"\x80\x02ctorch\nFloat8_e4m3fnStorage\n.";
    let e = llama_codecs::pth::pickle::load_state_dict(p).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported torch storage type `torch.Float8_e4m3fnStorage` (supported: Float, Half, \
         BFloat16, Double, Long, Int, Short, Char, Byte, Bool)"
    );
}

/// The fixture README's promise: concatenating the MP shards along Meta's split axes gives
/// the MP=1 checkpoint, byte for byte.
#[test]
fn mp_fixtures_concatenate_to_mp1() {
    let dir = fixtures().join("torch");
    let mp1 = PthFile::open(&dir.join("tiny-mp1/consolidated.00.pth")).unwrap();
    for mp in [2usize, 4] {
        let shards: Vec<PthFile> = (0..mp)
            .map(|r| {
                PthFile::open(&dir.join(format!("tiny-mp{mp}/consolidated.{r:02}.pth"))).unwrap()
            })
            .collect();
        for t in mp1.tensors() {
            let name = &t.info.name;
            let leaf = name.rsplit('.').nth(1).unwrap_or("");
            let axis = match leaf {
                "wq" | "wk" | "wv" | "w1" | "w3" | "output" => Some(0),
                "wo" | "w2" | "tok_embeddings" => Some(1),
                _ => None,
            };
            let parts: Vec<Vec<u8>> = shards
                .iter()
                .map(|s| s.view(s.get(name).unwrap()).unwrap().data().into_owned())
                .collect();
            let want = mp1.view(t).unwrap().data().into_owned();
            let got = match axis {
                None => {
                    assert!(parts.iter().all(|p| p == &want), "{name} not replicated");
                    continue;
                }
                Some(0) => parts.concat(),
                Some(_) => {
                    // Row-major [rows, cols/mp] pieces: interleave row by row.
                    let rows = t.info.shape[0] as usize;
                    let row_bytes = parts[0].len() / rows;
                    let mut out = Vec::with_capacity(want.len());
                    for r in 0..rows {
                        for p in &parts {
                            out.extend_from_slice(&p[r * row_bytes..(r + 1) * row_bytes]);
                        }
                    }
                    out
                }
            };
            assert_eq!(got, want, "{name} (mp{mp})");
        }
    }
}
