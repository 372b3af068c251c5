//! EC keys for model signing: PEM private keys in SEC1 (`EC PRIVATE KEY`) or PKCS#8
//! (`PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY` with a password) form, PEM public keys in
//! SubjectPublicKeyInfo form, on the curves model_signing accepts: P-256 (ECDSA with SHA-256),
//! P-384 (SHA-384) and P-521 (SHA-512), as its `get_ec_key_hash` pairs them.
//!
//! The cryptography is RustCrypto's (`p256`/`p384`/`p521` + `ecdsa`, `pkcs8` with PBES2
//! decryption, `sec1`); this module only picks the curve and names what it refused.
//! Signatures are ASN.1 DER, RFC 6979 deterministic; verification accepts high-S signatures
//! (it normalizes S first), as OpenSSL and Python's `cryptography` do.

use std::path::Path;

use ecdsa::signature::{Signer as _, Verifier as _};
use pkcs8::der::asn1::ObjectIdentifier;
use pkcs8::der::pem::LineEnding;
use pkcs8::der::Decode as _;
use pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePublicKey as _};
use sha2::Digest as _;

/// Largest key file read (a PEM key is a few hundred bytes).
const MAX_KEY_BYTES: u64 = 64 << 10;

const ID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";

/// A curve model_signing accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256 (secp256r1, prime256v1), signed over SHA-256.
    P256,
    /// NIST P-384 (secp384r1), signed over SHA-384.
    P384,
    /// NIST P-521 (secp521r1), signed over SHA-512.
    P521,
}

impl Curve {
    /// The name OpenSSL uses (`prime256v1`, `secp384r1`, `secp521r1`).
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    fn from_oid(oid: &ObjectIdentifier) -> Result<Curve, KeyKind> {
        Ok(match oid.to_string().as_str() {
            "1.2.840.10045.3.1.7" => Curve::P256,
            "1.3.132.0.34" => Curve::P384,
            "1.3.132.0.35" => Curve::P521,
            "1.3.132.0.10" => return Err(KeyKind::Secp256k1),
            _ => return Err(KeyKind::Curve { oid: *oid }),
        })
    }
}

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("{path}: cannot read key: {error}")]
    Read {
        /// The key file.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file is not a PEM key of a kind we know.
    #[error("{path}: not a PEM key: {problem}")]
    NotPem {
        /// The key file.
        path: String,
        /// What was found instead.
        problem: NotPem,
    },
    /// A key type or curve model_signing does not sign with.
    #[error("{path}: unsupported key type: {kind} (model signing uses EC keys on P-256, P-384 or P-521)")]
    Unsupported {
        /// The key file.
        path: String,
        /// The type found.
        kind: KeyKind,
    },
    /// The key is encrypted and no password was given.
    #[error("{path}: the private key is encrypted: give its password (--password-file FILE or LLAMA_TOOL_KEY_PASSWORD)")]
    NeedsPassword {
        /// The key file.
        path: String,
    },
    /// The password does not open the key.
    #[error("{path}: cannot decrypt the private key (wrong password?): {error}")]
    Decrypt {
        /// The key file.
        path: String,
        /// The decoder's error.
        error: pkcs8::Error,
    },
    /// The key's DER contents are malformed.
    #[error("{path}: malformed {what}: {problem}")]
    Malformed {
        /// The key file.
        path: String,
        /// What was being decoded.
        what: &'static str,
        /// The decoder's complaint.
        problem: Undecodable,
    },
    /// A private key was given where a public key belongs.
    #[error(
        "{path}: is a private key; give the public key (openssl ec -in KEY -pubout -out KEY.pub)"
    )]
    PrivateForPublic {
        /// The key file.
        path: String,
    },
}

/// A key model_signing does not sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyKind {
    /// An RSA key.
    #[error("RSA")]
    Rsa,
    /// A DSA key.
    #[error("DSA")]
    Dsa,
    /// An OpenSSH-format private key.
    #[error("OpenSSH private key")]
    OpenSsh,
    /// A certificate, not a key.
    #[error("X.509 certificate")]
    Certificate,
    /// An Ed25519 key.
    #[error("Ed25519")]
    Ed25519,
    /// An Ed448 key.
    #[error("Ed448")]
    Ed448,
    /// An X25519 key.
    #[error("X25519")]
    X25519,
    /// An X448 key.
    #[error("X448")]
    X448,
    /// Another algorithm.
    #[error("algorithm {oid}")]
    Algorithm {
        /// The algorithm's OID.
        oid: ObjectIdentifier,
    },
    /// An EC key on secp256k1.
    #[error("EC key on secp256k1")]
    Secp256k1,
    /// An EC key on another named curve.
    #[error("EC key on curve {oid}")]
    Curve {
        /// The curve's OID.
        oid: ObjectIdentifier,
    },
    /// An EC key whose curve is given by explicit parameters.
    #[error("EC key with explicit (unnamed) curve parameters")]
    ExplicitCurve,
    /// A PEM key encrypted the legacy OpenSSL way (`Proc-Type: 4,ENCRYPTED`).
    #[error("legacy OpenSSL-encrypted PEM (convert it: openssl pkcs8 -topk8 -in KEY -out KEY.p8)")]
    LegacyEncrypted,
}

/// Why a key file is not a PEM key of a kind we read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPem {
    /// A folder, device or FIFO.
    #[error("not a regular file")]
    NotAFile,
    /// Larger than any key.
    #[error("{size} bytes is too large for a key")]
    TooLarge {
        /// The file's size.
        size: u64,
    },
    /// Not UTF-8 text (a DER key, most likely).
    #[error("binary file (DER keys are not accepted; PEM only)")]
    Binary,
    /// A public key where the private key belongs.
    #[error("this is a public key; signing needs the private key")]
    PublicForPrivate,
    /// No private-key PEM block.
    #[error("no `-----BEGIN ... PRIVATE KEY-----` block")]
    NoPrivateKey,
    /// No public-key PEM block.
    #[error("no `-----BEGIN PUBLIC KEY-----` block")]
    NoPublicKey,
    /// A private-key block with a label we do not know.
    #[error("unknown PEM label `{label}`")]
    UnknownLabel {
        /// The label.
        label: String,
    },
}

/// What a decoder refused in a key's PEM or DER contents.
#[derive(Debug, thiserror::Error)]
pub enum Undecodable {
    /// The PEM armour or base64.
    #[error("{error}")]
    Pem {
        /// The PEM decoder's error.
        error: pkcs8::der::pem::Error,
    },
    /// The DER structure.
    #[error("{error}")]
    Der {
        /// The DER decoder's error.
        error: pkcs8::der::Error,
    },
    /// The PKCS#8 structure or its encryption.
    #[error("{error}")]
    Pkcs8 {
        /// The decoder's error.
        error: pkcs8::Error,
    },
    /// The SubjectPublicKeyInfo structure or its point.
    #[error("{error}")]
    Spki {
        /// The decoder's error.
        error: pkcs8::spki::Error,
    },
    /// The key is not a valid SEC1 scalar of its curve.
    #[error("{error}")]
    Curve {
        /// The curve's decoding error.
        error: p256::elliptic_curve::DecodeError,
    },
    /// A SEC1 key without its curve.
    #[error("no curve parameters")]
    NoCurveParameters,
}

enum Secret {
    P256(ecdsa::SigningKey<p256::NistP256>),
    P384(ecdsa::SigningKey<p384::NistP384>),
    P521(ecdsa::SigningKey<p521::NistP521>),
}

/// A private key that signs.
pub struct PrivateKey {
    secret: Secret,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Public {
    P256(ecdsa::VerifyingKey<p256::NistP256>),
    P384(ecdsa::VerifyingKey<p384::NistP384>),
    P521(ecdsa::VerifyingKey<p521::NistP521>),
}

/// A public key that verifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    public: Public,
}

/// One `-----BEGIN LABEL-----` block: its label, whether it has RFC 1421 headers
/// (`Proc-Type: 4,ENCRYPTED`), and its whole text.
struct PemBlock<'a> {
    label: &'a str,
    legacy_encrypted: bool,
    text: &'a str,
}

fn pem_blocks(text: &str) -> Vec<PemBlock<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let Some(label_end) = block[11..].find("-----") else {
            break;
        };
        let label = &block[11..11 + label_end];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = block.find(&end_marker) else {
            break;
        };
        let whole = &block[..end + end_marker.len()];
        out.push(PemBlock {
            label,
            legacy_encrypted: whole.contains("Proc-Type:"),
            text: whole,
        });
        rest = &block[end + end_marker.len()..];
    }
    out
}

fn read_key_text(path: &Path) -> Result<String, KeyError> {
    let shown = path.display().to_string();
    let read = |source| KeyError::Read {
        path: shown.clone(),
        error: source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if !meta.is_file() {
        return Err(KeyError::NotPem {
            path: shown,
            problem: NotPem::NotAFile,
        });
    }
    if meta.len() > MAX_KEY_BYTES {
        return Err(KeyError::NotPem {
            path: shown,
            problem: NotPem::TooLarge { size: meta.len() },
        });
    }
    let bytes = std::fs::read(path).map_err(read)?;
    String::from_utf8(bytes).map_err(|_| KeyError::NotPem {
        path: shown,
        problem: NotPem::Binary,
    })
}

fn decode_pem(block: &PemBlock<'_>, path: &str) -> Result<Vec<u8>, KeyError> {
    pkcs8::der::pem::decode_vec(block.text.as_bytes())
        .map(|(_, der)| der)
        .map_err(|error| KeyError::Malformed {
            path: path.into(),
            what: "PEM",
            problem: Undecodable::Pem { error },
        })
}

/// The type a PEM label or algorithm OID names, for refusals.
fn kind_of_label(label: &str) -> Option<KeyKind> {
    Some(match label {
        "RSA PRIVATE KEY" | "RSA PUBLIC KEY" => KeyKind::Rsa,
        "DSA PRIVATE KEY" => KeyKind::Dsa,
        "OPENSSH PRIVATE KEY" => KeyKind::OpenSsh,
        "CERTIFICATE" => KeyKind::Certificate,
        _ => return None,
    })
}

fn kind_of_oid(oid: &ObjectIdentifier) -> KeyKind {
    match oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => KeyKind::Rsa,
        "1.2.840.10040.4.1" => KeyKind::Dsa,
        "1.3.101.112" => KeyKind::Ed25519,
        "1.3.101.113" => KeyKind::Ed448,
        "1.3.101.110" => KeyKind::X25519,
        "1.3.101.111" => KeyKind::X448,
        _ => KeyKind::Algorithm { oid: *oid },
    }
}

/// The curve of an `AlgorithmIdentifier` (id-ecPublicKey with a named curve).
fn curve_of_algorithm(
    oid: &ObjectIdentifier,
    params: Option<&pkcs8::der::AnyRef<'_>>,
    path: &str,
) -> Result<Curve, KeyError> {
    let unsupported = |kind: KeyKind| KeyError::Unsupported {
        path: path.into(),
        kind,
    };
    if oid.to_string() != ID_EC_PUBLIC_KEY {
        return Err(unsupported(kind_of_oid(oid)));
    }
    let curve = params
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
        .ok_or_else(|| unsupported(KeyKind::ExplicitCurve))?;
    Curve::from_oid(&curve).map_err(unsupported)
}

impl PrivateKey {
    /// Load a PEM private key; `password` opens an `ENCRYPTED PRIVATE KEY`.
    pub fn load(path: &Path, password: Option<&[u8]>) -> Result<PrivateKey, KeyError> {
        let text = read_key_text(path)?;
        PrivateKey::from_pem(&text, password, &path.display().to_string())
    }

    /// Parse a PEM private key (`path` names it in errors).
    pub(crate) fn from_pem(
        text: &str,
        password: Option<&[u8]>,
        path: &str,
    ) -> Result<PrivateKey, KeyError> {
        let blocks = pem_blocks(text);
        let Some(block) = blocks.iter().find(|b| b.label.contains("PRIVATE KEY")) else {
            if let Some(b) = blocks.first() {
                if b.label == "PUBLIC KEY" {
                    return Err(KeyError::NotPem {
                        path: path.into(),
                        problem: NotPem::PublicForPrivate,
                    });
                }
                if let Some(kind) = kind_of_label(b.label) {
                    return Err(KeyError::Unsupported {
                        path: path.into(),
                        kind,
                    });
                }
            }
            return Err(KeyError::NotPem {
                path: path.into(),
                problem: NotPem::NoPrivateKey,
            });
        };
        if let Some(kind) = kind_of_label(block.label) {
            return Err(KeyError::Unsupported {
                path: path.into(),
                kind,
            });
        }
        if block.legacy_encrypted {
            return Err(KeyError::Unsupported {
                path: path.into(),
                kind: KeyKind::LegacyEncrypted,
            });
        }
        let der = decode_pem(block, path)?;
        match block.label {
            "EC PRIVATE KEY" => Self::from_sec1(&der, path),
            "PRIVATE KEY" => Self::from_pkcs8(&der, path),
            "ENCRYPTED PRIVATE KEY" => {
                let Some(password) = password else {
                    return Err(KeyError::NeedsPassword { path: path.into() });
                };
                let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice()).map_err(
                    |error| KeyError::Malformed {
                        path: path.into(),
                        what: "encrypted PKCS#8 key",
                        problem: Undecodable::Pkcs8 { error },
                    },
                )?;
                let plain = info.decrypt(password).map_err(|error| KeyError::Decrypt {
                    path: path.into(),
                    error,
                })?;
                Self::from_pkcs8(plain.as_bytes(), path)
            }
            other => Err(KeyError::NotPem {
                path: path.into(),
                problem: NotPem::UnknownLabel {
                    label: other.into(),
                },
            }),
        }
    }

    fn from_sec1(der: &[u8], path: &str) -> Result<PrivateKey, KeyError> {
        let malformed = |problem: Undecodable| KeyError::Malformed {
            path: path.into(),
            what: "SEC1 EC private key",
            problem,
        };
        let curve_error = |error| malformed(Undecodable::Curve { error });
        let parsed = sec1::EcPrivateKey::from_der(der)
            .map_err(|error| malformed(Undecodable::Der { error }))?;
        let curve = match parsed.parameters {
            Some(sec1::EcParameters::NamedCurve(oid)) => {
                Curve::from_oid(&oid).map_err(|kind| KeyError::Unsupported {
                    path: path.into(),
                    kind,
                })?
            }
            None => return Err(malformed(Undecodable::NoCurveParameters)),
        };
        let secret = match curve {
            Curve::P256 => Secret::P256(
                p256::SecretKey::from_sec1_der(der)
                    .map_err(curve_error)?
                    .into(),
            ),
            Curve::P384 => Secret::P384(
                p384::SecretKey::from_sec1_der(der)
                    .map_err(curve_error)?
                    .into(),
            ),
            Curve::P521 => Secret::P521(
                p521::SecretKey::from_sec1_der(der)
                    .map_err(curve_error)?
                    .into(),
            ),
        };
        Ok(PrivateKey { secret })
    }

    fn from_pkcs8(der: &[u8], path: &str) -> Result<PrivateKey, KeyError> {
        let malformed = |problem: Undecodable| KeyError::Malformed {
            path: path.into(),
            what: "PKCS#8 private key",
            problem,
        };
        let pkcs8_error = |error| malformed(Undecodable::Pkcs8 { error });
        let info = pkcs8::PrivateKeyInfoRef::try_from(der).map_err(pkcs8_error)?;
        let curve = curve_of_algorithm(
            &info.algorithm.oid,
            info.algorithm.parameters.as_ref(),
            path,
        )?;
        let secret = match curve {
            Curve::P256 => Secret::P256(
                p256::SecretKey::from_pkcs8_der(der)
                    .map_err(pkcs8_error)?
                    .into(),
            ),
            Curve::P384 => Secret::P384(
                p384::SecretKey::from_pkcs8_der(der)
                    .map_err(pkcs8_error)?
                    .into(),
            ),
            Curve::P521 => Secret::P521(
                p521::SecretKey::from_pkcs8_der(der)
                    .map_err(pkcs8_error)?
                    .into(),
            ),
        };
        Ok(PrivateKey { secret })
    }

    /// The curve.
    pub fn curve(&self) -> Curve {
        match self.secret {
            Secret::P256(_) => Curve::P256,
            Secret::P384(_) => Curve::P384,
            Secret::P521(_) => Curve::P521,
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        let public = match &self.secret {
            Secret::P256(k) => Public::P256(*k.verifying_key()),
            Secret::P384(k) => Public::P384(*k.verifying_key()),
            Secret::P521(k) => Public::P521(*k.verifying_key()),
        };
        PublicKey { public }
    }

    /// ECDSA signature (ASN.1 DER) over `message`, hashed with the curve's hash.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.secret {
            Secret::P256(k) => {
                let s: ecdsa::Signature<p256::NistP256> = k.sign(message);
                s.to_der().as_bytes().to_vec()
            }
            Secret::P384(k) => {
                let s: ecdsa::Signature<p384::NistP384> = k.sign(message);
                s.to_der().as_bytes().to_vec()
            }
            Secret::P521(k) => {
                let s: ecdsa::Signature<p521::NistP521> = k.sign(message);
                s.to_der().as_bytes().to_vec()
            }
        }
    }
}

impl PublicKey {
    /// Load a PEM public key (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo).
    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        let text = read_key_text(path)?;
        PublicKey::from_pem(&text, &path.display().to_string())
    }

    /// Parse a PEM public key (`path` names it in errors).
    pub(crate) fn from_pem(text: &str, path: &str) -> Result<PublicKey, KeyError> {
        let blocks = pem_blocks(text);
        let Some(block) = blocks.iter().find(|b| b.label == "PUBLIC KEY") else {
            if blocks.iter().any(|b| b.label.contains("PRIVATE KEY")) {
                return Err(KeyError::PrivateForPublic { path: path.into() });
            }
            if let Some(kind) = blocks.first().and_then(|b| kind_of_label(b.label)) {
                return Err(KeyError::Unsupported {
                    path: path.into(),
                    kind,
                });
            }
            return Err(KeyError::NotPem {
                path: path.into(),
                problem: NotPem::NoPublicKey,
            });
        };
        let der = decode_pem(block, path)?;
        let malformed = |problem: Undecodable| KeyError::Malformed {
            path: path.into(),
            what: "public key",
            problem,
        };
        let spki_error = |error| malformed(Undecodable::Spki { error });
        let info =
            pkcs8::spki::SubjectPublicKeyInfoRef::try_from(der.as_slice()).map_err(spki_error)?;
        let curve = curve_of_algorithm(
            &info.algorithm.oid,
            info.algorithm.parameters.as_ref(),
            path,
        )?;
        let public = match curve {
            Curve::P256 => {
                Public::P256(ecdsa::VerifyingKey::from_public_key_der(&der).map_err(spki_error)?)
            }
            Curve::P384 => {
                Public::P384(ecdsa::VerifyingKey::from_public_key_der(&der).map_err(spki_error)?)
            }
            Curve::P521 => {
                Public::P521(ecdsa::VerifyingKey::from_public_key_der(&der).map_err(spki_error)?)
            }
        };
        Ok(PublicKey { public })
    }

    /// The curve.
    pub fn curve(&self) -> Curve {
        match self.public {
            Public::P256(_) => Curve::P256,
            Public::P384(_) => Curve::P384,
            Public::P521(_) => Curve::P521,
        }
    }

    /// The key as PEM SubjectPublicKeyInfo (uncompressed point, 64-column base64, LF), the
    /// text Python's `cryptography` writes for `public_bytes(PEM, SubjectPublicKeyInfo)`.
    pub(crate) fn spki_pem(&self) -> String {
        let pem = match &self.public {
            Public::P256(k) => k.to_public_key_pem(LineEnding::LF),
            Public::P384(k) => k.to_public_key_pem(LineEnding::LF),
            Public::P521(k) => k.to_public_key_pem(LineEnding::LF),
        };
        // Encoding a valid key into a String cannot fail.
        pem.unwrap_or_default()
    }

    /// model_signing's key hint: hex SHA-256 of [`PublicKey::spki_pem`].
    pub fn hint(&self) -> String {
        hex::encode(sha2::Sha256::digest(self.spki_pem().as_bytes()).as_slice())
    }

    /// Whether `der_signature` (ASN.1 DER ECDSA; high S accepted) signs `message`.
    pub fn verify(&self, message: &[u8], der_signature: &[u8]) -> bool {
        match &self.public {
            Public::P256(k) => ecdsa::Signature::<p256::NistP256>::from_der(der_signature)
                .is_ok_and(|s| k.verify(message, &s.normalize_s()).is_ok()),
            Public::P384(k) => ecdsa::Signature::<p384::NistP384>::from_der(der_signature)
                .is_ok_and(|s| k.verify(message, &s.normalize_s()).is_ok()),
            Public::P521(k) => ecdsa::Signature::<p521::NistP521>::from_der(der_signature)
                .is_ok_and(|s| k.verify(message, &s.normalize_s()).is_ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::elliptic_curve::ff::PrimeField as _;

    const P256_SEC1: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEICQVF9sKhYnsXwmQl0ZJiHVSxe4MV7izJGsUdS51pLqYoAoGCCqGSM49
AwEHoUQDQgAEj+lv/yjvgEnxFWqYM0fsP8hUyzh/YRh6ensWz4hl4PT8utDJYwD9
hwReOHkiNkQlDtKFPbYFtVMh84J6O5ATUA==
-----END EC PRIVATE KEY-----
";

    #[test]
    fn hint_matches_model_signing_and_both_s_halves_verify() {
        let k = PrivateKey::from_pem(P256_SEC1, None, "k").unwrap();
        let public = k.public_key();
        // model_signing 1.1.1 wrote this hint for this key (sha256 of its SPKI PEM).
        assert_eq!(
            public.hint(),
            "5bf8f10c113ca628a969b477e1dc2d1e2088d3401309941a5900cc2b05d72945"
        );
        let back = PublicKey::from_pem(&public.spki_pem(), "pub").unwrap();
        assert_eq!(back, public);
        let msg = b"DSSEv1 ...";
        let der = k.sign(msg);
        assert!(public.verify(msg, &der));
        assert!(!public.verify(b"other", &der));
        let sig = ecdsa::Signature::<p256::NistP256>::from_der(&der).unwrap();
        let (r, s) = sig.split_scalars();
        let flipped =
            ecdsa::Signature::<p256::NistP256>::from_scalars(r.to_repr(), (-*s.as_ref()).to_repr())
                .unwrap();
        assert_ne!(flipped, sig);
        assert!(public.verify(msg, flipped.to_der().as_bytes()));
    }

    #[test]
    fn public_key_where_private_belongs_and_back_are_named() {
        let k = PrivateKey::from_pem(P256_SEC1, None, "k").unwrap();
        let pem = k.public_key().spki_pem();
        assert!(matches!(
            PrivateKey::from_pem(&pem, None, "p"),
            Err(KeyError::NotPem { .. })
        ));
        assert!(matches!(
            PublicKey::from_pem(P256_SEC1, "k"),
            Err(KeyError::PrivateForPublic { .. })
        ));
    }
}
