"""gguf-py's model-id heuristics (the converter's own copy), for llama-tool's naming tests.

usage: gguf_naming.py CONVERTER.py CASES.json -> prints JSON, per [model_id, total_params]
case: [full_name, organization, basename, finetune, version, size_label, title, rounded]
(`title` is id_to_title(model_id); `rounded` model_weight_count_rounded_notation(total)).
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(sys.argv[1]).parent / "gguf-py"))
from gguf.metadata import Metadata  # noqa: E402
from gguf.utility import model_weight_count_rounded_notation  # noqa: E402

out = []
for model_id, total in json.load(open(sys.argv[2])):
    parts = list(Metadata.get_model_id_components(model_id, total))
    out.append(parts + [Metadata.id_to_title(model_id), model_weight_count_rounded_notation(total)])
print(json.dumps(out))
