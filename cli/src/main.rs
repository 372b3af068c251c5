//! llama-tool: verify, download, convert, quantize and check LLaMA checkpoints.
fn main() {
    println!("llama-tool");
}
