//! The signed payload: an in-toto v1 statement
//! (<https://github.com/in-toto/attestation/tree/main/spec/v1>) with model_signing's
//! `https://model_signing/signature/v1.0` predicate.
//!
//! One subject: the model's name (informative only) and the SHA-256 over the concatenated raw
//! digests of the resources in listed order. The predicate holds `serialization` (how the
//! folder was turned into resources) and `resources` (`{name, algorithm, digest}` per file or
//! file shard, sorted by path components). Verifiers of v1.0 ignore other predicate fields;
//! llama-tool adds `llama_tool.tensors` there (per-tensor identities, see
//! [`crate::tensors`]).

use std::cmp::Ordering;

use serde::Serialize;
use sha2::Digest as _;

use super::{PayloadProblem, SignError, Unsupported};
use crate::digest::Algo;
use crate::json::TensorSet;

/// in-toto statement `_type`.
pub(crate) const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// model_signing v1.0 predicate type.
pub(crate) const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// model_signing's pre-1.0 predicate type (not supported).
pub(crate) const PREDICATE_TYPE_COMPAT: &str = "https://model_signing/Digests/v0.1";

/// How a folder became resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    /// One resource per file (`method: files`), named by its relative path.
    Files,
    /// One resource per `shard_size` bytes of each non-empty file (`method: shards`), named
    /// `path:start:end`.
    Shards {
        /// Bytes per shard.
        shard_size: u64,
    },
}

/// The `serialization` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Serialization {
    /// Files or shards.
    pub method: Method,
    /// The content hash (`sha256` or `blake3`).
    pub algo: Algo,
    /// Whether symlinks were followed.
    pub allow_symlinks: bool,
    /// Paths (relative to the model) left out of the hashing.
    pub ignore_paths: Vec<String>,
}

/// One signed resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// Relative POSIX path, or `path:start:end` for a shard.
    pub name: String,
    /// Hex digest.
    pub digest: String,
}

/// A model's signed manifest: what the payload says.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelManifest {
    /// The model's name (the folder's last component when signed; informative).
    pub model_name: String,
    /// The subject's SHA-256 (hex).
    pub root_digest: String,
    /// How resources were made.
    pub serialization: Serialization,
    /// The resources, in listed order.
    pub resources: Vec<Resource>,
    /// llama-tool's per-tensor identities, when signed with `--tensors`.
    pub tensors: Option<TensorSet>,
}

/// Order of resource names: by path components (so `tokenizer/x` sorts before
/// `tokenizer.model`, as Python's `PurePosixPath` comparison does), then shard start and end
/// as numbers.
pub(crate) fn compare_names(a: &str, b: &str, shards: bool) -> Ordering {
    let split = |s: &str| -> (String, u64, u64) {
        if shards {
            let mut it = s.rsplitn(3, ':');
            let end = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            let start = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            let path = it.next().unwrap_or("").to_string();
            (path, start, end)
        } else {
            (s.to_string(), 0, 0)
        }
    };
    let (pa, sa, ea) = split(a);
    let (pb, sb, eb) = split(b);
    let ca: Vec<&str> = pa
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let cb: Vec<&str> = pb
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    ca.cmp(&cb).then(sa.cmp(&sb)).then(ea.cmp(&eb))
}

/// The algorithm name resources carry: `sha256`, `blake3`, or `sha256-sharded-N` for shards.
fn resource_algorithm(s: &Serialization) -> String {
    match s.method {
        Method::Files => s.algo.name().to_string(),
        Method::Shards { shard_size } => format!("{}-sharded-{shard_size}", s.algo.name()),
    }
}

/// SHA-256 over the raw digests of `resources`, in order.
pub fn root_digest(resources: &[Resource]) -> Result<String, PayloadProblem> {
    let mut h = sha2::Sha256::new();
    for r in resources {
        let raw = hex::decode(&r.digest).map_err(|_| PayloadProblem::DigestNotHex {
            name: r.name.clone(),
        })?;
        h.update(&raw);
    }
    Ok(hex::encode(h.finalize().as_slice()))
}

#[derive(Serialize)]
struct StatementOut<'a> {
    #[serde(rename = "_type")]
    type_: &'a str,
    subject: [SubjectOut<'a>; 1],
    #[serde(rename = "predicateType")]
    predicate_type: &'a str,
    predicate: PredicateOut<'a>,
}

#[derive(Serialize)]
struct SubjectOut<'a> {
    name: &'a str,
    digest: DigestOut<'a>,
}

#[derive(Serialize)]
struct DigestOut<'a> {
    sha256: &'a str,
}

#[derive(Serialize)]
struct PredicateOut<'a> {
    resources: Vec<ResourceOut<'a>>,
    serialization: SerializationOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    llama_tool: Option<LlamaToolOut<'a>>,
}

#[derive(Serialize)]
struct ResourceOut<'a> {
    algorithm: &'a str,
    digest: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct SerializationOut<'a> {
    method: &'a str,
    hash_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard_size: Option<u64>,
    allow_symlinks: bool,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    ignore_paths: &'a [String],
}

#[derive(Serialize)]
struct LlamaToolOut<'a> {
    tensors: &'a TensorSet,
}

impl ModelManifest {
    /// The statement's bytes: JSON indented by two spaces, keys in the order model_signing's
    /// protobuf writer emits them.
    pub(crate) fn to_payload(&self) -> Vec<u8> {
        let algorithm = resource_algorithm(&self.serialization);
        let s = &self.serialization;
        let out = StatementOut {
            type_: STATEMENT_TYPE,
            subject: [SubjectOut {
                name: &self.model_name,
                digest: DigestOut {
                    sha256: &self.root_digest,
                },
            }],
            predicate_type: PREDICATE_TYPE,
            predicate: PredicateOut {
                resources: self
                    .resources
                    .iter()
                    .map(|r| ResourceOut {
                        algorithm: &algorithm,
                        digest: &r.digest,
                        name: &r.name,
                    })
                    .collect(),
                serialization: SerializationOut {
                    method: match s.method {
                        Method::Files => "files",
                        Method::Shards { .. } => "shards",
                    },
                    hash_type: s.algo.name(),
                    shard_size: match s.method {
                        Method::Files => None,
                        Method::Shards { shard_size } => Some(shard_size),
                    },
                    allow_symlinks: s.allow_symlinks,
                    ignore_paths: &s.ignore_paths,
                },
                llama_tool: self
                    .tensors
                    .as_ref()
                    .map(|tensors| LlamaToolOut { tensors }),
            },
        };
        // Plain strings, numbers and vectors always serialize.
        serde_json::to_vec_pretty(&out).unwrap_or_default()
    }

    /// Parse a payload (`path` names the signature in errors). Checks what model_signing's
    /// `dsse_payload_to_manifest` checks except the root digest, which
    /// [`ModelManifest::check_root_digest`] does.
    pub(crate) fn from_payload(payload: &[u8], path: &str) -> Result<ModelManifest, SignError> {
        let bad = |problem: PayloadProblem| SignError::Payload {
            path: path.into(),
            problem,
        };
        let v: serde_json::Value = serde_json::from_slice(payload)
            .map_err(|error| bad(PayloadProblem::NotJson { error }))?;
        let obj = v
            .as_object()
            .ok_or_else(|| bad(PayloadProblem::NotObject))?;
        let str_field = |o: &serde_json::Map<String, serde_json::Value>, k: &str, at: &str| {
            o.get(k)
                .and_then(|x| x.as_str())
                .map(str::to_string)
                .ok_or_else(|| {
                    bad(PayloadProblem::MissingString {
                        field: format!("{at}{k}"),
                    })
                })
        };
        let t = str_field(obj, "_type", "")?;
        if t != STATEMENT_TYPE {
            return Err(bad(PayloadProblem::StatementType { found: t }));
        }
        let pt = str_field(obj, "predicateType", "")?;
        if pt == PREDICATE_TYPE_COMPAT {
            return Err(SignError::Unsupported {
                path: path.into(),
                what: Unsupported::PredicateCompat,
            });
        }
        if pt != PREDICATE_TYPE {
            return Err(bad(PayloadProblem::PredicateType { found: pt }));
        }
        let subjects = obj
            .get("subject")
            .and_then(|s| s.as_array())
            .ok_or_else(|| bad(PayloadProblem::NoSubject))?;
        let [subject] = subjects.as_slice() else {
            return Err(bad(PayloadProblem::SubjectCount {
                count: subjects.len(),
            }));
        };
        let subject = subject
            .as_object()
            .ok_or_else(|| bad(PayloadProblem::SubjectNotObject))?;
        let model_name = str_field(subject, "name", "subject[0].")?;
        let root_digest = subject
            .get("digest")
            .and_then(|d| d.get("sha256"))
            .and_then(|d| d.as_str())
            .map(|d| d.to_ascii_lowercase())
            .ok_or_else(|| bad(PayloadProblem::NoSubjectDigest))?;
        let predicate = obj
            .get("predicate")
            .and_then(|p| p.as_object())
            .ok_or_else(|| bad(PayloadProblem::NoPredicate))?;
        let ser = predicate
            .get("serialization")
            .and_then(|s| s.as_object())
            .ok_or_else(|| bad(PayloadProblem::NoSerialization))?;
        let method = str_field(ser, "method", "predicate.serialization.")?;
        let hash_type = str_field(ser, "hash_type", "predicate.serialization.")?;
        let algo = match hash_type.as_str() {
            "sha256" => Algo::Sha256,
            "blake3" => Algo::Blake3,
            other => {
                return Err(SignError::Unsupported {
                    path: path.into(),
                    what: Unsupported::HashType {
                        found: other.into(),
                    },
                })
            }
        };
        let allow_symlinks = match ser.get("allow_symlinks") {
            Some(serde_json::Value::Bool(b)) => *b,
            _ => return Err(bad(PayloadProblem::AllowSymlinks)),
        };
        let ignore_paths = match ser.get("ignore_paths") {
            None => Vec::new(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|p| p.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(PayloadProblem::IgnorePathsNotStrings))?,
            Some(_) => return Err(bad(PayloadProblem::IgnorePathsNotList)),
        };
        let method = match method.as_str() {
            "files" => Method::Files,
            "shards" => {
                // Protobuf's Struct stores numbers as doubles: model_signing writes 1000.0.
                let size = ser.get("shard_size").and_then(|n| {
                    n.as_u64().or_else(|| {
                        n.as_f64()
                            .filter(|f| f.fract() == 0.0 && *f >= 1.0 && *f < 9.0e15)
                            .map(|f| f as u64)
                    })
                });
                match size {
                    Some(shard_size) if shard_size > 0 => Method::Shards { shard_size },
                    _ => return Err(bad(PayloadProblem::ShardSize)),
                }
            }
            other => {
                return Err(SignError::Unsupported {
                    path: path.into(),
                    what: Unsupported::Method {
                        found: other.into(),
                    },
                })
            }
        };
        let serialization = Serialization {
            method,
            algo,
            allow_symlinks,
            ignore_paths,
        };
        let expected_algorithm = resource_algorithm(&serialization);
        let list = predicate
            .get("resources")
            .and_then(|r| r.as_array())
            .ok_or_else(|| bad(PayloadProblem::NoResources))?;
        let mut resources = Vec::with_capacity(list.len());
        let mut seen = std::collections::HashSet::new();
        for (i, r) in list.iter().enumerate() {
            let at = format!("predicate.resources[{i}].");
            let r = r
                .as_object()
                .ok_or_else(|| bad(PayloadProblem::ResourceNotObject { index: i }))?;
            let name = str_field(r, "name", &at)?;
            let algorithm = str_field(r, "algorithm", &at)?;
            if algorithm != expected_algorithm && algorithm != algo.name() {
                return Err(bad(PayloadProblem::ResourceAlgorithm {
                    index: i,
                    found: algorithm,
                    expected: expected_algorithm.clone(),
                }));
            }
            let digest = str_field(r, "digest", &at)?.to_ascii_lowercase();
            if digest.len() != algo.hex_len() || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(PayloadProblem::ResourceDigest {
                    index: i,
                    hex_len: algo.hex_len(),
                }));
            }
            if !seen.insert(name.clone()) {
                return Err(bad(PayloadProblem::DuplicateName { index: i, name }));
            }
            resources.push(Resource { name, digest });
        }
        let tensors = match predicate.get("llama_tool").and_then(|l| l.get("tensors")) {
            None => None,
            Some(t) => Some(
                serde_json::from_value::<TensorSet>(t.clone())
                    .map_err(|error| bad(PayloadProblem::Tensors { error }))?,
            ),
        };
        Ok(ModelManifest {
            model_name,
            root_digest,
            serialization,
            resources,
            tensors,
        })
    }

    /// The subject's digest must be the SHA-256 of the listed resources' digests.
    pub fn check_root_digest(&self, path: &str) -> Result<(), SignError> {
        let actual = root_digest(&self.resources).map_err(|problem| SignError::Payload {
            path: path.into(),
            problem,
        })?;
        if actual != self.root_digest {
            return Err(SignError::RootDigest {
                path: path.into(),
                expected: self.root_digest.clone(),
                actual,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_sort_puts_tokenizer_folder_before_tokenizer_model() {
        let mut names = vec![
            "tokenizer.model",
            "tokenizer/x",
            "a",
            "tokenizer/a/b",
            "b.c",
        ];
        names.sort_by(|a, b| compare_names(a, b, false));
        assert_eq!(
            names,
            [
                "a",
                "b.c",
                "tokenizer/a/b",
                "tokenizer/x",
                "tokenizer.model"
            ]
        );
        let mut shards = vec!["f:10:20", "f:2:10", "f.x:0:1", "f/y:0:1"];
        shards.sort_by(|a, b| compare_names(a, b, true));
        assert_eq!(shards, ["f:2:10", "f:10:20", "f/y:0:1", "f.x:0:1"]);
    }

    #[test]
    fn payload_round_trips_and_root_digest_is_checked() {
        let m = ModelManifest {
            model_name: "m".into(),
            root_digest: String::new(),
            serialization: Serialization {
                method: Method::Files,
                algo: Algo::Sha256,
                allow_symlinks: false,
                ignore_paths: vec![".git".into()],
            },
            resources: vec![Resource {
                name: "empty".into(),
                digest: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
            }],
            tensors: None,
        };
        let mut m = m;
        m.root_digest = root_digest(&m.resources).unwrap();
        let back = ModelManifest::from_payload(&m.to_payload(), "s").unwrap();
        assert_eq!(back, m);
        back.check_root_digest("s").unwrap();
        let mut forged = back.clone();
        forged.resources[0].digest = "0".repeat(64);
        assert!(matches!(
            forged.check_root_digest("s"),
            Err(SignError::RootDigest { .. })
        ));
    }
}
