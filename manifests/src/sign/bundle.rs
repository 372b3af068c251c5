//! The Sigstore bundle (protobuf-specs JSON, camelCase names, v0.3 media type) as
//! model_signing 1.1.1 writes it for key-based signatures, and the DSSE pre-authentication
//! encoding its signature covers.
//!
//! Spec: <https://github.com/sigstore/protobuf-specs> (`Bundle`, `VerificationMaterial`,
//! `PublicKeyIdentifier`), DSSE <https://github.com/secure-systems-lab/dsse/blob/v1.0.0/protocol.md>.
//! model_signing reads bundles with pydantic models set to `extra="forbid"`, so the writer
//! here emits exactly the keys it emits and nothing else; the reader is as strict (unknown
//! keys refused), accepting only what model_signing itself tolerates (`publicKey.rawBytes`
//! and `keyDetails`, which it drops; a missing `hint` or `tlogEntries`).

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{BundleProblem, SignError, Unsupported};

/// `mediaType` of every bundle model_signing writes and the only one its key verifier accepts.
pub(crate) const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// DSSE `payloadType` of an in-toto statement.
pub(crate) const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Largest signature file read (a sharded signature of a 1 TB model is a few MB).
pub(crate) const MAX_SIGNATURE_BYTES: u64 = 256 << 20;

/// A whole bundle.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Bundle {
    /// Always [`BUNDLE_MEDIA_TYPE`].
    pub media_type: String,
    /// How to find the key.
    pub(crate) verification_material: VerificationMaterial,
    /// Refused when present: a plain message signature is not a model signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) message_signature: Option<serde_json::Value>,
    /// The signed statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dsse_envelope: Option<Envelope>,
}

/// `verificationMaterial`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct VerificationMaterial {
    /// The key identifier (key-based signatures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PublicKeyIdentifier>,
    /// Refused when present (certificate signatures are not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) x509_certificate_chain: Option<serde_json::Value>,
    /// Refused when present (certificate signatures are not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) certificate: Option<serde_json::Value>,
    /// Transparency-log entries: always empty for key-based signatures.
    #[serde(default)]
    pub(crate) tlog_entries: Vec<serde_json::Value>,
    /// Refused when present (timestamps come with Sigstore signatures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) timestamp_verification_data: Option<serde_json::Value>,
}

/// `publicKey`: an unauthenticated hint naming the key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PublicKeyIdentifier {
    /// Hex SHA-256 of the key's PEM SubjectPublicKeyInfo text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Old writers' key bytes (model_signing drops them; so do we).
    #[serde(default, skip_serializing)]
    pub(crate) raw_bytes: Option<serde_json::Value>,
    /// Old writers' key details (model_signing drops them; so do we).
    #[serde(default, skip_serializing)]
    pub(crate) key_details: Option<serde_json::Value>,
}

/// `dsseEnvelope`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Envelope {
    /// Base64 of the statement's exact bytes.
    pub payload: String,
    /// Always [`PAYLOAD_TYPE`].
    pub payload_type: String,
    /// Exactly one signature.
    pub(crate) signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnvelopeSignature {
    /// Base64 of the ASN.1 DER ECDSA signature.
    pub sig: String,
    /// Key id; model_signing writes an empty string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) keyid: Option<String>,
}

/// DSSE v1 pre-authentication encoding: `DSSEv1 <len> <type> <len> <payload>`, lengths in
/// ASCII decimal bytes. The signature covers exactly these bytes.
pub(crate) fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl Bundle {
    /// The bundle model_signing writes for `payload` signed as `der_signature` with the key
    /// whose hint is `hint`.
    pub fn new(payload: &[u8], der_signature: &[u8], hint: &str) -> Bundle {
        Bundle {
            media_type: BUNDLE_MEDIA_TYPE.into(),
            verification_material: VerificationMaterial {
                public_key: Some(PublicKeyIdentifier {
                    hint: Some(hint.into()),
                    raw_bytes: None,
                    key_details: None,
                }),
                x509_certificate_chain: None,
                certificate: None,
                tlog_entries: Vec::new(),
                timestamp_verification_data: None,
            },
            message_signature: None,
            dsse_envelope: Some(Envelope {
                payload: b64().encode(payload),
                payload_type: PAYLOAD_TYPE.into(),
                signatures: vec![EnvelopeSignature {
                    sig: b64().encode(der_signature),
                    keyid: Some(String::new()),
                }],
            }),
        }
    }

    /// Compact JSON, as model_signing writes it (no trailing newline).
    pub fn to_json(&self) -> String {
        // Serializing plain strings and vectors cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse a bundle strictly (`path` names it in errors) and check that it is a key-based
    /// DSSE bundle model_signing would accept.
    pub fn parse(text: &str, path: &str) -> Result<Bundle, SignError> {
        let b: Bundle = serde_json::from_str(text).map_err(|error| SignError::Json {
            path: path.into(),
            error,
        })?;
        let bad = |problem: BundleProblem| SignError::Bundle {
            path: path.into(),
            problem,
        };
        if b.media_type != BUNDLE_MEDIA_TYPE {
            return Err(bad(BundleProblem::MediaType {
                found: b.media_type.clone(),
            }));
        }
        let vm = &b.verification_material;
        if vm.x509_certificate_chain.is_some() || vm.certificate.is_some() {
            return Err(SignError::Unsupported {
                path: path.into(),
                what: Unsupported::Certificate,
            });
        }
        if vm.public_key.is_none() {
            return Err(bad(BundleProblem::NoPublicKey));
        }
        if !vm.tlog_entries.is_empty() || vm.timestamp_verification_data.is_some() {
            return Err(SignError::Unsupported {
                path: path.into(),
                what: Unsupported::Keyless,
            });
        }
        if b.message_signature.is_some() {
            return Err(bad(BundleProblem::MessageSignature));
        }
        let Some(env) = &b.dsse_envelope else {
            return Err(bad(BundleProblem::NoEnvelope));
        };
        if env.signatures.len() != 1 {
            return Err(bad(BundleProblem::SignatureCount {
                count: env.signatures.len(),
            }));
        }
        b.payload()?;
        b.signature()?;
        Ok(b)
    }

    fn envelope(&self) -> &Envelope {
        // `parse` and `new` guarantee it.
        static EMPTY: Envelope = Envelope {
            payload: String::new(),
            payload_type: String::new(),
            signatures: Vec::new(),
        };
        self.dsse_envelope.as_ref().unwrap_or(&EMPTY)
    }

    /// The DSSE payload type.
    pub fn payload_type(&self) -> &str {
        &self.envelope().payload_type
    }

    /// The key hint, when the bundle has one.
    pub fn hint(&self) -> Option<&str> {
        self.verification_material
            .public_key
            .as_ref()
            .and_then(|k| k.hint.as_deref())
            .filter(|h| !h.is_empty())
    }

    /// The payload's bytes.
    pub fn payload(&self) -> Result<Vec<u8>, SignError> {
        b64()
            .decode(self.envelope().payload.trim())
            .map_err(|error| SignError::Bundle {
                path: String::new(),
                problem: BundleProblem::PayloadBase64 { error },
            })
    }

    /// The DER signature's bytes.
    pub fn signature(&self) -> Result<Vec<u8>, SignError> {
        let sig = self
            .envelope()
            .signatures
            .first()
            .map(|s| s.sig.trim())
            .unwrap_or("");
        b64().decode(sig).map_err(|error| SignError::Bundle {
            path: String::new(),
            problem: BundleProblem::SignatureBase64 { error },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // DSSE protocol.md test vector: type "http://example.com/HelloWorld", body "hello world".
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn round_trips_and_refuses_unknown_keys() {
        let b = Bundle::new(b"{}", b"\x30\x00", "ab");
        let text = b.to_json();
        assert_eq!(
            text,
            r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"ab"},"tlogEntries":[]},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"MAA=","keyid":""}]}}"#
        );
        assert_eq!(Bundle::parse(&text, "s").unwrap(), b);
        let extra = text.replacen("{\"mediaType\"", "{\"x\":1,\"mediaType\"", 1);
        assert!(matches!(
            Bundle::parse(&extra, "s"),
            Err(SignError::Json { .. })
        ));
        let deep = text.replace("\"keyid\":\"\"", "\"keyid\":\"\",\"extra\":0");
        assert!(matches!(
            Bundle::parse(&deep, "s"),
            Err(SignError::Json { .. })
        ));
        let media = text.replace("bundle.v0.3+json", "bundle.v0.2+json");
        assert!(matches!(
            Bundle::parse(&media, "s"),
            Err(SignError::Bundle { .. })
        ));
    }
}
