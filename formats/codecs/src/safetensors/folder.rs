//! A Hugging Face checkpoint folder: one `.safetensors` file, or shards listed by
//! `model.safetensors.index.json` (`{"metadata": {...}, "weight_map": {tensor: file}}`, as
//! transformers' `save_pretrained` writes it). Every shard the index names must exist, and
//! every tensor must be exactly where the index says (no tensor missing, none unlisted).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::{SafetensorsError, SafetensorsFile, INDEX_NAME};
use crate::tensor::{TensorInfo, TensorView};

/// The part of the index we read.
#[derive(serde::Deserialize)]
struct Index {
    weight_map: BTreeMap<String, String>,
}

/// Biggest index file read into memory (real ones are tens of KB).
const MAX_INDEX_LEN: u64 = 64 << 20;

/// An open checkpoint: one or more safetensors files.
#[derive(Debug)]
pub struct SafetensorsFolder {
    path: PathBuf,
    /// Shards in file-name order.
    shards: Vec<SafetensorsFile>,
    /// Tensor name -> shard index.
    place: HashMap<String, usize>,
}

impl SafetensorsFolder {
    /// Open `path`: a `.safetensors` file, a folder with `model.safetensors.index.json`, or
    /// a folder holding exactly one `.safetensors` file.
    pub fn open(path: &Path) -> Result<SafetensorsFolder, SafetensorsError> {
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| SafetensorsError::Io {
                path: p,
                error: source,
            }
        };
        if path.is_file() {
            return Ok(Self::single(path, SafetensorsFile::open(path)?));
        }
        let index_path = path.join(INDEX_NAME);
        if index_path.is_file() {
            return Self::open_index(path, &index_path);
        }
        let mut found = Vec::new();
        for entry in std::fs::read_dir(path).map_err(io(path))? {
            let p = entry.map_err(io(path))?.path();
            if p.extension().is_some_and(|e| e == "safetensors") && p.is_file() {
                found.push(p);
            }
        }
        match found.as_slice() {
            [one] => Ok(Self::single(path, SafetensorsFile::open(one)?)),
            _ => Err(SafetensorsError::NoCheckpoint {
                path: path.to_path_buf(),
                found: found.len(),
            }),
        }
    }

    fn single(path: &Path, file: SafetensorsFile) -> SafetensorsFolder {
        let place = file.tensors().iter().map(|t| (t.name.clone(), 0)).collect();
        SafetensorsFolder {
            path: path.to_path_buf(),
            shards: vec![file],
            place,
        }
    }

    fn open_index(dir: &Path, index_path: &Path) -> Result<SafetensorsFolder, SafetensorsError> {
        let io = |source| SafetensorsError::Io {
            path: index_path.to_path_buf(),
            error: source,
        };
        let len = std::fs::metadata(index_path).map_err(io)?.len();
        if len > MAX_INDEX_LEN {
            return Err(io(std::io::Error::other(format!(
                "index is {len} bytes, more than the {MAX_INDEX_LEN} allowed"
            ))));
        }
        let text = std::fs::read(index_path).map_err(io)?;
        let index: Index =
            serde_json::from_slice(&text).map_err(|source| SafetensorsError::BadIndex {
                path: index_path.to_path_buf(),
                error: source,
            })?;

        // Shard file names, each a plain name inside the folder, in name order.
        let mut files: BTreeMap<&str, usize> = BTreeMap::new();
        for (name, file) in &index.weight_map {
            let plain = Path::new(file)
                .file_name()
                .is_some_and(|f| f == file.as_str());
            if !plain || file == ".." || file == "." {
                return Err(SafetensorsError::BadShardName {
                    path: index_path.to_path_buf(),
                    name: name.clone(),
                    file: file.clone(),
                });
            }
            files.insert(file, 0);
        }
        let mut shards = Vec::with_capacity(files.len());
        for (i, (file, slot)) in files.iter_mut().enumerate() {
            shards.push(SafetensorsFile::open(&dir.join(file))?);
            *slot = i;
        }

        let mut place = HashMap::with_capacity(index.weight_map.len());
        for (name, file) in &index.weight_map {
            let i = files[file.as_str()];
            if shards[i].get(name).is_none() {
                return Err(SafetensorsError::MissingFromShard {
                    path: index_path.to_path_buf(),
                    name: name.clone(),
                    file: file.clone(),
                });
            }
            place.insert(name.clone(), i);
        }
        for (i, shard) in shards.iter().enumerate() {
            for t in shard.tensors() {
                if place.get(&t.name) != Some(&i) {
                    return Err(SafetensorsError::NotInIndex {
                        path: index_path.to_path_buf(),
                        name: t.name.clone(),
                        file: shard.path().display().to_string(),
                    });
                }
            }
        }
        Ok(SafetensorsFolder {
            path: dir.to_path_buf(),
            shards,
            place,
        })
    }

    /// The folder (or file) opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The files, in name order.
    pub fn shards(&self) -> &[SafetensorsFile] {
        &self.shards
    }

    /// Every tensor: shard by shard, in file order within each.
    pub fn tensors(&self) -> Vec<TensorInfo> {
        self.shards
            .iter()
            .flat_map(|s| s.tensors().iter().cloned())
            .collect()
    }

    /// The shard holding `name`.
    pub(crate) fn shard_of(&self, name: &str) -> Option<&SafetensorsFile> {
        self.place.get(name).and_then(|&i| self.shards.get(i))
    }

    /// A tensor's info by name.
    pub fn get(&self, name: &str) -> Option<&TensorInfo> {
        self.shard_of(name)?.get(name)
    }

    /// The tensor's bytes, borrowed from its shard's map.
    pub fn view(&self, name: &str) -> Result<TensorView<'_>, SafetensorsError> {
        match self.shard_of(name) {
            Some(s) => s.view(name),
            None => Err(SafetensorsError::NotFound {
                path: self.path.clone(),
                name: name.to_string(),
            }),
        }
    }

    /// Drop the tensor's pages from memory; best effort.
    pub fn release(&self, name: &str) {
        if let Some(s) = self.shard_of(name) {
            s.release(name);
        }
    }
}

/// The text of a `model.safetensors.index.json` as transformers' `save_pretrained` writes
/// it (`json.dumps(index, indent=2, sort_keys=True) + "\n"`): `metadata.total_size` is the
/// sum of the tensors' data bytes, `total_parameters` their element count when given.
pub fn index_json(
    weight_map: &BTreeMap<String, String>,
    total_size: u64,
    total_parameters: Option<u64>,
) -> String {
    let mut meta = BTreeMap::new();
    meta.insert("total_size", total_size);
    if let Some(n) = total_parameters {
        meta.insert("total_parameters", n);
    }
    let index = serde_json::json!({"metadata": meta, "weight_map": weight_map});
    let mut text = serde_json::to_string_pretty(&index).unwrap_or_default();
    text.push('\n');
    text
}
