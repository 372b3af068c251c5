//! Model signing in the OpenSSF Model Signing format (PyPI `model-signing` 1.1.1, from
//! <https://github.com/sigstore/model-transparency>), key-based (v1.0 predicate): a Sigstore
//! bundle ([`bundle`]) holding a DSSE envelope whose payload is an in-toto statement
//! ([`statement`]) listing every file of a model folder ([`serialize`]) with its digest,
//! signed with an EC key ([`keys`]). [`check`] verifies a bundle and plans the comparison of a
//! folder with what it lists, as jobs for [`crate::verify`].
//!
//! docs/SIGNING.md has the workflow and the format facts.

pub mod bundle;
pub mod check;
pub mod ignore;
pub mod keys;
pub mod problem;
pub mod serialize;
pub mod statement;

use std::path::{Path, PathBuf};

use llama_formats::atomic::OutputError;
use llama_formats::output::write_output;

use crate::digest::{Algo, DigestError};
use crate::json::TensorSet;
use crate::verify::Progress;
pub use bundle::Bundle;
pub use keys::{KeyError, PrivateKey, PublicKey};
pub use problem::{BundleProblem, PayloadProblem, Refusal, Unsupported, WalkProblem};
pub use statement::{Method, ModelManifest, Resource, Serialization};

/// The signature's default file name inside the model folder.
pub const DEFAULT_SIGNATURE_NAME: &str = "model.sig";

/// Whether `path` looks like a signature bundle: a regular file whose first 256 bytes are a
/// JSON object naming the Sigstore bundle media type (how `inspect` tells a `model.sig` from a
/// checkpoint).
pub fn looks_like_bundle(path: &Path) -> bool {
    use std::io::Read as _;
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = String::from_utf8_lossy(&head[..n]);
    head.trim_start().starts_with('{') && head.contains("application/vnd.dev.sigstore.bundle")
}

/// Where the signature of `model` goes by default: `DIR/model.sig` for a folder,
/// `FILE.sig` beside a single file.
pub fn default_signature_path(model: &Path) -> PathBuf {
    if model.is_dir() {
        return model.join(DEFAULT_SIGNATURE_NAME);
    }
    let mut name = model.file_name().unwrap_or_default().to_os_string();
    name.push(".sig");
    model.with_file_name(name)
}

/// Errors of signing and of reading or checking a signature.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A file or folder could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The signature file could not be written: it exists (and replacing it was not asked
    /// for), or it is a folder or a device that is never replaced.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// A key could not be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A file could not be hashed.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// The signature file is not a JSON bundle of the expected shape (unknown or missing keys).
    #[error("{path}: malformed signature bundle: {error}")]
    Json {
        /// The signature file.
        path: String,
        /// serde's error (names the key, line and column).
        error: serde_json::Error,
    },
    /// The signature file is not UTF-8 text.
    #[error("{path}: malformed signature bundle: not UTF-8 text")]
    NotUtf8 {
        /// The signature file.
        path: String,
    },
    /// The bundle parses but is not a key-based model signature bundle.
    #[error("{path}: bad signature bundle: {problem}")]
    Bundle {
        /// The signature file.
        path: String,
        /// What is wrong.
        problem: BundleProblem,
    },
    /// The signed statement is malformed.
    #[error("{path}: malformed signed payload: {problem}")]
    Payload {
        /// The signature file.
        path: String,
        /// What is wrong.
        problem: PayloadProblem,
    },
    /// A valid format we do not verify (certificates, Sigstore keyless, pre-1.0 predicate).
    #[error("{path}: unsupported signature: {what}")]
    Unsupported {
        /// The signature file.
        path: String,
        /// What it is.
        what: Unsupported,
    },
    /// The signature file is larger than any real one.
    #[error("{path}: {size} bytes is too large for a signature (limit {limit})")]
    TooLarge {
        /// The signature file.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The bundle names another key (its hint is not this key's).
    #[error("{path}: signed by another key: the signature's key hint is {hint}, the public key's is {key_hint}")]
    HintMismatch {
        /// The signature file.
        path: String,
        /// The hint in the bundle.
        hint: String,
        /// The given key's hint.
        key_hint: String,
    },
    /// The ECDSA signature does not verify with the key.
    #[error("{path}: the signature does not verify with this public key (wrong key, or the payload was altered)")]
    BadSignature {
        /// The signature file.
        path: String,
    },
    /// The signed payload is not an in-toto statement.
    #[error("{path}: payload type {got:?}, expected {expected:?}")]
    PayloadType {
        /// The signature file.
        path: String,
        /// The envelope's payload type.
        got: String,
        /// [`bundle::PAYLOAD_TYPE`].
        expected: &'static str,
    },
    /// The subject's digest does not cover the listed resources (a forged list).
    #[error("{path}: the subject digest {expected} does not match the listed resources (they hash to {actual})")]
    RootDigest {
        /// The signature file.
        path: String,
        /// The subject's digest.
        expected: String,
        /// The resources' digest.
        actual: String,
    },
    /// The model folder has something that cannot be signed.
    #[error("{path}: {problem}")]
    Walk {
        /// The offending path.
        path: String,
        /// What is wrong.
        problem: WalkProblem,
    },
    /// A download URL could not be formed from the base URL and a signed file's name.
    #[error("{path}: {error}")]
    BaseUrl {
        /// The base URL as given.
        path: String,
        /// The URL builder's error.
        error: crate::download::DownloadError,
    },
    /// A resource name is not a safe relative path inside the model.
    #[error("{path}: resource {name:?} is not a relative path inside the model (refused)")]
    PathEscape {
        /// The signature file.
        path: String,
        /// The name as signed.
        name: String,
    },
    /// The thread pool could not start.
    #[error("cannot start worker threads: {error}")]
    Threads {
        /// rayon's error.
        error: rayon::ThreadPoolBuildError,
    },
}

impl SignError {
    /// True when the signature is well-formed but does not hold for this key (wrong key,
    /// forged or altered payload): a failed check (exit 1), not bad input (exit 2).
    pub fn is_check_failure(&self) -> bool {
        matches!(
            self,
            SignError::HintMismatch { .. }
                | SignError::BadSignature { .. }
                | SignError::PayloadType { .. }
                | SignError::RootDigest { .. }
        )
    }
}

/// What to sign and how.
#[derive(Clone, Debug)]
pub struct SignOptions {
    /// Extra paths to leave out, relative to the model folder.
    pub ignore: Vec<String>,
    /// Follow symlinks (refused otherwise).
    pub allow_symlinks: bool,
    /// Content hash of each resource (model_signing's CLI writes sha256).
    pub algo: Algo,
    /// Worker threads.
    pub threads: usize,
    /// llama-tool's per-tensor identities to add to the predicate.
    pub tensors: Option<TensorSet>,
}

/// A signed model: the bundle and what it lists.
#[derive(Clone, Debug)]
pub struct Signed {
    /// The bundle to write.
    pub bundle: Bundle,
    /// The manifest it signs.
    pub manifest: ModelManifest,
    /// Bytes hashed.
    pub bytes: u64,
}

/// The model name model_signing records: the path's last component (of the absolute path
/// when the path ends in `.` or `..`).
pub fn model_name(root: &Path) -> String {
    let last = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let name = last(root);
    if !name.is_empty() && name != ".." {
        return name;
    }
    std::fs::canonicalize(root)
        .map(|p| last(&p))
        .unwrap_or_default()
}

/// The ignore entry for `signature` when it lies inside the model folder `root`.
pub fn signature_ignore(root: &Path, signature: &Path) -> Option<String> {
    let root = std::fs::canonicalize(root).ok()?;
    let parent = signature.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = std::fs::canonicalize(parent.unwrap_or(Path::new("."))).ok()?;
    let full = parent.join(signature.file_name()?);
    let rel = full.strip_prefix(&root).ok()?;
    let s = rel.to_str()?.to_string();
    (!s.is_empty()).then_some(s)
}

/// Sign the model at `root` (folder or file): hash it with model_signing's rules plus
/// `opts.ignore` and the git ignores, and sign the statement with `key`.
pub fn sign_model(
    root: &Path,
    key: &PrivateKey,
    opts: &SignOptions,
    progress: &dyn Progress,
) -> Result<Signed, SignError> {
    let is_dir = std::fs::metadata(root)
        .map_err(|source| SignError::Io {
            path: root.display().to_string(),
            error: source,
        })?
        .is_dir();
    let mut ignore_paths: Vec<String> = serialize::GIT_IGNORES
        .iter()
        .map(|s| s.to_string())
        .collect();
    if is_dir {
        for p in &opts.ignore {
            let Some(c) = serialize::ignore_components(p) else {
                return Err(SignError::Walk {
                    path: p.clone(),
                    problem: WalkProblem::IgnorePath,
                });
            };
            ignore_paths.push(c.join("/"));
        }
    }
    ignore_paths.sort();
    ignore_paths.dedup();
    let walk = serialize::walk_model(root, &ignore_paths, opts.allow_symlinks)?;
    if let Some(r) = walk.refused.first() {
        return Err(SignError::Walk {
            path: r.path.display().to_string(),
            problem: WalkProblem::Refused { refusal: r.why },
        });
    }
    let digests = serialize::hash_files(&walk.files, opts.algo, opts.threads, progress)?;
    let resources: Vec<Resource> = walk
        .files
        .iter()
        .zip(digests)
        .map(|(f, digest)| Resource {
            name: f.name.clone(),
            digest,
        })
        .collect();
    let root_digest = statement::root_digest(&resources).map_err(|problem| SignError::Payload {
        path: root.display().to_string(),
        problem,
    })?;
    let manifest = ModelManifest {
        model_name: model_name(root),
        root_digest,
        serialization: Serialization {
            method: Method::Files,
            algo: opts.algo,
            allow_symlinks: opts.allow_symlinks,
            ignore_paths,
        },
        resources,
        tensors: opts.tensors.clone(),
    };
    let payload = manifest.to_payload();
    let sig = key.sign(&bundle::pae(bundle::PAYLOAD_TYPE, &payload));
    let bundle = Bundle::new(&payload, &sig, &key.public_key().hint());
    Ok(Signed {
        bundle,
        manifest,
        bytes: walk.files.iter().map(|f| f.size).sum(),
    })
}

/// Write `bundle` to `path` as an output file ([`llama_formats::output`]: atomically, an
/// existing file replaced only when `replace`, a device or FIFO written through).
pub fn write_bundle(bundle: &Bundle, path: &Path, replace: bool) -> Result<PathBuf, SignError> {
    Ok(write_output(path, replace, bundle.to_json().as_bytes())?)
}

/// Read and strictly parse the bundle at `path`.
pub fn read_bundle(path: &Path) -> Result<Bundle, SignError> {
    let shown = path.display().to_string();
    let io = |source| SignError::Io {
        path: shown.clone(),
        error: source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(SignError::Walk {
            path: shown,
            problem: WalkProblem::SignatureNotFile,
        });
    }
    if meta.len() > bundle::MAX_SIGNATURE_BYTES {
        return Err(SignError::TooLarge {
            path: shown,
            size: meta.len(),
            limit: bundle::MAX_SIGNATURE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let text = String::from_utf8(bytes).map_err(|_| SignError::NotUtf8 {
        path: shown.clone(),
    })?;
    Bundle::parse(&text, &shown).map_err(|e| with_path(e, &shown))
}

/// Fill in the signature path of errors made where it was not known.
fn with_path(e: SignError, path: &str) -> SignError {
    match e {
        SignError::Bundle { path: p, problem } if p.is_empty() => SignError::Bundle {
            path: path.into(),
            problem,
        },
        other => other,
    }
}

/// What the bundle says, without checking its signature (for `inspect`).
pub fn read_manifest_unverified(bundle: &Bundle, path: &str) -> Result<ModelManifest, SignError> {
    let payload = bundle.payload().map_err(|e| with_path(e, path))?;
    ModelManifest::from_payload(&payload, path)
}

/// Verify `bundle` with `key` as model_signing does: the hint (when present) names this
/// key, the ECDSA signature covers the DSSE encoding of the payload, the payload is an
/// in-toto statement with the v1.0 predicate and one subject whose digest covers the listed
/// resources. Returns the signed manifest.
pub fn verify_bundle(
    bundle: &Bundle,
    key: &PublicKey,
    path: &str,
) -> Result<ModelManifest, SignError> {
    let key_hint = key.hint();
    if let Some(hint) = bundle.hint() {
        if !hint.eq_ignore_ascii_case(&key_hint) {
            return Err(SignError::HintMismatch {
                path: path.into(),
                hint: hint.into(),
                key_hint,
            });
        }
    }
    let payload = bundle.payload().map_err(|e| with_path(e, path))?;
    let sig = bundle.signature().map_err(|e| with_path(e, path))?;
    // model_signing signs and checks the encoding with the in-toto type whatever the
    // envelope says; then refuses any other type.
    if !key.verify(&bundle::pae(bundle::PAYLOAD_TYPE, &payload), &sig) {
        return Err(SignError::BadSignature { path: path.into() });
    }
    if bundle.payload_type() != bundle::PAYLOAD_TYPE {
        return Err(SignError::PayloadType {
            path: path.into(),
            got: bundle.payload_type().into(),
            expected: bundle::PAYLOAD_TYPE,
        });
    }
    let manifest = ModelManifest::from_payload(&payload, path)?;
    manifest.check_root_digest(path)?;
    Ok(manifest)
}

/// The default signature path and the bundle sniffing of `inspect`.
#[cfg(test)]
#[test]
fn a_signature_goes_in_the_folder_or_beside_the_file_and_is_recognised() {
    let mut file = tempfile::Builder::new().suffix(".gguf").tempfile().unwrap();
    let (path, dir) = (file.path().to_path_buf(), std::env::temp_dir());
    assert_eq!(
        default_signature_path(&dir),
        dir.join(DEFAULT_SIGNATURE_NAME)
    );
    let name = path.file_name().unwrap().to_string_lossy();
    let beside = path.with_file_name(format!("{name}.sig"));
    assert_eq!(default_signature_path(&path), beside);
    assert!(!looks_like_bundle(&path) && !looks_like_bundle(&dir));
    std::io::Write::write_all(
        &mut file,
        br#" {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}"#,
    )
    .unwrap();
    assert!(looks_like_bundle(&path));
}
