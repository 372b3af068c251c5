//! Magnet links ([BEP 9](https://www.bittorrent.org/beps/bep_0009.html) for v1
//! `xt=urn:btih:` in hex or base32, [BEP 52](https://www.bittorrent.org/beps/bep_0052.html) for
//! v2 `xt=urn:btmh:1220<sha-256 hex>`), `dn`, `tr` and `x.pe` parameters.

use super::malformed::BadMagnet;
use super::TorrentError;

/// The parts of a magnet link llama-tool uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Magnet {
    /// v1 info-hash.
    pub btih: Option<[u8; 20]>,
    /// v2 info-hash.
    pub btmh: Option<[u8; 32]>,
    /// Display name.
    pub name: Option<String>,
    /// Trackers.
    pub trackers: Vec<String>,
    /// Peers (`x.pe`, `host:port`).
    pub peers: Vec<String>,
}

impl Magnet {
    /// Parse `magnet:?xt=...`.
    pub fn parse(uri: &str) -> Result<Magnet, TorrentError> {
        let bad = |problem: BadMagnet| TorrentError::Magnet {
            uri: uri.to_string(),
            problem,
        };
        let query = uri
            .strip_prefix("magnet:?")
            .ok_or_else(|| bad(BadMagnet::NoPrefix))?;
        let mut m = Magnet::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v).ok_or_else(|| bad(BadMagnet::PercentEncoding))?;
            // `xt.1`, `xt.2` number several exact topics.
            let key = k.split('.').next().unwrap_or(k);
            match key {
                "xt" => {
                    let lower = v.to_ascii_lowercase();
                    if let Some(h) = lower.strip_prefix("urn:btih:") {
                        let hash = match h.len() {
                            40 => hex::decode(h).ok(),
                            32 => base32_decode(h),
                            _ => None,
                        }
                        .and_then(|b| <[u8; 20]>::try_from(b).ok())
                        .ok_or_else(|| bad(BadMagnet::Btih))?;
                        m.btih = Some(hash);
                    } else if let Some(h) = lower.strip_prefix("urn:btmh:") {
                        let hash = h
                            .strip_prefix("1220")
                            .and_then(|h| hex::decode(h).ok())
                            .and_then(|b| <[u8; 32]>::try_from(b).ok())
                            .ok_or_else(|| bad(BadMagnet::Btmh))?;
                        m.btmh = Some(hash);
                    }
                }
                "dn" => m.name = Some(v),
                "tr" => m.trackers.push(v),
                "x" if k == "x.pe" => m.peers.push(v),
                _ => {}
            }
        }
        if m.btih.is_none() && m.btmh.is_none() {
            return Err(bad(BadMagnet::NoInfoHash));
        }
        Ok(m)
    }

    /// Does a torrent with these info-hashes match? Every hash the link names must match.
    pub fn matches(&self, v1: Option<[u8; 20]>, v2: Option<[u8; 32]>) -> bool {
        let ok1 = self.btih.is_none_or(|h| Some(h) == v1);
        let ok2 = self.btmh.is_none_or(|h| Some(h) == v2);
        ok1 && ok2
    }
}

/// RFC 4648 base32 (no padding), case-insensitive.
fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'a'..=b'z' => c - b'a',
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        } as u64;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encode everything but unreserved characters.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_llama_magnet_in_hex_and_base32() {
        let hex_link = "magnet:?xt=urn:btih:b8287ebfa04f879b048d4d4404108cf3e8014352&dn=LLaMA";
        let m = Magnet::parse(hex_link).unwrap();
        let want: [u8; 20] = hex::decode("b8287ebfa04f879b048d4d4404108cf3e8014352")
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(m.btih, Some(want));
        assert_eq!(m.name.as_deref(), Some("LLaMA"));
        // The same hash in base32.
        let b32 = "XAUH5P5AJ6DZWBENJVCAIEEM6PUACQ2S";
        let m2 = Magnet::parse(&format!("magnet:?xt=urn:btih:{b32}")).unwrap();
        assert_eq!(m2.btih, Some(want));
        assert!(m.matches(Some(want), None));
        assert!(!m.matches(Some([0; 20]), None));
    }

    #[test]
    fn parses_btmh_and_refuses_links_without_a_hash() {
        let h = "ab".repeat(32);
        let m = Magnet::parse(&format!(
            "magnet:?xt=urn:btmh:1220{h}&tr=http%3A%2F%2Ft%2Fa&x.pe=127.0.0.1:6881"
        ))
        .unwrap();
        assert_eq!(m.btmh, Some([0xab; 32]));
        assert_eq!(m.trackers, ["http://t/a"]);
        assert_eq!(m.peers, ["127.0.0.1:6881"]);
        assert!(Magnet::parse("magnet:?dn=x").is_err());
        assert!(Magnet::parse("http://x").is_err());
        assert!(Magnet::parse("magnet:?xt=urn:btih:1234").is_err());
    }
}
