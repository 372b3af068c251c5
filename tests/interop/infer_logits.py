"""Reference logits from the real consumers, for llama-tool's inference tests.

usage:
  infer_logits.py hf DIR TOKENS OUT.npy     transformers LlamaForCausalLM, float32 math
  infer_logits.py gguf FILE TOKENS OUT.npy  llama.cpp via llama-cpp-python, logits_all=True
TOKENS is comma-separated ids (used as given, no BOS added). Writes float32 [n, vocab].
"""
import sys

import numpy as np

kind, path, tokens, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ids = [int(t) for t in tokens.split(",")]

if kind == "hf":
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float().numpy()
elif kind == "gguf":
    from llama_cpp import Llama

    llm = Llama(model_path=path, logits_all=True, n_ctx=max(64, len(ids)), n_batch=512,
                n_threads=2, seed=0, verbose=False)
    llm.eval(ids)
    logits = np.array(llm.scores[: len(ids)], dtype=np.float32)
else:
    raise SystemExit(f"unknown kind {kind}")
np.save(out, logits.astype(np.float32))
