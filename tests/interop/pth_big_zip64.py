#!/usr/bin/env python3
"""Zip64 interop past 4 GiB with REAL torch (used by the ignored Rust test
`big_zip64_files_interop` in formats/tests/pth.rs; needs ~9 GB of free disk).

  pth_big_zip64.py check FILE.pth   torch.load(mmap=True, weights_only=True) a file written by
                                    llama-tool and check the pattern; prints "OK"
  pth_big_zip64.py save FILE.pth    torch.save the same pattern (torch writes zip64 itself)

Pattern: head = arange(16) f32; big = uint8 of 2**32 + 4096 zeros with big[0] = 1,
big[2**32] = 7, big[-1] = 9; tail = 2 * arange(16) f32. tail's record starts past 4 GiB.
"""
import collections
import sys

import torch

BIG = 2**32 + 4096


def pattern():
    sd = collections.OrderedDict()
    sd["head"] = torch.arange(16, dtype=torch.float32)
    big = torch.zeros(BIG, dtype=torch.uint8)
    big[0], big[2**32], big[-1] = 1, 7, 9
    sd["big"] = big
    sd["tail"] = 2 * torch.arange(16, dtype=torch.float32)
    return sd


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "save":
        torch.save(pattern(), path)
        return
    sd = torch.load(path, mmap=True, weights_only=True)
    assert list(sd) == ["head", "big", "tail"], list(sd)
    assert torch.equal(sd["head"], torch.arange(16, dtype=torch.float32))
    assert torch.equal(sd["tail"], 2 * torch.arange(16, dtype=torch.float32))
    big = sd["big"]
    assert big.dtype == torch.uint8 and big.shape == (BIG,), (big.dtype, big.shape)
    assert (int(big[0]), int(big[2**32]), int(big[-1]), int(big[12345])) == (1, 7, 9, 0)
    assert int(big[: 1 << 20].sum()) == 1
    print("OK")


if __name__ == "__main__":
    main()
