//! `llama-tool download` (not yet implemented).
use std::process::ExitCode;

/// Arguments of `llama-tool download`.
#[derive(clap::Args)]
pub struct Args {}

/// Run the command.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`download` is not implemented yet")
}
