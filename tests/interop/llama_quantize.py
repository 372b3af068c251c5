"""llama.cpp's quantizer and a tensor-by-tensor GGUF comparison, for llama-tool's tests.

  llama_quantize.py quantize IN.gguf OUTDIR --threads N PRESET...
      runs llama_cpp.llama_model_quantize (no imatrix) once per preset -> OUTDIR/PRESET.gguf
      and prints the seconds each took as JSON.
  llama_quantize.py compare OURS.gguf THEIRS.gguf
      every tensor's name, type, shape and bytes, and general.file_type /
      general.quantization_version, must agree; prints one JSON line, exits 1 on a difference.
  llama_quantize.py eval MODEL.gguf
      loads the model with llama.cpp and evaluates a few tokens (logits must be finite).
"""
import ctypes
import json
import os
import sys
import time

FTYPES = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10,
    "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16,
    "Q5_K_M": 17, "Q6_K": 18, "BF16": 32,
}


def quantize(inp, outdir, threads, presets):
    import llama_cpp

    times = {}
    for p in presets:
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = FTYPES[p.upper()]
        params.nthread = threads
        out = os.path.join(outdir, f"{p}.gguf")
        t0 = time.perf_counter()
        rc = llama_cpp.llama_model_quantize(inp.encode(), out.encode(), ctypes.byref(params))
        times[p] = time.perf_counter() - t0
        if rc != 0:
            sys.exit(f"llama_model_quantize {p} failed with {rc}")
    print(json.dumps(times))


def compare(ours, theirs):
    import numpy as np
    from gguf import GGUFReader

    a, b = GGUFReader(ours), GGUFReader(theirs)
    problems = []

    def kv(r, key):
        f = r.get_field(key)
        return None if f is None else f.contents()

    for key in ["general.file_type", "general.quantization_version"]:
        if kv(a, key) != kv(b, key):
            problems.append(f"{key}: ours {kv(a, key)} llama.cpp {kv(b, key)}")
    ta = {t.name: t for t in a.tensors}
    tb = {t.name: t for t in b.tensors}
    if set(ta) != set(tb):
        problems.append(f"tensor names differ: {sorted(set(ta) ^ set(tb))}")
    types = {}
    for name in sorted(set(ta) & set(tb)):
        x, y = ta[name], tb[name]
        types[name] = y.tensor_type.name
        if x.tensor_type != y.tensor_type:
            problems.append(f"{name}: type ours {x.tensor_type.name} llama.cpp {y.tensor_type.name}")
            continue
        if list(x.shape) != list(y.shape):
            problems.append(f"{name}: shape ours {list(x.shape)} llama.cpp {list(y.shape)}")
            continue
        xb = np.asarray(x.data).view(np.uint8).reshape(-1)
        yb = np.asarray(y.data).view(np.uint8).reshape(-1)
        if xb.size != yb.size or not np.array_equal(xb, yb):
            diff = int(np.argmax(xb != yb)) if xb.size == yb.size else -1
            problems.append(f"{name} ({y.tensor_type.name}): bytes differ (first at byte {diff})")
    same_file = open(ours, "rb").read() == open(theirs, "rb").read()
    print(json.dumps({"problems": problems, "types": types, "identical_file": same_file}))
    sys.exit(1 if problems else 0)


def evaluate(model):
    import numpy as np
    import llama_cpp

    llm = llama_cpp.Llama(model_path=model, logits_all=True, n_ctx=64, verbose=False)
    toks = [1, 300, 301, 302, 10, 400]
    llm.eval(toks)
    logits = np.asarray(llm.scores[: len(toks)])
    assert logits.shape[1] == llm.n_vocab(), logits.shape
    assert np.isfinite(logits).all(), "non-finite logits"
    print(json.dumps({"n_vocab": llm.n_vocab(), "tokens": len(toks), "max_abs_logit": float(np.abs(logits).max())}))


def main():
    cmd = sys.argv[1]
    if cmd == "quantize":
        args = sys.argv[2:]
        i = args.index("--threads")
        threads = int(args[i + 1])
        rest = args[:i] + args[i + 2:]
        quantize(rest[0], rest[1], threads, rest[2:])
    elif cmd == "compare":
        compare(sys.argv[2], sys.argv[3])
    elif cmd == "eval":
        evaluate(sys.argv[2])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
