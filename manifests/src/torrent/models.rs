//! Selecting model sizes from a torrent with Meta's LLaMA layout: `7B/`, `13B/`, ... each
//! with `consolidated.NN.pth`, `params.json` and `checklist.chk`, next to `tokenizer.model`
//! and `tokenizer_checklist.chk`. A model folder is any folder holding a `params.json`; the
//! release root is the folder above it.

use super::metainfo::Metainfo;
use super::TorrentError;

/// The model folders (paths under the torrent root, `/`-separated) in torrent order.
pub(crate) fn model_dirs(meta: &Metainfo) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in meta.files.iter().filter(|f| !f.padding) {
        if f.path.len() >= 2 && f.path.last().is_some_and(|n| n == "params.json") {
            let dir = f.path[..f.path.len() - 1].join("/");
            if !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
    out
}

fn size_of_dir(dir: &str) -> &str {
    dir.rsplit('/').next().unwrap_or(dir)
}

/// Indices into `meta.files` of the files a download of `models` (sizes such as `7B`) needs:
/// each model's folder, plus the tokenizer files and checklists of the release root. An
/// unknown size is an error naming the sizes the torrent has.
pub fn select(meta: &Metainfo, models: &[String]) -> Result<Vec<usize>, TorrentError> {
    let dirs = model_dirs(meta);
    let mut prefixes = Vec::new();
    for m in models {
        match dirs.iter().find(|d| size_of_dir(d).eq_ignore_ascii_case(m)) {
            Some(d) => prefixes.push(d.clone()),
            None => {
                let have: Vec<&str> = dirs.iter().map(|d| size_of_dir(d)).collect();
                return Err(TorrentError::NoSuchModel {
                    torrent: meta.name.clone(),
                    wanted: m.clone(),
                    have: if have.is_empty() {
                        "no model folder with a params.json".into()
                    } else {
                        have.join(", ")
                    },
                });
            }
        }
    }
    // Release roots: the folders above the model folders.
    let roots: Vec<String> = dirs
        .iter()
        .map(|d| {
            d.rsplit_once('/')
                .map(|(r, _)| r.to_string())
                .unwrap_or_default()
        })
        .collect();
    let mut out = Vec::new();
    for (i, f) in meta.files.iter().enumerate() {
        if f.padding {
            continue;
        }
        let rel = f.rel();
        let in_model = prefixes.iter().any(|p| rel.starts_with(&format!("{p}/")));
        let parent = f.path[..f.path.len() - 1].join("/");
        let file_name = f.path.last().map(String::as_str).unwrap_or("");
        let shared = roots.contains(&parent)
            && (file_name.starts_with("tokenizer") || file_name.ends_with(".chk"));
        if in_model || shared {
            out.push(i);
        }
    }
    Ok(out)
}
