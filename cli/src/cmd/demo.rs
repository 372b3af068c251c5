//! `llama-tool demo`: the whole pipeline on a generated tiny model, no downloads. It runs
//! the very commands a user would type (printed as it goes): synth -> verify -> inspect ->
//! convert to GGUF (f16 and q4_k_m), Hugging Face safetensors and a resharded Meta folder
//! -> check each against the original.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context};

/// Arguments of `llama-tool demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Work folder (default: a new temporary folder, removed afterwards unless --keep).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the work folder.
    #[arg(long)]
    pub keep: bool,
}

fn step(exe: &Path, args: &[OsString]) -> anyhow::Result<()> {
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    println!("\n$ llama-tool {}", shown.join(" "));
    let status = Command::new(exe)
        .args(args)
        .status()
        .with_context(|| format!("run {}", exe.display()))?;
    if !status.success() {
        bail!(
            "demo step failed (exit {}): llama-tool {}",
            status.code().unwrap_or(-1),
            shown.join(" ")
        );
    }
    Ok(())
}

macro_rules! args {
    ($($a:expr),* $(,)?) => { [$(OsString::from($a)),*] };
}

/// Run the command.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("locate the llama-tool binary")?;
    let tmp;
    let dir = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = std::env::temp_dir().join(format!("llama-tool-demo-{}", std::process::id()));
            std::fs::create_dir_all(&tmp)?;
            tmp.clone()
        }
    };
    println!("llama-tool demo in {}", dir.display());
    let meta = dir.join("tiny-mp2");
    let gguf = dir.join("tiny-f16.gguf");
    let q4 = dir.join("tiny-q4_k_m.gguf");
    let hf = dir.join("tiny-hf");
    let mp1 = dir.join("tiny-mp1");
    let result = (|| -> anyhow::Result<()> {
        step(
            &exe,
            &args!["synth", "--shape", "tiny", "--mp", "2", "--seed", "1", "-o", &meta],
        )?;
        step(&exe, &args!["verify", &meta])?;
        step(&exe, &args!["inspect", &meta])?;
        step(&exe, &args!["convert", &meta, "--to", "gguf", "-o", &gguf])?;
        step(
            &exe,
            &args!["convert", &meta, "--to", "gguf", "--q4", "-o", &q4],
        )?;
        step(
            &exe,
            &args!["convert", &meta, "--to", "safetensors", "-o", &hf],
        )?;
        step(&exe, &args!["reshard", &meta, "--mp", "1", "-o", &mp1])?;
        step(
            &exe,
            &args!["verify", &gguf.with_extension("gguf.sha256"), &hf, &mp1],
        )?;
        let prompt = "The quick brown fox jumps over the lazy dog";
        for cand in [&gguf, &q4, &hf, &mp1] {
            step(&exe, &args!["check", &meta, cand, "--prompt", prompt])?;
        }
        Ok(())
    })();
    if a.dir.is_none() && !a.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result?;
    println!("\ndemo: every step passed");
    Ok(ExitCode::SUCCESS)
}
