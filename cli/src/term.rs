//! Terminal manners shared by every command: the global `-q/--quiet` and `-v/--verbose`
//! flags and whether progress may be drawn. llama-tool writes no colour itself; clap's help
//! colours go through `anstream`, which honours `NO_COLOR` (<https://no-color.org>) and
//! leaves pipes plain.
//!
//! Set once in `main` from the parsed arguments; read anywhere in the CLI.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);
static VERBOSE: AtomicU8 = AtomicU8::new(0);

/// Record the global flags.
pub fn init(quiet: bool, verbose: u8) {
    QUIET.store(quiet, Ordering::Relaxed);
    VERBOSE.store(if quiet { 0 } else { verbose }, Ordering::Relaxed);
}

/// `-q/--quiet`: no progress bars, no notes or summaries on stderr (errors and warnings
/// still print; results on stdout are unchanged).
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// How many `-v` were given (0 when quiet).
pub fn verbose() -> u8 {
    VERBOSE.load(Ordering::Relaxed)
}

/// Print a note to stderr when `-v` was given.
#[macro_export]
macro_rules! verbose {
    ($($arg:tt)*) => {
        if $crate::term::verbose() > 0 {
            eprintln!("llama-tool: {}", format_args!($($arg)*));
        }
    };
}

/// Whether progress bars may be drawn: stderr is a terminal, not quiet, not `--json`.
pub fn show_progress(json: bool) -> bool {
    !json && !quiet() && std::io::stderr().is_terminal()
}
