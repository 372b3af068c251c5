//! End-to-end tests of the `llama-tool` binary. One module per area; shared helpers in
//! `common`. Interop tests need the cached venv (`scripts/setup-venv.sh`) named by
//! `LLAMA_TOOL_PYTHON`; `.ci/run` sets it, so in CI they always run.

mod cireport;
mod common;
mod convert;
mod convert_quant;
mod demo;
mod download;
mod flags;
mod force;
mod gguf_parity;
mod hardening;
mod hostile;
mod infer;
mod manifest;
mod manners;
mod quantize;
mod rss;
mod sign;
mod synth;
mod tokenize;
mod torrent;
mod verify;
