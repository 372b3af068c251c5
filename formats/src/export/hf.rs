//! Checkpoint -> Hugging Face folder, as transformers' `convert_llama_weights_to_hf.py`
//! lays it out: `model.safetensors` or `model-0000K-of-0000N.safetensors` with
//! `model.safetensors.index.json` above `max_shard_size`, `config.json`
//! (LlamaForCausalLM), `generation_config.json`, and the tokenizer files. q and k are
//! permuted from Meta's interleaved rotary layout to HF's half-split one.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use super::piped::{commit_piped, create_piped, TapFactory};
use super::{extra_plan, io_at, out_bytes, Encoder, ExportError, ExportSummary, Progress};
use crate::checkpoint::Checkpoint;
use crate::dtype::DType;
use crate::llama::naming::Layout;
use crate::llama::{permute, ModelParams, Role, TensorName};
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
pub fn config_json(p: &ModelParams, dtype: DType, context_length: u64) -> serde_json::Value {
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
    // Plan: HF name, dtype, shape, in transformers' order (embed, layers, norm, lm_head).
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
    let mut plan = Vec::new();
    for t in order {
        let (src, shape) = ck.tensor_info(t)?;
        let dtype = opts.dtype.unwrap_or(src);
        if dtype.is_quantized() || src.is_quantized() {
            return Err(ExportError::Invalid(format!(
                "{}: Hugging Face output needs float tensors, found {src}",
                t.meta()
            )));
        }
        let name = t.to_layout(Layout::Hf).unwrap_or_default();
        plan.push((Some(t), src, TensorInfo { name, dtype, shape }));
    }
    let names: Vec<&str> = plan.iter().map(|(_, _, i)| i.name.as_str()).collect();
    let extras = extra_plan(ck, opts.allow_extra, &names)?;
    plan.extend(extras.into_iter().map(|i| (None, i.dtype, i)));
    // Shards by size, as transformers splits them.
    let mut shards: Vec<Vec<usize>> = vec![vec![]];
    let mut cur = 0u64;
    for (i, (_, _, info)) in plan.iter().enumerate() {
        let b = out_bytes(&info.name, info.dtype, &info.shape)?;
        if cur > 0 && cur + b > opts.max_shard_size {
            shards.push(vec![]);
            cur = 0;
        }
        if let Some(s) = shards.last_mut() {
            s.push(i);
        }
        cur += b;
    }
    let n = shards.len();
    let file_name = |k: usize| {
        if n == 1 {
            "model.safetensors".to_string()
        } else {
            format!("model-{:05}-of-{n:05}.safetensors", k + 1)
        }
    };
    let mut summary = ExportSummary::default();
    let mut weight_map = BTreeMap::new();
    let mut total = 0u64;
    let mut enc = Encoder::default();
    for (k, idx) in shards.iter().enumerate() {
        let path = dir.join(file_name(k));
        let infos: Vec<TensorInfo> = idx.iter().map(|&i| plan[i].2.clone()).collect();
        let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
        let out = create_piped(&path, taps)?;
        let mut w = SafetensorsWriter::new(out, infos, Some(meta))?;
        for &i in idx {
            let (t, src, info) = &plan[i];
            let n_per_row = info.shape.last().copied().unwrap_or(1) as usize;
            w.start_tensor(&info.name)?;
            let mut consumed = 0u64;
            let Some(t) = t else {
                // Not a LLaMA tensor: written unchanged (`--allow-extra`).
                ck.stream_extra(&info.name, |b| {
                    consumed += b.len() as u64;
                    Ok::<_, ExportError>(w.write_chunk(b)?)
                })?;
                w.end_tensor()?;
                ck.release_extra(&info.name);
                let bytes = out_bytes(&info.name, info.dtype, &info.shape)?;
                total += bytes;
                summary.count(info.dtype, info.shape.iter().product(), bytes);
                weight_map.insert(info.name.clone(), file_name(k));
                progress.advance(consumed, &info.name);
                continue;
            };
            if matches!(t.role, Role::Wq | Role::Wk) {
                // The rotary permutation moves rows within each head: whole tensor at once.
                let heads = if t.role == Role::Wq {
                    p.n_heads
                } else {
                    p.n_kv_heads
                };
                let meta = ck.read(*t)?;
                consumed = meta.len() as u64;
                let hf = permute::permute_rows(&meta, info.shape[0] as usize, heads as usize, true)
                    .ok_or_else(|| {
                        ExportError::Invalid(format!(
                            "{}: rows do not split into {heads} heads",
                            info.name
                        ))
                    })?;
                enc.encode(*src, info.dtype, &hf, n_per_row, |b| Ok(w.write_chunk(b)?))?;
            } else {
                consumed = enc.stream_tensor(ck, *t, None, *src, info.dtype, n_per_row, |b| {
                    Ok(w.write_chunk(b)?)
                })?;
            }
            w.end_tensor()?;
            ck.release(*t);
            let bytes = out_bytes(&info.name, info.dtype, &info.shape)?;
            total += bytes;
            summary.count(info.dtype, info.shape.iter().product(), bytes);
            weight_map.insert(info.name.clone(), file_name(k));
            progress.advance(consumed, &info.name);
        }
        commit_piped(w.finish()?, &mut summary)?;
    }
    if n > 1 {
        let path = dir.join("model.safetensors.index.json");
        write_json(
            &path,
            &json!({"metadata": {"total_size": total}, "weight_map": weight_map}),
        )?;
        summary.files.push(path);
    }
    let main_dtype = plan
        .iter()
        .find(|(_, _, i)| i.shape.len() >= 2)
        .map(|(_, _, i)| i.dtype)
        .unwrap_or(DType::F16);
    let files: [(&str, serde_json::Value); 2] = [
        (
            "config.json",
            config_json(&p, main_dtype, opts.context_length),
        ),
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
            "model_max_length": opts.context_length,
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
    Ok(summary)
}
