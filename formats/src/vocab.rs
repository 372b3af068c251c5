//! Find and load a LLaMA vocabulary from whatever the user points at: a SentencePiece
//! `tokenizer.model` (`src/sentencepiece_model.proto`), a checkpoint folder or file with a
//! `tokenizer.model` beside it (or in its parent folder, as Meta's release lays it out), or a
//! GGUF's `tokenizer.ggml.*` metadata (also a vocabulary-only GGUF, which has no tensors; see
//! [`crate::gguf_llama::sp_model_from_gguf`]).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::gguf::{GgufError, GgufFile};
use crate::sentencepiece::{SpError, SpModel};

/// Why no vocabulary could be loaded from a path.
#[derive(Debug, thiserror::Error)]
pub enum VocabError {
    /// `tokenizer.model` is unreadable or invalid.
    #[error(transparent)]
    SentencePiece(#[from] SpError),
    /// The GGUF is unreadable or invalid.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// A folder or checkpoint file with no `tokenizer.model` beside it.
    #[error("{}: no tokenizer.model in {} or its parent folder", path.display(), dir.display())]
    NotFound {
        /// What the user gave.
        path: PathBuf,
        /// The folder searched.
        dir: PathBuf,
    },
    /// A GGUF without a SentencePiece (`llama`) vocabulary.
    #[error("{}: the GGUF has no SentencePiece vocabulary (tokenizer.ggml.model is {model})", path.display())]
    NoGgufVocab {
        /// The GGUF.
        path: PathBuf,
        /// Its `tokenizer.ggml.model`, or "absent".
        model: String,
    },
    /// The path could not be read at all.
    #[error("{}: {error}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
}

/// Where a vocabulary came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VocabSource {
    /// A SentencePiece `tokenizer.model`.
    SentencePiece(PathBuf),
    /// A GGUF's `tokenizer.ggml.*` metadata.
    Gguf(PathBuf),
}

impl VocabSource {
    /// The file the vocabulary was read from.
    pub fn path(&self) -> &Path {
        match self {
            VocabSource::SentencePiece(p) | VocabSource::Gguf(p) => p,
        }
    }

    /// `"sentencepiece"` or `"gguf"`.
    pub fn kind(&self) -> &'static str {
        match self {
            VocabSource::SentencePiece(_) => "sentencepiece",
            VocabSource::Gguf(_) => "gguf",
        }
    }
}

/// `tokenizer.model` in `dir` or its parent (Meta keeps it beside the size folders).
pub(crate) fn find_tokenizer_model(dir: &Path) -> Option<PathBuf> {
    [
        dir.join("tokenizer.model"),
        dir.join("..").join("tokenizer.model"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// Whether the file starts with the GGUF magic.
fn is_gguf(path: &Path) -> Result<bool, VocabError> {
    let io = |source| VocabError::Io {
        path: path.to_path_buf(),
        error: source,
    };
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut got = 0;
    while got < 4 {
        match f.read(&mut magic[got..]).map_err(io)? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got == 4 && &magic == b"GGUF")
}

/// Load the vocabulary `path` names: a folder (its `tokenizer.model`, or its parent's), a
/// GGUF (by content, whatever its extension), a `tokenizer.model`, or a `.safetensors` /
/// `.pth` checkpoint file (the `tokenizer.model` beside it).
pub fn load_vocab(path: &Path) -> Result<(SpModel, VocabSource), VocabError> {
    let meta = std::fs::metadata(path).map_err(|source| VocabError::Io {
        path: path.to_path_buf(),
        error: source,
    })?;
    let beside = |dir: &Path| -> Result<(SpModel, VocabSource), VocabError> {
        let tok = find_tokenizer_model(dir).ok_or_else(|| VocabError::NotFound {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
        })?;
        Ok((SpModel::read(&tok)?, VocabSource::SentencePiece(tok)))
    };
    if meta.is_dir() {
        return beside(path);
    }
    if !meta.is_file() {
        // A FIFO, socket or device: reading it could block or never end.
        return Err(VocabError::Io {
            path: path.to_path_buf(),
            error: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file or folder",
            ),
        });
    }
    if is_gguf(path)? {
        let g = GgufFile::open(path)?;
        return match crate::gguf_llama::sp_model_from_gguf(&g) {
            Some(sp) => Ok((sp, VocabSource::Gguf(path.to_path_buf()))),
            None => Err(VocabError::NoGgufVocab {
                path: path.to_path_buf(),
                model: g
                    .get("tokenizer.ggml.model")
                    .and_then(|v| v.as_str())
                    .map_or("absent".to_string(), |m| format!("`{m}`")),
            }),
        };
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if matches!(ext.as_str(), "safetensors" | "pth" | "pt" | "bin") {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        return beside(dir);
    }
    Ok((
        SpModel::read(path)?,
        VocabSource::SentencePiece(path.to_path_buf()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_model_in_a_folder_its_parent_and_beside_a_file() {
        let t = tempfile::tempdir().unwrap();
        let sp = SpModel::synthetic(300);
        std::fs::write(t.path().join("tokenizer.model"), sp.to_bytes()).unwrap();
        let size = t.path().join("7B");
        std::fs::create_dir(&size).unwrap();
        let shard = size.join("consolidated.00.pth");
        std::fs::write(&shard, b"not read").unwrap();
        for p in [t.path().to_path_buf(), size.clone(), shard] {
            let (m, src) = load_vocab(&p).unwrap();
            assert_eq!(m, sp);
            assert_eq!(src.kind(), "sentencepiece");
        }
        let (m, _) = load_vocab(&t.path().join("tokenizer.model")).unwrap();
        assert_eq!(m, sp);
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_reading_it() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("tokenizer.model");
        let made = std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo (coreutils)");
        let e = load_vocab(&p).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_folder_without_a_model_names_what_was_searched() {
        let t = tempfile::tempdir().unwrap();
        let e = load_vocab(t.path()).unwrap_err();
        assert!(matches!(e, VocabError::NotFound { .. }), "{e}");
        let e = load_vocab(&t.path().join("absent.model")).unwrap_err();
        assert!(e.to_string().contains("absent.model"), "{e}");
    }

    #[test]
    fn garbage_is_a_sentencepiece_error_naming_the_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("tokenizer.model");
        std::fs::write(&p, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff").unwrap();
        let e = load_vocab(&p).unwrap_err();
        assert!(matches!(e, VocabError::SentencePiece(_)), "{e}");
        assert!(e.to_string().contains("tokenizer.model"), "{e}");
    }

    #[test]
    fn a_vocabulary_only_gguf_gives_back_the_pieces() {
        use crate::gguf::GgufWriter;
        use crate::gguf_llama::{llama_metadata, LlamaGgufMeta};
        use crate::llama::ModelParams;
        let t = tempfile::tempdir().unwrap();
        let sp = SpModel::synthetic(300);
        let params = ModelParams {
            dim: 64,
            n_layers: 1,
            n_heads: 4,
            n_kv_heads: 4,
            vocab_size: 300,
            hidden_dim: 128,
            norm_eps: 1e-6,
            rope_theta: 10000.0,
            context_length: None,
        };
        let kv = llama_metadata(&LlamaGgufMeta {
            naming: crate::gguf_naming::GgufNaming::derive(&["vocab"], 0, None),
            params: &params,
            file_type: 1,
            quantized: false,
            context_length: 2048,
            tokenizer: Some(&sp),
        });
        // No tensors, any extension: recognised by the magic.
        let p = t.path().join("vocab.bin");
        let f = std::fs::File::create(&p).unwrap();
        GgufWriter::new(f, kv, Vec::new(), 32)
            .unwrap()
            .finish()
            .unwrap();
        let (m, src) = load_vocab(&p).unwrap();
        assert_eq!(src, VocabSource::Gguf(p.clone()));
        let pieces = |m: &SpModel| m.pieces.iter().map(|x| x.piece.clone()).collect::<Vec<_>>();
        assert_eq!(pieces(&m), pieces(&sp));
        assert_eq!(
            (m.bos_id, m.eos_id, m.unk_id),
            (sp.bos_id, sp.eos_id, sp.unk_id)
        );
    }

    #[test]
    fn a_gguf_without_a_vocabulary_is_refused() {
        use crate::gguf::GgufWriter;
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x.gguf");
        let f = std::fs::File::create(&p).unwrap();
        GgufWriter::new(f, Vec::new(), Vec::new(), 32)
            .unwrap()
            .finish()
            .unwrap();
        let e = load_vocab(&p).unwrap_err();
        assert!(
            e.to_string().contains("tokenizer.ggml.model is absent"),
            "{e}"
        );
    }
}
