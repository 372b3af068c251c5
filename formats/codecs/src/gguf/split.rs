//! GGUF models split by llama.cpp's `gguf-split` (or gguf-py's `GGUFWriter` with
//! `split_max_tensors`/`split_max_size`): files `NAME-00001-of-0000N.gguf`, each a complete
//! GGUF file with its own tensors, carrying `split.no` (0-based), `split.count` and
//! `split.tensors.count`; the first file holds the model's metadata
//! (<https://github.com/ggml-org/llama.cpp/tree/master/tools/gguf-split>).
//!
//! [`GgufSplit::open`] takes any one file: an unsplit file opens as a split of one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{GgufError, GgufFile, GgufTensor, GgufValue};
use crate::tensor::TensorView;

/// The files of one (possibly split) GGUF model.
#[derive(Debug)]
pub struct GgufSplit {
    files: Vec<GgufFile>,
    /// Tensor name -> (file index, tensor index in that file).
    place: HashMap<String, (usize, usize)>,
}

/// `NAME-00001-of-00003.gguf` -> (`NAME`, 1, 3), with exactly 5 digits each as gguf-split
/// and gguf-py write them.
fn parse_split_name(path: &Path) -> Option<(String, u64, u64)> {
    let name = path.file_name()?.to_str()?.strip_suffix(".gguf")?;
    let (rest, count) = name.rsplit_once("-of-")?;
    let (prefix, no) = rest.rsplit_once('-')?;
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(no) || !digits(count) {
        return None;
    }
    Some((prefix.to_string(), no.parse().ok()?, count.parse().ok()?))
}

fn split_key(f: &GgufFile, key: &str) -> Option<u64> {
    f.get(key).and_then(GgufValue::as_u64)
}

impl GgufSplit {
    /// Open a GGUF model from any of its files.
    pub fn open(path: &Path) -> Result<GgufSplit, GgufError> {
        let first = GgufFile::open(path)?;
        let count = split_key(&first, "split.count").unwrap_or(1);
        if count <= 1 {
            return Self::from_files(vec![first]);
        }
        let bad_name = || GgufError::SplitName {
            path: path.to_path_buf(),
            count,
        };
        let (prefix, no, named_count) = parse_split_name(path).ok_or_else(bad_name)?;
        if named_count != count || no == 0 || no > count {
            return Err(bad_name());
        }
        let mut opened = Some((no, first));
        let mut files = Vec::with_capacity(count.min(1024) as usize);
        for i in 1..=count {
            let f = match opened.take() {
                Some((n, f)) if n == i => f,
                other => {
                    opened = other;
                    let p: PathBuf =
                        path.with_file_name(format!("{prefix}-{i:05}-of-{count:05}.gguf"));
                    GgufFile::open(&p)?
                }
            };
            for (key, want) in [("split.no", i - 1), ("split.count", count)] {
                let found = split_key(&f, key);
                if found != Some(want) {
                    return Err(GgufError::SplitMismatch {
                        path: f.path().to_path_buf(),
                        key: key.to_string(),
                        expected: want,
                        found: found.map_or_else(|| "nothing".into(), |x| x.to_string()),
                    });
                }
            }
            files.push(f);
        }
        Self::from_files(files)
    }

    fn from_files(files: Vec<GgufFile>) -> Result<GgufSplit, GgufError> {
        let mut place = HashMap::new();
        for (fi, f) in files.iter().enumerate() {
            for (ti, t) in f.tensors().iter().enumerate() {
                if place.insert(t.info.name.clone(), (fi, ti)).is_some() {
                    return Err(GgufError::SplitDuplicateTensor {
                        path: f.path().to_path_buf(),
                        name: t.info.name.clone(),
                    });
                }
            }
        }
        if let Some(first) = files.first() {
            if let Some(want) = split_key(first, "split.tensors.count") {
                if want != place.len() as u64 {
                    return Err(GgufError::SplitTensorCount {
                        path: first.path().to_path_buf(),
                        expected: want,
                        found: place.len() as u64,
                    });
                }
            }
        }
        Ok(GgufSplit { files, place })
    }

    /// The files, in split order.
    pub fn files(&self) -> &[GgufFile] {
        &self.files
    }

    /// The model's metadata (the first file's).
    pub fn metadata(&self) -> &[(String, GgufValue)] {
        self.files.first().map_or(&[], |f| f.metadata())
    }

    /// A metadata value of the first file.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.files.first()?.get(key)
    }

    /// Every tensor with its file, file by file in file order.
    pub fn tensors(&self) -> impl Iterator<Item = (&GgufFile, &GgufTensor)> {
        self.files
            .iter()
            .flat_map(|f| f.tensors().iter().map(move |t| (f, t)))
    }

    /// A tensor and its file by name.
    pub fn get_tensor(&self, name: &str) -> Option<(&GgufFile, &GgufTensor)> {
        let &(fi, ti) = self.place.get(name)?;
        let f = self.files.get(fi)?;
        Some((f, f.tensors().get(ti)?))
    }

    /// A tensor's bytes by name; `None` when no file holds it.
    pub fn view(&self, name: &str) -> Option<Result<TensorView<'_>, GgufError>> {
        let (f, t) = self.get_tensor(name)?;
        Some(f.view(t))
    }

    /// Drop a tensor's pages from memory; best effort.
    pub fn release(&self, name: &str) {
        if let Some((f, t)) = self.get_tensor(name) {
            f.release(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names_parse_strictly() {
        let p = |s: &str| parse_split_name(Path::new(s));
        assert_eq!(
            p("/m/llama-7b-00002-of-00003.gguf"),
            Some(("llama-7b".into(), 2, 3))
        );
        assert_eq!(p("x-0002-of-00003.gguf"), None);
        assert_eq!(p("x-00002-of-00003.bin"), None);
        assert_eq!(p("model.gguf"), None);
    }
}
