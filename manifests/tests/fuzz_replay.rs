//! The committed fuzz seeds and every regression input found by `scripts/fuzz.sh`, replayed
//! through the same harness the cargo-fuzz targets use (fuzz/harness.rs), on stable Rust:
//! CI guards the parsers without nightly. A panic here is a fuzz finding come back.

use std::path::PathBuf;

#[path = "../../fuzz/harness.rs"]
mod harness;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn seeds_and_regressions_replay_through_every_target() {
    let mut total = 0;
    for &t in harness::TARGETS {
        let seeds = inputs("seeds", t);
        assert!(!seeds.is_empty(), "fuzz/seeds/{t} has no seed inputs");
        for p in seeds.iter().chain(inputs("regressions", t).iter()) {
            let data = std::fs::read(p).unwrap();
            harness::run(t, &data);
            total += 1;
        }
    }
    assert!(total >= harness::TARGETS.len());
}

#[test]
fn torrent_seeds_are_real_torrents() {
    // The seeds are worth fuzzing from only if they parse: v1 with padding, single-file, v2
    // and hybrid (made by fuzz/make_seeds.py with real SHA-1/SHA-256 hashes).
    use llama_manifests::torrent::metainfo::{Metainfo, Version};
    let mut versions = Vec::new();
    for p in inputs("seeds", "torrent") {
        if p.extension().is_some_and(|e| e == "torrent") {
            let data = std::fs::read(&p).unwrap();
            let m = Metainfo::parse(&data, &p.display().to_string())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            versions.push(m.version);
        }
    }
    for v in [Version::V1, Version::V2, Version::Hybrid] {
        assert!(versions.contains(&v), "no {v:?} seed in fuzz/seeds/torrent");
    }
}
