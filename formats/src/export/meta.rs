//! Checkpoint -> Meta layout with `mp` model-parallel shards: `consolidated.NN.pth` in
//! torch's zip format, split the way fairscale's parallel layers split them (see
//! [`TensorName::split_axis`]), plus `params.json`. Each output shard gathers its slice of
//! every tensor straight from the source shards; nothing is merged in memory first.

use std::path::Path;

use super::piped::{PipedFiles, TapFactory};
use super::pipeline::{Job, Part};
use super::{extra_jobs, io_at, ExportError, ExportSummary, Progress};
use crate::checkpoint::Checkpoint;
use crate::dtype::DType;
use crate::llama::naming::Layout;
use crate::llama::{Role, TensorName};
use crate::merge;
use crate::pth::PthWriter;
use crate::tensor::TensorInfo;

/// How to write the shards.
pub struct MetaOptions {
    /// Number of model-parallel shards.
    pub mp: usize,
    /// Output float type (`None`: keep the source's).
    pub dtype: Option<DType>,
    /// Write tensors that are not LLaMA tensors unchanged into shard 0 (`--allow-extra`);
    /// without it their presence is an error.
    pub allow_extra: bool,
}

/// Check that `mp` splits every tensor along head boundaries.
pub fn check_mp(ck: &Checkpoint, mp: usize) -> Result<(), ExportError> {
    let p = ck.params()?;
    if mp == 0 {
        return Err(ExportError::ZeroShards);
    }
    for (what, n) in [
        ("n_heads", p.n_heads),
        ("n_kv_heads", p.n_kv_heads),
        ("FFN hidden size", p.hidden_dim),
        ("dim", p.dim),
        ("vocab size", p.vocab_size),
    ] {
        if n % mp as u64 != 0 {
            return Err(ExportError::ShardSplit { mp, what, n });
        }
    }
    Ok(())
}

/// Shard `m`'s slice of each of `tensors` (Meta names, split the way fairscale splits them).
fn shard_plan(
    ck: &Checkpoint,
    tensors: &[TensorName],
    m: usize,
    opts: &MetaOptions,
) -> Result<Vec<Job<Part>>, ExportError> {
    tensors
        .iter()
        .map(|&t| {
            let (src, mut shape) = ck.tensor_info(t)?;
            let range = match t.split_axis() {
                Some(a) => {
                    let r = merge::shard_range(&t.meta(), a, shape[a], m, opts.mp)?;
                    shape[a] = r.end - r.start;
                    Some(r)
                }
                None => None,
            };
            let dtype = if t.role == Role::RopeFreqs {
                src
            } else {
                opts.dtype.unwrap_or(src)
            };
            if dtype.is_quantized() || src.is_quantized() {
                return Err(ExportError::NotFloat {
                    tensor: t.meta(),
                    output: Layout::Meta,
                    found: src,
                });
            }
            Ok(Job {
                key: Part::Llama { tensor: t, range },
                src,
                out: TensorInfo {
                    name: t.meta(),
                    dtype,
                    shape,
                },
            })
        })
        .collect()
}

/// Write `consolidated.00.pth` .. into `dir` and `params.json`.
pub fn write_meta(
    ck: &Checkpoint,
    dir: &Path,
    opts: &MetaOptions,
    progress: &dyn Progress,
) -> Result<ExportSummary, ExportError> {
    write_meta_tapped(ck, dir, opts, progress, None)
}

/// [`write_meta`], showing each shard's bytes to the tap `taps` makes for it as they are
/// written (digests land in [`ExportSummary::digests`]). Each tensor's CRC-32 is computed
/// from the source first, so the zip header is final before its data and every shard is
/// written strictly sequentially.
pub fn write_meta_tapped(
    ck: &Checkpoint,
    dir: &Path,
    opts: &MetaOptions,
    progress: &dyn Progress,
    taps: Option<&dyn TapFactory>,
) -> Result<ExportSummary, ExportError> {
    check_mp(ck, opts.mp)?;
    let p = ck.params()?;
    // Meta's order, with the `rope.freqs` buffer kept where the source has one.
    let mut tensors = ck.llama_tensors();
    let rope = TensorName::global(Role::RopeFreqs);
    if ck.has(rope) {
        tensors.insert(3.min(tensors.len()), rope);
    }
    let names: Vec<String> = tensors.iter().map(|t| t.meta()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    // Tensors that are not LLaMA tensors go, whole, into shard 0.
    let mut extras = extra_jobs(ck, opts.allow_extra, &names)?;
    let mut files = PipedFiles::new(ck, taps, progress);
    for m in 0..opts.mp {
        let stem = format!("consolidated.{m:02}");
        let mut jobs = shard_plan(ck, &tensors, m, opts)?;
        jobs.append(&mut extras);
        files.write(&dir.join(format!("{stem}.pth")), &jobs, |out, infos| {
            Ok(PthWriter::new(out, &stem, infos)?)
        })?;
    }
    let mut summary = files.summary;
    // params.json: the source's own when it has one (unknown fields kept), else derived.
    let mut mp = ck.meta_params().cloned().unwrap_or_else(|| p.to_meta());
    mp.n_layers = p.n_layers;
    let path = dir.join("params.json");
    std::fs::write(&path, mp.to_json()).map_err(io_at(&path))?;
    summary.files.push(path);
    Ok(summary)
}
