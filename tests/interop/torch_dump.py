"""Load a .pth with real torch (weights_only=True) and save its tensors, as torch sees them,
to a safetensors file, so a Rust test can compare them with our own reader.

usage: torch_dump.py IN.pth OUT.safetensors
"""
import sys

import torch
from safetensors.torch import save_file

sd = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
save_file({k: v.contiguous() for k, v in sd.items()}, sys.argv[2])
print(f"ok: {len(sd)} tensors")
