//! Quantizing whole models: a float GGUF into a preset's GGUF the way `llama-quantize` writes
//! it (`llama_model_quantize_impl` in llama.cpp's `src/llama-quant.cpp`): metadata copied in
//! order, `general.quantization_version` (2) and `general.file_type` set at the end, tensors
//! in llama.cpp's loader order. The tensor types come from the quantization plan
//! [`plan_types`] that `convert --outtype` uses too, and the tensors go through the same
//! export loop ([`write_tensors`]: streamed from the memory map, quantized slab by slab by
//! the [`Encoder`], pages released after each).
#![deny(missing_docs)]

use std::io::Write;

use crate::dtype::DType;
use crate::export::pipeline::{write_tensors, Encoder, Job, TensorWriter};
use crate::export::{ExportError, ExportSummary};
use crate::gguf::{GgufError, GgufFile, GgufValue, GgufWriter};
use crate::gguf_llama::QUANTIZATION_VERSION;
use crate::tensor::TensorInfo;
use llama_ggml::quant::preset::{llama_cpp_order, plan_types, ModelHints, Preset};
use llama_ggml::quant::QuantError;

/// Why a model could not be quantized.
#[derive(Debug, thiserror::Error)]
pub enum QuantFileError {
    /// Reading or writing the GGUF failed.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// A tensor could not be quantized.
    #[error("tensor {tensor:?}: {error}")]
    Tensor {
        /// The tensor's name.
        tensor: String,
        /// Why.
        error: QuantError,
    },
    /// The source tensor is already quantized (llama.cpp refuses requantizing too).
    #[error("tensor {tensor:?} is already {dtype}: quantize from an F32/F16/BF16 GGUF")]
    Requantize {
        /// The tensor's name.
        tensor: String,
        /// Its quantized type.
        dtype: DType,
    },
    /// One shard of a split GGUF (llama.cpp's quantizer takes the whole model).
    #[error("input is shard {no} of a {count}-file split GGUF: merge it first (llama-gguf-split --merge)")]
    Split {
        /// This shard's number, from 1.
        no: u64,
        /// Shards in the split.
        count: u64,
    },
    /// A metadata key the type rules need is missing or mistyped.
    #[error("metadata {key} is missing or not an integer")]
    Metadata {
        /// The key.
        key: String,
    },
    /// The export loop failed otherwise.
    #[error(transparent)]
    Export(Box<ExportError>),
}

impl From<ExportError> for QuantFileError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::Gguf(e) => QuantFileError::Gguf(e),
            ExportError::Encode {
                tensor,
                error: source,
            } => QuantFileError::Tensor {
                tensor,
                error: source,
            },
            e => QuantFileError::Export(Box::new(e)),
        }
    }
}

/// One tensor's type decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorPlan {
    /// GGUF name.
    pub name: String,
    /// Shape, numpy order.
    pub shape: Vec<u64>,
    /// Type in the source file.
    pub src: DType,
    /// Type written.
    pub dst: DType,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct QuantReport {
    /// Every tensor, in output order.
    pub tensors: Vec<TensorPlan>,
    /// Weights in the model.
    pub n_elements: u64,
    /// Tensor data bytes read.
    pub bytes_in: u64,
    /// Tensor data bytes written.
    pub bytes_out: u64,
    /// Tensors that needed a fallback type because of their row length.
    pub n_fallback: usize,
}

impl QuantReport {
    /// Bits per weight of the output tensor data.
    pub fn bits_per_weight(&self) -> f64 {
        if self.n_elements == 0 {
            0.0
        } else {
            self.bytes_out as f64 * 8.0 / self.n_elements as f64
        }
    }
}

/// The hints the type rules need, from `{arch}.*` metadata.
pub(crate) fn model_hints(src: &GgufFile) -> Result<ModelHints, QuantFileError> {
    let arch = src
        .get("general.architecture")
        .and_then(GgufValue::as_str)
        .unwrap_or("llama")
        .to_string();
    let int = |k: &str| src.get(&format!("{arch}.{k}")).and_then(GgufValue::as_u64);
    let need = |k: &str| {
        int(k).ok_or_else(|| QuantFileError::Metadata {
            key: format!("{arch}.{k}"),
        })
    };
    let n_head = u32::try_from(need("attention.head_count")?).unwrap_or(u32::MAX);
    Ok(ModelHints {
        n_layer: usize::try_from(need("block_count")?).unwrap_or(usize::MAX),
        n_head,
        n_head_kv: int("attention.head_count_kv")
            .map_or(n_head, |v| u32::try_from(v).unwrap_or(u32::MAX)),
        n_expert: int("expert_count").map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX)),
        tied_embeddings: src.get_tensor("output.weight").is_none(),
    })
}

/// Decide every tensor's type ([`plan_types`]), in llama.cpp's order; also returns the
/// number of tensors whose row length forced a fallback type.
pub fn plan(src: &GgufFile, preset: Preset) -> Result<(Vec<TensorPlan>, usize), QuantFileError> {
    let hints = model_hints(src)?;
    let mut tensors: Vec<&TensorInfo> = src.tensors().iter().map(|t| &t.info).collect();
    llama_cpp_order(&mut tensors, |t| t.name.as_str());
    let list: Vec<(&str, &[u64], DType)> = tensors
        .iter()
        .map(|t| (t.name.as_str(), t.shape.as_slice(), t.dtype))
        .collect();
    let (types, n_fallback) = plan_types(preset, hints, &list);
    let plans = tensors
        .iter()
        .zip(types)
        .map(|(t, dst)| TensorPlan {
            name: t.name.clone(),
            shape: t.shape.clone(),
            src: t.dtype,
            dst,
        })
        .collect();
    Ok((plans, n_fallback))
}

/// The output metadata: the input's in order, without split keys, with
/// `general.quantization_version` and `general.file_type` moved to the end (llama.cpp
/// removes and re-appends them).
pub(crate) fn output_metadata(src: &GgufFile, preset: Preset) -> Vec<(String, GgufValue)> {
    const DROP: [&str; 6] = [
        "general.quantization_version",
        "general.file_type",
        "general.alignment",
        "split.no",
        "split.count",
        "split.tensors.count",
    ];
    let mut md: Vec<(String, GgufValue)> = src
        .metadata()
        .iter()
        .filter(|(k, _)| !DROP.contains(&k.as_str()))
        .cloned()
        .collect();
    md.push((
        "general.quantization_version".into(),
        GgufValue::U32(QUANTIZATION_VERSION),
    ));
    md.push((
        "general.file_type".into(),
        GgufValue::U32(preset.file_type()),
    ));
    md
}

/// Quantize `src` to `preset`, writing the GGUF to `out`. `on_tensor` is called after each
/// tensor with its plan and the source bytes done so far (for progress).
pub fn quantize_gguf<W: Write>(
    src: &GgufFile,
    out: W,
    preset: Preset,
    on_tensor: &mut dyn FnMut(&TensorPlan, u64),
) -> Result<(QuantReport, W), QuantFileError> {
    let count = src
        .get("split.count")
        .and_then(GgufValue::as_u64)
        .unwrap_or(1);
    if count > 1 {
        let no = src.get("split.no").and_then(GgufValue::as_u64).unwrap_or(0);
        return Err(QuantFileError::Split { no: no + 1, count });
    }
    let (plans, n_fallback) = plan(src, preset)?;
    for p in &plans {
        if p.src != p.dst && !p.src.is_float() {
            return Err(QuantFileError::Requantize {
                tensor: p.name.clone(),
                dtype: p.src,
            });
        }
    }
    let jobs: Vec<Job<String>> = plans
        .iter()
        .map(|p| Job {
            key: p.name.clone(),
            src: p.src,
            out: TensorInfo {
                name: p.name.clone(),
                dtype: p.dst,
                shape: p.shape.clone(),
            },
        })
        .collect();
    let infos = jobs.iter().map(|j| j.out.clone()).collect();
    let mut w = GgufWriter::new(out, output_metadata(src, preset), infos, 32)?;
    let mut summary = ExportSummary::default();
    let mut bytes_in = 0u64;
    let mut done = plans.iter();
    write_tensors(
        src,
        &jobs,
        &mut w,
        &mut Encoder::ggml(),
        &mut summary,
        &mut |_, read| {
            bytes_in += read;
            if let Some(p) = done.next() {
                on_tensor(p, bytes_in);
            }
        },
    )?;
    let out = TensorWriter::finish(w)?;
    let report = QuantReport {
        tensors: plans,
        n_elements: summary.parameters,
        bytes_in,
        bytes_out: summary.tensor_bytes,
        n_fallback,
    };
    Ok((report, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny LLaMA-shaped GGUF: 2 layers, dim 256, F16 matrices, F32 norms.
    fn write_model(path: &std::path::Path, extra: Vec<(String, GgufValue)>, q8_attn_q: bool) {
        let mut md = vec![
            (
                "general.architecture".to_string(),
                GgufValue::String("llama".into()),
            ),
            ("general.file_type".to_string(), GgufValue::U32(1)),
            ("llama.block_count".to_string(), GgufValue::U32(2)),
            ("llama.attention.head_count".to_string(), GgufValue::U32(4)),
        ];
        md.extend(extra);
        let mut tensors = vec![
            TensorInfo {
                name: "token_embd.weight".into(),
                dtype: DType::F16,
                shape: vec![8, 256],
            },
            TensorInfo {
                name: "output_norm.weight".into(),
                dtype: DType::F32,
                shape: vec![256],
            },
        ];
        for i in (0..2).rev() {
            for (n, dt) in [
                ("attn_q", if q8_attn_q { DType::Q8_0 } else { DType::F16 }),
                ("attn_v", DType::F16),
                ("ffn_down", DType::F16),
            ] {
                tensors.push(TensorInfo {
                    name: format!("blk.{i}.{n}.weight"),
                    dtype: dt,
                    shape: vec![256, 256],
                });
            }
            tensors.push(TensorInfo {
                name: format!("blk.{i}.attn_norm.weight"),
                dtype: DType::F32,
                shape: vec![256],
            });
        }
        let f = std::fs::File::create(path).unwrap();
        let mut w = GgufWriter::new(f, md, tensors.clone(), 32).unwrap();
        for t in &tensors {
            let n = t.n_elements().unwrap() as usize;
            let vals: Vec<f32> = (0..n)
                .map(|k| ((k * 7919 % 1000) as f32 - 500.0) / 1e4)
                .collect();
            let bytes = if t.dtype == DType::Q8_0 {
                llama_ggml::quant::quantize(DType::Q8_0, &vals, 256).unwrap()
            } else {
                let mut b = Vec::new();
                crate::cast::from_f32_into(t.dtype, &vals, &mut b).unwrap();
                b
            };
            w.write_tensor(&t.name, &bytes).unwrap();
        }
        w.finish().unwrap();
    }

    #[test]
    fn output_follows_llama_cpp_order_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        write_model(&p, vec![], false);
        let src = GgufFile::open(&p).unwrap();
        let (report, bytes) =
            quantize_gguf(&src, Vec::new(), Preset::Q4_K_M, &mut |_, _| {}).unwrap();
        let out = dir.path().join("q.gguf");
        std::fs::write(&out, bytes).unwrap();
        let q = GgufFile::open(&out).unwrap();
        let names: Vec<&str> = q.tensors().iter().map(|t| t.info.name.as_str()).collect();
        assert_eq!(
            names[..3],
            [
                "output_norm.weight",
                "token_embd.weight",
                "blk.0.attn_norm.weight"
            ]
        );
        let keys: Vec<&str> = q.metadata().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys[keys.len() - 2..],
            ["general.quantization_version", "general.file_type"]
        );
        assert_eq!(q.get("general.file_type"), Some(&GgufValue::U32(15)));
        // tied embeddings (no output.weight): token_embd takes output's Q6_K
        assert_eq!(
            q.get_tensor("token_embd.weight").unwrap().info.dtype,
            DType::Q6_K
        );
        assert_eq!(
            q.get_tensor("output_norm.weight").unwrap().info.dtype,
            DType::F32
        );
        assert_eq!(report.tensors.len(), 10);
        assert!(report.bits_per_weight() > 4.0 && report.bits_per_weight() < 8.0);
    }

    #[test]
    fn quantized_source_and_split_shard_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q8.gguf");
        write_model(&p, vec![], true);
        let src = GgufFile::open(&p).unwrap();
        let e = quantize_gguf(&src, Vec::new(), Preset::Q4_K_M, &mut |_, _| {}).unwrap_err();
        assert!(
            e.to_string().contains("blk.0.attn_q.weight") && e.to_string().contains("Q8_0"),
            "{e}"
        );
        // same type: a copy, allowed
        assert!(quantize_gguf(&src, Vec::new(), Preset::Q8_0, &mut |_, _| {}).is_ok());

        let p = dir.path().join("split.gguf");
        write_model(
            &p,
            vec![
                ("split.count".into(), GgufValue::U16(2)),
                ("split.no".into(), GgufValue::U16(0)),
            ],
            false,
        );
        let e = quantize_gguf(
            &GgufFile::open(&p).unwrap(),
            Vec::new(),
            Preset::Q8_0,
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(
            matches!(e, QuantFileError::Split { no: 1, count: 2 }),
            "{e}"
        );
    }
}
