//! Integration tests of `llama_codecs::pth::PthWriter`: round trips through our reader,
//! misuse, page release, and loading by REAL torch (`torch.load(weights_only=True)`, also
//! zip64 past 4 GiB in an ignored test) via the interop venv (`LLAMA_TOOL_PYTHON`).

use std::path::{Path, PathBuf};

use llama_codecs::pth::{PthError, PthFile, PthWriter, WriterOptions};
use llama_codecs::sequence::SequenceError;
use llama_codecs::TensorInfo;
use llama_ggml::dtype::ALL_DTYPES;
use llama_ggml::DType;

#[path = "../../tests/support/interop.rs"]
mod interop;
use interop::python;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("tests/fixtures")
}

/// Tensors of every writable dtype with deterministic bytes.
fn sample_tensors() -> Vec<(TensorInfo, Vec<u8>)> {
    let dtypes: Vec<DType> = ALL_DTYPES
        .into_iter()
        .filter(|d| !d.is_quantized())
        .collect();
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
    let mk = || {
        PthWriter::new(
            std::io::Cursor::new(Vec::new()),
            "a",
            vec![info("x"), info("y")],
        )
        .unwrap()
    };
    let mut w = mk();
    assert!(matches!(
        w.start_tensor("y"),
        Err(PthError::Sequence(SequenceError::OutOfOrder { expected: Some(e), got }))
            if e == "x" && got == "y"
    ));
    let mut w2 = mk();
    w2.start_tensor("x").unwrap();
    assert!(matches!(
        w2.write_chunk(&[0; 5]),
        Err(PthError::Sequence(SequenceError::WrongSize { name, expected: 4, got: 5 }))
            if name == "x"
    ));
    let mut w3 = mk();
    w3.start_tensor("x").unwrap();
    w3.write_chunk(&[0; 3]).unwrap();
    assert!(w3.end_tensor().is_err());
    w.write_tensor("x", &[0; 4]).unwrap();
    assert!(matches!(
        w.finish(),
        Err(PthError::Sequence(SequenceError::Unwritten { next, remaining: 1 })) if next == "y"
    ));
    let q = TensorInfo {
        name: "q".into(),
        dtype: DType::Q4_0,
        shape: vec![32],
    };
    assert!(PthWriter::new(std::io::Cursor::new(Vec::new()), "a", vec![q]).is_err());
    assert!(PthWriter::new(std::io::Cursor::new(Vec::new()), "a/b", vec![]).is_err());
    assert!(PthWriter::new(
        std::io::Cursor::new(Vec::new()),
        "a",
        vec![info("x"), info("x")]
    )
    .is_err());
}

#[test]
fn real_torch_loads_our_writer_output_bit_exact() {
    let py = python();
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
    write_repeated(&p, "big", &infos, &vec![1u8; MIB as usize]);
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

/// Write `infos` to `path` as a `.pth` named `stem`, each tensor's data `chunk` 16 times.
fn write_repeated(path: &Path, stem: &str, infos: &[TensorInfo], chunk: &[u8]) {
    let out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut w = PthWriter::new(out, stem, infos.to_vec()).unwrap();
    for i in infos {
        w.start_tensor(&i.name).unwrap();
        for _ in 0..16 {
            w.write_chunk(chunk).unwrap();
        }
        w.end_tensor().unwrap();
    }
    w.finish().unwrap();
}

/// Benchmark note (docs/formats/pth.md): `cargo test -p llama-formats --release --test pth_writer
/// -- --ignored bench_zero_copy --nocapture`.
#[test]
#[ignore = "a benchmark, not a test: run by hand with --release (see the comment)"]
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
    let chunk: Vec<u8> = (0..8 * MIB).map(|i| i as u8).collect();
    let t0 = Instant::now();
    write_repeated(&p, "bench", &infos, &chunk);
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
/// `LLAMA_TOOL_PYTHON=... cargo test -p llama-formats --test pth_writer -- --ignored big_zip64`.
#[test]
#[ignore = "writes ~9 GB to the temp folder: run by hand (see the comment)"]
fn big_zip64_files_interop() {
    let py = python();
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
