//! `llama-tool inspect model.sig`: what an OpenSSF Model Signing bundle says (signed files,
//! algorithm, serialization, key hint, subject) without verifying it: the signature is not
//! checked, so nothing shown here is proven until `verify --signature` passes.
use std::path::Path;
use std::process::ExitCode;

use llama_manifests::sign::{self, Method};
use serde_json::json;

/// Whether `path` looks like a signature bundle ([`sign::looks_like_bundle`]).
pub fn is_signature(path: &Path) -> bool {
    sign::looks_like_bundle(path)
}

/// Run `inspect` on a signature.
pub fn run(path: &Path, json_out: bool) -> anyhow::Result<ExitCode> {
    let shown = path.display().to_string();
    let bundle = sign::read_bundle(path)?;
    let m = sign::read_manifest_unverified(&bundle, &shown)?;
    let s = &m.serialization;
    let (method, shard_size) = match s.method {
        Method::Files => ("files", None),
        Method::Shards { shard_size } => ("shards", Some(shard_size)),
    };
    let consistent = m.check_root_digest(&shown).is_ok();
    if json_out {
        let doc = json!({
            "signature": shown,
            "verified": false,
            "media_type": bundle.media_type,
            "payload_type": bundle.payload_type(),
            "key_hint": bundle.hint(),
            "model": m.model_name,
            "root_digest": m.root_digest,
            "root_digest_consistent": consistent,
            "method": method,
            "shard_size": shard_size,
            "hash_type": s.algo.name(),
            "allow_symlinks": s.allow_symlinks,
            "ignore_paths": s.ignore_paths,
            "resources": m.resources.iter().map(|r| json!({"name": r.name, "digest": r.digest})).collect::<Vec<_>>(),
            "tensors": m.tensors.as_ref().map(|t| t.tensors.len()),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("signature:      {shown} (NOT verified: use verify --signature --public-key)");
    println!(
        "format:         OpenSSF model signing v1.0, {}",
        bundle.media_type
    );
    println!(
        "key hint:       {}",
        bundle.hint().unwrap_or("(none: older format)")
    );
    println!("model:          {}", m.model_name);
    println!(
        "subject sha256: {}{}",
        m.root_digest,
        if consistent {
            ""
        } else {
            "  (does NOT match the listed files)"
        }
    );
    match shard_size {
        Some(n) => println!("serialization:  shards of {n} bytes, {}", s.algo),
        None => println!("serialization:  files, {}", s.algo),
    }
    println!("allow symlinks: {}", s.allow_symlinks);
    println!("ignored:        {}", s.ignore_paths.join(", "));
    if let Some(t) = &m.tensors {
        println!(
            "tensors:        {} identities ({})",
            t.tensors.len(),
            t.scheme
        );
    }
    println!("resources:      {}", m.resources.len());
    for r in &m.resources {
        println!("  {}  {}", r.digest, r.name);
    }
    Ok(ExitCode::SUCCESS)
}
