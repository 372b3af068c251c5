//! Hostile GGUF and safetensors files claiming absurd sizes are refused with one clean
//! error *and* without a large allocation: a counting global allocator records the largest
//! single allocation made while each file is opened.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use llama_codecs::gguf::GgufFile;
use llama_codecs::safetensors::{SafetensorsFile, SafetensorsFolder};

struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Largest single allocation allowed while refusing a tiny hostile file.
const LIMIT: usize = 64 * 1024;

fn gguf(n_tensors: u64, n_kv: u64, rest: &[u8]) -> Vec<u8> {
    let mut v = b"GGUF".to_vec();
    v.extend(3u32.to_le_bytes());
    v.extend(n_tensors.to_le_bytes());
    v.extend(n_kv.to_le_bytes());
    v.extend(rest);
    v
}

fn kv(key: &str, ty: u32, body: &[u8]) -> Vec<u8> {
    let mut v = (key.len() as u64).to_le_bytes().to_vec();
    v.extend(key.as_bytes());
    v.extend(ty.to_le_bytes());
    v.extend(body);
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn refused<E: std::fmt::Display>(path: &Path, open: impl Fn(&Path) -> Result<(), E>) {
    LARGEST.store(0, Ordering::SeqCst);
    let e = open(path)
        .err()
        .unwrap_or_else(|| panic!("{} was accepted", path.display()));
    let largest = LARGEST.load(Ordering::SeqCst);
    let line = e.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(line.contains(&*path.to_string_lossy()), "{line}");
    assert!(
        largest < LIMIT,
        "{}: allocated {largest} bytes at once ({line})",
        path.display()
    );
}

#[test]
fn absurd_sizes_are_refused_without_large_allocations() {
    let dir = tempfile::tempdir().unwrap();
    let big = 1u64 << 60;
    let pad = [0u8; 16];
    let gguf_cases: Vec<(&str, Vec<u8>)> = vec![
        ("tensors", gguf(big, 0, &pad)),
        ("kvs", gguf(0, big, &pad)),
        ("kvs-max", gguf(0, u64::MAX, &pad)),
        ("key-len", gguf(0, 1, &cat(&[&big.to_le_bytes(), &pad]))),
        (
            "string-len",
            gguf(0, 1, &kv("k", 8, &cat(&[&big.to_le_bytes(), &pad]))),
        ),
        (
            "u8-array",
            gguf(
                0,
                1,
                &kv("k", 9, &cat(&[&0u32.to_le_bytes(), &big.to_le_bytes()])),
            ),
        ),
        (
            "str-array",
            gguf(
                0,
                1,
                &kv("k", 9, &cat(&[&8u32.to_le_bytes(), &big.to_le_bytes()])),
            ),
        ),
        (
            "arr-array",
            gguf(
                0,
                1,
                &kv("k", 9, &cat(&[&9u32.to_le_bytes(), &big.to_le_bytes()])),
            ),
        ),
        (
            "n-dims",
            gguf(
                1,
                0,
                &cat(&[&1u64.to_le_bytes(), b"w", &u32::MAX.to_le_bytes(), &[0; 32]]),
            ),
        ),
        (
            "dims",
            gguf(
                1,
                0,
                &cat(&[
                    &1u64.to_le_bytes(),
                    b"w",
                    &2u32.to_le_bytes(),
                    &big.to_le_bytes(),
                    &big.to_le_bytes(),
                    &0u32.to_le_bytes(),
                    &0u64.to_le_bytes(),
                ]),
            ),
        ),
    ];
    for (name, bytes) in gguf_cases {
        let p = dir.path().join(format!("{name}.gguf"));
        std::fs::write(&p, bytes).unwrap();
        refused(&p, |p| GgufFile::open(p).map(|_| ()));
    }

    let mut st = big.to_le_bytes().to_vec();
    st.extend(b"{}      ");
    let p = dir.path().join("header-len.safetensors");
    std::fs::write(&p, &st).unwrap();
    refused(&p, |p| SafetensorsFile::open(p).map(|_| ()));
    refused(&p, |p| SafetensorsFolder::open(p).map(|_| ()));
    let json = br#"{"w":{"dtype":"F32","shape":[1152921504606846976],"data_offsets":[0,1152921504606846976]}}"#;
    let mut st = (json.len() as u64).to_le_bytes().to_vec();
    st.extend(json);
    st.extend([0u8; 16]);
    let p = dir.path().join("offsets.safetensors");
    std::fs::write(&p, &st).unwrap();
    refused(&p, |p| SafetensorsFile::open(p).map(|_| ()));
}
