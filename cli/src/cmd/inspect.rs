//! `llama-tool inspect` (not yet implemented).
use std::process::ExitCode;

/// Arguments of `llama-tool inspect`.
#[derive(clap::Args)]
pub struct Args {}

/// Run the command.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`inspect` is not implemented yet")
}
