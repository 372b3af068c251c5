//! `completions SHELL` and `man [COMMAND]`: shell completion scripts (`clap_complete`) and
//! roff man pages (`clap_mangen`) generated from the same clap definitions the binary parses,
//! so they never drift from the real flags. README.md ("Shell completions and man pages")
//! says where to install them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::CommandFactory;
use clap_complete::Shell;

#[derive(clap::Args)]
pub struct Args {
    /// The shell (case-insensitive).
    #[arg(value_parser = crate::args::Choice::<Shell>::new())]
    pub shell: Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// The command whose page to print (`llama-tool-COMMAND(1)`); the main page without one.
    pub command: Option<String>,
    /// Write every page (llama-tool.1 and llama-tool-COMMAND.1) into this folder instead.
    #[arg(short = 'o', long = "output", aliases = ["out-dir", "out"], value_name = "DIR", conflicts_with = "command")]
    pub out_dir: Option<PathBuf>,
    /// Replace pages that already exist in DIR (refused otherwise, exit 2).
    #[arg(long, requires = "out_dir")]
    pub force: bool,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let mut cmd = crate::Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(a.shell, &mut cmd, "llama-tool", &mut out);
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The roff page of `cmd`, named `name`.
fn page(cmd: clap::Command, name: &str) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.name(name.to_string()))
        .render(&mut buf)
        .context("render man page")?;
    Ok(buf)
}

/// Every subcommand, with its page name (`llama-tool-convert`).
fn subcommands(root: &clap::Command) -> Vec<(String, clap::Command)> {
    root.get_subcommands()
        .filter(|s| s.get_name() != "help")
        .map(|s| (format!("llama-tool-{}", s.get_name()), s.clone()))
        .collect()
}

pub fn run_man(a: ManArgs) -> anyhow::Result<ExitCode> {
    let mut root = crate::Cli::command();
    root.build();
    if let Some(dir) = &a.out_dir {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        let mut pages = vec![("llama-tool".to_string(), root.clone())];
        pages.extend(subcommands(&root));
        for (name, _) in &pages {
            crate::args::check_file_output(&dir.join(format!("{name}.1")), a.force)?;
        }
        for (name, cmd) in pages {
            let path = dir.join(format!("{name}.1"));
            crate::args::write_file_output(&path, a.force, &page(cmd, &name)?)?;
            if !crate::term::quiet() {
                eprintln!("wrote {}", path.display());
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let bytes = match &a.command {
        None => page(root, "llama-tool")?,
        Some(c) => match subcommands(&root)
            .into_iter()
            .find(|(_, s)| s.get_name() == c)
        {
            Some((name, cmd)) => page(cmd, &name)?,
            None => {
                let names: Vec<String> = subcommands(&root)
                    .iter()
                    .map(|(_, s)| s.get_name().to_string())
                    .collect();
                bail!("no command `{c}`; commands: {}", names.join(", "));
            }
        },
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
