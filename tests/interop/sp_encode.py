"""Encode texts with the real `sentencepiece` package, for llama-tool's tokenizer tests.

usage: sp_encode.py MODEL TEXTS.json [IDS.json] -> prints JSON {"ids": [[...], ...],
"pieces": [[...], ...], "decoded": [...], "vocab": N, "decoded_ids": [...]}. TEXTS.json is a
JSON list of strings; IDS.json an optional list of id lists to decode. Deterministic.
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
    "decoded_ids": [sp.decode(x) for x in (json.load(open(sys.argv[3])) if len(sys.argv) > 3 else [])],
}, ensure_ascii=False))
