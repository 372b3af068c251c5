//! A checkpoint, whatever its layout: a Meta folder (`params.json` + `consolidated.NN.pth`,
//! `tokenizer.model` in it or its parent), a Hugging Face folder (`config.json` +
//! safetensors, possibly sharded), or a single `.gguf`, `.safetensors` or `.pth` file.
//!
//! Two views: the raw tensors of each file (for `inspect`), and the LLaMA view every
//! converter uses: tensors by [`TensorName`] in Meta's orientation and rotary layout, with
//! Meta shards merged on the fly and HF q/k un-permuted. Bytes stay in the memory maps
//! until a tensor is read; `release` drops its pages again.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::dtype::DType;
use crate::gguf::{GgufError, GgufFile};
use crate::llama::naming::Layout;
use crate::llama::{MetaParams, ParamsError, TensorName};
use crate::merge::{self, MergeError};
use crate::pth::{PthError, PthFile};
use crate::safetensors::{SafetensorsError, SafetensorsFolder};
use crate::sentencepiece::SpModel;
use crate::tensor::{TensorInfo, TensorView};
use llama_codecs::{ReaderError, TensorReader};

/// Why a checkpoint could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading a torch `.pth` file failed.
    #[error(transparent)]
    /// A torch `.pth` shard could not be read.
    Pth(#[from] PthError),
    /// Reading a GGUF file failed.
    #[error(transparent)]
    /// A GGUF file could not be read.
    Gguf(#[from] GgufError),
    /// Reading safetensors failed.
    #[error(transparent)]
    /// A safetensors file could not be read.
    Safetensors(#[from] SafetensorsError),
    /// `params.json` / `config.json` / the GGUF metadata do not describe a LLaMA model.
    #[error(transparent)]
    /// `params.json` / `config.json` / GGUF hyper-parameters are missing or invalid.
    Params(#[from] ParamsError),
    /// Merging Meta shards failed.
    #[error(transparent)]
    /// Shards do not merge.
    Merge(#[from] MergeError),
    #[error(transparent)]
    /// `tokenizer.model` could not be read.
    Tokenizer(#[from] crate::sentencepiece::SpError),
    /// The path is not a checkpoint llama-tool knows.
    #[error("{path}: {what}")]
    Unrecognized {
        /// The file or folder.
        path: PathBuf,
        /// What it is not.
        what: &'static str,
    },
    /// A `consolidated.*.pth` name without a shard number.
    #[error("{path}: unexpected shard name `{name}`")]
    ShardName {
        /// The folder.
        path: PathBuf,
        /// The file name.
        name: String,
    },
    /// A shard number missing from `00..N-1`.
    #[error("{path}: shard consolidated.{missing:02}.pth is missing ({found} shards found, highest index {highest})")]
    MissingShard {
        /// The folder.
        path: PathBuf,
        /// The first missing index.
        missing: usize,
        /// Shards found.
        found: usize,
        /// Highest index found.
        highest: usize,
    },
    /// A per-layer tensor beyond the declared layer count.
    #[error(
        "{path}: tensor `{tensor}` is in layer {layer}, but the model has {limit} layers ({what})"
    )]
    LayerOutOfRange {
        /// The checkpoint.
        path: PathBuf,
        /// The tensor as stored (escaped for the terminal).
        tensor: String,
        /// Its layer index.
        layer: usize,
        /// The layer count.
        limit: u64,
        /// Where the layer count comes from.
        what: &'static str,
    },
    /// A tensor missing from one shard of a Meta folder.
    #[error("{path}: tensor `{tensor}` missing from shard {shard}")]
    MissingFromShard {
        /// The checkpoint.
        path: PathBuf,
        /// The tensor as stored.
        tensor: String,
        /// The shard.
        shard: usize,
    },
    /// A stored tensor asked for by name is not in the checkpoint.
    #[error("{path}: tensor `{tensor}` not found")]
    NotFound {
        /// The checkpoint.
        path: PathBuf,
        /// The tensor as stored.
        tensor: String,
    },
    /// A LLaMA tensor the model needs is not in the checkpoint.
    #[error("{path}: LLaMA tensor `{tensor}` not found")]
    LlamaTensorNotFound {
        /// The checkpoint.
        path: PathBuf,
        /// Its Meta name.
        tensor: String,
    },
    /// A LLaMA tensor the parameters call for is missing.
    #[error("{path}: LLaMA tensor `{tensor}` is missing")]
    LlamaTensorMissing {
        /// The checkpoint.
        path: PathBuf,
        /// Its Meta name.
        tensor: String,
    },
    /// HF q/k rows that do not split into the heads (no un-permutation possible).
    #[error("{path}: `{tensor}`: {rows} rows do not split into {heads} heads")]
    HeadSplit {
        /// The checkpoint.
        path: PathBuf,
        /// The tensor as stored.
        tensor: String,
        /// Its rows.
        rows: usize,
        /// The heads.
        heads: u64,
    },
    /// A row range outside a tensor.
    #[error("{path}: `{tensor}`: row range {start}..{end} outside {rows} rows")]
    RowRange {
        /// The checkpoint.
        path: PathBuf,
        /// The tensor as stored.
        tensor: String,
        /// Range start.
        start: u64,
        /// Range end.
        end: u64,
        /// Its rows.
        rows: usize,
    },
    /// Rows that are not whole quantization blocks.
    #[error("{path}: `{tensor}`: rows of {n} do not fill whole {dtype} blocks")]
    PartialBlocks {
        /// The checkpoint.
        path: PathBuf,
        /// The tensor as stored.
        tensor: String,
        /// Elements per row.
        n: u64,
        /// The block type.
        dtype: DType,
    },
    /// `params.json`'s vocabulary size disagrees with the embedding.
    #[error("{path}: params.json says vocab_size {params} but tok_embeddings has {rows} rows")]
    VocabMismatch {
        /// The checkpoint.
        path: PathBuf,
        /// `vocab_size` in params.json.
        params: i64,
        /// Embedding rows.
        rows: u64,
    },
    /// `params.json`'s implied FFN width disagrees with `w1`.
    #[error("{path}: params.json implies FFN hidden size {implied} (dim {dim}, multiple_of {multiple_of}, ffn_dim_multiplier {multiplier}) but w1 has {rows} rows")]
    HiddenMismatch {
        /// The checkpoint.
        path: PathBuf,
        /// The width params.json implies.
        implied: u64,
        /// `dim`.
        dim: u64,
        /// `multiple_of`.
        multiple_of: u64,
        /// `ffn_dim_multiplier`, or `none`.
        multiplier: String,
        /// `w1` rows.
        rows: u64,
    },
    /// No source of hyper-parameters at all.
    #[error(
        "{path}: no params.json, config.json or GGUF metadata to take the model's parameters from"
    )]
    NoParams {
        /// The checkpoint.
        path: PathBuf,
    },
    /// GGUF metadata that does not give the model's hyper-parameters.
    #[error("{path}: {kind}")]
    GgufParams {
        /// The checkpoint.
        path: PathBuf,
        /// What is missing.
        kind: crate::gguf_llama::GgufParamsError,
    },
    /// The parameters' layer count disagrees with the tensors.
    #[error("{path}: parameters say {params} layers but the tensors hold {tensors}")]
    LayerCount {
        /// The checkpoint.
        path: PathBuf,
        /// Layers the parameters give.
        params: u64,
        /// Layers the tensors hold.
        tensors: u64,
    },
    /// A LLaMA tensor's shape disagrees with the parameters.
    #[error("{path}: tensor `{tensor}` has shape {shape:?} but the parameters imply {want:?}")]
    Shape {
        /// The checkpoint.
        path: PathBuf,
        /// Its Meta name.
        tensor: String,
        /// Its shape.
        shape: Vec<u64>,
        /// The shape the parameters imply.
        want: Vec<u64>,
    },
    /// I/O on a folder.
    #[error("{path}: {error}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
}

mod shapes;
mod stream;

type Result<T> = std::result::Result<T, CheckpointError>;

/// Most layers a checkpoint may have (LLaMA-65B has 80); `params.json` is held to the same.
pub(crate) const MAX_LAYERS: u64 = 1 << 12;

impl From<ReaderError> for CheckpointError {
    fn from(e: ReaderError) -> Self {
        match e {
            ReaderError::Pth(e) => e.into(),
            ReaderError::Safetensors(e) => e.into(),
            ReaderError::Gguf(e) => e.into(),
        }
    }
}

/// What kind of checkpoint a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Kind {
    /// Meta's release layout: `consolidated.NN.pth` + `params.json`.
    Meta,
    /// A Hugging Face folder: `config.json` + safetensors.
    HuggingFace,
    /// A GGUF file.
    Gguf,
    /// A lone safetensors file.
    Safetensors,
    /// A lone torch `.pth` file.
    Pth,
}

impl Kind {
    /// Human name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Meta => "Meta (consolidated.NN.pth shards)",
            Kind::HuggingFace => "Hugging Face (config.json + safetensors)",
            Kind::Gguf => "GGUF",
            Kind::Safetensors => "safetensors",
            Kind::Pth => "PyTorch .pth",
        }
    }
}

/// A raw tensor of one file, as `inspect` lists it.
#[derive(Debug, Clone)]
pub struct RawTensor {
    /// The tensor as stored.
    pub info: TensorInfo,
    /// Shard index for Meta folders.
    pub shard: Option<usize>,
}

/// An opened checkpoint.
pub struct Checkpoint {
    path: PathBuf,
    kind: Kind,
    /// One reader per file: the shards of a Meta folder, else a single reader.
    readers: Vec<Box<dyn TensorReader>>,
    layout: Layout,
    meta_params: Option<MetaParams>,
    hf_config: Option<serde_json::Value>,
    tokenizer: Option<PathBuf>,
    /// LLaMA tensors found: name -> name as stored.
    names: BTreeMap<TensorName, String>,
    /// Stored names that are not LLaMA tensors.
    extra: Vec<String>,
    /// The parameters once [`Checkpoint::params`] has validated them (a checkpoint does
    /// not change once open, so they are checked once).
    params: std::sync::OnceLock<crate::llama::ModelParams>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        error: source,
    }
}

/// `consolidated.NN.pth` files of a folder, checked to be `00..N-1` with none missing.
fn meta_shards(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = BTreeMap::new();
    for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let e = e.map_err(io_err(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_prefix("consolidated.")
            .and_then(|s| s.strip_suffix(".pth"))
        {
            let idx: usize = n.parse().map_err(|_| CheckpointError::ShardName {
                path: dir.to_path_buf(),
                name: name.clone(),
            })?;
            found.insert(idx, e.path());
        }
    }
    let n = found.len();
    if let Some(missing) = (0..n).find(|i| !found.contains_key(i)) {
        return Err(CheckpointError::MissingShard {
            path: dir.to_path_buf(),
            missing,
            found: n,
            highest: found.keys().max().copied().unwrap_or(0),
        });
    }
    Ok(found.into_values().collect())
}

/// Read and parse a Hugging Face `config.json` (capped, regular files only).
fn read_hf_config(cfg_path: &Path) -> Result<serde_json::Value> {
    let text = crate::safe_read::read_capped_string(cfg_path, crate::safe_read::MAX_CONFIG_BYTES)
        .map_err(io_err(cfg_path))?;
    Ok(serde_json::from_str(&text).map_err(|e| ParamsError::Json {
        path: cfg_path.to_path_buf(),
        what: "config.json",
        error: e,
    })?)
}

/// `read(dir/name)` when that file exists beside a lone checkpoint file.
fn beside<T, E: Into<CheckpointError>>(
    dir: &Path,
    name: &str,
    read: impl Fn(&Path) -> std::result::Result<T, E>,
) -> Result<Option<T>> {
    let p = dir.join(name);
    if p.is_file() {
        read(&p).map(Some).map_err(Into::into)
    } else {
        Ok(None)
    }
}

fn find_tokenizer(dir: &Path) -> Option<PathBuf> {
    [
        dir.join("tokenizer.model"),
        dir.join("..").join("tokenizer.model"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

impl Checkpoint {
    /// Open a checkpoint folder or file.
    pub fn open(path: &Path) -> Result<Checkpoint> {
        let path = path.to_path_buf();
        let unrecognized = |what: &'static str| CheckpointError::Unrecognized {
            path: path.clone(),
            what,
        };
        let (kind, readers, meta_params, hf_config, tokenizer) = if path.is_dir() {
            if path.join("params.json").is_file() {
                let shards = meta_shards(&path)?;
                if shards.is_empty() {
                    return Err(unrecognized(
                        "params.json but no consolidated.NN.pth shards",
                    ));
                }
                let files = shards
                    .iter()
                    .map(|p| PthFile::open(p))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let params = MetaParams::read(&path.join("params.json"))?;
                (
                    Kind::Meta,
                    files
                        .into_iter()
                        .map(|f| Box::new(f) as Box<dyn TensorReader>)
                        .collect(),
                    Some(params),
                    None,
                    find_tokenizer(&path),
                )
            } else if path.join("config.json").is_file() {
                let cfg = read_hf_config(&path.join("config.json"))?;
                let folder = SafetensorsFolder::open(&path)?;
                let tok = path.join("tokenizer.model");
                (
                    Kind::HuggingFace,
                    vec![Box::new(folder) as Box<dyn TensorReader>],
                    None,
                    Some(cfg),
                    tok.is_file().then_some(tok),
                )
            } else {
                return Err(unrecognized(
                    "neither a Meta folder (params.json + consolidated.NN.pth) nor a Hugging Face folder (config.json + safetensors)",
                ));
            }
        } else if path.is_file() {
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            match ext.as_str() {
                "gguf" => (
                    Kind::Gguf,
                    vec![Box::new(GgufFile::open(&path)?) as Box<dyn TensorReader>],
                    None,
                    None,
                    None,
                ),
                // A lone safetensors file takes its hyper-parameters from a `params.json`
                // (Meta names) or `config.json` (Hugging Face names) beside it.
                "safetensors" => (
                    Kind::Safetensors,
                    vec![Box::new(SafetensorsFolder::open(&path)?) as Box<dyn TensorReader>],
                    beside(&dir, "params.json", MetaParams::read)?,
                    beside(&dir, "config.json", read_hf_config)?,
                    find_tokenizer(&dir),
                ),
                "pth" | "pt" | "bin" => (
                    Kind::Pth,
                    vec![Box::new(PthFile::open(&path)?) as Box<dyn TensorReader>],
                    beside(&dir, "params.json", MetaParams::read)?,
                    None,
                    find_tokenizer(&dir),
                ),
                _ => {
                    return Err(unrecognized(
                        "unknown file type (expected .gguf, .safetensors or .pth)",
                    ))
                }
            }
        } else {
            return Err(CheckpointError::Io {
                path: path.clone(),
                error: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            });
        };
        let mut ck = Checkpoint {
            path,
            kind,
            readers,
            layout: Layout::Meta,
            meta_params,
            hf_config,
            tokenizer,
            names: BTreeMap::new(),
            extra: Vec::new(),
            params: std::sync::OnceLock::new(),
        };
        ck.index_names()?;
        Ok(ck)
    }

    /// The layer count the checkpoint declares (`params.json` `n_layers`, `config.json`
    /// `num_hidden_layers`, GGUF `llama.block_count`) and where it comes from.
    fn declared_layers(&self) -> Option<(u64, &'static str)> {
        if let Some(p) = &self.meta_params {
            return Some((p.n_layers, "params.json n_layers"));
        }
        if let Some(c) = &self.hf_config {
            return c
                .get("num_hidden_layers")
                .and_then(|v| v.as_u64())
                .map(|n| (n, "config.json num_hidden_layers"));
        }
        self.gguf()
            .and_then(|g| g.get("llama.block_count"))
            .and_then(|v| v.as_u64())
            .map(|n| (n, "llama.block_count"))
    }

    /// Refuse a per-layer tensor whose layer index is not below the declared layer count
    /// (or [`MAX_LAYERS`] when none is declared), before anything is allocated per layer:
    /// one tensor named `blk.100000000000.attn_norm.weight` must not size a table.
    fn check_layer_index(&self, stored: &str, layer: usize) -> Result<()> {
        let (limit, what) = match self.declared_layers() {
            Some((n, what)) => (n.min(MAX_LAYERS), what),
            None => (MAX_LAYERS, "the largest layer count llama-tool accepts"),
        };
        if layer as u64 >= limit {
            return Err(CheckpointError::LayerOutOfRange {
                path: self.path.clone(),
                tensor: crate::text::shown(stored),
                layer,
                limit,
                what,
            });
        }
        Ok(())
    }

    /// Map stored names to LLaMA tensors, choosing the layout that recognizes the most.
    fn index_names(&mut self) -> Result<()> {
        // Every name of every shard, once, in first-seen order: a tensor only some shards
        // hold is still seen (a LLaMA tensor missing from a shard is an error when read; an
        // extra one is passed through or refused, never dropped unseen).
        let mut seen = std::collections::HashSet::new();
        let stored: Vec<String> = self
            .raw_tensors()
            .into_iter()
            .map(|t| t.info.name)
            .filter(|n| seen.insert(n.clone()))
            .collect();
        let candidates: &[Layout] = match self.kind {
            Kind::Meta | Kind::Pth => &[Layout::Meta, Layout::Hf],
            Kind::HuggingFace => &[Layout::Hf],
            Kind::Gguf => &[Layout::Gguf],
            Kind::Safetensors => &[Layout::Hf, Layout::Meta, Layout::Gguf],
        };
        let count = |l: Layout| {
            stored
                .iter()
                .filter(|n| TensorName::parse(n, l).is_some())
                .count()
        };
        self.layout = candidates
            .iter()
            .copied()
            .max_by_key(|&l| {
                (
                    count(l),
                    std::cmp::Reverse(candidates.iter().position(|&c| c == l)),
                )
            })
            .unwrap_or(Layout::Meta);
        for n in stored {
            match TensorName::parse(&n, self.layout) {
                Some(t) => {
                    if let Some(l) = t.layer {
                        self.check_layer_index(&n, l)?;
                    }
                    self.names.insert(t, n);
                }
                None => self.extra.push(n),
            }
        }
        Ok(())
    }

    /// The path opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What kind of checkpoint this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The naming layout the tensors use.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Number of model-parallel shards (1 unless Meta).
    pub(crate) fn shard_count(&self) -> usize {
        self.readers.len()
    }

    /// The files holding the tensors.
    pub fn files(&self) -> Vec<PathBuf> {
        self.readers.iter().flat_map(|r| r.files()).collect()
    }

    /// `params.json` as read, for Meta checkpoints.
    pub(crate) fn meta_params(&self) -> Option<&MetaParams> {
        self.meta_params.as_ref()
    }

    /// `config.json` as read, for Hugging Face folders.
    pub fn hf_config(&self) -> Option<&serde_json::Value> {
        self.hf_config.as_ref()
    }

    /// The GGUF file, for GGUF checkpoints (metadata, embedded tokenizer).
    pub fn gguf(&self) -> Option<&GgufFile> {
        match self.readers.as_slice() {
            [one] => one.as_gguf(),
            _ => None,
        }
    }

    /// `tokenizer.model`, when found beside the checkpoint (or in the parent folder).
    pub fn tokenizer_path(&self) -> Option<&Path> {
        self.tokenizer.as_deref()
    }

    /// The tokenizer: `tokenizer.model` when found, else rebuilt from a GGUF's vocabulary.
    pub fn tokenizer(&self) -> Result<Option<SpModel>> {
        if let Some(p) = &self.tokenizer {
            return Ok(Some(SpModel::read(p)?));
        }
        Ok(self.gguf().and_then(crate::gguf_llama::sp_model_from_gguf))
    }

    /// Write `tokenizer.model` to `dest`: a byte copy of the source's file, or rebuilt from a
    /// GGUF's vocabulary. Returns false when the checkpoint has no tokenizer.
    pub fn write_tokenizer(&self, dest: &Path) -> Result<bool> {
        if let Some(p) = &self.tokenizer {
            std::fs::copy(p, dest).map_err(io_err(dest))?;
            return Ok(true);
        }
        match self.gguf().and_then(crate::gguf_llama::sp_model_from_gguf) {
            Some(sp) => {
                std::fs::write(dest, sp.to_bytes()).map_err(io_err(dest))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Stored names that are not LLaMA tensors (`rope.freqs` is a LLaMA tensor).
    pub fn extra_tensors(&self) -> &[String] {
        &self.extra
    }

    /// Every tensor of every file, as stored.
    pub fn raw_tensors(&self) -> Vec<RawTensor> {
        self.readers
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                let shard = (self.kind == Kind::Meta).then_some(i);
                r.tensor_infos()
                    .into_iter()
                    .map(move |info| RawTensor { info, shard })
            })
            .collect()
    }

    /// The LLaMA tensors present, in Meta state-dict order (`rope.freqs` excluded).
    pub fn llama_tensors(&self) -> Vec<TensorName> {
        let n_layers = self
            .names
            .keys()
            .filter_map(|t| t.layer)
            .max()
            .map(|l| l as u64 + 1)
            .unwrap_or(0);
        TensorName::all(n_layers)
            .into_iter()
            .filter(|t| self.names.contains_key(t))
            .collect()
    }

    /// Whether the checkpoint holds this tensor (e.g. `rope.freqs`).
    pub fn has(&self, t: TensorName) -> bool {
        self.names.contains_key(&t)
    }

    /// Views of a stored tensor in every shard (one view for single files).
    fn parts(&self, stored: &str) -> Result<Vec<TensorView<'_>>> {
        let missing = |shard: usize| CheckpointError::MissingFromShard {
            path: self.path.clone(),
            tensor: stored.to_string(),
            shard,
        };
        self.readers
            .iter()
            .enumerate()
            .map(|(i, r)| Ok(r.view_tensor(stored).ok_or_else(|| missing(i))??))
            .collect()
    }

    fn stored_name(&self, t: TensorName) -> Result<&str> {
        self.names
            .get(&t)
            .map(String::as_str)
            .ok_or_else(|| CheckpointError::LlamaTensorNotFound {
                path: self.path.clone(),
                tensor: t.meta(),
            })
    }

    /// dtype and shape (Meta orientation, shards merged) of a LLaMA tensor.
    pub fn tensor_info(&self, t: TensorName) -> Result<(DType, Vec<u64>)> {
        let stored = self.stored_name(t)?;
        let parts = self.parts(stored)?;
        let axis = if parts.len() > 1 {
            t.split_axis()
        } else {
            None
        };
        let shape = merge::merged_shape(stored, &parts, axis)?;
        Ok((parts[0].dtype(), shape))
    }

    /// Drop the mapped pages of a tensor once it has been consumed.
    pub fn release(&self, t: TensorName) {
        if let Some(stored) = self.names.get(&t) {
            self.release_stored(stored);
        }
    }

    /// Drop the mapped pages of a tensor by its stored name, in every shard holding it.
    fn release_stored(&self, stored: &str) {
        self.readers.iter().for_each(|r| r.release_tensor(stored));
    }
}
