"""Train a small real SentencePiece BPE model, LLaMA-style (byte fallback, identity
normalizer, digits split, whitespace-only pieces allowed), on a generated deterministic text.

usage: sp_train.py OUT_PREFIX VOCAB_SIZE [--remove-extra-whitespaces] [--user-defined]
writes OUT_PREFIX.model (and .vocab). Single-threaded, seeded: the same model every run.
"""
import io
import random
import sys

import sentencepiece as spm

prefix, vocab = sys.argv[1], int(sys.argv[2])
rng = random.Random(1234)
words = ("the of and to in is that for it as with was on be by at this are from or have an they "
         "which one you were her all she there would their we him been has when who will more no "
         "if out so said what up its about into than them can only other new some could time these "
         "model token weight layer tensor llama quantize convert check verify download shard "
         "Hello World Python Rust naïve café über Straße").split()
extra = ["中文", "日本語", "한국어", "Привет", "мир", "😀", "🚀", "→", "½", "Ωμέγα", "العربية"]
lines = []
for i in range(6000):
    n = rng.randint(3, 18)
    toks = []
    for _ in range(n):
        r = rng.random()
        if r < 0.80:
            toks.append(rng.choice(words))
        elif r < 0.90:
            toks.append(str(rng.randint(0, 100000)))
        else:
            toks.append(rng.choice(extra))
    sep = "  " if i % 17 == 0 else " "
    lines.append(sep.join(toks) + rng.choice([".", ",", "!", "?", "", ";"]))
text = "\n".join(lines)

kwargs = dict(
    sentence_iterator=io.StringIO(text),
    model_prefix=prefix,
    vocab_size=vocab,
    model_type="bpe",
    byte_fallback=True,
    normalization_rule_name="identity",
    split_digits=True,
    allow_whitespace_only_pieces=True,
    remove_extra_whitespaces="--remove-extra-whitespaces" in sys.argv,
    character_coverage=0.9995,
    num_threads=1,
    seed_sentencepiece_size=100000,
    shuffle_input_sentence=False,
    hard_vocab_limit=False,
    minloglevel=2,
)
if "--user-defined" in sys.argv:
    kwargs["user_defined_symbols"] = ["<tool>", "llama", "\u2581\u2581\u2581\u2581"]
spm.SentencePieceTrainer.train(**kwargs)
