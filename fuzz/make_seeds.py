#!/usr/bin/env python3
"""Write the small seed corpus of every fuzz target into fuzz/seeds/TARGET/.

Python standard library only; deterministic. Run from anywhere:  python3 fuzz/make_seeds.py
Seeds are tiny valid (and a few hostile) inputs taken from tests/fixtures or built here.
"""
import hashlib
import json
import os
import shutil
import struct
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIX = os.path.join(ROOT, "tests", "fixtures")


def out(target, name, data):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def fixture(*parts):
    with open(os.path.join(FIX, *parts), "rb") as f:
        return f.read()


# pickle: data.pkl of a real torch.save file, plus the hostile pickles.
with zipfile.ZipFile(os.path.join(FIX, "torch", "views", "views.pth")) as z:
    pkl = [n for n in z.namelist() if n.endswith("data.pkl")][0]
    out("pickle", "views.pkl", z.read(pkl))
for n in sorted(os.listdir(os.path.join(FIX, "hostile"))):
    if n.endswith(".pkl") and os.path.getsize(os.path.join(FIX, "hostile", n)) < 4096:
        out("pickle", n, fixture("hostile", n))

# torch_zip: a real file and a few hostile ones.
out("torch_zip", "views.pth", fixture("torch", "views", "views.pth"))
for n in ["os_system.pth", "offset_past_end.pth", "missing_storage.pth", "compressed_pickle.pth"]:
    out("torch_zip", n, fixture("hostile", n))


# gguf: a LLaMA-shaped v3 file with two tensors and a vocabulary.
def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, ty, body):
    return gstr(key) + struct.pack("<I", ty) + body


kvs = [
    kv("general.architecture", 8, gstr("llama")),
    kv("llama.block_count", 4, struct.pack("<I", 1)),
    kv("llama.embedding_length", 4, struct.pack("<I", 8)),
    kv("llama.attention.head_count", 4, struct.pack("<I", 2)),
    kv("llama.feed_forward_length", 4, struct.pack("<I", 16)),
    kv("tokenizer.ggml.model", 8, gstr("llama")),
    kv("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 3) + gstr("<unk>") + gstr("<s>") + gstr("a")),
    kv("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, 3) + struct.pack("<3f", 0, 0, -1)),
]
tensors = [("token_embd.weight", [8, 3], 0), ("blk.0.attn_norm.weight", [8], 96)]
g = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
for name, dims, off in tensors:
    g += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
    g += struct.pack("<IQ", 0, off)
g += b"\0" * ((-len(g)) % 32) + b"\0" * 128
out("gguf", "llama.gguf", g)
out("gguf", "empty_v2.gguf", b"GGUF" + struct.pack("<IQQ", 2, 0, 0))
out("gguf_structured", "zeros", b"\0" * 64)
out("gguf_structured", "bytes", bytes(range(256)))

# safetensors: a real file and a hand-made header.
out("safetensors", "views.safetensors", fixture("torch", "expected", "views", "views.safetensors"))
h = json.dumps({"w": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 8]},
                "__metadata__": {"format": "pt"}}).encode()
out("safetensors", "tiny.safetensors", struct.pack("<Q", len(h)) + h + b"\0" * 8)


# sentencepiece: a ModelProto with four pieces and a trainer spec.
def varint(n):
    b = b""
    while True:
        x = n & 0x7F
        n >>= 7
        b += bytes([x | (0x80 if n else 0)])
        if not n:
            return b


def ld(field, body):
    return varint(field << 3 | 2) + varint(len(body)) + body


def piece(text, score, ty):
    return ld(1, ld(1, text.encode()) + varint(2 << 3 | 5) + struct.pack("<f", score) + varint(3 << 3) + varint(ty))


sp = piece("<unk>", 0, 2) + piece("<s>", 0, 3) + piece("</s>", 0, 3) + piece("\u2581a", -1, 1)
sp += ld(2, varint(3 << 3) + varint(2) + varint(4 << 3) + varint(4))
sp += ld(3, ld(1, b"identity"))
out("sentencepiece", "tiny.model", sp)

# checksum lists.
out("md5_checklist", "checklist.chk", fixture("torch", "tiny-mp1", "checklist.chk"))
sha = hashlib.sha256(b"abc").hexdigest()
out("sha256sums", "gnu_and_bsd", f"{sha}  a.bin\n{sha} *b.bin\nSHA256 (c.bin) = {sha}\n# comment\n\\{sha}  d\\\\e\n")
out("b3sum", "B3SUMS", "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85  a.bin\n")

# the JSON manifest.
out("json_manifest", "manifest.json", json.dumps({
    "format": "llama-tool-manifest", "version": 1, "chunk_size": 65536, "chunk_algo": "blake3",
    "files": [{"path": "a.bin", "size": 3, "sha256": sha,
               "md5": hashlib.md5(b"abc").hexdigest(), "chunks": ["0" * 64]}],
}, indent=1))

# params.json / config.json.
out("params_json", "llama1.json", fixture("torch", "tiny-mp1", "params.json"))
out("params_json", "llama2_70b.json", '{"dim": 8192, "multiple_of": 4096, "ffn_dim_multiplier": 1.3, "n_heads": 64, "n_kv_heads": 8, "n_layers": 80, "norm_eps": 1e-05, "vocab_size": -1}')
out("config_json", "config.json", json.dumps({
    "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 11008,
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
    "rms_norm_eps": 1e-6, "vocab_size": 32000, "max_position_embeddings": 2048,
    "rope_theta": 10000.0}))

# torrent: small v1 (multi-file with a BEP 47 padding file, single-file), v2 and hybrid
# metainfo with real hashes, plus a magnet link.
def benc(x):
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
    if isinstance(x, bytes):
        return b"%d:" % len(x) + x
    if isinstance(x, list):
        return b"l" + b"".join(benc(v) for v in x) + b"e"
    return b"d" + b"".join(benc(k) + benc(x[k]) for k in sorted(x, key=lambda k: k.encode() if isinstance(k, str) else k)) + b"e"


PL = 16384
a, b = b"a" * 20000, b"params" * 10
pad = b"\0" * (-len(a) % PL)
stream = a + pad + b
pieces = b"".join(hashlib.sha1(stream[i:i + PL]).digest() for i in range(0, len(stream), PL))
v1 = {"announce": "http://127.0.0.1:6969/announce", "info": {
    "name": "LLaMA", "piece length": PL, "pieces": pieces, "files": [
        {"length": len(a), "path": ["7B", "consolidated.00.pth"]},
        {"length": len(pad), "path": [".pad", str(len(pad))], "attr": "p"},
        {"length": len(b), "path": ["7B", "params.json"]}]}}
out("torrent", "v1_multi.torrent", benc(v1))
out("torrent", "v1_single.torrent", benc({"info": {
    "name": "tokenizer.model", "piece length": PL, "length": len(b),
    "pieces": hashlib.sha1(b).digest(), "private": 1}, "url-list": ["http://127.0.0.1/x"]}))


def merkle(data):
    leaves = [hashlib.sha256(data[i:i + PL]).digest() for i in range(0, len(data), PL)] or [b"\0" * 32]
    n = 1
    while n < len(leaves):
        n *= 2
    leaves += [b"\0" * 32] * (n - len(leaves))
    while len(leaves) > 1:
        leaves = [hashlib.sha256(leaves[i] + leaves[i + 1]).digest() for i in range(0, len(leaves), 2)]
    return leaves[0]


tree = {"7B": {"consolidated.00.pth": {"": {"length": len(a), "pieces root": merkle(a)}},
               "params.json": {"": {"length": len(b), "pieces root": merkle(b)}}}}
v2_info = {"name": "LLaMA", "piece length": PL, "meta version": 2, "file tree": tree}
layers = {merkle(a): b"".join(hashlib.sha256(a[i:i + PL] + b"\0" * (-len(a[i:i + PL]) % PL)).digest() for i in range(0, len(a), PL))}
out("torrent", "v2.torrent", benc({"info": v2_info, "piece layers": layers}))
hybrid = dict(v2_info, **v1["info"])
out("torrent", "hybrid.torrent", benc({"info": hybrid, "piece layers": layers}))
out("torrent", "magnet.txt", "magnet:?xt=urn:btih:" + hashlib.sha1(benc(v1["info"])).hexdigest()
    + "&dn=LLaMA&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce")
