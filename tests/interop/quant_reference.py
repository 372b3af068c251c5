"""Reference quantizations for llama-tool's byte-equality tests.

Usage: quant_reference.py OUTDIR [--no-ggml]

Writes, for every case (deterministic input rows, including edge cases):
  CASE.f32            the input, raw little-endian f32
  CASE.json           {"rows": R, "n_per_row": N}
  CASE.TYPE.ggml      ggml's own bytes (ggml_quantize_chunk from llama-cpp-python's
                      libggml-base, no imatrix: the llama-quantize path)
  CASE.TYPE.ggufpy    gguf-py's numpy quantizer bytes (types it can quantize)
  CASE.TYPE.deq       gguf-py's dequantization of the ggml bytes, raw f32
The Rust test quantizes CASE.f32 itself and compares.
"""
import ctypes
import json
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
import gguf.quants as gq

TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
GGUFPY_QUANTIZES = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"}


def cases():
    rng = np.random.default_rng(20240917)
    out = {}
    out["gauss"] = rng.standard_normal((48, 512)).astype(np.float32) * 0.02
    # what real checkpoints hold: f16-representable values
    out["f16grid"] = (rng.standard_normal((32, 1024)) * 0.05).astype(np.float16).astype(np.float32)
    out["zeros"] = np.zeros((4, 256), np.float32)
    x = rng.standard_normal((8, 512)).astype(np.float32)
    x[np.arange(8), rng.integers(0, 512, 8)] = 1.0e4
    out["outlier"] = x
    x = np.abs(rng.standard_normal((8, 512))).astype(np.float32)
    x[:, ::37] = -8.0
    out["negmax"] = x
    x = (rng.standard_normal((4, 512)) * 1e-39).astype(np.float32)  # subnormals
    x[1] = np.float32(1.4e-45) * rng.integers(-3, 4, 512)
    out["subnormal"] = x
    out["tiny"] = (rng.standard_normal((4, 512)) * 1e-9).astype(np.float32)
    x = np.full((4, 512), 0.5, np.float32)
    x[1] = -0.25
    x[2, :256] = 0.0
    x[2, 256:] = -0.0
    x[3, ::2] = -0.0
    out["constant"] = x
    x = rng.standard_normal((8, 256)).astype(np.float32)
    x *= np.float32(10.0) ** rng.integers(-6, 5, (8, 1)).astype(np.float32)
    out["scales"] = x
    x = rng.uniform(-1, 1, (8, 512)).astype(np.float32)
    x[:, 1::2] = np.where(x[:, 1::2] > 0, 0.0, x[:, 1::2])  # one-sided blocks, many zeros
    out["sparse"] = x
    x = rng.integers(-8, 8, (8, 512)).astype(np.float32)  # exact grid values, ties in rounding
    out["ties"] = x
    return out


def ggml_lib():
    import llama_cpp

    path = os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-base.so")
    lib = ctypes.CDLL(path)
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [
        ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
    ]
    return lib


def ggml_quantize(lib, x, tname):
    t = T[tname]
    bs, ts = gq.GGML_QUANT_SIZES[t]
    rows, n = x.shape
    dst = np.zeros(rows * n // bs * ts, np.uint8)
    x = np.ascontiguousarray(x, np.float32)
    got = lib.ggml_quantize_chunk(int(t), x.ctypes.data, dst.ctypes.data, 0, rows, n, None)
    assert got == dst.size, (tname, got, dst.size)
    return dst


def main():
    outdir = sys.argv[1]
    use_ggml = "--no-ggml" not in sys.argv
    os.makedirs(outdir, exist_ok=True)
    lib = ggml_lib() if use_ggml else None
    for name, x in cases().items():
        x = np.ascontiguousarray(x, np.float32)
        x.tofile(os.path.join(outdir, f"{name}.f32"))
        with open(os.path.join(outdir, f"{name}.json"), "w") as f:
            json.dump({"rows": x.shape[0], "n_per_row": x.shape[1]}, f)
        for tname in TYPES:
            base = os.path.join(outdir, f"{name}.{tname}")
            ref = None
            if tname in GGUFPY_QUANTIZES:
                ref = gq.quantize(x, T[tname]).reshape(-1)
                ref.tofile(base + ".ggufpy")
            if lib is not None:
                ref = ggml_quantize(lib, x, tname)
                ref.tofile(base + ".ggml")
            if ref is not None:
                bs, ts = gq.GGML_QUANT_SIZES[T[tname]]
                deq = gq.dequantize(ref.reshape(x.shape[0], -1), T[tname]).astype(np.float32)
                deq.tofile(base + ".deq")
    print("ok")


if __name__ == "__main__":
    main()
