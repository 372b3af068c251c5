//! Issue 10: each resource-exhaustion and local-file finding, reproduced with a small
//! hostile input built here (the test is the generator). Every case must end with exit 2
//! (or verify's documented code), one line on stderr without control bytes, bounded memory
//! (the binary runs under `prlimit --as`) and time, and nothing left behind.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

#[path = "../support/pickle.rs"]
mod pickle;
use pickle::{binunicode, fanned_out_tensor, int_tuple};

/// Address-space cap for the binary under test: far below the multi-GB allocations the
/// findings caused, comfortably above what the tool needs for tiny inputs.
const AS_LIMIT: &str = "1500000000";

/// Run `llama-tool ARGS` under `prlimit --as` (and a 120 s CPU cap).
fn run_capped<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new("prlimit")
        .arg(format!("--as={AS_LIMIT}"))
        .arg("--cpu=120")
        .arg("--")
        .arg(bin())
        .args(args)
        .env("MALLOC_ARENA_MAX", "2")
        .output()
        .expect("prlimit (util-linux) runs llama-tool")
}

/// Exit 2, one line on stderr, no control bytes in it, the needle present.
fn refused(o: &Output, needle: &str) -> String {
    let err = stderr(o);
    assert_eq!(
        code(o),
        2,
        "exit {}: stdout {} stderr {err}",
        code(o),
        stdout(o)
    );
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(
        !err.trim_end().chars().any(|c| c.is_control()),
        "control bytes in: {err:?}"
    );
    assert!(err.contains(needle), "`{needle}` not in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// No `.tmp-` entry anywhere under `dir`.
fn no_temporaries(dir: &Path) {
    for e in walk(dir) {
        let n = e.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!n.contains(".tmp-"), "left behind: {}", e.display());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

// ------------------------------------------------------------------ little writers

/// GGUF v3 bytes: metadata `kvs` (already encoded) and zero-byte F32 tensors `names`
/// (shape [0]).
fn gguf(kvs: &[Vec<u8>], names: &[&str]) -> Vec<u8> {
    let mut v = b"GGUF".to_vec();
    v.extend(3u32.to_le_bytes());
    v.extend((names.len() as u64).to_le_bytes());
    v.extend((kvs.len() as u64).to_le_bytes());
    for kv in kvs {
        v.extend(kv);
    }
    for n in names {
        v.extend(gstr(n));
        v.extend(1u32.to_le_bytes()); // n_dims
        v.extend(0u64.to_le_bytes()); // dim 0
        v.extend(0u32.to_le_bytes()); // F32
        v.extend(0u64.to_le_bytes()); // offset
    }
    let pad = v.len().next_multiple_of(32) - v.len();
    v.extend(std::iter::repeat_n(0u8, pad));
    v
}

fn gstr(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend(s.as_bytes());
    v
}

fn kv_str(k: &str, val: &str) -> Vec<u8> {
    let mut v = gstr(k);
    v.extend(8u32.to_le_bytes());
    v.extend(gstr(val));
    v
}

fn kv_u32(k: &str, val: u32) -> Vec<u8> {
    let mut v = gstr(k);
    v.extend(4u32.to_le_bytes());
    v.extend(val.to_le_bytes());
    v
}

/// CRC-32 (IEEE) for zip records.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A zip of stored records, in order (names may repeat).
fn stored_zip(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in records {
        let off = out.len() as u32;
        let crc = crc32(data);
        let mut h = Vec::new();
        h.extend(0x0403_4b50u32.to_le_bytes());
        h.extend([20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]); // version, flags, stored, time, date
        h.extend(crc.to_le_bytes());
        h.extend((data.len() as u32).to_le_bytes());
        h.extend((data.len() as u32).to_le_bytes());
        h.extend((name.len() as u16).to_le_bytes());
        h.extend(0u16.to_le_bytes());
        h.extend(name.as_bytes());
        out.extend(&h);
        out.extend(*data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend([20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        central.extend(crc.to_le_bytes());
        central.extend((data.len() as u32).to_le_bytes());
        central.extend((data.len() as u32).to_le_bytes());
        central.extend((name.len() as u16).to_le_bytes());
        central.extend([0u8; 8]); // extra, comment, disk, internal attrs
        central.extend(0u32.to_le_bytes()); // external attrs
        central.extend(off.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let cd_off = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((records.len() as u16).to_le_bytes());
    out.extend((records.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_off.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// A protocol-2 state dict `{name: _rebuild_tensor_v2(storage '0' of `numel` halves,
/// 0, shape, strides, False, OrderedDict())}`.
fn state_dict_pkl(name: &str, numel: u64, shape: &[u64], strides: &[u64]) -> Vec<u8> {
    let mut p = b"\x80\x02}(".to_vec();
    p.extend(binunicode(name));
    p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
    p.extend(b"(");
    p.extend(binunicode("storage"));
    p.extend(b"ctorch\nHalfStorage\n");
    p.extend(binunicode("0"));
    p.extend(binunicode("cpu"));
    p.extend(int_tuple(&[numel])[1..int_tuple(&[numel]).len() - 1].to_vec());
    p.extend(b"tQ");
    p.extend(b"K\x00");
    p.extend(int_tuple(shape));
    p.extend(int_tuple(strides));
    p.extend(b"\x89ccollections\nOrderedDict\n)R");
    p.extend(b"tR");
    p.extend(b"u.");
    p
}

fn pth(pkl: &[u8], storage: &[u8]) -> Vec<u8> {
    stored_zip(&[
        ("archive/data.pkl", pkl),
        ("archive/data/0", storage),
        ("archive/version", b"3\n"),
    ])
}

fn synth(dir: &Path) {
    let o = run(["synth", "-o", dir.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "synth: {}", stderr(&o));
}

// ------------------------------------------------------------------ finding 1

#[test]
fn huge_layer_index_in_gguf_and_hf_is_refused_before_allocating() {
    let t = tempfile::tempdir().unwrap();
    let g = t.path().join("layers.gguf");
    std::fs::write(
        &g,
        gguf(
            &[
                kv_str("general.architecture", "llama"),
                kv_u32("llama.block_count", 2),
            ],
            &["blk.100000000000.attn_norm.weight"],
        ),
    )
    .unwrap();
    refused(
        &run_capped([OsStr::new("inspect"), g.as_os_str()]),
        "layer 100000000000",
    );
    // No declared count at all: the cap applies.
    let g2 = t.path().join("undeclared.gguf");
    std::fs::write(&g2, gguf(&[], &["blk.100000000000.attn_norm.weight"])).unwrap();
    refused(
        &run_capped([OsStr::new("inspect"), g2.as_os_str()]),
        "4096 layers",
    );
    // A Hugging Face folder with num_hidden_layers 2.
    let hf = t.path().join("hf");
    std::fs::create_dir(&hf).unwrap();
    std::fs::write(hf.join("config.json"), r#"{"num_hidden_layers": 2}"#).unwrap();
    let header = r#"{"model.layers.100000000000.input_layernorm.weight":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#;
    let mut st = (header.len() as u64).to_le_bytes().to_vec();
    st.extend(header.as_bytes());
    std::fs::write(hf.join("model.safetensors"), st).unwrap();
    refused(
        &run_capped([OsStr::new("inspect"), hf.as_os_str()]),
        "num_hidden_layers",
    );
}

// ------------------------------------------------------------------ finding 4

#[test]
fn merged_width_overflow_is_refused_by_convert() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("meta");
    std::fs::create_dir(&m).unwrap();
    std::fs::write(
        m.join("params.json"),
        r#"{"dim": 8, "n_heads": 2, "n_layers": 1, "norm_eps": 1e-5, "multiple_of": 8, "vocab_size": -1}"#,
    )
    .unwrap();
    let w = 6_148_914_691_236_517_206u64; // three of these wrap u64 to 2
    let pkl = state_dict_pkl("tok_embeddings.weight", 0, &[0, w], &[w, 1]);
    for i in 0..3 {
        std::fs::write(m.join(format!("consolidated.0{i}.pth")), pth(&pkl, b"")).unwrap();
    }
    let out = t.path().join("out.gguf");
    let o = run_capped([
        OsStr::new("convert"),
        m.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    refused(&o, "overflows");
    assert!(!out.exists());
    no_temporaries(t.path());
}

#[test]
fn stride_zero_view_is_refused_not_materialised() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("meta");
    std::fs::create_dir(&m).unwrap();
    std::fs::write(
        m.join("params.json"),
        r#"{"dim": 8, "n_heads": 2, "n_layers": 1, "norm_eps": 1e-5, "multiple_of": 8, "vocab_size": -1}"#,
    )
    .unwrap();
    // 2^32 halves (8 GiB) viewed over a 2-byte storage with stride 0.
    let pkl = state_dict_pkl("norm.weight", 1, &[1 << 32], &[0]);
    std::fs::write(m.join("consolidated.00.pth"), pth(&pkl, &[0, 0])).unwrap();
    // Reading the tensor's values (its format-independent hash) must not materialise it.
    let o = run_capped([
        OsStr::new("manifest"),
        m.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
        OsStr::new("--tensors"),
    ]);
    refused(&o, "stride-0");
}

// ------------------------------------------------------------------ finding 5

#[test]
fn output_symlink_to_an_empty_folder_gets_its_own_message() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    synth(&m);
    let real = t.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = t.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let o = run([
        OsStr::new("convert"),
        m.as_os_str(),
        OsStr::new("--to"),
        OsStr::new("safetensors"),
        OsStr::new("-o"),
        link.as_os_str(),
    ]);
    refused(&o, "symbolic link to a folder");
    assert!(std::fs::read_dir(&real).unwrap().next().is_none());
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    no_temporaries(t.path());
}

/// SIGTERM in the middle of a conversion removes the temporary output (the release build
/// aborts on panic and signals never unwind, so only the handler can).
#[test]
fn sigterm_mid_convert_leaves_no_temporary() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    let o = run(["synth", "-o", m.to_str().unwrap(), "--layers", "48"]);
    assert_eq!(code(&o), 0, "synth: {}", stderr(&o));
    let outdir = t.path().join("out");
    std::fs::create_dir(&outdir).unwrap();
    let out = outdir.join("m.gguf");
    let mut child = Command::new(bin())
        .args([OsStr::new("convert"), m.as_os_str(), OsStr::new("-o")])
        .arg(&out)
        .args(["--outtype", "q4_k_m", "--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut saw_temp = false;
    while start.elapsed() < Duration::from_secs(60) {
        if walk(&outdir)
            .iter()
            .any(|p| p.to_string_lossy().contains(".tmp-"))
        {
            saw_temp = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(saw_temp, "convert finished before a temporary was seen");
    // SAFETY: sending a signal to our own child by pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(!out.exists());
    no_temporaries(&outdir);
}

// ------------------------------------------------------------------ finding 7

#[test]
fn checklist_that_is_a_fifo_or_dev_zero_is_refused_without_hanging() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("zero");
    std::fs::create_dir(&d).unwrap();
    std::os::unix::fs::symlink("/dev/zero", d.join("checklist.chk")).unwrap();
    refused(
        &run_capped([OsStr::new("verify"), d.join("checklist.chk").as_os_str()]),
        "not a regular file",
    );
    refused(
        &run_capped([OsStr::new("verify"), d.as_os_str()]),
        "not a regular file",
    );
    let f = t.path().join("fifo");
    std::fs::create_dir(&f).unwrap();
    let c = std::ffi::CString::new(f.join("checklist.chk").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // The folder: a FIFO is not a manifest file; it is never opened.
    assert_eq!(code(&run_capped([OsStr::new("verify"), f.as_os_str()])), 2);
    // The FIFO named directly: opened without blocking, refused on its fstat.
    let o = verify_within_30s(&f.join("checklist.chk"), "a FIFO checklist");
    refused(&o, "not a regular file");
}

/// `llama-tool verify PATH`, failing the test if it runs past 30 s (it hangs on `what`).
fn verify_within_30s(path: &Path, what: &str) -> Output {
    let mut child = Command::new(bin())
        .args([OsStr::new("verify"), path.as_os_str()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("verify hangs on {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_fifo_listed_by_a_manifest_is_an_error_not_a_hang() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("m");
    std::fs::create_dir(&d).unwrap();
    let c = std::ffi::CString::new(d.join("consolidated.00.pth").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::fs::write(
        d.join("checklist.chk"),
        "d41d8cd98f00b204e9800998ecf8427e  consolidated.00.pth\n",
    )
    .unwrap();
    let o = verify_within_30s(&d, "a FIFO listed by its checklist");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("consolidated.00.pth") && out.contains("not a regular file"),
        "{out}"
    );
}

#[test]
fn manifest_dir_stays_inside_dir() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("d");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("weights.bin"), b"abc").unwrap();
    std::fs::write(t.path().join("secret"), b"outside").unwrap();
    std::os::unix::fs::symlink(t.path().join("secret"), d.join("escape")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", d.join("zero")).unwrap();
    std::os::unix::fs::symlink("weights.bin", d.join("inside")).unwrap();
    let c = std::ffi::CString::new(d.join("pipe").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink("pipe", d.join("pipelink")).unwrap();
    let o = run_capped([OsStr::new("manifest"), d.as_os_str()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let list = stdout(&o);
    assert!(
        list.contains("weights.bin") && list.contains("inside"),
        "{list}"
    );
    assert!(!list.contains("escape") && !list.contains("zero"), "{list}");
    assert!(!list.contains("pipe"), "{list}");
    let err = stderr(&o);
    let line = |name: &str| {
        err.lines()
            .find(|l| l.contains(&format!("/{name}:")))
            .unwrap_or_else(|| panic!("no warning for {name}: {err}"))
            .to_string()
    };
    assert!(line("escape").contains("outside the folder"), "{err}");
    assert!(line("zero").contains("outside the folder"), "{err}");
    assert!(line("pipelink").contains("not a regular file"), "{err}");
}

/// 1,000,000 lines naming one file used to take quadratic time to merge.
#[test]
fn a_million_line_checklist_verifies() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("w.bin"), b"abc").unwrap();
    let line = "900150983cd24fb0d6963f7d28e17f72  w.bin\n";
    std::fs::write(t.path().join("checklist.chk"), line.repeat(1_000_000)).unwrap();
    let o = run([
        OsStr::new("verify"),
        t.path().join("checklist.chk").as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
}

// ------------------------------------------------------------------ finding 2, 3

#[test]
fn pickle_budgets_hold_through_the_binary() {
    let t = tempfile::tempdir().unwrap();
    // One tensor with a 32-dimension shape, named by 30,000 dict keys: each entry used to
    // copy the record out.
    let p = fanned_out_tensor(60_000, 30_000);
    let f = t.path().join("fanout.pth");
    std::fs::write(&f, pth(&p, &[0, 0])).unwrap();
    let start = Instant::now();
    refused(
        &run_capped([OsStr::new("inspect"), f.as_os_str()]),
        "bytes materialised",
    );
    assert!(start.elapsed() < Duration::from_secs(60));
    no_temporaries(t.path());
}

// ------------------------------------------------------------------ finding 9, 11

#[test]
fn inspect_escapes_control_characters_and_cuts_long_values() {
    let t = tempfile::tempdir().unwrap();
    let g = t.path().join("ansi.gguf");
    std::fs::write(
        &g,
        gguf(
            &[
                kv_str("general.architecture", "llama"),
                kv_str("general.name", "\u{1b}[2J\u{1b}[31mred\u{7}"),
                kv_str("general.\u{1b}]0;title\u{7}", &"x".repeat(1 << 20)),
            ],
            &[],
        ),
    )
    .unwrap();
    let o = run_capped([OsStr::new("inspect"), g.as_os_str()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    assert!(out.len() < 20_000, "{} bytes of output", out.len());
    assert!(out.contains('…'));
    // A 4 MB key repeated: the error names it, cut.
    let key = "k".repeat(4 << 20);
    let g = t.path().join("dupkey.gguf");
    std::fs::write(&g, gguf(&[kv_u32(&key, 1), kv_u32(&key, 2)], &[])).unwrap();
    let err = refused(
        &run_capped([OsStr::new("inspect"), g.as_os_str()]),
        "duplicate",
    );
    assert!(err.len() < 3000, "{} bytes of error", err.len());
}

#[test]
fn gguf_metadata_memory_is_capped() {
    let t = tempfile::tempdir().unwrap();
    // 1.3 million tiny keys: 18 MB on disk, well over 128 MiB once parsed.
    let mut kvs = Vec::new();
    for i in 0..1_300_000u32 {
        let mut v = gstr(&format!("{i:x}"));
        v.extend(0u32.to_le_bytes()); // u8
        v.push(0);
        kvs.push(v);
    }
    let g = t.path().join("manykeys.gguf");
    std::fs::write(&g, gguf(&kvs, &[])).unwrap();
    refused(
        &run_capped([OsStr::new("inspect"), g.as_os_str()]),
        "bytes of memory",
    );
}

#[test]
fn prompt_longer_than_the_context_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    synth(&m);
    let ids = vec!["1"; 20_000].join(",");
    let o = run_capped([
        OsStr::new("logits"),
        m.as_os_str(),
        OsStr::new("--tokens"),
        OsStr::new(&ids),
    ]);
    refused(&o, "context length");
}

// ------------------------------------------------------------------ finding 10

#[test]
fn duplicate_zip_entries_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let pkl = state_dict_pkl("w", 1, &[1], &[1]);
    let evil = state_dict_pkl("w", 1, &[1], &[1]);
    let z = stored_zip(&[
        ("archive/data.pkl", &pkl),
        ("archive/data/0", &[0, 0]),
        ("archive/data.pkl", &evil),
        ("archive/version", b"3\n"),
    ]);
    let p = t.path().join("dup.pth");
    std::fs::write(&p, z).unwrap();
    refused(&run_capped([OsStr::new("inspect"), p.as_os_str()]), "twice");
}

// ------------------------------------------------------------------ finding 12

#[test]
fn tokenizer_larger_than_the_vocabulary_is_refused_by_convert() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    synth(&m);
    let sp = llama_codecs::sentencepiece::SpModel::read(&m.join("tokenizer.model")).unwrap();
    let rows = sp.pieces.len();
    let mut big = sp.clone();
    for i in 0..(rows + 488) {
        big.pieces.push(llama_codecs::sentencepiece::Piece {
            piece: format!("extra{i}"),
            score: 0.0,
            kind: llama_codecs::sentencepiece::PieceType::Normal,
        });
    }
    big.vocab_size = big.pieces.len() as u32;
    std::fs::write(m.join("tokenizer.model"), big.to_bytes()).unwrap();
    let out = t.path().join("o.gguf");
    let o = run([
        OsStr::new("convert"),
        m.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    let err = refused(&o, "--allow-vocab-mismatch");
    assert!(
        err.contains(&format!("{} pieces", big.pieces.len()))
            && err.contains(&format!("{rows} embedding rows")),
        "{err}"
    );
    assert!(!out.exists());
    no_temporaries(t.path());
    let o = run([
        OsStr::new("convert"),
        m.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
        OsStr::new("--allow-vocab-mismatch"),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}
