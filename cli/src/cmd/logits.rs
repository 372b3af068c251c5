//! `llama-tool logits` (not yet implemented).
use std::process::ExitCode;

/// Arguments of `llama-tool logits`.
#[derive(clap::Args)]
pub struct Args {}

/// Run the command.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`logits` is not implemented yet")
}
