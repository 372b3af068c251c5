//! Issue 10, findings 2, 3 and 8: the pickle machine and the SentencePiece reader stay within
//! their budgets on small hostile inputs. A counting global allocator records the peak of
//! live heap bytes while each input is parsed; the hostile inputs are built here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use llama_codecs::pth::pickle::{load_state_dict, PickleError};
use llama_codecs::sentencepiece::SpModel;

#[path = "../../tests/support/pickle.rs"]
mod pickle;
use pickle::{binunicode, fanned_out_tensor};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// One measurement at a time (the test harness runs tests on several threads).
static SERIAL: Mutex<()> = Mutex::new(());

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                - layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Run `f` and return its result with the peak of heap bytes it added.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize, Duration) {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let start = Instant::now();
    let r = f();
    let took = start.elapsed();
    (r, PEAK.load(Ordering::SeqCst).saturating_sub(base), took)
}

/// Heap a hostile input may cost beyond its own size: the pickle byte budget plus slack.
const PEAK_LIMIT: usize = 160 << 20;

fn limited(pkl: &[u8], what: &str) {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (r, peak, took) = measured(|| load_state_dict(pkl));
    let e = r.expect_err("hostile pickle accepted");
    let text = e.to_string();
    assert!(text.contains(what), "`{what}` not in: {text}");
    assert!(
        peak < PEAK_LIMIT + pkl.len(),
        "{what}: peak heap {peak} bytes ({text})"
    );
    assert!(took < Duration::from_secs(30), "{what}: took {took:?}");
}

/// Finding 2: one tensor with a long storage key and a 32-dimension shape, named by many
/// dict keys: every entry used to be copied out in full.
#[test]
fn fanned_out_tensor_copies_are_budgeted() {
    let p = fanned_out_tensor(100_000, 100_000);
    limited(&p, "bytes materialised");
}

/// Finding 2: persistent ids that repeat a long key string through the memo.
#[test]
fn repeated_persistent_ids_are_budgeted() {
    let mut p = b"\x80\x02(".to_vec();
    p.extend(binunicode("storage"));
    p.extend(b"ctorch\nHalfStorage\n");
    p.extend(binunicode(&"k".repeat(1 << 20)));
    p.extend(binunicode("cpu"));
    p.extend(b"K\x01tr\x00\x00\x00\x00]("); // memo 0 = the pid; a list to hold storages
    for _ in 0..10_000 {
        p.extend(b"j\x00\x00\x00\x00Q");
    }
    p.extend(b"e.");
    limited(&p, "bytes materialised");
}

/// Finding 3: `_codecs.encode` applied again and again to one shared 8 MB string.
#[test]
fn codecs_encode_input_is_capped() {
    let mut p = b"\x80\x02c_codecs\nencode\nr\x00\x00\x00\x00".to_vec();
    p.extend(binunicode(&"a".repeat(8 << 20)));
    p.extend(b"r\x01\x00\x00\x00");
    for _ in 0..1000 {
        p.extend(b"j\x00\x00\x00\x00j\x01\x00\x00\x00");
        p.extend(binunicode("latin1"));
        p.extend(b"\x86R0");
    }
    p.extend(b"N.");
    limited(&p, "_codecs.encode");
    // Below the cap, many calls on a shared string still hit a budget (each result is a
    // new 1 MiB value: the byte budget ends it first, the work budget would next).
    let mut p = b"\x80\x02c_codecs\nencode\nr\x00\x00\x00\x00".to_vec();
    p.extend(binunicode(&"a".repeat(1 << 20)));
    p.extend(b"r\x01\x00\x00\x00");
    for _ in 0..2000 {
        p.extend(b"j\x00\x00\x00\x00j\x01\x00\x00\x00");
        p.extend(binunicode("latin1"));
        p.extend(b"\x86R0");
    }
    p.extend(b"N.");
    limited(&p, "exceeds the cap on");
}

/// Finding 3: a shared 1 MB dict key hashed on every insertion.
#[test]
fn dict_key_hashing_is_budgeted() {
    let mut p = b"\x80\x02}".to_vec();
    p.extend(binunicode(&"k".repeat(1 << 20)));
    p.extend(b"r\x00\x00\x00\x00N");
    p.extend(b"s");
    for _ in 0..100_000 {
        p.extend(b"j\x00\x00\x00\x00Ns");
    }
    p.extend(b".");
    limited(&p, "work");
}

/// Finding 8: 2-byte pieces cost ~64 bytes each in memory; the piece count is capped.
#[test]
fn sentencepiece_piece_count_is_capped() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // ModelProto.pieces (field 1) each a SentencePiece with piece (field 1) "ab".
    let one: &[u8] = &[0x0a, 0x04, 0x0a, 0x02, b'a', b'b'];
    let n = llama_codecs::sentencepiece::MAX_PIECES + 1;
    let bytes = one.repeat(n);
    let (r, peak, _) = measured(|| SpModel::from_bytes(&bytes));
    let e = r.expect_err("too many pieces accepted");
    assert!(e.to_string().contains("pieces"), "{e}");
    assert!(
        peak < 24 * bytes.len(),
        "peak {peak} for a {}-byte file",
        bytes.len()
    );
}

#[test]
fn budgets_do_not_refuse_ordinary_pickles() {
    // A state dict of 2,000 small tensors, each with its own storage.
    let mut p = b"\x80\x02ccollections\nOrderedDict\n)R(".to_vec();
    for i in 0..2000 {
        p.extend(binunicode(&format!("layers.{i}.weight")));
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
        p.extend(binunicode("storage"));
        p.extend(b"ctorch\nHalfStorage\n");
        p.extend(binunicode(&i.to_string()));
        p.extend(binunicode("cpu"));
        p.extend(b"K\x04tQK\x00K\x02K\x02\x86K\x02K\x01\x86\x89ccollections\nOrderedDict\n)RtR");
    }
    p.extend(b"u.");
    let r: Result<_, PickleError> = load_state_dict(&p);
    assert_eq!(r.unwrap().len(), 2000);
}
