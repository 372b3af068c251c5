//! Integration tests of `llama_formats::pth` against files made by the real `torch.save`
//! (tests/fixtures/torch/gen_torch_fixtures.py), hostile pickles
//! (tests/fixtures/hostile/gen_hostile.py), and a round trip through real `torch.load`.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use llama_formats::pth::{PthError, PthFile, PthWriter, WriterOptions};
use llama_formats::{DType, TensorInfo};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("tests/fixtures")
}

fn st_dtype(d: safetensors::Dtype) -> DType {
    use safetensors::Dtype as S;
    match d {
        S::F32 => DType::F32,
        S::F16 => DType::F16,
        S::BF16 => DType::BF16,
        S::F64 => DType::F64,
        S::I64 => DType::I64,
        S::I32 => DType::I32,
        S::I16 => DType::I16,
        S::I8 => DType::I8,
        S::U8 => DType::U8,
        S::BOOL => DType::Bool,
        other => panic!("unexpected safetensors dtype {other:?}"),
    }
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
            assert_eq!(t.info.dtype, st_dtype(want.dtype()), "{}", t.info.name);
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
        let e = llama_formats::pth::pickle::load_state_dict(&pkl).unwrap_err();
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

/// Tensors of every writable dtype with deterministic bytes.
fn sample_tensors() -> Vec<(TensorInfo, Vec<u8>)> {
    let dtypes = [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::F64,
        DType::I64,
        DType::I32,
        DType::I16,
        DType::I8,
        DType::U8,
        DType::Bool,
    ];
    let shapes: [&[u64]; 4] = [&[5, 7], &[3], &[], &[2, 0, 3]];
    let mut out = Vec::new();
    let mut seed = 0x1234_5678u32;
    for (i, d) in dtypes.iter().enumerate() {
        for (j, s) in shapes.iter().enumerate() {
            let info = TensorInfo {
                name: format!("layers.{i}.t{j}.weight"),
                dtype: *d,
                shape: s.to_vec(),
            };
            let n = info.n_bytes().unwrap() as usize;
            let bytes = (0..n)
                .map(|k| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let b = (seed >> 24) as u8;
                    match d {
                        DType::Bool => b & 1,
                        // keep floats finite-ish: clear the top exponent bit of each element
                        DType::F16 | DType::BF16 if k % 2 == 1 => b & 0x3f,
                        DType::F32 if k % 4 == 3 => b & 0x3f,
                        DType::F64 if k % 8 == 7 => b & 0x3f,
                        _ => b,
                    }
                })
                .collect();
            out.push((info, bytes));
        }
    }
    out
}

fn write_sample(path: &Path, opts: WriterOptions) -> Vec<(TensorInfo, Vec<u8>)> {
    let tensors = sample_tensors();
    let file = std::fs::File::create(path).unwrap();
    let infos = tensors.iter().map(|t| t.0.clone()).collect();
    let mut w = PthWriter::with_options(
        std::io::BufWriter::new(file),
        "consolidated.00",
        infos,
        opts,
    )
    .unwrap();
    for (info, bytes) in &tensors {
        w.start_tensor(&info.name).unwrap();
        for c in bytes.chunks(5) {
            w.write_chunk(c).unwrap();
        }
        w.end_tensor().unwrap();
    }
    w.finish().unwrap();
    tensors
}

#[test]
fn writer_round_trips_through_our_reader() {
    let tmp = tempfile::tempdir().unwrap();
    for zip64 in [false, true] {
        let p = tmp.path().join(format!("rt{zip64}.pth"));
        let tensors = write_sample(&p, WriterOptions { force_zip64: zip64 });
        let f = PthFile::open(&p).unwrap();
        assert_eq!(f.tensors().len(), tensors.len());
        for (t, (info, bytes)) in f.tensors().iter().zip(&tensors) {
            assert_eq!(&t.info, info);
            assert_eq!(&*f.view(t).unwrap().data(), &bytes[..], "{}", info.name);
        }
        // Storages are 64-byte aligned in the file.
        let raw = std::fs::read(&p).unwrap();
        let (_, bytes) = &tensors[0];
        let pos = raw
            .windows(bytes.len())
            .position(|w| w == &bytes[..])
            .unwrap();
        assert_eq!(pos % 64, 0);
    }
}

#[test]
fn writer_refuses_misuse() {
    let info = |n: &str| TensorInfo {
        name: n.into(),
        dtype: DType::F16,
        shape: vec![2],
    };
    let mk = || PthWriter::new(Cursor::new(Vec::new()), "a", vec![info("x"), info("y")]).unwrap();
    let mut w = mk();
    assert!(w
        .start_tensor("y")
        .unwrap_err()
        .to_string()
        .contains("next declared tensor is `x`"));
    let mut w2 = mk();
    w2.start_tensor("x").unwrap();
    assert!(w2
        .write_chunk(&[0; 5])
        .unwrap_err()
        .to_string()
        .contains("5 bytes written but it holds 4"));
    let mut w3 = mk();
    w3.start_tensor("x").unwrap();
    w3.write_chunk(&[0; 3]).unwrap();
    assert!(w3.end_tensor().is_err());
    w.write_tensor("x", &[0; 4]).unwrap();
    assert!(w
        .finish()
        .unwrap_err()
        .to_string()
        .contains("before tensor `y`"));
    let q = TensorInfo {
        name: "q".into(),
        dtype: DType::Q4_0,
        shape: vec![32],
    };
    assert!(PthWriter::new(Cursor::new(Vec::new()), "a", vec![q]).is_err());
    assert!(PthWriter::new(Cursor::new(Vec::new()), "a/b", vec![]).is_err());
    assert!(PthWriter::new(Cursor::new(Vec::new()), "a", vec![info("x"), info("x")]).is_err());
}

/// The interop python, as tests/e2e/common.rs finds it: skip outside CI when unset.
fn python() -> Option<PathBuf> {
    match std::env::var_os("LLAMA_TOOL_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("CI").is_some() => panic!("LLAMA_TOOL_PYTHON is not set under CI"),
        None => {
            eprintln!(
                "skipping torch interop: set LLAMA_TOOL_PYTHON (scripts/setup-venv.sh prints it)"
            );
            None
        }
    }
}

#[test]
fn real_torch_loads_our_writer_output_bit_exact() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let script = fixtures()
        .parent()
        .unwrap()
        .join("interop/torch_load_pth.py");
    for zip64 in [false, true] {
        let p = tmp.path().join(format!("ours{zip64}.pth"));
        let tensors = write_sample(&p, WriterOptions { force_zip64: zip64 });
        // Expected values go to python as safetensors written by the safetensors crate.
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
            .iter()
            .map(|(i, b)| {
                let d = match i.dtype {
                    DType::F32 => safetensors::Dtype::F32,
                    DType::F16 => safetensors::Dtype::F16,
                    DType::BF16 => safetensors::Dtype::BF16,
                    DType::F64 => safetensors::Dtype::F64,
                    DType::I64 => safetensors::Dtype::I64,
                    DType::I32 => safetensors::Dtype::I32,
                    DType::I16 => safetensors::Dtype::I16,
                    DType::I8 => safetensors::Dtype::I8,
                    DType::U8 => safetensors::Dtype::U8,
                    DType::Bool => safetensors::Dtype::BOOL,
                    _ => unreachable!(),
                };
                let shape = i.shape.iter().map(|&x| x as usize).collect();
                (
                    i.name.clone(),
                    safetensors::tensor::TensorView::new(d, shape, b).unwrap(),
                )
            })
            .collect();
        let exp = tmp.path().join("expected.safetensors");
        safetensors::tensor::serialize_to_file(views, None, &exp).unwrap();
        let o = std::process::Command::new(&py)
            .arg(&script)
            .arg(&p)
            .arg(&exp)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "torch.load failed (zip64={zip64}):\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("OK {}", tensors.len())));
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
        let _ = llama_formats::pth::pickle::load_state_dict(&p);
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

/// Resident file-backed pages of this process (RssFile + RssShmem, kB), Linux only.
fn rss_file_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some(field("RssFile:")? + field("RssShmem:").unwrap_or(0))
}

#[test]
fn release_drops_mapped_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("big.pth");
    const MIB: u64 = 1 << 20;
    let infos: Vec<TensorInfo> = (0..4)
        .map(|i| TensorInfo {
            name: format!("w{i}"),
            dtype: DType::F32,
            shape: vec![4 * MIB],
        })
        .collect(); // 4 x 16 MiB
    let out = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    let mut w = PthWriter::new(out, "big", infos.clone()).unwrap();
    let chunk = vec![1u8; MIB as usize];
    for i in &infos {
        w.start_tensor(&i.name).unwrap();
        for _ in 0..16 {
            w.write_chunk(&chunk).unwrap();
        }
        w.end_tensor().unwrap();
    }
    w.finish().unwrap();
    let f = PthFile::open(&p).unwrap();
    let Some(before) = rss_file_kb() else { return };
    let mut sum = 0u64;
    for t in f.tensors() {
        let v = f.view(t).unwrap();
        let d = v.data();
        assert!(matches!(d, std::borrow::Cow::Borrowed(_)));
        sum += d.iter().step_by(4096).map(|&b| b as u64).sum::<u64>();
    }
    assert_eq!(sum, 4 * 16 * 256);
    let touched = rss_file_kb().unwrap();
    for t in f.tensors() {
        f.release(t);
    }
    let after = rss_file_kb().unwrap();
    eprintln!("RssFile+RssShmem kB: before {before}, touched {touched}, released {after}");
    assert!(
        touched >= before + 50 * 1024,
        "pages were not mapped in: {before} -> {touched}"
    );
    assert!(
        after + 50 * 1024 <= touched,
        "release kept pages: {touched} -> {after}"
    );
}

/// Benchmark note (docs/formats/pth.md): `cargo test -p llama-formats --release --test pth
/// -- --ignored bench_zero_copy --nocapture`.
#[test]
#[ignore]
fn bench_zero_copy_vs_copy() {
    use std::time::Instant;
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bench.pth");
    const MIB: u64 = 1 << 20;
    let n = 8;
    let infos: Vec<TensorInfo> = (0..n)
        .map(|i| TensorInfo {
            name: format!("w{i}"),
            dtype: DType::F16,
            shape: vec![64 * MIB],
        })
        .collect(); // 8 x 128 MiB = 1 GiB
    let out = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    let mut w = PthWriter::new(out, "bench", infos.clone()).unwrap();
    let chunk: Vec<u8> = (0..8 * MIB).map(|i| i as u8).collect();
    let t0 = Instant::now();
    for i in &infos {
        w.start_tensor(&i.name).unwrap();
        for _ in 0..16 {
            w.write_chunk(&chunk).unwrap();
        }
        w.end_tensor().unwrap();
    }
    w.finish().unwrap();
    let write = t0.elapsed();
    let f = PthFile::open(&p).unwrap();
    // Warm the page cache once so both variants read from memory.
    for t in f.tensors() {
        let v = f.view(t).unwrap();
        std::hint::black_box(v.data().iter().step_by(4096).count());
    }
    let t0 = Instant::now();
    let mut x = 0u64;
    for t in f.tensors() {
        let v = f.view(t).unwrap();
        x += v.data().iter().map(|&b| b as u64).sum::<u64>();
    }
    let zero_copy = t0.elapsed();
    let t0 = Instant::now();
    let mut y = 0u64;
    for t in f.tensors() {
        let v = f.view(t).unwrap();
        let owned: Vec<u8> = v.data().into_owned();
        y += owned.iter().map(|&b| b as u64).sum::<u64>();
    }
    let copied = t0.elapsed();
    assert_eq!(x, y);
    let gib = (n as f64 * 128.0) / 1024.0;
    eprintln!(
        "write {:.2} GB/s; read+sum zero-copy {:.2} GB/s; copy-then-sum {:.2} GB/s",
        gib * 1.0737 / write.as_secs_f64(),
        gib * 1.0737 / zero_copy.as_secs_f64(),
        gib * 1.0737 / copied.as_secs_f64()
    );
}

/// Zip64 past 4 GiB both ways with real torch (writes ~9 GB to the temp dir):
/// `LLAMA_TOOL_PYTHON=... cargo test -p llama-formats --test pth -- --ignored big_zip64`.
#[test]
#[ignore]
fn big_zip64_files_interop() {
    let Some(py) = python() else { return };
    let script = fixtures()
        .parent()
        .unwrap()
        .join("interop/pth_big_zip64.py");
    let tmp = tempfile::tempdir().unwrap();
    const BIG: u64 = (1 << 32) + 4096;
    let f32s = |k: f32| -> Vec<u8> { (0..16).flat_map(|i| (k * i as f32).to_le_bytes()).collect() };
    let infos = vec![
        TensorInfo {
            name: "head".into(),
            dtype: DType::F32,
            shape: vec![16],
        },
        TensorInfo {
            name: "big".into(),
            dtype: DType::U8,
            shape: vec![BIG],
        },
        TensorInfo {
            name: "tail".into(),
            dtype: DType::F32,
            shape: vec![16],
        },
    ];
    let ours = tmp.path().join("ours.pth");
    let out = std::io::BufWriter::with_capacity(1 << 22, std::fs::File::create(&ours).unwrap());
    let mut w = PthWriter::new(out, "ours", infos).unwrap();
    w.write_tensor("head", &f32s(1.0)).unwrap();
    w.start_tensor("big").unwrap();
    let chunk = vec![0u8; 1 << 24];
    let mut at = 0u64;
    while at < BIG {
        let n = (BIG - at).min(chunk.len() as u64) as usize;
        let mut c = chunk[..n].to_vec();
        for (pos, val) in [(0u64, 1u8), (1 << 32, 7), (BIG - 1, 9)] {
            if (at..at + n as u64).contains(&pos) {
                c[(pos - at) as usize] = val;
            }
        }
        w.write_chunk(&c).unwrap();
        at += n as u64;
    }
    w.end_tensor().unwrap();
    w.write_tensor("tail", &f32s(2.0)).unwrap();
    w.finish().unwrap();
    let run = |mode: &str, p: &Path| {
        let o = std::process::Command::new(&py)
            .arg(&script)
            .arg(mode)
            .arg(p)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(run("check", &ours).contains("OK"));
    std::fs::remove_file(&ours).unwrap();

    let theirs = tmp.path().join("theirs.pth");
    run("save", &theirs);
    {
        let f = PthFile::open(&theirs).unwrap();
        let names: Vec<&str> = f.tensors().iter().map(|t| t.info.name.as_str()).collect();
        assert_eq!(names, ["head", "big", "tail"]);
        assert_eq!(
            &*f.view(f.get("head").unwrap()).unwrap().data(),
            &f32s(1.0)[..]
        );
        assert_eq!(
            &*f.view(f.get("tail").unwrap()).unwrap().data(),
            &f32s(2.0)[..]
        );
        let big = f.view(f.get("big").unwrap()).unwrap();
        let d = big.data();
        assert_eq!(d.len() as u64, BIG);
        assert_eq!(
            (d[0], d[1 << 32], d[BIG as usize - 1], d[777]),
            (1, 7, 9, 0)
        );
    }
}
