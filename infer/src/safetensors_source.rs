//! A [`WeightSource`] over safetensors files that use Meta's tensor names
//! (`tok_embeddings.weight`, `layers.N.attention.wq.weight`, ...) with a Meta `params.json`
//! beside them: the layout `llama-tool` and the test fixtures write. Files are memory-mapped
//! and tensors are borrowed from the map. Format: <https://github.com/huggingface/safetensors>.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use llama_formats::DType;
use memmap2::Mmap;
use safetensors::tensor::Metadata;

use crate::weights::{InferError, LlamaConfig, WeightSource, WeightTensor};

/// Why a safetensors checkpoint could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SafetensorsSourceError {
    /// File or folder unreadable.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The safetensors header is invalid.
    #[error("{}: invalid safetensors file: {source}", path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// What the safetensors crate said.
        source: safetensors::SafeTensorError,
    },
    /// A folder without `*.safetensors` files.
    #[error("{}: no .safetensors files", path.display())]
    Empty {
        /// The folder.
        path: PathBuf,
    },
    /// params.json missing or malformed.
    #[error("{}: {message}", path.display())]
    Params {
        /// The params.json path.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The same tensor in two files.
    #[error("tensor `{name}` appears in both {} and {}", first.display(), second.display())]
    Duplicate {
        /// Tensor name.
        name: String,
        /// First file.
        first: PathBuf,
        /// Second file.
        second: PathBuf,
    },
    /// A dtype llama-tool does not compute with.
    #[error("{}: tensor `{name}` has unsupported dtype {dtype}", path.display())]
    DType {
        /// The file.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// The safetensors dtype.
        dtype: String,
    },
}

struct File {
    path: PathBuf,
    map: Mmap,
    data_start: usize,
    meta: Metadata,
}

/// Meta-named safetensors file(s) plus `params.json`.
pub struct SafetensorsSource {
    files: Vec<File>,
    index: HashMap<String, usize>,
    params: PathBuf,
}

impl SafetensorsSource {
    /// Open a `.safetensors` file (params.json in the same folder) or a folder of them.
    pub fn open(path: &Path) -> Result<SafetensorsSource, SafetensorsSourceError> {
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| SafetensorsSourceError::Io { path: p, source }
        };
        let (dir, paths) = if path.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(io(path))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
                .collect();
            v.sort();
            (path.to_path_buf(), v)
        } else {
            (
                path.parent().unwrap_or(Path::new(".")).to_path_buf(),
                vec![path.to_path_buf()],
            )
        };
        if paths.is_empty() {
            return Err(SafetensorsSourceError::Empty {
                path: path.to_path_buf(),
            });
        }
        let mut files = Vec::new();
        let mut index = HashMap::new();
        for p in paths {
            let f = std::fs::File::open(&p).map_err(io(&p))?;
            // SAFETY: read-only map; the file is not expected to change while we read it.
            let map = unsafe { Mmap::map(&f) }.map_err(io(&p))?;
            let (n, meta) = safetensors::SafeTensors::read_metadata(&map).map_err(|source| {
                SafetensorsSourceError::Header {
                    path: p.clone(),
                    source,
                }
            })?;
            for name in meta.tensors().keys() {
                if let Some(&i) = index.get(name) {
                    let first: &File = &files[i];
                    return Err(SafetensorsSourceError::Duplicate {
                        name: name.clone(),
                        first: first.path.clone(),
                        second: p,
                    });
                }
                index.insert(name.clone(), files.len());
            }
            files.push(File {
                path: p,
                map,
                data_start: 8 + n,
                meta,
            });
        }
        Ok(SafetensorsSource {
            files,
            index,
            params: dir.join("params.json"),
        })
    }

    fn shape_of(&self, name: &str) -> Option<Vec<u64>> {
        let f = &self.files[*self.index.get(name)?];
        Some(f.meta.info(name)?.shape.iter().map(|&d| d as u64).collect())
    }
}

/// Build a config from Meta `params.json` text, taking the vocabulary and feed-forward sizes
/// from the tensors (`vocab_size` is -1 in Meta's files).
pub fn config_from_meta_params(
    text: &str,
    vocab_size: usize,
    hidden_dim: usize,
) -> Result<LlamaConfig, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let get = |k: &str| v.get(k).and_then(|x| x.as_u64()).map(|x| x as usize);
    let need = |k: &str| get(k).ok_or_else(|| format!("missing or non-integer `{k}`"));
    let n_heads = need("n_heads")?;
    Ok(LlamaConfig {
        dim: need("dim")?,
        n_layers: need("n_layers")?,
        n_heads,
        n_kv_heads: get("n_kv_heads").unwrap_or(n_heads),
        vocab_size,
        hidden_dim,
        norm_eps: v
            .get("norm_eps")
            .and_then(|x| x.as_f64())
            .ok_or("missing `norm_eps`")?,
        rope_theta: v
            .get("rope_theta")
            .and_then(|x| x.as_f64())
            .unwrap_or(10000.0),
    })
}

impl WeightSource for SafetensorsSource {
    fn config(&self) -> Result<LlamaConfig, InferError> {
        let text = std::fs::read_to_string(&self.params).map_err(|source| {
            InferError::source(SafetensorsSourceError::Io {
                path: self.params.clone(),
                source,
            })
        })?;
        let first = |name: &str| -> Result<usize, InferError> {
            let s = self
                .shape_of(name)
                .ok_or_else(|| InferError::MissingTensor(name.to_string()))?;
            Ok(s.first().copied().unwrap_or(0) as usize)
        };
        let vocab = first("tok_embeddings.weight")?;
        let hidden = first("layers.0.feed_forward.w1.weight")?;
        config_from_meta_params(&text, vocab, hidden).map_err(|message| {
            InferError::source(SafetensorsSourceError::Params {
                path: self.params.clone(),
                message,
            })
        })
    }

    fn tensor(&self, name: &str) -> Result<WeightTensor<'_>, InferError> {
        let missing = || InferError::MissingTensor(name.to_string());
        let f = &self.files[*self.index.get(name).ok_or_else(missing)?];
        let info = f.meta.info(name).ok_or_else(missing)?;
        let dtype = match info.dtype {
            safetensors::Dtype::F32 => DType::F32,
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::BF16 => DType::BF16,
            safetensors::Dtype::F64 => DType::F64,
            other => {
                return Err(InferError::source(SafetensorsSourceError::DType {
                    path: f.path.clone(),
                    name: name.into(),
                    dtype: format!("{other:?}"),
                }))
            }
        };
        let (a, b) = info.data_offsets;
        // read_metadata validated the offsets against the file length; stay checked anyway.
        let data = f
            .data_start
            .checked_add(a)
            .zip(f.data_start.checked_add(b))
            .and_then(|(a, b)| f.map.get(a..b))
            .ok_or_else(missing)?;
        Ok(WeightTensor {
            dtype,
            shape: info.shape.iter().map(|&d| d as u64).collect(),
            data: Cow::Borrowed(data),
        })
    }
}
