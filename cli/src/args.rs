//! Argument groups and value types shared by several commands, so that one concept has one
//! spelling everywhere: `-o/--output` for the output path, `--force` to replace an existing
//! output, `-j/--jobs` for parallelism, `--json` / `--junit` for machine-readable results,
//! and fixed sets of names (quantization types, output formats, digests, shapes) parsed
//! case-insensitively with a "did you mean" suggestion for a typo.
//!
//! Old spellings (`--out`, `--threads`, `--dir`, `--ctx`, ...) stay accepted as hidden
//! aliases where each command declares its arguments, so existing scripts keep working.

use std::ffi::OsStr;
use std::marker::PhantomData;
use std::path::PathBuf;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::ErrorKind;
use clap::ValueEnum;
use llama_ggml::quant::Preset;

/// The artifact-writing options of `convert` and `reshard`.
#[derive(clap::Args, Clone, Debug)]
pub struct WriteArgs {
    /// Output: a .gguf file, or a folder for safetensors and pth output (written under a
    /// temporary name, renamed when complete).
    #[arg(short = 'o', long = "output", alias = "out", value_name = "PATH")]
    pub output: PathBuf,
    /// Replace an existing output (refused otherwise, exit 2).
    #[arg(long)]
    pub force: bool,
    /// Do not write a sha256 manifest beside the output.
    #[arg(long)]
    pub no_manifest: bool,
    /// Pass tensors that are not LLaMA tensors through unchanged, under their own names and
    /// dtype (Meta output: in shard 0). Without it such tensors are refused.
    #[arg(long)]
    pub allow_extra: bool,
    /// Print one JSON document on stdout instead of text; no progress bar.
    #[arg(long)]
    pub json: bool,
}

/// Where the tokens of `logits` and `check` come from (one of these; `check` adds
/// `--corpus` to the group).
#[derive(clap::Args, Debug, Clone)]
#[group(id = "input", required = true, multiple = false)]
pub struct TokenInput {
    /// Text to tokenize with the model's tokenizer.model (BOS added, as LLaMA does; `check`
    /// uses the reference's).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Token ids, comma- or space-separated (`1,450,4996`); used as given (no BOS added).
    #[arg(long)]
    pub tokens: Option<String>,
    /// A file of token ids (comma/space/newline-separated, or a JSON array).
    #[arg(long = "tokens-file")]
    pub tokens_file: Option<PathBuf>,
}

/// The machine-readable result options of the commands that pass or fail (`verify`,
/// `check`, `diff`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ReportArgs {
    /// Print one JSON document on stdout instead of text; no progress bar.
    #[arg(long)]
    pub json: bool,
    /// Also write the results as JUnit XML (one test case per check) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Replace an existing --junit (or --report) FILE (refused otherwise, exit 2).
    #[arg(long)]
    pub force: bool,
}

impl ReportArgs {
    /// Refuse, before any work, a `--junit` file that exists without `--force`.
    pub fn check_outputs(&self) -> anyhow::Result<()> {
        match &self.junit {
            Some(p) => check_file_output(p, self.force),
            None => Ok(()),
        }
    }
}

/// [`llama_formats::atomic::check_output`], with the flag that replaces an existing output
/// named in the error.
pub fn check_output(path: &std::path::Path, force: bool) -> anyhow::Result<()> {
    llama_formats::atomic::check_output(path, force).map_err(output_error)
}

/// An output error as the CLI shows it: an existing output names `--force`.
pub fn output_error(e: llama_formats::atomic::OutputError) -> anyhow::Error {
    match e {
        e @ llama_formats::atomic::OutputError::Exists { .. } => {
            anyhow::anyhow!("{e} (use --force to replace it)")
        }
        other => other.into(),
    }
}

/// Check, before any work, that the output file `path` may be written
/// ([`llama_formats::output::classify`]): an existing file needs `--force`.
pub fn check_file_output(path: &std::path::Path, force: bool) -> anyhow::Result<()> {
    llama_formats::output::classify(path, force)
        .map(drop)
        .map_err(output_error)
}

/// Write `bytes` as the output file `path` ([`llama_formats::output::write_output`]:
/// atomically; an existing file only with `--force`; a device or FIFO written through).
pub fn write_file_output(
    path: &std::path::Path,
    force: bool,
    bytes: &[u8],
) -> anyhow::Result<PathBuf> {
    llama_formats::output::write_output(path, force, bytes).map_err(output_error)
}

/// A quantization type or preset as `llama-quantize` spells it (matched case-insensitively;
/// `Q3_K`, `Q4_K`, `Q5_K` mean the `_M` presets). Each k-quant family lists its `_M` preset
/// first, so a tie in the "did you mean" suggestion goes to llama.cpp's recommended one.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum QuantType {
    #[value(name = "Q4_0")]
    Q4_0,
    #[value(name = "Q4_1")]
    Q4_1,
    #[value(name = "Q5_0")]
    Q5_0,
    #[value(name = "Q5_1")]
    Q5_1,
    #[value(name = "Q8_0")]
    Q8_0,
    #[value(name = "Q2_K")]
    Q2_K,
    #[value(name = "Q3_K_M", alias = "Q3_K")]
    Q3_K_M,
    #[value(name = "Q3_K_S")]
    Q3_K_S,
    #[value(name = "Q3_K_L")]
    Q3_K_L,
    #[value(name = "Q4_K_M", alias = "Q4_K")]
    Q4_K_M,
    #[value(name = "Q4_K_S")]
    Q4_K_S,
    #[value(name = "Q5_K_M", alias = "Q5_K")]
    Q5_K_M,
    #[value(name = "Q5_K_S")]
    Q5_K_S,
    #[value(name = "Q6_K")]
    Q6_K,
    #[value(name = "F16")]
    F16,
    #[value(name = "BF16")]
    BF16,
    #[value(name = "F32")]
    F32,
}

impl QuantType {
    /// The library's preset.
    pub fn preset(self) -> Preset {
        use QuantType as Q;
        match self {
            Q::Q4_0 => Preset::Q4_0,
            Q::Q4_1 => Preset::Q4_1,
            Q::Q5_0 => Preset::Q5_0,
            Q::Q5_1 => Preset::Q5_1,
            Q::Q8_0 => Preset::Q8_0,
            Q::Q2_K => Preset::Q2_K,
            Q::Q3_K_M => Preset::Q3_K_M,
            Q::Q3_K_S => Preset::Q3_K_S,
            Q::Q3_K_L => Preset::Q3_K_L,
            Q::Q4_K_M => Preset::Q4_K_M,
            Q::Q4_K_S => Preset::Q4_K_S,
            Q::Q5_K_M => Preset::Q5_K_M,
            Q::Q5_K_S => Preset::Q5_K_S,
            Q::Q6_K => Preset::Q6_K,
            Q::F16 => Preset::F16,
            Q::BF16 => Preset::BF16,
            Q::F32 => Preset::F32,
        }
    }
}

/// A float weight type (`synth --dtype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FloatType {
    /// IEEE half precision.
    F16,
    /// bfloat16.
    Bf16,
    /// IEEE single precision.
    F32,
}

impl FloatType {
    /// The library's dtype.
    pub fn dtype(self) -> llama_ggml::DType {
        match self {
            FloatType::F16 => llama_ggml::DType::F16,
            FloatType::Bf16 => llama_ggml::DType::BF16,
            FloatType::F32 => llama_ggml::DType::F32,
        }
    }
}

/// A digest algorithm (`manifest --algo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DigestAlgo {
    /// MD5 (Meta's checklist.chk).
    Md5,
    /// SHA-256.
    #[value(alias = "sha-256")]
    Sha256,
    /// BLAKE3 (as b3sum prints it).
    #[value(alias = "b3")]
    Blake3,
}

impl DigestAlgo {
    /// The library's algorithm.
    pub fn algo(self) -> llama_manifests::Algo {
        match self {
            DigestAlgo::Md5 => llama_manifests::Algo::Md5,
            DigestAlgo::Sha256 => llama_manifests::Algo::Sha256,
            DigestAlgo::Blake3 => llama_manifests::Algo::Blake3,
        }
    }
}

/// A `--device` value: `cpu`, `cuda` or `cuda:N`, case-insensitive, returned lower-cased; a
/// typo names the nearest ("did you mean cpu?"). Whether CUDA is built in is checked when
/// the device is opened.
pub fn parse_device(text: &str) -> Result<String, String> {
    let name = text.trim().to_ascii_lowercase();
    let ok = name == "cpu"
        || name == "cuda"
        || name
            .strip_prefix("cuda:")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        return Ok(name);
    }
    let hint = closest(&name, &["cpu".to_string(), "cuda".to_string()])
        .map(|n| format!("did you mean {n}? "))
        .unwrap_or_default();
    Err(format!("{hint}(cpu, cuda or cuda:N)"))
}

/// Parser of a [`ValueEnum`] matched case-insensitively; a value that matches nothing is a
/// usage error (exit 2) naming the closest name ("did you mean Q4_K_M?") and every name.
#[derive(Clone, Copy, Debug)]
pub struct Choice<E>(PhantomData<E>);

impl<E> Choice<E> {
    /// The parser.
    pub const fn new() -> Self {
        Choice(PhantomData)
    }
}

impl<E: ValueEnum + Clone + Send + Sync + 'static> TypedValueParser for Choice<E> {
    type Value = E;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<E, clap::Error> {
        let text = value.to_string_lossy();
        if let Ok(v) = E::from_str(&text, true) {
            return Ok(v);
        }
        let names: Vec<String> = E::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .filter(|p| !p.is_hide_set())
            .map(|p| p.get_name().to_string())
            .collect();
        let what = arg
            .map(|a| match a.get_long() {
                Some(l) => format!("--{l}"),
                None => a
                    .get_value_names()
                    .and_then(|n| n.first())
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| a.get_id().to_string()),
            })
            .unwrap_or_else(|| "the value".into());
        let hint = closest(&text, &names)
            .map(|n| format!("; did you mean {n}?"))
            .unwrap_or_default();
        let shown = llama_codecs::text::shown_max(&text, 80);
        let msg = format!(
            "invalid value '{shown}' for {what}{hint} (possible values: {})\n",
            names.join(", ")
        );
        Err(clap::Error::raw(ErrorKind::InvalidValue, msg).with_cmd(cmd))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            E::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value()),
        ))
    }
}

/// The name nearest to `typed` (case-insensitive edit distance), when near enough to be a
/// typo: at most a third of the longer name's length, and at least one edit. Ties go to the
/// name listed first.
fn closest<'a>(typed: &str, names: &'a [String]) -> Option<&'a str> {
    let t = typed.to_ascii_lowercase();
    names
        .iter()
        .map(|n| (edit_distance(&t, &n.to_ascii_lowercase()), n))
        .filter(|(d, n)| *d <= (n.chars().count().max(t.chars().count()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n.as_str())
}

/// Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_gets_the_nearest_name_and_ties_go_to_the_first_listed() {
        let names: Vec<String> = QuantType::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|p| p.get_name().to_string())
            .collect();
        assert_eq!(closest("Q4_K_N", &names), Some("Q4_K_M"));
        assert_eq!(closest("q8_o", &names), Some("Q8_0"));
        assert_eq!(closest("bf61", &names), None);
        assert_eq!(
            closest("gguff", &["gguf".into(), "pth".into()]),
            Some("gguf")
        );
        assert_eq!(closest("onnx", &["gguf".into(), "pth".into()]), None);
    }

    #[test]
    fn device_names_are_checked_and_normalised() {
        assert_eq!(parse_device("CPU").as_deref(), Ok("cpu"));
        assert_eq!(parse_device("cuda:1").as_deref(), Ok("cuda:1"));
        assert!(parse_device("cpy")
            .unwrap_err()
            .contains("did you mean cpu?"));
        assert!(parse_device("cuda:").is_err() && parse_device("cuda:x").is_err());
        assert!(!parse_device("tpu-v4").unwrap_err().contains("did you mean"));
    }

    #[test]
    fn every_quant_type_maps_to_the_preset_of_its_name() {
        for q in QuantType::value_variants() {
            let name = q.to_possible_value().map(|p| p.get_name().to_string());
            assert_eq!(name.as_deref(), Some(q.preset().name()));
        }
        assert_eq!(
            QuantType::from_str("q4_k", true).map(QuantType::preset),
            Ok(Preset::Q4_K_M)
        );
    }
}
