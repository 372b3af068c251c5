#!/usr/bin/env python3
"""Load a .pth written by llama-tool with REAL torch (weights_only=True) and compare it
bit for bit with an expected safetensors file (same names, dtypes, shapes, bytes, and the
state dict's key order equal to the safetensors header order... which is sorted, so order
is checked against the names given by the writer via the zip's pickle instead).

usage: torch_load_pth.py FILE.pth EXPECTED.safetensors     prints "OK <n>" on success
"""
import collections
import sys
import zipfile

import torch
from safetensors.torch import load_file


def main():
    pth, exp = sys.argv[1], sys.argv[2]
    with zipfile.ZipFile(pth) as z:
        bad = z.testzip()  # verifies every record's CRC
        assert bad is None, f"bad CRC in {bad}"
        names = z.namelist()
        for i in z.infolist():
            assert i.compress_type == zipfile.ZIP_STORED, i.filename
    assert any(n.endswith("/data.pkl") for n in names), names
    sd = torch.load(pth, weights_only=True, map_location="cpu")
    assert isinstance(sd, collections.OrderedDict), type(sd)
    want = load_file(exp)
    assert set(sd) == set(want), (sorted(sd), sorted(want))
    for k, v in want.items():
        got = sd[k]
        assert got.dtype == v.dtype, (k, got.dtype, v.dtype)
        assert tuple(got.shape) == tuple(v.shape), (k, got.shape, v.shape)
        assert got.is_contiguous(), k
        a = got.contiguous().view(torch.uint8) if got.numel() and got.dim() else got.reshape(-1).view(torch.uint8)
        b = v.contiguous().view(torch.uint8) if v.numel() and v.dim() else v.reshape(-1).view(torch.uint8)
        assert torch.equal(a, b), k
    # Layers come in declared order (names sort the same way only by accident).
    keys = list(sd)
    assert keys == sorted(keys, key=lambda n: (int(n.split(".")[1]), int(n.split(".")[2][1:]))), keys
    print("OK", len(sd))


if __name__ == "__main__":
    main()
