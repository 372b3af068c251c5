"""Reference tokenizations for llama-tool's `tokenize` / `detokenize` tests.

usage: tokenize_ref.py sp MODEL TEXTS.json     -> sentencepiece on tokenizer.model
       tokenize_ref.py llama GGUF TEXTS.json   -> llama.cpp's tokenizer (llama-cpp-python,
                                                  vocab_only=True) on a GGUF
Prints JSON {"ids": [[...]], "decoded": [...]}: each text encoded with BOS first (what both
tools do by default for LLaMA) and those ids decoded back. Deterministic.
"""
import json
import sys

mode, model, texts_path = sys.argv[1], sys.argv[2], sys.argv[3]
texts = json.load(open(texts_path, encoding="utf-8"))
if mode == "sp":
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=model)
    ids = [[sp.bos_id()] + sp.encode(t) for t in texts]
    decoded = [sp.decode(x) for x in ids]
elif mode == "llama":
    from llama_cpp import Llama

    llm = Llama(model_path=model, vocab_only=True, verbose=False)
    ids = [llm.tokenize(t.encode("utf-8"), add_bos=True, special=False) for t in texts]
    decoded = [llm.detokenize(x).decode("utf-8", "replace") for x in ids]
else:
    sys.exit(f"unknown mode {mode}")
print(json.dumps({"ids": ids, "decoded": decoded}, ensure_ascii=False))
