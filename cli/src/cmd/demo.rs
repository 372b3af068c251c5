//! `llama-tool demo` (not yet implemented).
use std::process::ExitCode;

/// Arguments of `llama-tool demo`.
#[derive(clap::Args)]
pub struct Args {}

/// Run the command.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`demo` is not implemented yet")
}
