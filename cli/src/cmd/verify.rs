//! `llama-tool verify` (not yet implemented).
use std::process::ExitCode;

/// Arguments of `llama-tool verify`.
#[derive(clap::Args)]
pub struct Args {}

/// Run the command.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`verify` is not implemented yet")
}
