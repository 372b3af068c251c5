//! `llama-tool synth` (not yet implemented).
use std::process::ExitCode;

/// Arguments of `llama-tool synth`.
#[derive(clap::Args)]
pub struct Args {}

/// Run the command.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`synth` is not implemented yet")
}
