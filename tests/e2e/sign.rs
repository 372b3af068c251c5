//! `llama-tool sign` / `verify --signature` against the reference implementation of the
//! OpenSSF Model Signing format, PyPI `model-signing==1.1.1`, run offline from its own cached
//! venv (`scripts/setup-signing-venv.sh`; `LLAMA_TOOL_SIGNING_PYTHON` overrides): both
//! directions on P-256 and P-384 keys in SEC1 and PKCS#8 form (keys made by `openssl`), every
//! rejection the issue lists shown rejected by model_signing too, and the component-wise path
//! order.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;

use crate::common::{code, run, stderr, stdout};
use crate::verify::bytes;

/// The signing venv's python; fails naming the install script when absent.
pub fn signing_python() -> PathBuf {
    if let Some(p) = std::env::var_os("LLAMA_TOOL_SIGNING_PYTHON") {
        return PathBuf::from(p);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = PathBuf::from(home).join(".cache/llama-tool/venv-signing/bin/python");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "model-signing interop test needs its venv: run scripts/setup-signing-venv.sh (scripts/test.sh does) \
         or set LLAMA_TOOL_SIGNING_PYTHON to the python it prints"
    )
}

/// `python -m model_signing ARGS...`: (exit code, stdout + stderr).
fn model_signing(args: &[&OsStr]) -> (i32, String) {
    let o = Command::new(signing_python())
        .args(["-m", "model_signing"])
        .args(args)
        .output()
        .expect("spawn model_signing");
    (code(&o), format!("{}{}", stdout(&o), stderr(&o)))
}

/// model_signing's `verify key`: (exit code, output).
fn ms_verify(model: &Path, sig: &Path, public: &Path) -> (i32, String) {
    model_signing(&[
        "verify".as_ref(),
        "key".as_ref(),
        model.as_os_str(),
        "--signature".as_ref(),
        sig.as_os_str(),
        "--public_key".as_ref(),
        public.as_os_str(),
    ])
}

/// model_signing's `sign key`.
fn ms_sign(model: &Path, sig: &Path, private: &Path) {
    let (c, out) = model_signing(&[
        "sign".as_ref(),
        "key".as_ref(),
        model.as_os_str(),
        "--signature".as_ref(),
        sig.as_os_str(),
        "--private_key".as_ref(),
        private.as_os_str(),
    ]);
    assert_eq!(c, 0, "model_signing sign key failed: {out}");
}

fn openssl(args: &[&OsStr]) {
    let o = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is needed to make test keys (apt-get install openssl)");
    assert!(o.status.success(), "openssl {args:?}: {}", stderr(&o));
}

/// Key form.
#[derive(Clone, Copy, Debug)]
enum Form {
    Sec1,
    Pkcs8,
}

/// A fresh key pair made by openssl: (private PEM, public PEM).
fn keypair(dir: &Path, curve: &str, form: Form) -> (PathBuf, PathBuf) {
    let tag = format!("{curve}-{form:?}");
    let sec1 = dir.join(format!("{tag}.sec1.pem"));
    openssl(&[
        "ecparam".as_ref(),
        "-name".as_ref(),
        curve.as_ref(),
        "-genkey".as_ref(),
        "-noout".as_ref(),
        "-out".as_ref(),
        sec1.as_os_str(),
    ]);
    let private = match form {
        Form::Sec1 => sec1.clone(),
        Form::Pkcs8 => {
            let p8 = dir.join(format!("{tag}.p8.pem"));
            openssl(&[
                "pkcs8".as_ref(),
                "-topk8".as_ref(),
                "-nocrypt".as_ref(),
                "-in".as_ref(),
                sec1.as_os_str(),
                "-out".as_ref(),
                p8.as_os_str(),
            ]);
            p8
        }
    };
    let public = dir.join(format!("{tag}.pub.pem"));
    openssl(&[
        "ec".as_ref(),
        "-in".as_ref(),
        sec1.as_os_str(),
        "-pubout".as_ref(),
        "-out".as_ref(),
        public.as_os_str(),
    ]);
    (private, public)
}

/// A small release-shaped model folder: two shards, params, tokenizer, an empty file, a
/// nested folder beside a same-prefix file (`tokenizer/x` and `tokenizer.model`), and git
/// files that both tools leave out.
fn model_folder(parent: &Path, name: &str) -> PathBuf {
    let m = parent.join(name);
    fs::create_dir_all(m.join("tokenizer")).unwrap();
    fs::create_dir_all(m.join(".git")).unwrap();
    fs::write(m.join("consolidated.00.pth"), bytes(11, 300_000)).unwrap();
    fs::write(m.join("consolidated.01.pth"), bytes(12, 250_001)).unwrap();
    fs::write(m.join("params.json"), br#"{"dim": 64}"#).unwrap();
    fs::write(m.join("tokenizer.model"), bytes(13, 5000)).unwrap();
    fs::write(m.join("tokenizer/x"), b"x").unwrap();
    fs::write(m.join("empty"), b"").unwrap();
    fs::write(m.join(".git/HEAD"), b"ref: refs/heads/main\n").unwrap();
    fs::write(m.join(".gitattributes"), b"*.pth filter=lfs\n").unwrap();
    m
}

/// `sign MODEL --key KEY [-o OUT] --force` (the tests sign one folder again and again).
fn sign(model: &Path, key: &Path, out: Option<&Path>) -> Output {
    let mut args: Vec<&OsStr> = vec![
        "sign".as_ref(),
        model.as_os_str(),
        "--force".as_ref(),
        "--key".as_ref(),
    ];
    args.push(key.as_os_str());
    if let Some(o) = out {
        args.push("-o".as_ref());
        args.push(o.as_os_str());
    }
    run(&args)
}

fn verify(model: &Path, sig: &Path, public: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&OsStr> = vec![
        "verify".as_ref(),
        model.as_os_str(),
        "--signature".as_ref(),
        sig.as_os_str(),
        "--public-key".as_ref(),
        public.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    run(&args)
}

/// The decoded statement of a signature file.
fn payload(sig: &Path) -> serde_json::Value {
    let b: serde_json::Value = serde_json::from_slice(&fs::read(sig).unwrap()).unwrap();
    let p = base64::engine::general_purpose::STANDARD
        .decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&p).unwrap()
}

fn resource_names(sig: &Path) -> Vec<String> {
    payload(sig)["predicate"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

const KEYS: [(&str, Form); 4] = [
    ("prime256v1", Form::Sec1),
    ("prime256v1", Form::Pkcs8),
    ("secp384r1", Form::Sec1),
    ("secp384r1", Form::Pkcs8),
];

#[test]
fn we_sign_model_signing_verifies_p256_p384_sec1_pkcs8() {
    let t = tempfile::tempdir().unwrap();
    let m = model_folder(t.path(), "llama-7b");
    for (curve, form) in KEYS {
        let (private, public) = keypair(t.path(), curve, form);
        let o = sign(&m, &private, None);
        assert_eq!(code(&o), 0, "{curve} {form:?}: {}", stderr(&o));
        let sig = m.join("model.sig");
        let (c, out) = ms_verify(&m, &sig, &public);
        assert_eq!(c, 0, "{curve} {form:?}: model_signing refused ours: {out}");
        assert!(out.contains("Verification succeeded"), "{out}");
        let o = verify(&m, &sig, &public, &[]);
        assert_eq!(code(&o), 0, "{curve} {form:?}: {}", stdout(&o));
    }
}

#[test]
fn model_signing_signs_we_verify_p256_p384_sec1_pkcs8() {
    let t = tempfile::tempdir().unwrap();
    let m = model_folder(t.path(), "llama-7b");
    for (curve, form) in KEYS {
        let (private, public) = keypair(t.path(), curve, form);
        let sig = m.join("model.sig");
        ms_sign(&m, &sig, &private);
        let o = verify(&m, &sig, &public, &[]);
        assert_eq!(
            code(&o),
            0,
            "{curve} {form:?}: we refused model_signing's: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(stdout(&o).contains("OK        "), "{}", stdout(&o));
    }
}

#[test]
fn path_order_is_by_components_like_model_signing() {
    let t = tempfile::tempdir().unwrap();
    let m = model_folder(t.path(), "m");
    let (private, _) = keypair(t.path(), "prime256v1", Form::Sec1);
    let ours = t.path().join("ours.sig");
    let theirs = t.path().join("theirs.sig");
    assert_eq!(code(&sign(&m, &private, Some(&ours))), 0);
    ms_sign(&m, &theirs, &private);
    let names = resource_names(&ours);
    assert_eq!(names, resource_names(&theirs));
    assert_eq!(
        names,
        [
            "consolidated.00.pth",
            "consolidated.01.pth",
            "empty",
            "params.json",
            "tokenizer/x",
            "tokenizer.model"
        ]
    );
    // Same files, same digests, same subject digest.
    assert_eq!(
        payload(&ours)["subject"][0]["digest"],
        payload(&theirs)["subject"][0]["digest"]
    );
}

#[test]
fn p521_and_password_protected_pkcs8_sign_and_model_signing_verifies() {
    let t = tempfile::tempdir().unwrap();
    let m = model_folder(t.path(), "m");
    let (sec1, public) = keypair(t.path(), "secp521r1", Form::Sec1);
    let enc = t.path().join("enc.p8.pem");
    openssl(&[
        "pkcs8".as_ref(),
        "-topk8".as_ref(),
        "-v2".as_ref(),
        "aes-256-cbc".as_ref(),
        "-passout".as_ref(),
        "pass:s3cret".as_ref(),
        "-in".as_ref(),
        sec1.as_os_str(),
        "-out".as_ref(),
        enc.as_os_str(),
    ]);
    // No password: exit 2 saying so.
    let o = sign(&m, &enc, None);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("encrypted"), "{}", stderr(&o));
    let pw = t.path().join("pw");
    fs::write(&pw, "wrong\n").unwrap();
    let o = run([
        "sign".as_ref(),
        m.as_os_str(),
        "--key".as_ref(),
        enc.as_os_str(),
        "--password-file".as_ref(),
        pw.as_os_str(),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    fs::write(&pw, "s3cret\n").unwrap();
    let o = run([
        "sign".as_ref(),
        m.as_os_str(),
        "--key".as_ref(),
        enc.as_os_str(),
        "--password-file".as_ref(),
        pw.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (c, out) = ms_verify(&m, &m.join("model.sig"), &public);
    assert_eq!(c, 0, "{out}");
}

#[test]
fn other_key_types_are_refused_naming_the_type() {
    let t = tempfile::tempdir().unwrap();
    let m = model_folder(t.path(), "m");
    let rsa = t.path().join("rsa.pem");
    openssl(&[
        "genpkey".as_ref(),
        "-algorithm".as_ref(),
        "RSA".as_ref(),
        "-pkeyopt".as_ref(),
        "rsa_keygen_bits:1024".as_ref(),
        "-out".as_ref(),
        rsa.as_os_str(),
    ]);
    let ed = t.path().join("ed.pem");
    openssl(&[
        "genpkey".as_ref(),
        "-algorithm".as_ref(),
        "ED25519".as_ref(),
        "-out".as_ref(),
        ed.as_os_str(),
    ]);
    let k1 = t.path().join("k1.pem");
    openssl(&[
        "ecparam".as_ref(),
        "-name".as_ref(),
        "secp256k1".as_ref(),
        "-genkey".as_ref(),
        "-noout".as_ref(),
        "-out".as_ref(),
        k1.as_os_str(),
    ]);
    for (key, name) in [(&rsa, "RSA"), (&ed, "Ed25519"), (&k1, "secp256k1")] {
        let o = sign(&m, key, None);
        assert_eq!(code(&o), 2, "{name}");
        let e = stderr(&o);
        assert!(
            e.contains("unsupported key type") && e.contains(name),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    assert!(!m.join("model.sig").exists());
}

/// A signed folder and keys for the rejection cases.
struct Signed {
    _t: tempfile::TempDir,
    dir: PathBuf,
    model: PathBuf,
    sig: PathBuf,
    public: PathBuf,
    private: PathBuf,
}

fn signed(by_model_signing: bool) -> Signed {
    let t = tempfile::tempdir().unwrap();
    let model = model_folder(t.path(), "m");
    let (private, public) = keypair(t.path(), "prime256v1", Form::Pkcs8);
    let sig = model.join("model.sig");
    if by_model_signing {
        ms_sign(&model, &sig, &private);
    } else {
        assert_eq!(code(&sign(&model, &private, None)), 0);
    }
    Signed {
        dir: t.path().to_path_buf(),
        _t: t,
        model,
        sig,
        public,
        private,
    }
}

/// Both tools refuse (ours with `want`, theirs with 1), and ours names `needle`.
fn both_refuse(s: &Signed, model: &Path, sig: &Path, public: &Path, want: i32, needle: &str) {
    let o = verify(model, sig, public, &[]);
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(code(&o), want, "{text}");
    assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
    let (c, out) = ms_verify(model, sig, public);
    assert_eq!(c, 1, "model_signing accepted it: {out}");
    let _ = s;
}

#[test]
fn flipped_byte_extra_and_missing_files_fail_naming_the_file() {
    for by_ms in [false, true] {
        let s = signed(by_ms);
        let shard = s.model.join("consolidated.01.pth");
        let mut data = fs::read(&shard).unwrap();
        data[123_456] ^= 1;
        fs::write(&shard, &data).unwrap();
        both_refuse(&s, &s.model, &s.sig, &s.public, 1, "MISMATCH  ");
        let o = verify(&s.model, &s.sig, &s.public, &[]);
        assert!(stdout(&o).contains("consolidated.01.pth"), "{}", stdout(&o));
        data[123_456] ^= 1;
        fs::write(&shard, &data).unwrap();
        assert_eq!(code(&verify(&s.model, &s.sig, &s.public, &[])), 0);

        fs::write(s.model.join("extra.bin"), b"smuggled").unwrap();
        both_refuse(&s, &s.model, &s.sig, &s.public, 1, "UNLISTED  ");
        // model_signing's --ignore_unsigned_files and ours agree it is fine then.
        let o = verify(&s.model, &s.sig, &s.public, &["--ignore-unsigned"]);
        assert_eq!(code(&o), 0, "{}", stdout(&o));
        fs::remove_file(s.model.join("extra.bin")).unwrap();

        fs::remove_file(s.model.join("params.json")).unwrap();
        both_refuse(&s, &s.model, &s.sig, &s.public, 1, "MISSING   ");
        let o = verify(&s.model, &s.sig, &s.public, &["--json"]);
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let missing: Vec<&serde_json::Value> = v["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["status"] == "MISSING")
            .collect();
        assert_eq!(missing.len(), 1, "{v}");
        assert!(missing[0]["path"]
            .as_str()
            .unwrap()
            .ends_with("params.json"));
        assert_eq!(v["summary"]["failed"], 1, "{v}");
    }
}

#[test]
fn wrong_public_key_fails_with_and_without_the_hint() {
    let s = signed(false);
    let (_, other) = keypair(&s.dir, "prime256v1", Form::Sec1);
    both_refuse(&s, &s.model, &s.sig, &other, 1, "signed by another key");
    // Without the hint (as older writers made them), the ECDSA check itself refuses.
    let text = fs::read_to_string(&s.sig).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let hint = v["verificationMaterial"]["publicKey"]["hint"]
        .as_str()
        .unwrap();
    let nohint = s.dir.join("nohint.sig");
    fs::write(
        &nohint,
        text.replace(&format!("{{\"hint\":\"{hint}\"}}"), "{}"),
    )
    .unwrap();
    assert_ne!(fs::read_to_string(&nohint).unwrap(), text);
    both_refuse(&s, &s.model, &nohint, &other, 1, "does not verify");
    // ... and the right key still accepts the hint-less bundle, as model_signing does.
    assert_eq!(code(&verify(&s.model, &nohint, &s.public, &[])), 0);
    let (c, out) = ms_verify(&s.model, &nohint, &s.public);
    assert_eq!(c, 0, "{out}");
}

#[test]
fn payload_rewritten_for_a_changed_file_fails() {
    for by_ms in [false, true] {
        let s = signed(by_ms);
        // Replace a shard, then rewrite the payload to list the new digest and a matching
        // subject digest, keeping the old signature.
        let shard = s.model.join("consolidated.00.pth");
        let new = bytes(99, 300_000);
        fs::write(&shard, &new).unwrap();
        let mut st = payload(&s.sig);
        let new_hex = hex_sha256(&new);
        let mut raw = Vec::new();
        for r in st["predicate"]["resources"].as_array_mut().unwrap() {
            if r["name"] == "consolidated.00.pth" {
                r["digest"] = serde_json::json!(new_hex);
            }
            raw.extend(hex_decode(r["digest"].as_str().unwrap()));
        }
        st["subject"][0]["digest"]["sha256"] = serde_json::json!(hex_sha256(&raw));
        let mut b: serde_json::Value = serde_json::from_slice(&fs::read(&s.sig).unwrap()).unwrap();
        b["dsseEnvelope"]["payload"] = serde_json::json!(base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec_pretty(&st).unwrap()));
        let forged = s.dir.join("forged.sig");
        fs::write(&forged, serde_json::to_vec(&b).unwrap()).unwrap();
        both_refuse(&s, &s.model, &forged, &s.public, 1, "does not verify");
    }
}

#[test]
fn signature_copied_in_afterwards_and_renamed_folder_still_verify() {
    let s = signed(false);
    // Signed to a file outside the folder, then copied in.
    fs::remove_file(&s.sig).unwrap();
    let outside = s.dir.join("release.sig");
    assert_eq!(code(&sign(&s.model, &s.private, Some(&outside))), 0);
    let inside = s.model.join("release.sig");
    fs::copy(&outside, &inside).unwrap();
    assert_eq!(
        code(&verify(&s.model, &inside, &s.public, &[])),
        0,
        "copied-in signature"
    );
    assert_eq!(ms_verify(&s.model, &inside, &s.public).0, 0);
    // The folder renamed (the subject name is informative only).
    let renamed = s.dir.join("renamed-model");
    fs::rename(&s.model, &renamed).unwrap();
    let sig = renamed.join("release.sig");
    let o = verify(&renamed, &sig, &s.public, &[]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert_eq!(ms_verify(&renamed, &sig, &s.public).0, 0);
}

#[test]
fn garbage_or_malformed_signature_is_exit_2_in_one_line() {
    let s = signed(false);
    let good = fs::read_to_string(&s.sig).unwrap();
    for (name, text) in [
        ("garbage.sig", "\u{1}\u{2}not json at all".to_string()),
        ("empty.sig", String::new()),
        ("unknown-key.sig", good.replacen('{', "{\"extra\":1,", 1)),
        (
            "media.sig",
            good.replace("bundle.v0.3+json", "bundle.v0.1+json"),
        ),
        ("badb64.sig", {
            let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
            v["dsseEnvelope"]["payload"] = serde_json::json!("abc");
            v.to_string()
        }),
    ] {
        let p = s.dir.join(name);
        fs::write(&p, &text).unwrap();
        let o = verify(&s.model, &p, &s.public, &[]);
        assert_eq!(code(&o), 2, "{name}: {}{}", stdout(&o), stderr(&o));
        assert_eq!(
            stderr(&o).trim().lines().count(),
            1,
            "{name}: {}",
            stderr(&o)
        );
        assert!(stderr(&o).contains(name), "{name}: {}", stderr(&o));
        let (c, out) = ms_verify(&s.model, &p, &s.public);
        assert_eq!(c, 1, "{name}: model_signing accepted it: {out}");
    }
    // A garbage public key is exit 2 too.
    let junk = s.dir.join("junk.pub");
    fs::write(&junk, "not a key").unwrap();
    let o = verify(&s.model, &s.sig, &junk, &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

#[test]
fn symlink_out_of_the_folder_is_refused_by_sign_and_verify() {
    let s = signed(false);
    let secret = s.dir.join("secret");
    fs::write(&secret, b"outside").unwrap();
    std::os::unix::fs::symlink(&secret, s.model.join("link")).unwrap();
    // verify: the folder is not what was signed.
    both_refuse(&s, &s.model, &s.sig, &s.public, 1, "symlink");
    // sign: refused (exit 2), like model_signing; no signature written.
    let out = s.dir.join("new.sig");
    let o = sign(&s.model, &s.private, Some(&out));
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("link") && stderr(&o).contains("symlink"));
    assert!(!out.exists());
    let (c, _) = model_signing(&[
        "sign".as_ref(),
        "key".as_ref(),
        s.model.as_os_str(),
        "--signature".as_ref(),
        out.as_os_str(),
        "--private_key".as_ref(),
        s.private.as_os_str(),
    ]);
    assert_eq!(c, 1);
    // A signed file replaced by a symlink to the same bytes elsewhere fails too.
    fs::remove_file(s.model.join("link")).unwrap();
    let moved = s.dir.join("params.json");
    fs::rename(s.model.join("params.json"), &moved).unwrap();
    std::os::unix::fs::symlink(&moved, s.model.join("params.json")).unwrap();
    both_refuse(&s, &s.model, &s.sig, &s.public, 1, "symlink");
}

fn hex_sha256(data: &[u8]) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// model_signing's Python API signing `model` with a non-default serialization.
fn ms_sign_api(model: &Path, sig: &Path, private: &Path, hashing: &str) {
    let code_text = format!(
        "import sys, model_signing\n\
         from model_signing import hashing, signing\n\
         hc = hashing.Config().{hashing}.set_ignored_paths(paths=[sys.argv[2]])\n\
         signing.Config().use_elliptic_key_signer(private_key=sys.argv[3]).set_hashing_config(hc).sign(sys.argv[1], sys.argv[2])\n"
    );
    let o = Command::new(signing_python())
        .arg("-c")
        .arg(code_text)
        .arg(model)
        .arg(sig)
        .arg(private)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn shard_and_blake3_signatures_from_model_signing_verify_and_catch_damage() {
    let t = tempfile::tempdir().unwrap();
    let m = model_folder(t.path(), "m");
    let (private, public) = keypair(t.path(), "secp384r1", Form::Sec1);
    for (hashing, algo) in [
        (
            "use_shard_serialization(shard_size=65536)",
            "sha256-sharded-65536",
        ),
        (
            "use_file_serialization(hashing_algorithm='blake3')",
            "blake3",
        ),
    ] {
        let sig = m.join("model.sig");
        ms_sign_api(&m, &sig, &private, hashing);
        let p = payload(&sig);
        assert_eq!(p["predicate"]["resources"][0]["algorithm"], algo, "{p}");
        let o = verify(&m, &sig, &public, &[]);
        assert_eq!(code(&o), 0, "{algo}: {}{}", stdout(&o), stderr(&o));
        let shard = m.join("consolidated.00.pth");
        let mut data = fs::read(&shard).unwrap();
        data[200_000] ^= 0x40;
        fs::write(&shard, &data).unwrap();
        let o = verify(&m, &sig, &public, &[]);
        assert_eq!(code(&o), 1, "{algo}: {}", stdout(&o));
        let line = stdout(&o)
            .lines()
            .find(|l| l.starts_with("MISMATCH"))
            .unwrap_or_default()
            .to_string();
        assert!(line.contains("consolidated.00.pth"), "{line}");
        if algo.contains("sharded") {
            // The damaged shard is named: bytes 196608..262144 are chunk 3.
            assert!(line.contains("chunk 3"), "{line}");
        }
        data[200_000] ^= 0x40;
        fs::write(&shard, &data).unwrap();
    }
}

#[test]
fn single_file_signature_both_ways() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("model.gguf");
    fs::write(&f, bytes(5, 70_000)).unwrap();
    let (private, public) = keypair(t.path(), "prime256v1", Form::Sec1);
    let o = sign(&f, &private, None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let sig = t.path().join("model.gguf.sig");
    assert_eq!(resource_names(&sig), ["."]);
    assert_eq!(ms_verify(&f, &sig, &public).0, 0);
    assert_eq!(code(&verify(&f, &sig, &public, &[])), 0);
    let theirs = t.path().join("theirs.sig");
    ms_sign(&f, &theirs, &private);
    assert_eq!(code(&verify(&f, &theirs, &public, &[])), 0);
    fs::write(&f, bytes(6, 70_000)).unwrap();
    assert_eq!(code(&verify(&f, &theirs, &public, &[])), 1);
}

#[test]
fn inspect_lists_a_signature_without_verifying() {
    let s = signed(false);
    let o = run(["inspect".as_ref(), s.sig.as_os_str()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("NOT verified"), "{text}");
    assert!(
        text.contains("tokenizer/x") && text.contains("files, sha256"),
        "{text}"
    );
    let o = run(["inspect".as_ref(), s.sig.as_os_str(), "--json".as_ref()]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["verified"], false);
    assert_eq!(v["model"], "m");
    assert_eq!(v["resources"].as_array().unwrap().len(), 6);
    assert_eq!(v["root_digest_consistent"], true);
    assert_eq!(v["key_hint"].as_str().unwrap().len(), 64);
}

#[test]
fn signed_tensors_prove_a_gguf_export_carries_the_release_weights() {
    let t = tempfile::tempdir().unwrap();
    let ck = t.path().join("ck");
    let o = run([
        "synth".as_ref(),
        "-o".as_ref(),
        ck.as_os_str(),
        "--shape".as_ref(),
        "tiny".as_ref(),
        "--mp".as_ref(),
        "2".as_ref(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (private, public) = keypair(t.path(), "prime256v1", Form::Pkcs8);
    let sig = t.path().join("release.sig");
    let o = run([
        "sign".as_ref(),
        ck.as_os_str(),
        "--key".as_ref(),
        private.as_os_str(),
        "-o".as_ref(),
        sig.as_os_str(),
        "--tensors".as_ref(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        payload(&sig)["predicate"]["llama_tool"]["tensors"]["scheme"],
        "llama-tool-tensor-v1"
    );
    // model_signing ignores the extra predicate field.
    let (c, out) = ms_verify(&ck, &sig, &public);
    assert_eq!(c, 0, "{out}");
    let f16 = t.path().join("m16.gguf");
    let q8 = t.path().join("q8.gguf");
    for (dest, extra) in [(&f16, "--outtype=f16"), (&q8, "--q8")] {
        let o = run([
            "convert".as_ref(),
            ck.as_os_str(),
            "-o".as_ref(),
            dest.as_os_str(),
            extra.as_ref(),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    let vt = |other: &Path, key: &Path| {
        run([
            "verify".as_ref(),
            "--tensors".as_ref(),
            sig.as_os_str(),
            "--public-key".as_ref(),
            key.as_os_str(),
            other.as_os_str(),
        ])
    };
    let o = vt(&f16, &public);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("OK        tensors of"),
        "{}",
        stdout(&o)
    );
    let o = vt(&q8, &public);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stdout(&o).contains("VALUES differ"), "{}", stdout(&o));
    let (_, other) = keypair(t.path(), "prime256v1", Form::Sec1);
    let o = vt(&f16, &other);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("signed by another key"),
        "{}",
        stdout(&o)
    );
}

/// Python's `http.server` on a free loopback port serving `root`; killed when dropped.
struct Served {
    child: std::process::Child,
    port: u16,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(root: &Path) -> Served {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(signing_python())
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(port.to_string())
        .arg("--directory")
        .arg(root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Served { child, port };
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("http.server did not start on port {port}");
}

#[test]
fn download_checks_each_file_against_the_signature_while_streaming() {
    let s = signed(true);
    let server = serve(&s.model);
    let base = format!("http://127.0.0.1:{}/", server.port);
    let dl = |dir: &Path, key: &Path| {
        run([
            "download".as_ref(),
            "--json".as_ref(),
            "--signature".as_ref(),
            s.sig.as_os_str(),
            "--public-key".as_ref(),
            key.as_os_str(),
            "--base-url".as_ref(),
            base.as_ref(),
            "--dir".as_ref(),
            dir.as_os_str(),
        ])
    };
    let out = s.dir.join("got");
    let o = dl(&out, &s.public);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    for name in [
        "consolidated.00.pth",
        "tokenizer/x",
        "empty",
        "tokenizer.model",
    ] {
        assert_eq!(
            fs::read(out.join(name)).unwrap(),
            fs::read(s.model.join(name)).unwrap(),
            "{name}"
        );
    }
    // The signature came along: the folder verifies later.
    let o = verify(&out, &out.join("model.sig"), &s.public, &[]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    // A server handing out a changed shard: MISMATCH, nothing under the final name.
    let shard = s.model.join("consolidated.01.pth");
    let mut data = fs::read(&shard).unwrap();
    data[1000] ^= 1;
    fs::write(&shard, &data).unwrap();
    let out2 = s.dir.join("got2");
    let o = dl(&out2, &s.public);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let bad: Vec<&serde_json::Value> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "MISMATCH")
        .collect();
    assert_eq!(bad.len(), 1, "{v}");
    assert_eq!(bad[0]["path"], "consolidated.01.pth");
    assert!(!out2.join("consolidated.01.pth").exists());
    // Another key: nothing is fetched at all.
    let (_, other) = keypair(&s.dir, "prime256v1", Form::Sec1);
    let out3 = s.dir.join("got3");
    let o = dl(&out3, &other);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(!out3.join("consolidated.00.pth").exists());
}

#[test]
fn blake3_and_ignore_paths_we_sign_verify_with_model_signing_api() {
    let t = tempfile::tempdir().unwrap();
    let m = model_folder(t.path(), "m");
    fs::create_dir_all(m.join("notes")).unwrap();
    fs::write(m.join("notes/draft.md"), b"changes often").unwrap();
    fs::write(m.join("README.md"), b"readme").unwrap();
    let (private, public) = keypair(t.path(), "secp384r1", Form::Pkcs8);
    let o = run([
        "sign".as_ref(),
        m.as_os_str(),
        "--key".as_ref(),
        private.as_os_str(),
        "--blake3".as_ref(),
        "--ignore".as_ref(),
        "notes".as_ref(),
        "--ignore".as_ref(),
        m.join("README.md").as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let sig = m.join("model.sig");
    let p = payload(&sig);
    assert_eq!(p["predicate"]["serialization"]["hash_type"], "blake3");
    let ignored = p["predicate"]["serialization"]["ignore_paths"].to_string();
    assert!(
        ignored.contains("\"notes\"") && ignored.contains("\"README.md\""),
        "{ignored}"
    );
    // Ignored files may change; the signature still holds, for both tools.
    fs::write(m.join("notes/draft.md"), b"changed").unwrap();
    fs::write(m.join("README.md"), b"changed").unwrap();
    assert_eq!(code(&verify(&m, &sig, &public, &[])), 0);
    // model_signing's library guesses the serialization (blake3) from the signature.
    let o = Command::new(signing_python())
        .arg("-c")
        .arg(
            "import sys\nfrom model_signing import verifying\n\
             verifying.Config().use_elliptic_key_verifier(public_key=sys.argv[3]).verify(sys.argv[1], sys.argv[2])\n",
        )
        .arg(&m)
        .arg(&sig)
        .arg(&public)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    fs::write(m.join("params.json"), b"{}").unwrap();
    assert_eq!(code(&verify(&m, &sig, &public, &[])), 1);
}
