"""Compare two GGUF files key by key and tensor by tensor with gguf-py's reader.

usage: gguf_parity.py OURS.gguf THEIRS.gguf [--ignore KEY ...]
Prints one line per difference (missing/extra key, different type or value, missing/extra
tensor, different type, shape or bytes) and a JSON summary on the last line; exits 1 when any
difference remains, 0 when the files carry the same metadata (same keys, types, values and
order) and the same tensors (same names, types, shapes and bytes; the converter writes them
in its safetensors' name order, we in Meta's order, which no reader depends on).
"""
import json
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType


def fields(r):
    out = {}
    for name, f in r.fields.items():
        if name.startswith("GGUF."):
            continue
        vt = f.types[0] if f.types else None
        if vt == GGUFValueType.ARRAY:
            sub = f.types[1] if len(f.types) > 1 else None
            if sub == GGUFValueType.STRING:
                val = [bytes(f.parts[i]).decode("utf-8", "replace") for i in f.data]
            else:
                val = [f.parts[i].tolist()[0] for i in f.data]
            typ = f"array[{sub.name if sub is not None else '?'}]"
        elif vt == GGUFValueType.STRING:
            val = bytes(f.parts[f.data[0]]).decode("utf-8", "replace")
            typ = "string"
        else:
            val = f.parts[f.data[0]].tolist()[0]
            typ = vt.name
        out[name] = (typ, val)
    return out


def short(v):
    s = repr(v)
    return s if len(s) < 120 else s[:117] + "..."


def main():
    ours, theirs = sys.argv[1], sys.argv[2]
    ignore = set()
    args = sys.argv[3:]
    while args:
        if args[0] == "--ignore":
            ignore.add(args[1])
            args = args[2:]
        else:
            sys.exit(f"unknown argument {args[0]}")
    a, b = GGUFReader(ours), GGUFReader(theirs)
    fa, fb = fields(a), fields(b)
    diffs = []
    for k in fb:
        if k in ignore:
            continue
        if k not in fa:
            diffs.append(f"key {k}: missing from ours (theirs {fb[k][0]} {short(fb[k][1])})")
        elif fa[k][0] != fb[k][0]:
            diffs.append(f"key {k}: type {fa[k][0]} vs theirs {fb[k][0]}")
        elif fa[k][1] != fb[k][1]:
            diffs.append(f"key {k}: value {short(fa[k][1])} vs theirs {short(fb[k][1])}")
    for k in fa:
        if k not in fb and k not in ignore:
            diffs.append(f"key {k}: extra in ours ({fa[k][0]} {short(fa[k][1])})")
    order_a = [k for k in fa if k in fb and k not in ignore]
    order_b = [k for k in fb if k in fa and k not in ignore]
    if order_a != order_b:
        diffs.append(f"key order differs: ours {order_a} vs theirs {order_b}")
    ta = {t.name: t for t in a.tensors}
    tb = {t.name: t for t in b.tensors}
    for name, t in tb.items():
        if name not in ta:
            diffs.append(f"tensor {name}: missing from ours")
            continue
        o = ta[name]
        if o.tensor_type != t.tensor_type:
            diffs.append(f"tensor {name}: type {o.tensor_type.name} vs theirs {t.tensor_type.name}")
        elif list(o.shape) != list(t.shape):
            diffs.append(f"tensor {name}: shape {list(o.shape)} vs theirs {list(t.shape)}")
        elif not np.array_equal(np.asarray(o.data).view(np.uint8), np.asarray(t.data).view(np.uint8)):
            diffs.append(f"tensor {name}: bytes differ")
    for name in ta:
        if name not in tb:
            diffs.append(f"tensor {name}: extra in ours")
    for d in diffs:
        print(d)
    print(json.dumps({"keys": len(fb), "tensors": len(tb), "differences": len(diffs)}))
    sys.exit(1 if diffs else 0)


main()
