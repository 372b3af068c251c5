//! `tokenize` and `detokenize`: the SentencePiece encoder the forward pass uses, exposed
//! (llama.cpp's `llama-tokenize`). The vocabulary comes from a model folder, a
//! `tokenizer.model` or a GGUF, also a vocabulary-only one.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use llama_formats::prompt::parse_token_ids;
use llama_formats::vocab::{load_vocab, VocabSource};
use llama_infer::tokenizer::Tokenizer;
use serde_json::json;

/// Largest text read from a file or standard input (a whole book is a few MB).
const MAX_TEXT_BYTES: u64 = 256 << 20;

#[derive(clap::Args)]
pub struct Args {
    /// A model folder (tokenizer.model in it or its parent), a tokenizer.model, or a GGUF
    /// (its tokenizer.ggml.* vocabulary; a vocabulary-only GGUF works too).
    pub model: PathBuf,
    /// Text to tokenize.
    #[arg(long, conflicts_with = "file")]
    pub text: Option<String>,
    /// Read the text from this file (as is, trailing newline included). Without --text or
    /// --file the text is read from standard input.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Print only the ids, comma-separated on one line (what `detokenize --ids` takes).
    #[arg(long, conflicts_with_all = ["pieces", "json"])]
    pub ids: bool,
    /// Print only the pieces, space-separated on one line (`▁` marks a space).
    #[arg(long, conflicts_with = "json")]
    pub pieces: bool,
    /// Machine-readable output (see docs/JSON.md).
    #[arg(long)]
    pub json: bool,
    /// Do not prepend the beginning-of-sequence token `<s>`.
    #[arg(long)]
    pub no_bos: bool,
}

#[derive(clap::Args)]
pub struct DetokenizeArgs {
    /// A model folder, a tokenizer.model or a GGUF (as for `tokenize`).
    pub model: PathBuf,
    /// Token ids, separated by commas or spaces (`1,15043,3186`); read from standard input
    /// when absent (also `[1, 15043]` as `tokenize --json` prints it).
    #[arg(long, allow_hyphen_values = true)]
    pub ids: Option<String>,
    /// Machine-readable output (see docs/JSON.md).
    #[arg(long)]
    pub json: bool,
}

/// The tokenizer for `model`, and where its vocabulary came from.
fn open(model: &Path) -> anyhow::Result<(Tokenizer, VocabSource)> {
    let (sp, source) = load_vocab(model)?;
    let tok =
        Tokenizer::new(sp).with_context(|| format!("{}: tokenizer", source.path().display()))?;
    crate::verbose!(
        "vocabulary: {} pieces from {} ({}), bos {:?}, eos {:?}",
        tok.vocab_size(),
        source.path().display(),
        source.kind(),
        tok.bos_id(),
        tok.eos_id()
    );
    Ok((tok, source))
}

/// Read at most [`MAX_TEXT_BYTES`] of UTF-8 from `r`, naming `what` in errors.
fn read_text(r: impl Read, what: &str) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    r.take(MAX_TEXT_BYTES + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("{what}: read"))?;
    if buf.len() as u64 > MAX_TEXT_BYTES {
        bail!("{what}: more than {MAX_TEXT_BYTES} bytes of text");
    }
    String::from_utf8(buf).map_err(|e| {
        anyhow!(
            "{what}: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn input_text(a: &Args) -> anyhow::Result<String> {
    if let Some(t) = &a.text {
        return Ok(t.clone());
    }
    if let Some(p) = &a.file {
        let meta = std::fs::metadata(p).with_context(|| p.display().to_string())?;
        if !meta.is_file() {
            bail!("{}: not a regular file", p.display());
        }
        let f = std::fs::File::open(p).with_context(|| p.display().to_string())?;
        return read_text(f, &p.display().to_string());
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) && !crate::term::quiet() {
        eprintln!(
            "reading the text from standard input (end it with Ctrl-D; or pass --text/--file)"
        );
    }
    read_text(std::io::stdin().lock(), "standard input")
}

/// The fields `tokenize --json` and `detokenize --json` share (docs/JSON.md).
fn json_doc(model: &Path, source: &VocabSource, count: usize) -> serde_json::Value {
    json!({
        "ok": true,
        "model": model,
        "vocab_source": source.kind(),
        "vocab_path": source.path(),
        "count": count,
    })
}

/// A piece as one printable token: control characters escaped (`\n`, `\t`, `\u{1b}`) and
/// a backslash doubled; everything else, `▁` included, as is.
fn printable(piece: &str) -> String {
    let mut out = String::with_capacity(piece.len());
    for c in piece.chars() {
        if c.is_control() || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let (tok, source) = open(&a.model)?;
    let text = input_text(&a)?;
    let ids = tok.encode(&text, !a.no_bos);
    let piece = |id: u32| tok.piece(id).unwrap_or("").to_string();
    let mut out = std::io::stdout().lock();
    if a.json {
        let mut v = json_doc(&a.model, &source, ids.len());
        v["vocab_size"] = json!(tok.vocab_size());
        v["bos"] = json!(!a.no_bos && tok.bos_id().is_some());
        v["pieces"] = json!(ids.iter().map(|&i| piece(i)).collect::<Vec<_>>());
        v["ids"] = json!(ids);
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else if a.ids {
        let s: Vec<String> = ids.iter().map(u32::to_string).collect();
        writeln!(out, "{}", s.join(","))?;
    } else if a.pieces {
        let s: Vec<String> = ids.iter().map(|&i| printable(&piece(i))).collect();
        writeln!(out, "{}", s.join(" "))?;
    } else {
        for &id in &ids {
            writeln!(out, "{id:>6} -> '{}'", printable(&piece(id)))?;
        }
        if !crate::term::quiet() {
            eprintln!(
                "{} tokens ({} vocabulary from {})",
                ids.len(),
                source.kind(),
                source.path().display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_detokenize(a: DetokenizeArgs) -> anyhow::Result<ExitCode> {
    let (tok, source) = open(&a.model)?;
    let ids = match &a.ids {
        Some(s) => parse_token_ids(s, "--ids")?,
        None => parse_token_ids(
            &read_text(std::io::stdin().lock(), "standard input")?,
            "standard input",
        )?,
    };
    let n = tok.vocab_size();
    if let Some(bad) = ids.iter().find(|&&i| i as usize >= n) {
        bail!(
            "token id {bad} is out of range: the vocabulary from {} has {n} pieces (0..{})",
            source.path().display(),
            n.saturating_sub(1)
        );
    }
    let text = tok.decode(&ids);
    let mut out = std::io::stdout().lock();
    if a.json {
        let mut v = json_doc(&a.model, &source, ids.len());
        v["text"] = json!(text);
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        writeln!(out, "{text}")?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_print_on_one_line() {
        assert_eq!(printable("\u{2581}a\nb\t\\"), "\u{2581}a\\nb\\t\\\\");
    }
}
