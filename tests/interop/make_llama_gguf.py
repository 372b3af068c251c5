"""Write a small, loadable LLaMA GGUF with deterministic random weights (gguf-py writer).

Usage: make_llama_gguf.py OUT.gguf [--dim 512] [--hidden 1536] [--layers 8] [--heads 8]
       [--kv-heads N] [--vocab 512] [--dtype f16|f32|bf16] [--seed 0] [--tied]

Tokenizer: a SentencePiece-style ("llama") vocabulary with <unk>, <s>, </s>, the 256 byte
tokens and made-up word pieces, with scores and token types, so llama.cpp loads it.
Norm weights are F32 (1-D); matrices are stored in --dtype.
"""
import argparse
import itertools

import numpy as np
import gguf


def vocab(n):
    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        types.append(gguf.TokenType.BYTE)
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    width = 1
    while len(tokens) < n:
        for combo in itertools.product(letters, repeat=width):
            if len(tokens) >= n:
                break
            tokens.append("\u2581" + "".join(combo))
            types.append(gguf.TokenType.NORMAL)
        width += 1
    scores = [0.0] * 259 + [-float(k) for k in range(n - 259)]
    return tokens[:n], np.array(scores[:n], np.float32), [int(t) for t in types[:n]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--hidden", type=int, default=1536)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=None)
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--dtype", default="f16", choices=["f16", "f32", "bf16"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tied", action="store_true", help="no output.weight")
    a = ap.parse_args()
    kv = a.kv_heads or a.heads
    head_dim = a.dim // a.heads
    rng = np.random.default_rng(a.seed)

    w = gguf.GGUFWriter(a.out, "llama")
    w.add_name("llama-tool test fixture")
    w.add_context_length(256)
    w.add_embedding_length(a.dim)
    w.add_block_count(a.layers)
    w.add_feed_forward_length(a.hidden)
    w.add_rope_dimension_count(head_dim)
    w.add_head_count(a.heads)
    w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_file_type({"f32": 0, "f16": 1, "bf16": 32}[a.dtype])
    tokens, scores, types = vocab(a.vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores.tolist())
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    def mat(rows, cols, std=0.02):
        x = (rng.standard_normal((rows, cols)) * std).astype(np.float32)
        if a.dtype == "f16":
            return x.astype(np.float16), None
        if a.dtype == "bf16":
            bits = x.view(np.uint32)
            bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
            return bits.reshape(rows, cols), gguf.GGMLQuantizationType.BF16
        return x, None

    def add(name, arr_type):
        arr, t = arr_type
        if t is None:
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, arr, raw_dtype=t)

    def norm():
        return (1.0 + 0.1 * rng.standard_normal(a.dim)).astype(np.float32), None

    add("token_embd.weight", mat(a.vocab, a.dim, 0.5))
    add("output_norm.weight", norm())
    if not a.tied:
        add("output.weight", mat(a.vocab, a.dim))
    for i in range(a.layers):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", norm())
        add(p + "attn_q.weight", mat(a.dim, a.dim))
        add(p + "attn_k.weight", mat(kv * head_dim, a.dim))
        add(p + "attn_v.weight", mat(kv * head_dim, a.dim))
        add(p + "attn_output.weight", mat(a.dim, a.dim))
        add(p + "ffn_norm.weight", norm())
        add(p + "ffn_gate.weight", mat(a.hidden, a.dim))
        add(p + "ffn_up.weight", mat(a.hidden, a.dim))
        add(p + "ffn_down.weight", mat(a.dim, a.hidden))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
