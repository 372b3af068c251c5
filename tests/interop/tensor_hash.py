"""Per-tensor identity (scheme llama-tool-tensor-v1, docs/MANIFEST.md) of a Meta checkpoint
folder, computed independently of llama-tool: torch loads the consolidated.NN.pth shards,
merges them along Meta's model-parallel axes, and hashes each tensor as the spec says.

usage: tensor_hash.py FOLDER  -> prints JSON {name: {"shape": [...], "sha256": hex}}
"""
import glob
import hashlib
import json
import os
import struct
import sys

import numpy as np
import torch

DIM0 = ("attention.wq", "attention.wk", "attention.wv", "feed_forward.w1", "feed_forward.w3", "output.weight")
DIM1 = ("attention.wo", "feed_forward.w2", "tok_embeddings")


def axis(name):
    if any(k in name for k in DIM0):
        return 0
    if any(k in name for k in DIM1):
        return 1
    return None


def identity(name, t):
    h = hashlib.sha256()
    h.update(b"llama-tool-tensor-v1\0")
    nb = name.encode()
    h.update(struct.pack("<Q", len(nb)) + nb)
    h.update(struct.pack("<Q", t.dim()))
    for d in t.shape:
        h.update(struct.pack("<Q", d))
    v = t.to(torch.float32).contiguous().numpy().astype("<f4")
    v = np.where(np.isnan(v), np.float32(np.nan), v)  # canonical NaN 0x7fc00000
    h.update(v.tobytes())
    return h.hexdigest()


def main():
    folder = sys.argv[1]
    shards = [torch.load(p, map_location="cpu", weights_only=True)
              for p in sorted(glob.glob(os.path.join(folder, "consolidated.*.pth")))]
    out = {}
    for name in shards[0]:
        if name == "rope.freqs":
            continue
        a = axis(name)
        t = shards[0][name] if a is None or len(shards) == 1 else torch.cat([s[name] for s in shards], dim=a)
        out[name] = {"shape": list(t.shape), "sha256": identity(name, t)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
