#!/usr/bin/env python3
"""Interop partner for formats/tests/gguf_st_interop.rs: the real producers and consumers
(gguf-py's GGUFWriter/GGUFReader, the `safetensors` package, transformers' save_pretrained)
write files for our readers and describe files our writers made.

Every subcommand prints one JSON "description" on stdout:
  GGUF: {"version", "alignment", "metadata": [[key, V]...], "tensors": [{name, type, shape, gguf_shape, data}]}
        V = {"t": TYPE, "v": value} for scalars and strings,
            {"t": "ARRAY", "elem": TYPE, "v": [values or nested array objects without "t"]}
        shape is numpy order (outermost first); gguf_shape is the file's order (innermost first)
  safetensors: {"metadata": {...} | null, "tensors": [{name, dtype, shape, data}]} sorted by name
data is lowercase hex. Deterministic: fixed seeds, no clocks.

  gguf-write OUT ALIGN     write with GGUFWriter, describe what was asked for
  gguf-describe IN         read with GGUFReader
  gguf-write-split OUT     GGUFWriter with split_max_tensors=2; describe the shards read back
                           with GGUFReader (first shard's metadata, every shard's tensors)
  st-write OUT             write with safetensors.torch.save_file, describe what was asked for
  st-describe PATH         read a file (or a folder's index + shards) with safe_open
  hf-write DIR             tiny LlamaForCausalLM.save_pretrained sharded; describe its state_dict
"""
import json
import os
import sys

import numpy as np

T = ["U8", "I8", "U16", "I16", "U32", "I32", "F32", "BOOL", "STRING", "ARRAY", "U64", "I64", "F64"]


def gguf_spec():
    """Metadata (key, type, value, sub_type) covering every value type and nested arrays."""
    from gguf import GGUFValueType as V
    return [
        ("u8", V.UINT8, 200, None),
        ("i8", V.INT8, -100, None),
        ("u16", V.UINT16, 60000, None),
        ("i16", V.INT16, -30000, None),
        ("u32", V.UINT32, 4000000000, None),
        ("i32", V.INT32, -2000000000, None),
        ("f32", V.FLOAT32, 1e-5, None),
        ("bool.t", V.BOOL, True, None),
        ("bool.f", V.BOOL, False, None),
        ("str", V.STRING, "héllo ▁wörld", None),
        ("str.empty", V.STRING, "", None),
        ("u64", V.UINT64, 2**64 - 1, None),
        ("i64", V.INT64, -(2**63), None),
        ("f64", V.FLOAT64, -2.5e300, None),
        ("tokenizer.ggml.tokens", V.ARRAY, ["<unk>", "<s>", "</s>", "▁the", "", "<0x0A>"], None),
        ("tokenizer.ggml.scores", V.ARRAY, [0.0, -1.5, 3.25, -1000.0], None),
        ("tokenizer.ggml.token_type", V.ARRAY, [2, 3, 3, 1, 1, 6], None),
        ("arr.bool", V.ARRAY, [True, False, True], None),
        ("arr.u8", V.ARRAY, [0, 1, 255], V.UINT8),
        ("arr.i16", V.ARRAY, [-32768, 32767], V.INT16),
        ("arr.u64", V.ARRAY, [2**64 - 1, 0], V.UINT64),
        ("arr.f64", V.ARRAY, [0.1, -1e-300], V.FLOAT64),
        ("arr.nested", V.ARRAY, [[1, 2, 3], ["a", "bc"], [[True], [False, True]], [0.5]], None),
    ]


def f32(x):
    return float(np.float32(x))


def expect_value(vtype, val, sub_type):
    from gguf import GGUFValueType as V
    if vtype == V.ARRAY:
        return {"t": "ARRAY", **expect_array(val, sub_type)}
    return {"t": T[int(vtype)], "v": f32(val) if vtype == V.FLOAT32 else val}


def expect_array(val, sub_type):
    from gguf import GGUFValueType as V
    elem = sub_type if sub_type is not None else V.get_type(val[0])
    if elem == V.ARRAY:
        return {"elem": "ARRAY", "v": [expect_array(x, None) for x in val]}
    if elem == V.FLOAT32:
        val = [f32(x) for x in val]
    return {"elem": T[int(elem)], "v": list(val)}


def gguf_tensors():
    import gguf
    rng = np.random.default_rng(1234)
    Q = gguf.GGMLQuantizationType
    a = rng.standard_normal((3, 5)).astype(np.float32)
    h = rng.standard_normal((2, 2, 4)).astype(np.float16)
    w = rng.standard_normal((4, 64)).astype(np.float32)
    scalar = np.array([7.0], dtype=np.float32)
    # (name, array as stored, raw_dtype for add_tensor, ggml type id, numpy element shape)
    return [
        ("a.f32", a, None, int(Q.F32), [3, 5]),
        ("h.f16", h, None, int(Q.F16), [2, 2, 4]),
        ("w.q8_0", gguf.quants.quantize(w, Q.Q8_0), Q.Q8_0, int(Q.Q8_0), [4, 64]),
        ("w.q4_0", gguf.quants.quantize(w, Q.Q4_0), Q.Q4_0, int(Q.Q4_0), [4, 64]),
        ("w.bf16", gguf.quants.quantize(w, Q.BF16), Q.BF16, int(Q.BF16), [4, 64]),
        ("s.f32", scalar, None, int(Q.F32), [1]),
    ]


def gguf_write(out, align, split_max_tensors=0):
    import gguf
    from pathlib import Path
    w = gguf.GGUFWriter(Path(out), "llama", split_max_tensors=split_max_tensors)
    md = [["general.architecture", {"t": "STRING", "v": "llama"}]]
    for i, (k, vt, v, st) in enumerate(gguf_spec()):
        w.add_key_value(k, v, vt, sub_type=st)
        md.append([k, expect_value(vt, v, st)])
        if i == 3 and align != 32:
            w.add_custom_alignment(align)
            md.append(["general.alignment", {"t": "U32", "v": align}])
    tensors = []
    for name, arr, raw, tid, shape in gguf_tensors():
        w.add_tensor(name, arr, raw_dtype=raw)
        tensors.append({"name": name, "type": tid, "shape": shape,
                        "gguf_shape": shape[::-1], "data": arr.tobytes().hex()})
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"version": 3, "alignment": align, "metadata": md, "tensors": tensors}


def gguf_write_split(out):
    import glob
    gguf_write(out, 32, split_max_tensors=2)
    stem = out[: -len(".gguf")]
    files = sorted(glob.glob(glob.escape(stem) + "-*-of-*.gguf"))
    d = gguf_describe(files[0])
    d["files"] = len(files)
    for f in files[1:]:
        d["tensors"] += gguf_describe(f)["tensors"]
    return d


def walk(parts, i, vtype):
    """Rebuild a value from gguf-py's parsed parts (which it flattens for nested arrays)."""
    from gguf import GGUFValueType as V
    vtype = V(int(vtype))
    if vtype == V.STRING:
        return bytes(parts[i + 1]).decode("utf-8"), i + 2
    if vtype == V.ARRAY:
        elem, n = V(int(parts[i][0])), int(parts[i + 1][0])
        i += 2
        items = []
        for _ in range(n):
            x, i = walk(parts, i, elem)
            items.append(x)
        return {"elem": T[int(elem)], "v": items}, i
    x = parts[i].tolist()[0]
    return (float(x) if vtype in (V.FLOAT32, V.FLOAT64) else x), i + 1


def gguf_describe(path):
    import gguf
    from gguf import GGUFValueType as V
    r = gguf.GGUFReader(path)
    md = []
    version = None
    for field in r.fields.values():
        if field.name.startswith("GGUF."):
            if field.name == "GGUF.version":
                version = int(field.parts[0][0])
            continue
        vtype = field.types[0]
        v, end = walk(field.parts, 3, vtype)
        assert end == len(field.parts), field.name
        if vtype == V.ARRAY:
            if v["elem"] != "ARRAY":  # gguf-py's own accessor must agree where it can
                c = field.contents()
                assert c == v["v"], (field.name, c, v["v"])
            md.append([field.name, {"t": "ARRAY", **v}])
        else:
            assert field.contents() == v, field.name
            md.append([field.name, {"t": T[int(vtype)], "v": v}])
    tensors = []
    for t in r.tensors:
        gshape = [int(d) for d in t.shape]
        tensors.append({"name": t.name, "type": int(t.tensor_type), "shape": gshape[::-1],
                        "gguf_shape": gshape, "data": t.data.tobytes().hex()})
    return {"version": version, "alignment": int(r.alignment), "metadata": md, "tensors": tensors}


def st_tensors():
    import torch
    g = torch.Generator().manual_seed(99)
    return {
        "model.layers.0.self_attn.q_proj.weight": torch.randn(4, 6, generator=g).to(torch.bfloat16),
        "model.embed_tokens.weight": torch.randn(5, 4, generator=g).to(torch.float16),
        "model.norm.weight": torch.randn(4, generator=g),
        "f64": torch.randn(2, 1, 3, generator=g, dtype=torch.float64),
        "i64": torch.arange(-3, 3, dtype=torch.int64),
        "i32": torch.arange(0, 4, dtype=torch.int32).reshape(2, 2),
        "u8": torch.tensor([0, 7, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False]),
        "scalar": torch.tensor(3.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float16),
    }


ST_NAMES = {"torch.float64": "F64", "torch.float32": "F32", "torch.float16": "F16",
            "torch.bfloat16": "BF16", "torch.int64": "I64", "torch.int32": "I32",
            "torch.int16": "I16", "torch.int8": "I8", "torch.uint8": "U8", "torch.bool": "BOOL"}


def describe_torch(name, t):
    import torch
    raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    return {"name": name, "dtype": ST_NAMES[str(t.dtype)], "shape": list(t.shape), "data": raw.hex()}


def st_write(out):
    from safetensors.torch import save_file
    ts = st_tensors()
    # One metadata key: the package writes __metadata__ in hash-map order, so with several
    # keys its bytes are not reproducible and a byte-for-byte comparison would be flaky.
    save_file(ts, out, metadata={"format": "pt"})
    return {"metadata": {"format": "pt"},
            "tensors": sorted((describe_torch(k, v) for k, v in ts.items()), key=lambda d: d["name"])}


def st_describe(path):
    from safetensors import safe_open
    if os.path.isdir(path):
        with open(os.path.join(path, "model.safetensors.index.json")) as f:
            index = json.load(f)
        files = sorted(set(index["weight_map"].values()))
    else:
        files = [os.path.basename(path)]
        path = os.path.dirname(path)
    tensors, metadata = [], None
    for fname in files:
        with safe_open(os.path.join(path, fname), framework="pt") as f:
            metadata = f.metadata()
            for k in f.keys():
                tensors.append(describe_torch(k, f.get_tensor(k)))
    return {"metadata": metadata, "tensors": sorted(tensors, key=lambda d: d["name"])}


def hf_write(out):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out, max_shard_size="4KB", safe_serialization=True)
    sd = model.state_dict()
    return {"metadata": {"format": "pt"},
            "tensors": sorted((describe_torch(k, v) for k, v in sd.items()), key=lambda d: d["name"])}


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "gguf-write":
        d = gguf_write(args[0], int(args[1]))
    elif cmd == "gguf-write-split":
        d = gguf_write_split(args[0])
    elif cmd == "gguf-describe":
        d = gguf_describe(args[0])
    elif cmd == "st-write":
        d = st_write(args[0])
    elif cmd == "st-describe":
        d = st_describe(args[0])
    elif cmd == "hf-write":
        d = hf_write(args[0])
    else:
        sys.exit(f"unknown command {cmd}")
    json.dump(d, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
