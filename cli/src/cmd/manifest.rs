//! `llama-tool manifest` (not yet implemented).
use std::process::ExitCode;

/// Arguments of `llama-tool manifest`.
#[derive(clap::Args)]
pub struct Args {}

/// Run the command.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`manifest` is not implemented yet")
}
