//! `llama-tool convert` and `llama-tool reshard` (not yet implemented).
use std::process::ExitCode;

/// Arguments of `llama-tool convert`.
#[derive(clap::Args)]
pub struct Args {}

/// Arguments of `llama-tool reshard`.
#[derive(clap::Args)]
pub struct ReshardArgs {}

/// Run `convert`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`convert` is not implemented yet")
}

/// Run `reshard`.
pub fn run_reshard(_args: ReshardArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`reshard` is not implemented yet")
}
