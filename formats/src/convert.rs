//! The rules of a conversion around the export loop ([`crate::export`]): which output format
//! a name asks for, which output types each format holds, which checkpoints may be converted
//! (no unknown tensors unless passed through, a tokenizer that fits the embedding), the ids
//! llama.cpp's converter names a model by, and writing a folder output atomically.

use std::path::Path;

use crate::atomic::{AtomicDir, OutputError};
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::export::ExportSummary;
use llama_ggml::DType;
use llama_ggml::Preset;

/// An output format of `convert`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// One GGUF file (float or quantized tensors).
    Gguf,
    /// A Hugging Face folder of safetensors files (float tensors).
    Safetensors,
    /// Meta's layout: `consolidated.NN.pth` shards + `params.json` (float tensors).
    Pth,
}

impl OutputFormat {
    /// The format an output's name implies: `.gguf` (any case) is GGUF; anything else says
    /// nothing.
    pub fn from_name(out: &Path) -> Option<OutputFormat> {
        out.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
            .then_some(OutputFormat::Gguf)
    }

    /// Whether the output is a folder (safetensors, pth) rather than one file.
    pub fn is_folder(self) -> bool {
        self != OutputFormat::Gguf
    }
}

/// Why a checkpoint cannot be converted as asked.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A quantized type was asked for a format that holds float tensors only.
    #[error(
        "{preset} is a quantized type: safetensors and pth outputs hold float tensors (use GGUF)"
    )]
    QuantizedNeedsGguf {
        /// The type asked for (lower case).
        preset: String,
    },
    /// The checkpoint holds tensors that are not LLaMA tensors.
    #[error("{path}: {count} tensors are not LLaMA tensors ({names})")]
    ExtraTensors {
        /// The checkpoint.
        path: std::path::PathBuf,
        /// How many.
        count: usize,
        /// The first few, comma-separated.
        names: String,
    },
    /// The tokenizer has more pieces than the model has embedding rows.
    #[error(
        "{tokenizer}: the tokenizer has {pieces} pieces but the model has {rows} embedding rows \
         (a tokenizer from another model?)"
    )]
    VocabTooLarge {
        /// The tokenizer's file (or "the GGUF vocabulary").
        tokenizer: String,
        /// Its pieces.
        pieces: u64,
        /// The model's embedding rows.
        rows: u64,
    },
    /// The checkpoint could not be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// Refuse a quantized `preset` for a format that holds float tensors only.
pub fn check_outtype(format: OutputFormat, preset: Preset) -> Result<(), ConvertError> {
    if format != OutputFormat::Gguf && float_dtype(Some(preset)).is_none() {
        return Err(ConvertError::QuantizedNeedsGguf {
            preset: preset.name().to_ascii_lowercase(),
        });
    }
    Ok(())
}

/// The float dtype a preset names (`F32`, `F16`, `BF16`), if it is one.
pub fn float_dtype(preset: Option<Preset>) -> Option<DType> {
    preset
        .map(Preset::default_type)
        .filter(|d| !d.is_quantized())
}

/// Refuse a checkpoint with tensors that are not LLaMA tensors unless `allow` (they are then
/// passed through unchanged).
pub fn check_extra(ck: &Checkpoint, allow: bool) -> Result<(), ConvertError> {
    let extra = ck.extra_tensors();
    if extra.is_empty() || allow {
        return Ok(());
    }
    Err(ConvertError::ExtraTensors {
        path: ck.path().to_path_buf(),
        count: extra.len(),
        names: extra.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
    })
}

/// Refuse a tokenizer with more pieces than the model has embedding rows (`rows`): token ids
/// past the last row cannot be embedded, and the output would pair a model with a vocabulary
/// it cannot run. A checkpoint without a tokenizer passes.
pub fn check_vocab_fits(ck: &Checkpoint, rows: u64) -> Result<(), ConvertError> {
    let Some(tok) = ck.tokenizer()? else {
        return Ok(());
    };
    let pieces = tok.pieces.len() as u64;
    if pieces > rows {
        let tokenizer = ck
            .tokenizer_path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the GGUF vocabulary".into());
        return Err(ConvertError::VocabTooLarge {
            tokenizer,
            pieces,
            rows,
        });
    }
    Ok(())
}

/// The ids llama.cpp's converter names a model by, most trusted first: config.json's
/// `_name_or_path` when it is a hub id (at most one `/`), then the folder or file name of
/// `input` (the path the checkpoint was opened from).
pub fn model_ids(ck: &Checkpoint, input: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    if let Some(id) = ck
        .hf_config()
        .and_then(|c| c.get("_name_or_path"))
        .and_then(|v| v.as_str())
        .filter(|s| s.matches('/').count() <= 1)
    {
        ids.push(id.to_string());
    }
    let base = if input.is_dir() {
        std::fs::canonicalize(input)
            .ok()
            .and_then(|p| p.file_name().map(|s| s.to_string_lossy().into_owned()))
    } else {
        input.file_stem().map(|s| s.to_string_lossy().into_owned())
    };
    ids.push(base.unwrap_or_else(|| "llama".into()));
    ids
}

/// Bytes of tensor data the checkpoint holds (the work a conversion reads; for a progress
/// bar).
pub fn source_bytes(ck: &Checkpoint) -> u64 {
    ck.raw_tensors()
        .iter()
        .filter_map(|t| t.info.n_bytes())
        .sum()
}

/// Write a folder output under a temporary name ([`AtomicDir`]: removed on error and on a
/// signal), then put it in place (an existing output replaced only when `replace`); the
/// summary returned names the final paths.
pub fn write_folder<E: From<OutputError>>(
    out: &Path,
    replace: bool,
    write: impl FnOnce(&Path) -> Result<ExportSummary, E>,
) -> Result<ExportSummary, E> {
    let dir = AtomicDir::create(out, replace)?;
    let mut summary = write(dir.path())?;
    for f in &mut summary.files {
        *f = dir.final_path(f);
    }
    summary.digests = std::mem::take(&mut summary.digests)
        .into_iter()
        .map(|(f, d)| (dir.final_path(&f), d))
        .collect();
    dir.commit()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantized_types_are_for_gguf_only() {
        assert!(check_outtype(OutputFormat::Gguf, Preset::Q4_K_M).is_ok());
        assert!(check_outtype(OutputFormat::Pth, Preset::BF16).is_ok());
        assert!(matches!(
            check_outtype(OutputFormat::Safetensors, Preset::Q8_0),
            Err(ConvertError::QuantizedNeedsGguf { preset }) if preset == "q8_0"
        ));
        assert_eq!(float_dtype(Some(Preset::F16)), Some(DType::F16));
        assert_eq!(float_dtype(Some(Preset::Q4_0)), None);
        assert_eq!(float_dtype(None), None);
    }

    #[test]
    fn a_gguf_name_implies_the_format() {
        assert_eq!(
            OutputFormat::from_name(Path::new("a/B.GGUF")),
            Some(OutputFormat::Gguf)
        );
        assert_eq!(OutputFormat::from_name(Path::new("a/out")), None);
        assert!(OutputFormat::Pth.is_folder() && !OutputFormat::Gguf.is_folder());
    }

    #[test]
    fn a_folder_appears_only_when_written_and_names_final_paths() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("hf");
        let failed: Result<ExportSummary, OutputError> = write_folder(&out, false, |_| {
            Err(OutputError::Exists { path: out.clone() })
        });
        assert!(failed.is_err() && !out.exists());
        let s = write_folder::<OutputError>(&out, false, |dir| {
            let f = dir.join("model.safetensors");
            std::fs::write(&f, b"x").unwrap();
            Ok(ExportSummary {
                files: vec![f.clone()],
                digests: [(f, vec![("sha256".into(), "00".into())])].into(),
                ..Default::default()
            })
        })
        .unwrap();
        assert_eq!(s.files, vec![out.join("model.safetensors")]);
        assert!(s.digests.contains_key(&out.join("model.safetensors")));
        assert_eq!(std::fs::read(out.join("model.safetensors")).unwrap(), b"x");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    }

    #[test]
    fn model_ids_fall_back_to_the_file_stem() {
        let t = tempfile::tempdir().unwrap();
        let m = t.path().join("Llama-2-7b");
        let spec = crate::synth::SynthSpec {
            shape: crate::synth::SynthShape::Tiny,
            layers: None,
            mp: Some(1),
            dtype: DType::F16,
            seed: 1,
            kv_heads: None,
            ffn_dim_multiplier: None,
        };
        crate::synth::synth(&m, &spec).unwrap();
        let ck = Checkpoint::open(&m).unwrap();
        assert_eq!(model_ids(&ck, &m), vec!["Llama-2-7b".to_string()]);
        assert!(check_extra(&ck, false).is_ok());
        assert!(check_vocab_fits(&ck, 1 << 20).is_ok());
        assert!(source_bytes(&ck) > 0);
    }
}
