"""Encode texts with the real `sentencepiece` package, for llama-tool's tokenizer tests.

usage: sp_encode.py MODEL TEXTS.json  -> prints JSON {"ids": [[...], ...], "pieces": [[...], ...],
"decoded": [...], "vocab": N}. TEXTS.json is a JSON list of strings. Deterministic.
"""
import json
import sys

import sentencepiece as spm

sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
texts = json.load(open(sys.argv[2], encoding="utf-8"))
ids = [sp.encode(t) for t in texts]
print(json.dumps({
    "vocab": sp.get_piece_size(),
    "bos": sp.bos_id(), "eos": sp.eos_id(), "unk": sp.unk_id(),
    "ids": ids,
    "pieces": [[sp.id_to_piece(i) for i in x] for x in ids],
    "decoded": [sp.decode(x) for x in ids],
}, ensure_ascii=False))
