//! Progress bars: shown on a terminal, hidden in pipes and with `--json`.
#![allow(dead_code)] // used by the commands as they land

use indicatif::{ProgressBar, ProgressStyle};

/// A byte-counting bar over `total` bytes, with rate and ETA, hidden unless stderr is a
/// terminal, `quiet` (the command's `--json`) is false and `-q` was not given.
pub fn bytes_bar(total: u64, message: &str, quiet: bool) -> ProgressBar {
    if !crate::term::show_progress(quiet) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:20} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

/// A bar counting `total` items (`unit`: "tensors", "layers"), with rate and ETA; hidden like
/// [`bytes_bar`].
pub fn count_bar(total: u64, message: &str, unit: &str, quiet: bool) -> ProgressBar {
    if !crate::term::show_progress(quiet) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{msg:20}} [{{bar:40}}] {{pos}}/{{len}} {unit} {{per_sec}} ETA {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}
