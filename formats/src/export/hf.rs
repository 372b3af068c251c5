//! Checkpoint -> Hugging Face folder, as transformers' `convert_llama_weights_to_hf.py`
//! lays it out: `model.safetensors` or `model-0000K-of-0000N.safetensors` with
//! `model.safetensors.index.json` above `max_shard_size`, `config.json`
//! (LlamaForCausalLM), `generation_config.json`, and the tokenizer files. q and k are
//! permuted from Meta's interleaved rotary layout to HF's half-split one.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use super::piped::{PipedFiles, TapFactory};
use super::pipeline::{Job, Part};
use super::{extra_jobs, io_at, out_bytes, ExportError, ExportSummary, Progress};
use crate::checkpoint::Checkpoint;
use crate::dtype::DType;
use crate::llama::naming::Layout;
use crate::llama::{ModelParams, Role, TensorName};
use crate::safetensors::SafetensorsWriter;
use crate::tensor::TensorInfo;

/// How to write the folder.
pub struct HfOptions {
    /// Output float type for 2-D tensors (`None`: keep the source's).
    pub dtype: Option<DType>,
    /// Start a new file when the current one would exceed this many bytes.
    pub max_shard_size: u64,
    /// `max_position_embeddings`.
    pub context_length: u64,
    /// Write tensors that are not LLaMA tensors unchanged after the model's own
    /// (`--allow-extra`); without it their presence is an error.
    pub allow_extra: bool,
}

/// `config.json` for LlamaForCausalLM.
pub(crate) fn config_json(p: &ModelParams, dtype: DType, context_length: u64) -> serde_json::Value {
    let torch_dtype = match dtype {
        DType::BF16 => "bfloat16",
        DType::F32 => "float32",
        _ => "float16",
    };
    json!({
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": false,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "head_dim": p.head_dim(),
        "hidden_act": "silu",
        "hidden_size": p.dim,
        "initializer_range": 0.02,
        "intermediate_size": p.hidden_dim,
        "max_position_embeddings": context_length,
        "mlp_bias": false,
        "model_type": "llama",
        "num_attention_heads": p.n_heads,
        "num_hidden_layers": p.n_layers,
        "num_key_value_heads": p.n_kv_heads,
        "pretraining_tp": 1,
        "rms_norm_eps": p.norm_eps,
        "rope_scaling": null,
        "rope_theta": p.rope_theta,
        "tie_word_embeddings": false,
        "torch_dtype": torch_dtype,
        "transformers_version": "4.40.2",
        "use_cache": true,
        "vocab_size": p.vocab_size,
    })
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<(), ExportError> {
    let mut text = serde_json::to_string_pretty(v).unwrap_or_default();
    text.push('\n');
    std::fs::write(path, text).map_err(io_at(path))
}

/// Write the folder's files into `dir` (an existing, empty temporary folder).
pub fn write_hf(
    ck: &Checkpoint,
    dir: &Path,
    opts: &HfOptions,
    progress: &dyn Progress,
) -> Result<ExportSummary, ExportError> {
    write_hf_tapped(ck, dir, opts, progress, None)
}

/// Every tensor as written, in transformers' order (embed, layers, norm, lm_head), then the
/// extra tensors: q and k permuted to HF's rotary layout, floats cast to `opts.dtype`.
fn plan(ck: &Checkpoint, p: &ModelParams, opts: &HfOptions) -> Result<Vec<Job<Part>>, ExportError> {
    let mut order: Vec<TensorName> = ck
        .llama_tensors()
        .into_iter()
        .filter(|t| t.role != Role::RopeFreqs)
        .collect();
    order.sort_by_key(|t| match t.role {
        Role::TokEmbeddings => (0, 0),
        Role::Norm => (2, 0),
        Role::Output => (3, 0),
        _ => (1, t.layer.unwrap_or(0)),
    });
    let mut jobs = Vec::new();
    for t in order {
        let (src, shape) = ck.tensor_info(t)?;
        let dtype = opts.dtype.unwrap_or(src);
        if dtype.is_quantized() || src.is_quantized() {
            return Err(ExportError::NotFloat {
                tensor: t.meta(),
                output: Layout::Hf,
                found: src,
            });
        }
        let key = match t.role {
            Role::Wq => Part::HfRotary {
                tensor: t,
                heads: p.n_heads,
            },
            Role::Wk => Part::HfRotary {
                tensor: t,
                heads: p.n_kv_heads,
            },
            _ => Part::Llama {
                tensor: t,
                range: None,
            },
        };
        let name = t.to_layout(Layout::Hf).unwrap_or_default();
        jobs.push(Job {
            key,
            src,
            out: TensorInfo { name, dtype, shape },
        });
    }
    let names: Vec<&str> = jobs.iter().map(|j| j.out.name.as_str()).collect();
    let extras = extra_jobs(ck, opts.allow_extra, &names)?;
    jobs.extend(extras);
    Ok(jobs)
}

/// Split `jobs` into consecutive files of at most `max` bytes (a larger tensor gets a file
/// of its own), as transformers splits them. Returns each file's jobs and the total bytes.
fn shard_by_size(
    jobs: &[Job<Part>],
    max: u64,
) -> Result<(Vec<std::ops::Range<usize>>, u64), ExportError> {
    // The first file, empty so far (a model without tensors still gets one file).
    let mut shards = Vec::new();
    shards.push(0..0);
    let (mut cur, mut total) = (0u64, 0u64);
    for (i, j) in jobs.iter().enumerate() {
        let b = out_bytes(&j.out.name, j.out.dtype, &j.out.shape)?;
        if cur > 0 && cur + b > max {
            shards.push(i..i);
            cur = 0;
        }
        if let Some(s) = shards.last_mut() {
            s.end = i + 1;
        }
        cur += b;
        total += b;
    }
    Ok((shards, total))
}

/// [`write_hf`], showing each safetensors file's bytes to the tap `taps` makes for it as
/// they are written (digests land in [`ExportSummary::digests`]).
pub fn write_hf_tapped(
    ck: &Checkpoint,
    dir: &Path,
    opts: &HfOptions,
    progress: &dyn Progress,
    taps: Option<&dyn TapFactory>,
) -> Result<ExportSummary, ExportError> {
    let p = ck.params()?;
    let jobs = plan(ck, &p, opts)?;
    let (shards, total) = shard_by_size(&jobs, opts.max_shard_size)?;
    let n = shards.len();
    let file_name = |k: usize| {
        if n == 1 {
            "model.safetensors".to_string()
        } else {
            format!("model-{:05}-of-{n:05}.safetensors", k + 1)
        }
    };
    let mut files = PipedFiles::new(ck, taps, progress);
    let mut weight_map = BTreeMap::new();
    for (k, range) in shards.into_iter().enumerate() {
        let part = &jobs[range];
        files.write(&dir.join(file_name(k)), part, |out, infos| {
            let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
            Ok(SafetensorsWriter::new(out, infos, Some(meta))?)
        })?;
        for j in part {
            weight_map.insert(j.out.name.clone(), file_name(k));
        }
    }
    let mut summary = files.summary;
    if n > 1 {
        let path = dir.join("model.safetensors.index.json");
        write_json(
            &path,
            &json!({"metadata": {"total_size": total}, "weight_map": weight_map}),
        )?;
        summary.files.push(path);
    }
    let main_dtype = jobs
        .iter()
        .find(|j| j.out.shape.len() >= 2)
        .map(|j| j.out.dtype)
        .unwrap_or(DType::F16);
    write_side_files(ck, dir, &p, main_dtype, opts.context_length, &mut summary)?;
    Ok(summary)
}

/// `config.json`, `generation_config.json` and, when the checkpoint has a tokenizer,
/// `tokenizer.model` with its two JSON files.
fn write_side_files(
    ck: &Checkpoint,
    dir: &Path,
    p: &ModelParams,
    main_dtype: DType,
    context_length: u64,
    summary: &mut ExportSummary,
) -> Result<(), ExportError> {
    let files: [(&str, serde_json::Value); 2] = [
        ("config.json", config_json(p, main_dtype, context_length)),
        (
            "generation_config.json",
            json!({"_from_model_config": true, "bos_token_id": 1, "eos_token_id": 2, "transformers_version": "4.40.2"}),
        ),
    ];
    for (name, v) in files {
        let path = dir.join(name);
        write_json(&path, &v)?;
        summary.files.push(path);
    }
    let tok_path = dir.join("tokenizer.model");
    if ck.write_tokenizer(&tok_path)? {
        summary.files.push(tok_path);
        let special = json!({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"});
        let tok_cfg = json!({
            "add_bos_token": true,
            "add_eos_token": false,
            "bos_token": "<s>",
            "clean_up_tokenization_spaces": false,
            "eos_token": "</s>",
            "legacy": true,
            "model_max_length": context_length,
            "pad_token": null,
            "sp_model_kwargs": {},
            "tokenizer_class": "LlamaTokenizer",
            "unk_token": "<unk>",
        });
        for (name, v) in [
            ("special_tokens_map.json", special),
            ("tokenizer_config.json", tok_cfg),
        ] {
            let path = dir.join(name);
            write_json(&path, &v)?;
            summary.files.push(path);
        }
    }
    Ok(())
}
