"""Reference LLaMA pieces in plain torch, following Meta's llama_v1 model.py.

Used by the interop checks to load Meta shards with real torch, merge them along
fairscale's split axes, and compute reference logits (f32 math).
"""
import glob
import json
import os

import torch

# fairscale parallel layers: ColumnParallelLinear splits dim 0, RowParallelLinear and
# ParallelEmbedding dim 1; norms (and rope.freqs) are replicated.
AXIS0 = ("attention.wq", "attention.wk", "attention.wv", "feed_forward.w1", "feed_forward.w3")
AXIS1 = ("attention.wo", "feed_forward.w2")


def split_axis(name):
    if name == "tok_embeddings.weight":
        return 1
    if name == "output.weight":
        return 0
    for a in AXIS0:
        if f".{a}." in f".{name}":
            return 0
    for a in AXIS1:
        if f".{a}." in f".{name}":
            return 1
    return None


def load_shards(folder):
    paths = sorted(glob.glob(os.path.join(folder, "consolidated.*.pth")))
    assert paths, f"no shards in {folder}"
    return [torch.load(p, map_location="cpu", weights_only=True) for p in paths]


def merge(shards):
    out = {}
    for name in shards[0]:
        axis = split_axis(name)
        parts = [s[name] for s in shards]
        if axis is None or len(parts) == 1:
            for p in parts[1:]:
                assert torch.equal(p, parts[0]), f"replica {name} differs"
            out[name] = parts[0]
        else:
            out[name] = torch.cat(parts, dim=axis)
    return out


def load_meta(folder):
    params = json.load(open(os.path.join(folder, "params.json")))
    return params, merge(load_shards(folder))


def rms_norm(x, w, eps):
    x32 = x.float()
    return x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps) * w.float()


def forward(params, w, tokens):
    """Logits [n_tokens, vocab] in f32 for Meta-layout weights (interleaved rotary)."""
    dim, n_heads = params["dim"], params["n_heads"]
    n_kv = params.get("n_kv_heads") or n_heads
    eps = params["norm_eps"]
    theta = params.get("rope_theta", 10000.0)
    hd = dim // n_heads
    n_layers = params["n_layers"]
    f = {k: v.float() for k, v in w.items()}
    t = torch.tensor(tokens)
    x = f["tok_embeddings.weight"][t]
    n = len(tokens)
    freqs = 1.0 / (theta ** (torch.arange(0, hd, 2)[: hd // 2].float() / hd))
    ang = torch.outer(torch.arange(n).float(), freqs)
    cis = torch.polar(torch.ones_like(ang), ang)

    def rope(q):  # q: [n, heads, hd], interleaved pairs
        qc = torch.view_as_complex(q.reshape(n, q.shape[1], hd // 2, 2))
        return torch.view_as_real(qc * cis[:, None, :]).reshape(n, q.shape[1], hd)

    mask = torch.full((n, n), float("-inf")).triu(1)
    for l in range(n_layers):
        p = f"layers.{l}."
        h = rms_norm(x, f[p + "attention_norm.weight"], eps)
        q = (h @ f[p + "attention.wq.weight"].T).view(n, n_heads, hd)
        k = (h @ f[p + "attention.wk.weight"].T).view(n, n_kv, hd)
        v = (h @ f[p + "attention.wv.weight"].T).view(n, n_kv, hd)
        q, k = rope(q), rope(k)
        rep = n_heads // n_kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        s = torch.einsum("qhd,khd->hqk", q, k) / (hd ** 0.5) + mask
        a = torch.einsum("hqk,khd->qhd", s.softmax(-1), v).reshape(n, dim)
        x = x + a @ f[p + "attention.wo.weight"].T
        h = rms_norm(x, f[p + "ffn_norm.weight"], eps)
        g = torch.nn.functional.silu(h @ f[p + "feed_forward.w1.weight"].T) * (h @ f[p + "feed_forward.w3.weight"].T)
        x = x + g @ f[p + "feed_forward.w2.weight"].T
    x = rms_norm(x, f["norm.weight"], eps)
    return x @ f["output.weight"].T
