//! Hostile and broken inputs through the binary: each is refused with exit code 2 and one
//! line naming the file and the problem; no panic, no large allocation, nothing executed.

use std::path::Path;

use crate::common::*;

/// The file the code-running payloads would create (see tests/fixtures/hostile/gen_hostile.py).
const MARKER: &str = "/tmp/llama-tool-hostile-marker";

fn refused(path: &Path, needle: &str) {
    let o = run(["inspect".as_ref(), path.as_os_str()]);
    let err = stderr(&o);
    assert_eq!(
        code(&o),
        2,
        "{}: exit {} stderr {err}",
        path.display(),
        code(&o)
    );
    assert!(
        err.contains(needle),
        "{}: message lacks `{needle}`: {err}",
        path.display()
    );
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(
        err.contains(name.as_ref()),
        "message does not name the file: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn hostile_pickles_are_refused_by_name_and_nothing_runs() {
    let _ = std::fs::remove_file(MARKER);
    let h = fixture("hostile");
    for (file, needle) in [
        ("os_system.pth", "`os.system`"),
        ("posix_system.pth", "`posix.system`"),
        ("builtins_eval.pth", "`builtins.eval`"),
        ("subprocess_inst.pth", "`subprocess.Popen`"),
        ("stack_global.pth", "`os.system`"),
        (
            "numpy_reconstruct.pth",
            "`numpy.core.multiarray._reconstruct`",
        ),
        ("newobj_ordereddict.pth", "NEWOBJ"),
        ("build_on_list.pth", "BUILD"),
        ("nested_lists.pth", "nesting depth"),
        ("nested_tuples.pth", "nesting depth"),
        ("mark_flood.pth", "MARK"),
    ] {
        refused(&h.join(file), needle);
    }
    assert!(!Path::new(MARKER).exists(), "a hostile payload ran");
}

#[test]
fn broken_pth_files_are_one_line_errors() {
    let h = fixture("hostile");
    refused(&h.join("truncated.pth"), "truncated");
    refused(&h.join("offset_past_end.pth"), "tensor `b`");
    refused(&h.join("missing_storage.pth"), "missing");
    refused(&h.join("compressed_storage.pth"), "compressed");
    refused(&fixture("torch/legacy/legacy.pth"), "legacy torch format");
}

#[test]
fn absurd_gguf_and_safetensors_headers_are_refused() {
    let t = tempfile::tempdir().unwrap();
    // GGUF v3 claiming 2^60 tensors.
    let mut g = b"GGUF".to_vec();
    g.extend_from_slice(&3u32.to_le_bytes());
    g.extend_from_slice(&(1u64 << 60).to_le_bytes());
    g.extend_from_slice(&0u64.to_le_bytes());
    g.resize(40, 0);
    let p = t.path().join("many.gguf");
    std::fs::write(&p, &g).unwrap();
    refused(&p, "many.gguf");
    // GGUF with one KV whose key string claims 2^60 bytes.
    let mut g = b"GGUF".to_vec();
    g.extend_from_slice(&3u32.to_le_bytes());
    g.extend_from_slice(&0u64.to_le_bytes());
    g.extend_from_slice(&1u64.to_le_bytes());
    g.extend_from_slice(&(1u64 << 60).to_le_bytes());
    g.extend_from_slice(b"general.name");
    let p = t.path().join("longstring.gguf");
    std::fs::write(&p, &g).unwrap();
    refused(&p, "longstring.gguf");
    // safetensors header length of 2^60.
    let mut s = (1u64 << 60).to_le_bytes().to_vec();
    s.extend_from_slice(b"{}");
    let p = t.path().join("huge.safetensors");
    std::fs::write(&p, &s).unwrap();
    refused(&p, "huge.safetensors");
    // Garbage with a known extension, and an empty file.
    let p = t.path().join("garbage.pth");
    std::fs::write(&p, b"not a zip at all").unwrap();
    refused(&p, "garbage.pth");
    let p = t.path().join("empty.gguf");
    std::fs::write(&p, b"").unwrap();
    refused(&p, "empty.gguf");
}
