"""Time llama.cpp's prompt evaluation (llama-cpp-python) on a GGUF, for the inference
benchmark. usage: bench_llama_cpp.py MODEL.gguf TOKENS THREADS -> prints JSON
{"seconds": eval seconds (model load excluded, best of 2), "load_seconds", "tokens"}."""
import json
import sys
import time

from llama_cpp import Llama

path, tokens, threads = sys.argv[1], [int(t) for t in sys.argv[2].split(",")], int(sys.argv[3])
t0 = time.perf_counter()
llm = Llama(model_path=path, logits_all=True, n_ctx=len(tokens) + 8, n_batch=len(tokens),
            n_ubatch=len(tokens), n_threads=threads, n_threads_batch=threads, seed=0, verbose=False)
load = time.perf_counter() - t0
best = None
for _ in range(2):
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(tokens)
    dt = time.perf_counter() - t0
    best = dt if best is None else min(best, dt)
print(json.dumps({"seconds": best, "load_seconds": load, "tokens": len(tokens)}))
