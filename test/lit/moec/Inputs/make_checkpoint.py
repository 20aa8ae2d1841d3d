"""Writes a safetensors checkpoint with every weight a moec artifact names,
in bf16, each element holding a small pattern, for moe-run's tests.
  make_checkpoint.py ARTIFACT OUT.safetensors [--skip NAME] [--f32 NAME]"""
import json
import struct
import sys

artifact = json.load(open(sys.argv[1], encoding="utf-8"))
out = sys.argv[2]
skip = sys.argv[sys.argv.index("--skip") + 1] if "--skip" in sys.argv else None
f32 = sys.argv[sys.argv.index("--f32") + 1] if "--f32" in sys.argv else None

tensors = {}
for stage in artifact["stages"]:
    for weight in stage["weights"]:
        tensors[weight["name"]] = weight["shape"]
header, blobs, offset = {}, [], 0
for name in sorted(tensors):
    if name == skip:
        continue
    count = 1
    for dim in tensors[name]:
        count *= dim
    dtype, size = ("F32", 4) if name == f32 else ("BF16", 2)
    data = bytes((i * 7 + len(name)) % 251 for i in range(count * size))
    header[name] = {"dtype": dtype, "shape": tensors[name],
                    "data_offsets": [offset, offset + len(data)]}
    blobs.append(data)
    offset += len(data)
text = json.dumps(header).encode()
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    for blob in blobs:
        f.write(blob)
