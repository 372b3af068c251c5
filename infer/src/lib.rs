//! llama-infer: LLaMA forward pass and logits comparison.
