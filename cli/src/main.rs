//! llama-tool: verify, download, convert, quantize and check LLaMA checkpoints.
//!
//! This binary only parses arguments, calls the libraries and presents results. Exit codes:
//! 0 success; 1 a check failed (verification mismatch, logits over threshold); 2 usage error
//! or bad input (unreadable, malformed or hostile file, network failure).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod args;
mod ci;
mod cmd;
mod progress;
mod report_html;
mod signals;
mod term;

/// Exit code: a verification or comparison failed.
pub const EXIT_FAIL: u8 = 1;
/// Exit code: usage error or bad input.
pub const EXIT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(name = "llama-tool", version = env!("LLAMA_TOOL_VERSION"), about = "Verify, download, convert, quantize and check LLaMA checkpoints", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// No progress bars or notes on stderr (errors and results still print).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// More detail on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Show what a checkpoint holds: format, size, params, tokenizer, tensors.
    Inspect(cmd::inspect::Args),
    /// Write a synthetic Meta-layout checkpoint with deterministic random weights.
    Synth(cmd::synth::Args),
    /// Verify files against md5 checklists, SHA256SUMS, b3sum lists or llama-tool manifests.
    Verify(cmd::verify::Args),
    /// Write a checksum manifest of a folder.
    Manifest(cmd::manifest::Args),
    /// Download a release (signed-URL template) or every file of a manifest, resumably.
    Download(cmd::download::Args),
    /// Convert a checkpoint to GGUF, Hugging Face safetensors or Meta .pth shards.
    Convert(cmd::convert::Args),
    /// Reshard a Meta checkpoint to another model-parallel count (same as convert --to pth).
    Reshard(cmd::convert::ReshardArgs),
    /// Quantize a float GGUF to a ggml type or llama.cpp preset.
    Quantize(cmd::quantize::Args),
    /// Print or save next-token logits of a model for a prompt.
    Logits(cmd::logits::Args),
    /// Compare the logits of two checkpoints (KL divergence, top-1 agreement, max error).
    Check(cmd::check::Args),
    /// Run the whole pipeline on a generated tiny model (no downloads).
    Demo(cmd::demo::Args),
    /// Verify a folder against a torrent, then serve it to BitTorrent peers until Ctrl-C.
    Seed(cmd::seed::Args),
    /// Turn text into token ids with a model's SentencePiece vocabulary.
    Tokenize(cmd::tokenize::Args),
    /// Turn token ids back into text.
    Detokenize(cmd::tokenize::DetokenizeArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(cmd::completions::Args),
    /// Print a man page (roff), or write them all into a folder with -o DIR.
    Man(cmd::completions::ManArgs),
    /// Compare two checkpoints of any formats tensor by tensor (shapes, dtypes, values).
    Diff(cmd::diff::Args),
    /// Sign a model folder in the OpenSSF Model Signing format (model_signing key-based).
    Sign(cmd::sign::Args),
}

fn main() -> ExitCode {
    // Behave like other Unix tools when a pipe closes early (`llama-tool inspect X | head`):
    // end quietly on SIGPIPE instead of panicking on the failed write.
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to SIG_DFL at start-up, before any threads exist.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Remove temporary outputs on SIGINT/SIGTERM/SIGHUP (Drop does not run then).
    signals::install();
    let cli = Cli::parse();
    term::init(cli.quiet, cli.verbose);
    let result = match cli.command {
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Synth(a) => cmd::synth::run(a),
        Command::Verify(a) => cmd::verify::run(a),
        Command::Manifest(a) => cmd::manifest::run(a),
        Command::Download(a) => cmd::download::run(a),
        Command::Convert(a) => cmd::convert::run(a),
        Command::Reshard(a) => cmd::convert::run_reshard(a),
        Command::Quantize(a) => cmd::quantize::run(a),
        Command::Logits(a) => cmd::logits::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Seed(a) => cmd::seed::run(a),
        Command::Tokenize(a) => cmd::tokenize::run(a),
        Command::Detokenize(a) => cmd::tokenize::run_detokenize(a),
        Command::Completions(a) => cmd::completions::run(a),
        Command::Man(a) => cmd::completions::run_man(a),
        Command::Diff(a) => cmd::diff::run(a),
        Command::Sign(a) => cmd::sign::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("llama-tool: error: {}", one_line(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The error and its causes on one line, skipping a cause whose text the message before it
/// already includes (library errors often embed their source).
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    // Text from a file may be in the message: escape control characters, cut at 2000.
    llama_codecs::text::shown_max(&out.replace('\n', " "), 2000)
}
