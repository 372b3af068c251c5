//! Memory-map helpers shared by the readers (GGUF, safetensors, torch zip) and the hashers
//! of `llama-manifests`: giving a range's pages back to the kernel once a streaming pass is
//! done with them (`madvise(2)`, <https://man7.org/linux/man-pages/man2/madvise.2.html>), so
//! the resident set stays bounded however large the mapped file is.

use memmap2::Mmap;

/// `madvise(MADV_DONTNEED)` over a range of a read-only map; errors are ignored (the pages
/// are merely kept).
pub fn release_range(mmap: &Mmap, offset: usize, len: usize) {
    #[cfg(unix)]
    if len > 0 && offset.checked_add(len).is_some_and(|e| e <= mmap.len()) {
        // SAFETY: the map is a read-only file mapping: dropped pages are read back from
        // the file on the next access, so no data is lost.
        let _ =
            unsafe { mmap.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len) };
    }
    #[cfg(not(unix))]
    let _ = (mmap, offset, len);
}
