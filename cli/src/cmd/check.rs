//! `llama-tool check` (not yet implemented).
use std::process::ExitCode;

/// Arguments of `llama-tool check`.
#[derive(clap::Args)]
pub struct Args {}

/// Run the command.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`check` is not implemented yet")
}
