//! `llama-tool download --signature SIG --public-key PUB.pem --base-url URL`: fetch the files
//! a model signature lists, each checked against its signed digest while it streams (as
//! `--manifest` does). The signature (a file or URL) is verified with the key before any file
//! is fetched, and kept in the target folder so `verify DIR --signature DIR/NAME` works later.

use anyhow::bail;
use llama_manifests::download::{self, Target};
use llama_manifests::sign::{self, check, PublicKey};

use super::download::Args;

/// The verified targets of `--signature`; None (after saying why on stderr) when the
/// signature does not hold for the key, so nothing is fetched on its word.
pub fn targets(
    args: &Args,
    sig: &str,
    fetch_small: impl Fn(&str) -> Result<String, download::DownloadError>,
) -> anyhow::Result<Option<Vec<Target>>> {
    let Some(key_path) = &args.public_key else {
        bail!("--signature needs --public-key PUB.pem (the signer's EC public key)");
    };
    let key = PublicKey::load(key_path)?;
    let download::Listing { text, name, base } =
        download::listing(sig, sign::DEFAULT_SIGNATURE_NAME, fetch_small)?;
    let Some(base) = args.base_url.clone().or(base) else {
        bail!("--signature FILE needs --base-url URL");
    };
    let bundle = sign::Bundle::parse(&text, sig)?;
    let manifest = match sign::verify_bundle(&bundle, &key, sig) {
        Ok(m) => m,
        Err(e) if e.is_check_failure() => {
            eprintln!("MISMATCH  {e}");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let targets = check::download_targets(&manifest, sig, &base, &args.dir)?;
    super::download::keep_listing(&args.dir, &name, &text)?;
    Ok(Some(targets))
}
