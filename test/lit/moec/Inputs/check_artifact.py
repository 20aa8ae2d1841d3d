"""Checks a moec artifact independently of moec: its checksum (FNV-1a 64
over the bytes with the digits zeroed) and its plan, and prints a summary."""
import json
import re
import sys

text = open(sys.argv[1], encoding="utf-8").read()
match = re.search(r'"checksum": "fnv1a64:([0-9a-f]{16})"', text)
zeroed = text[: match.start(1)] + "0" * 16 + text[match.end(1):]
h = 0xCBF29CE484222325
for byte in zeroed.encode():
    h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
print("checksum", "ok" if "%016x" % h == match.group(1) else "BAD")
doc = json.loads(text)
plan = doc["plan"]
print("plan", plan["pipeline_stages"], plan["tensor_parallel"], plan["ranks"])
for stage in doc["stages"]:
    print("stage", stage["stage"], "ranks", stage["first_rank"], stage["ranks"],
          "layers", stage["first_layer"], stage["layers"],
          "weights", len(stage["weights"]))
print("kernels", len(doc["kernels"]))
print("absolute paths", "/work" in text or "/tmp" in text)
