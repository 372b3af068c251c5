//! `llama-tool quantize` (not yet implemented).
use std::process::ExitCode;

/// Arguments of `llama-tool quantize`.
#[derive(clap::Args)]
pub struct Args {}

/// Run the command.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`quantize` is not implemented yet")
}
