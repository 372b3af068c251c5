"""Interop checks of llama-tool's convert outputs against the real consumers.

  convert_checks.py torch-equal META_A META_B [MP]   torch.load(weights_only=True) both Meta folders,
                                                    merge with torch.cat, require bit-equal tensors
                                                    (and MP shards in A when given)
  convert_checks.py torch-shards-equal A B           the same, shard by shard (same split)
  convert_checks.py gguf GGUF META                  gguf-py reads the file; every tensor equals the
                                                    merged Meta tensor; metadata and vocabulary match
                                                    sentencepiece's view of tokenizer.model
  convert_checks.py llama GGUF META TOKENS          llama.cpp (llama-cpp-python) logits vs the torch
                                                    reference forward
  convert_checks.py hf HFDIR META TOKENS            transformers LlamaForCausalLM logits vs reference
  convert_checks.py gguf-equal A B                  gguf-py: same tensors (bytes) and metadata
  convert_checks.py sp-equal A B                    sentencepiece: same pieces, scores, types
  convert_checks.py extras PATH JSON                non-LLaMA tensors passed through unchanged
Exits non-zero with a message on any mismatch; prints a one-line summary otherwise.
"""
import glob
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import llama_ref  # noqa: E402


def bits(t):
    return t.contiguous().view(torch.int16 if t.element_size() == 2 else torch.int32)


def torch_shards_equal(a, b):
    sa, sb = llama_ref.load_shards(a), llama_ref.load_shards(b)
    assert len(sa) == len(sb), f"{len(sa)} vs {len(sb)} shards"
    for i, (x, y) in enumerate(zip(sa, sb)):
        keys = (set(x) | set(y)) - {"rope.freqs"}
        for k in sorted(keys):
            assert k in x and k in y, f"shard {i}: {k} missing on one side"
            assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape, f"shard {i} {k}: {x[k].dtype}{tuple(x[k].shape)} vs {y[k].dtype}{tuple(y[k].shape)}"
            assert torch.equal(bits(x[k]), bits(y[k])), f"shard {i} {k}: values differ"
    print(f"ok: {len(sa)} shards bit-equal shard by shard")


def torch_equal(a, b, mp=None):
    sa, sb = llama_ref.load_shards(a), llama_ref.load_shards(b)
    if mp is not None:
        assert len(sa) == int(mp), f"{a}: {len(sa)} shards, expected {mp}"
    ma, mb = llama_ref.merge(sa), llama_ref.merge(sb)
    keys_a = set(ma) - {"rope.freqs"}
    keys_b = set(mb) - {"rope.freqs"}
    assert keys_a == keys_b, f"tensor names differ: {sorted(keys_a ^ keys_b)[:5]}"
    for k in sorted(keys_a):
        x, y = ma[k], mb[k]
        assert x.dtype == y.dtype and x.shape == y.shape, f"{k}: {x.dtype}{tuple(x.shape)} vs {y.dtype}{tuple(y.shape)}"
        assert torch.equal(bits(x), bits(y)), f"{k}: values differ"
    print(f"ok: {len(keys_a)} tensors bit-equal, {len(sa)} vs {len(sb)} shards")


GGUF_NAMES = {
    "tok_embeddings": "token_embd", "norm": "output_norm", "output": "output",
    "attention_norm": "attn_norm", "attention.wq": "attn_q", "attention.wk": "attn_k",
    "attention.wv": "attn_v", "attention.wo": "attn_output", "ffn_norm": "ffn_norm",
    "feed_forward.w1": "ffn_gate", "feed_forward.w2": "ffn_down", "feed_forward.w3": "ffn_up",
}


def gguf_name(meta):
    stem = meta[: -len(".weight")]
    if stem.startswith("layers."):
        _, n, rest = stem.split(".", 2)
        return f"blk.{n}.{GGUF_NAMES[rest]}.weight"
    return f"{GGUF_NAMES[stem]}.weight"


def find_tokenizer(meta):
    for p in (os.path.join(meta, "tokenizer.model"), os.path.join(meta, "..", "tokenizer.model")):
        if os.path.exists(p):
            return p
    return None


def check_gguf(path, meta):
    import gguf
    import sentencepiece as spm

    params, w = llama_ref.load_meta(meta)
    r = gguf.GGUFReader(path)
    tensors = {t.name: t for t in r.tensors}
    want = {gguf_name(k): v for k, v in w.items() if k != "rope.freqs"}
    assert set(tensors) == set(want), f"tensor names differ: {sorted(set(tensors) ^ set(want))[:5]}"
    for name, src in want.items():
        t = tensors[name]
        got = np.asarray(t.data)
        # gguf-py gives numpy-order data; shape fields are innermost-first.
        assert list(reversed([int(d) for d in t.shape])) == list(src.shape), f"{name}: shape {list(t.shape)} vs {list(src.shape)}"
        ref = src.float().numpy()
        assert np.array_equal(got.astype(np.float32).reshape(ref.shape), ref), f"{name}: values differ"
    def field(k):
        f = r.fields[k]
        return f.contents() if hasattr(f, "contents") else f.parts[f.data[0]]
    assert field("general.architecture") == "llama"
    assert int(field("llama.embedding_length")) == params["dim"]
    assert int(field("llama.block_count")) == params["n_layers"]
    assert int(field("llama.attention.head_count")) == params["n_heads"]
    n_kv = params.get("n_kv_heads") or params["n_heads"]
    assert int(field("llama.attention.head_count_kv")) == n_kv, f"head_count_kv {field('llama.attention.head_count_kv')} vs {n_kv}"
    assert abs(float(field("llama.attention.layer_norm_rms_epsilon")) - params["norm_eps"]) < 1e-9
    assert int(field("llama.feed_forward_length")) == w["layers.0.feed_forward.w1.weight"].shape[0]
    assert int(field("llama.rope.dimension_count")) == params["dim"] // params["n_heads"]
    tok = find_tokenizer(meta)
    n_vocab = 0
    if tok:
        sp = spm.SentencePieceProcessor(model_file=tok)
        tokens = field("tokenizer.ggml.tokens")
        scores = field("tokenizer.ggml.scores")
        types = field("tokenizer.ggml.token_type")
        n_vocab = sp.get_piece_size()
        for i in range(n_vocab):
            assert tokens[i] == sp.id_to_piece(i), f"token {i}: {tokens[i]!r} vs {sp.id_to_piece(i)!r}"
            assert abs(float(scores[i]) - sp.get_score(i)) < 1e-6, f"score {i}"
            want_type = 2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 5 if sp.is_unused(i) else 6 if sp.is_byte(i) else 1
            assert int(types[i]) == want_type, f"token type {i}: {types[i]} vs {want_type}"
        assert int(field("tokenizer.ggml.bos_token_id")) == sp.bos_id()
        assert int(field("tokenizer.ggml.eos_token_id")) == sp.eos_id()
        # Absent means 0 to llama.cpp (and llama.cpp's converter leaves it out for LLaMA).
        unk = int(field("tokenizer.ggml.unknown_token_id")) if "tokenizer.ggml.unknown_token_id" in r.fields else 0
        assert unk == sp.unk_id()
    print(f"ok: {len(want)} tensors equal, metadata and {n_vocab} vocabulary entries match")


def compare_logits(got, ref, rel_tol, label):
    got = np.asarray(got, dtype=np.float32)
    ref = ref.numpy().astype(np.float32)
    assert got.shape == ref.shape, f"{label}: shape {got.shape} vs {ref.shape}"
    err = np.abs(got - ref).max()
    scale = np.abs(ref).max()
    top1 = float((got.argmax(-1) == ref.argmax(-1)).mean())
    assert err <= rel_tol * scale, f"{label}: max abs error {err} > {rel_tol} * {scale}"
    assert top1 == 1.0, f"{label}: top-1 agreement {top1}"
    print(f"ok: {label} logits match the torch reference: max abs err {err:.3g} (scale {scale:.3g}), top-1 {top1:.0%}")


def check_llama(path, meta, tokens):
    from llama_cpp import Llama

    params, w = llama_ref.load_meta(meta)
    ref = llama_ref.forward(params, w, tokens)
    llm = Llama(model_path=path, logits_all=True, n_ctx=max(64, len(tokens)), n_threads=2, verbose=False)
    llm.eval(tokens)
    got = np.array(llm.scores[: len(tokens)])
    compare_logits(got, ref, 2e-2, "llama.cpp")


def check_hf(hf, meta, tokens):
    from transformers import LlamaForCausalLM

    params, w = llama_ref.load_meta(meta)
    ref = llama_ref.forward(params, w, tokens)
    model = LlamaForCausalLM.from_pretrained(hf, torch_dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        got = model(torch.tensor([tokens])).logits[0]
    compare_logits(got.numpy(), ref, 1e-4, "transformers")


def gguf_equal(a, b):
    """Two GGUF files hold the same tensors (names, types, shapes, bytes) and metadata
    (general.name aside)."""
    import gguf

    ra, rb = gguf.GGUFReader(a), gguf.GGUFReader(b)
    ta = {t.name: t for t in ra.tensors}
    tb = {t.name: t for t in rb.tensors}
    assert list(ta) == list(tb), f"tensor names/order differ: {sorted(set(ta) ^ set(tb))[:5]}"
    for n, x in ta.items():
        y = tb[n]
        assert x.tensor_type == y.tensor_type, f"{n}: type {x.tensor_type} vs {y.tensor_type}"
        assert list(x.shape) == list(y.shape), f"{n}: shape {list(x.shape)} vs {list(y.shape)}"
        assert np.asarray(x.data).tobytes() == np.asarray(y.data).tobytes(), f"{n}: bytes differ"
    def fields(r):
        out = {}
        for k, f in r.fields.items():
            if k.startswith("GGUF.") or k == "general.name":
                continue
            v = f.contents() if hasattr(f, "contents") else [bytes(p).hex() for p in f.parts]
            out[k] = v
        return out
    fa, fb = fields(ra), fields(rb)
    assert set(fa) == set(fb), f"metadata keys differ: {sorted(set(fa) ^ set(fb))}"
    for k in fa:
        assert fa[k] == fb[k], f"metadata {k} differs"
    print(f"ok: {len(ta)} tensors and {len(fa)} metadata keys equal")


def sp_equal(a, b):
    """Two tokenizer.model files describe the same vocabulary for sentencepiece."""
    import sentencepiece as spm

    x, y = spm.SentencePieceProcessor(model_file=a), spm.SentencePieceProcessor(model_file=b)
    assert x.get_piece_size() == y.get_piece_size(), f"{x.get_piece_size()} vs {y.get_piece_size()} pieces"
    def kind(sp, i):
        return (sp.is_unknown(i), sp.is_control(i), sp.is_unused(i), sp.is_byte(i))
    for i in range(x.get_piece_size()):
        assert x.id_to_piece(i) == y.id_to_piece(i), f"piece {i}: {x.id_to_piece(i)!r} vs {y.id_to_piece(i)!r}"
        assert x.get_score(i) == y.get_score(i), f"score {i}: {x.get_score(i)} vs {y.get_score(i)}"
        assert kind(x, i) == kind(y, i), f"type {i}: {kind(x, i)} vs {kind(y, i)}"
    for f in ("bos_id", "eos_id", "unk_id", "pad_id"):
        assert getattr(x, f)() == getattr(y, f)(), f
    text = "Hello world, naïve café 123"
    assert x.encode(text) == y.encode(text), "encodings differ"
    print(f"ok: {x.get_piece_size()} pieces, scores and types equal")


def extras(path, want_json):
    """The tensors named in WANT_JSON ({name: [dtype, shape, flat values]}) are in PATH
    (a .gguf, a safetensors folder or a Meta folder: shard 0) exactly, read by the real
    library; for Meta folders, the other shards must not hold them."""
    import json as _json

    want = _json.loads(want_json)
    got = {}
    others = []
    if path.endswith(".gguf"):
        import gguf

        for t in gguf.GGUFReader(path).tensors:
            arr = np.asarray(t.data)
            got[t.name] = (arr.dtype.name, list(reversed([int(d) for d in t.shape])), arr.reshape(-1).tolist())
    elif os.path.exists(os.path.join(path, "config.json")):
        from safetensors.numpy import load_file

        for f in sorted(glob.glob(os.path.join(path, "*.safetensors"))):
            for k, v in load_file(f).items():
                got[k] = (v.dtype.name, list(v.shape), v.reshape(-1).tolist())
    else:
        shards = llama_ref.load_shards(path)
        for k, v in shards[0].items():
            got[k] = (str(v.dtype).replace("torch.", ""), list(v.shape), v.reshape(-1).tolist())
        others = [set(s) for s in shards[1:]]
    for name, (dtype, shape, values) in want.items():
        assert name in got, f"{name} missing from {path}"
        gd, gs, gv = got[name]
        assert gd == dtype, f"{name}: dtype {gd} vs {dtype}"
        assert gs == shape, f"{name}: shape {gs} vs {shape}"
        assert gv == values, f"{name}: values {gv} vs {values}"
        for i, o in enumerate(others):
            assert name not in o, f"{name} also in shard {i + 1}"
    print(f"ok: {len(want)} extra tensors passed through unchanged")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "torch-equal":
        torch_equal(*args)
    elif cmd == "torch-shards-equal":
        torch_shards_equal(*args)
    elif cmd == "gguf":
        check_gguf(*args)
    elif cmd == "llama":
        check_llama(args[0], args[1], [int(t) for t in args[2].split(",")])
    elif cmd == "hf":
        check_hf(args[0], args[1], [int(t) for t in args[2].split(",")])
    elif cmd == "gguf-equal":
        gguf_equal(*args)
    elif cmd == "sp-equal":
        sp_equal(*args)
    elif cmd == "extras":
        extras(*args)
    else:
        sys.exit(f"unknown check {cmd}")


if __name__ == "__main__":
    main()
