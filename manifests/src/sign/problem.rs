//! What exactly is wrong with a signature bundle, its payload or a model folder: one variant
//! per case, carried by [`super::SignError`].

use super::bundle::BUNDLE_MEDIA_TYPE;
use super::statement::{PREDICATE_TYPE, PREDICATE_TYPE_COMPAT, STATEMENT_TYPE};

/// Why a JSON bundle is not a key-based DSSE model signature bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleProblem {
    /// Another bundle media type.
    #[error("mediaType {found:?}, expected {BUNDLE_MEDIA_TYPE:?}")]
    MediaType {
        /// The bundle's media type.
        found: String,
    },
    /// No `verificationMaterial.publicKey`.
    #[error("verificationMaterial has no publicKey")]
    NoPublicKey,
    /// A plain message signature.
    #[error("messageSignature instead of dsseEnvelope (not a model signature)")]
    MessageSignature,
    /// No DSSE envelope.
    #[error("no dsseEnvelope")]
    NoEnvelope,
    /// Not exactly one signature in the envelope.
    #[error("{count} signatures in dsseEnvelope, expected 1")]
    SignatureCount {
        /// How many there are.
        count: usize,
    },
    /// The payload is not base64.
    #[error("dsseEnvelope.payload is not base64: {error}")]
    PayloadBase64 {
        /// The decoder's error.
        error: base64::DecodeError,
    },
    /// The signature is not base64.
    #[error("dsseEnvelope.signatures[0].sig is not base64: {error}")]
    SignatureBase64 {
        /// The decoder's error.
        error: base64::DecodeError,
    },
}

/// Why a signed payload is not a model_signing v1.0 in-toto statement.
#[derive(Debug, thiserror::Error)]
pub enum PayloadProblem {
    /// Not JSON.
    #[error("not JSON: {error}")]
    NotJson {
        /// serde's error.
        error: serde_json::Error,
    },
    /// JSON, but not an object.
    #[error("not a JSON object")]
    NotObject,
    /// A required string field is absent or of another type.
    #[error("{field}: missing or not a string")]
    MissingString {
        /// The field's path (`subject[0].name`).
        field: String,
    },
    /// Another statement type.
    #[error("_type {found:?}, expected {STATEMENT_TYPE:?}")]
    StatementType {
        /// The statement's `_type`.
        found: String,
    },
    /// Another predicate type.
    #[error("predicateType {found:?}, expected {PREDICATE_TYPE:?}")]
    PredicateType {
        /// The statement's `predicateType`.
        found: String,
    },
    /// No `subject` list.
    #[error("subject: missing or not a list")]
    NoSubject,
    /// Not exactly one subject.
    #[error("{count} subjects, expected exactly 1")]
    SubjectCount {
        /// How many there are.
        count: usize,
    },
    /// The subject is not an object.
    #[error("subject[0]: not an object")]
    SubjectNotObject,
    /// The subject has no SHA-256 digest.
    #[error("subject[0].digest.sha256: missing")]
    NoSubjectDigest,
    /// No `predicate` object.
    #[error("predicate: missing or not an object")]
    NoPredicate,
    /// No `predicate.serialization` object.
    #[error("predicate.serialization: missing")]
    NoSerialization,
    /// `allow_symlinks` absent or not a boolean.
    #[error("predicate.serialization.allow_symlinks: missing or not a boolean")]
    AllowSymlinks,
    /// `ignore_paths` holds something other than strings.
    #[error("predicate.serialization.ignore_paths: not strings")]
    IgnorePathsNotStrings,
    /// `ignore_paths` is not a list.
    #[error("predicate.serialization.ignore_paths: not a list")]
    IgnorePathsNotList,
    /// A sharded serialization without a usable shard size.
    #[error("predicate.serialization.shard_size: missing or not a positive integer")]
    ShardSize,
    /// No `predicate.resources` list.
    #[error("predicate.resources: missing or not a list")]
    NoResources,
    /// A resource that is not an object.
    #[error("predicate.resources[{index}].: not an object")]
    ResourceNotObject {
        /// Its index.
        index: usize,
    },
    /// A resource whose algorithm is not the serialization's.
    #[error(
        "predicate.resources[{index}].algorithm {found:?}, but serialization says {expected:?}"
    )]
    ResourceAlgorithm {
        /// Its index.
        index: usize,
        /// The resource's algorithm.
        found: String,
        /// The serialization's.
        expected: String,
    },
    /// A resource digest of the wrong length or not hex.
    #[error("predicate.resources[{index}].digest: expected {hex_len} hex digits")]
    ResourceDigest {
        /// Its index.
        index: usize,
        /// The hex digits the algorithm gives.
        hex_len: usize,
    },
    /// Two resources with one name.
    #[error("predicate.resources[{index}].name {name:?} listed twice")]
    DuplicateName {
        /// The second one's index.
        index: usize,
        /// The name.
        name: String,
    },
    /// llama-tool's tensor identities do not parse.
    #[error("predicate.llama_tool.tensors: {error}")]
    Tensors {
        /// serde's error.
        error: serde_json::Error,
    },
    /// A resource digest that is not hex (when computing the root digest).
    #[error("resource {name:?}: digest is not hex")]
    DigestNotHex {
        /// The resource.
        name: String,
    },
    /// A sharded resource name that is not `path:start:end`.
    #[error("shard resource {name:?} is not path:start:end")]
    ShardName {
        /// The resource name.
        name: String,
    },
    /// A file's shards leave gaps, overlap or have the wrong size.
    #[error(
        "shards of {name:?} do not tile the file in {shard_size}-byte pieces (at {start}:{end})"
    )]
    ShardTiling {
        /// The file.
        name: String,
        /// The serialization's shard size.
        shard_size: u64,
        /// Start of the first offending shard.
        start: u64,
        /// Its end.
        end: u64,
    },
}

/// A valid signature of a kind llama-tool does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// Signed with a certificate.
    #[error("certificate-based signature (only key-based signatures are verified)")]
    Certificate,
    /// A Sigstore keyless signature.
    #[error("transparency-log entries or timestamps (a Sigstore keyless signature; only key-based signatures are verified)")]
    Keyless,
    /// The pre-1.0 model_signing predicate.
    #[error("pre-1.0 model_signing predicate {PREDICATE_TYPE_COMPAT} (re-sign with model_signing >= 1.0 or llama-tool)")]
    PredicateCompat,
    /// A resource hash other than sha256 or blake3.
    #[error("hash_type {found:?} (sha256 and blake3 are supported)")]
    HashType {
        /// The serialization's hash type.
        found: String,
    },
    /// A serialization method other than files or shards.
    #[error("serialization method {found:?}")]
    Method {
        /// The method.
        found: String,
    },
    /// A single-file signature given for a download (it names no file).
    #[error(
        "a single-file signature names no file to download (verify the file after fetching it)"
    )]
    SingleFileDownload,
}

/// Why a path cannot be signed (or read as a signature).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkProblem {
    /// An `--ignore` path outside the model.
    #[error("ignore path must be relative and inside the model folder")]
    IgnorePath,
    /// Something in the folder that cannot be a resource.
    #[error("{refusal}")]
    Refused {
        /// What it is.
        refusal: Refusal,
    },
    /// The model is neither a regular file nor a folder.
    #[error("not a regular file or folder")]
    NotFileOrFolder,
    /// A file name that is not UTF-8.
    #[error("file name is not UTF-8 (resource names are UTF-8)")]
    NameNotUtf8,
    /// A file grew or shrank while it was hashed.
    #[error("changed size while being hashed ({before} -> {after} bytes)")]
    ChangedSize {
        /// Its size when listed.
        before: u64,
        /// The bytes hashed.
        after: u64,
    },
    /// The signature path is a folder or a special file.
    #[error("signature is not a regular file")]
    SignatureNotFile,
}

/// Why a folder entry is not signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A symlink, not followed by default.
    #[error("symlink (refused; --allow-symlinks follows symlinks)")]
    Symlink,
    /// A symlink to a folder (never followed).
    #[error("symlink to a folder (not followed)")]
    SymlinkToFolder,
    /// A symlink to a FIFO, socket or device.
    #[error("symlink to a FIFO or other special file")]
    SymlinkToSpecial,
    /// A symlink to nothing.
    #[error("dangling symlink")]
    DanglingSymlink,
    /// A FIFO, socket or device.
    #[error("FIFO, socket or device, not a regular file")]
    Special,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field_and_the_values() {
        assert_eq!(
            PayloadProblem::ResourceNotObject { index: 2 }.to_string(),
            "predicate.resources[2].: not an object"
        );
        assert_eq!(
            PayloadProblem::ResourceAlgorithm {
                index: 0,
                found: "md5".into(),
                expected: "sha256".into(),
            }
            .to_string(),
            r#"predicate.resources[0].algorithm "md5", but serialization says "sha256""#
        );
        assert_eq!(
            PayloadProblem::ShardTiling {
                name: "a".into(),
                shard_size: 8,
                start: 8,
                end: 12,
            }
            .to_string(),
            r#"shards of "a" do not tile the file in 8-byte pieces (at 8:12)"#
        );
        assert_eq!(
            BundleProblem::MediaType { found: "x".into() }.to_string(),
            r#"mediaType "x", expected "application/vnd.dev.sigstore.bundle.v0.3+json""#
        );
        assert_eq!(
            WalkProblem::Refused {
                refusal: Refusal::Symlink
            }
            .to_string(),
            "symlink (refused; --allow-symlinks follows symlinks)"
        );
        assert_eq!(
            WalkProblem::ChangedSize {
                before: 3,
                after: 5
            }
            .to_string(),
            "changed size while being hashed (3 -> 5 bytes)"
        );
    }
}
