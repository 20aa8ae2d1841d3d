"""Prints the host execution plan of a moec artifact, one line per step:
kernel calls with their argument buffers (kind[shape]), GEMMs and grouped
GEMMs with the shapes of a, b (and the offsets) and c, each with the token
counts it runs at when guarded: by the step's tokens ("T<8", "T>=8") or
by the most tokens of one sequence in it ("run<16", "run>=16"); then the
host object's
format and ELF magic."""
import base64
import json
import sys

doc = json.load(open(sys.argv[1], encoding="utf-8"))
plan = doc["stages"][0]["execution"]
buffers = plan["buffers"]


def show(i):
    b = buffers[i]
    name = b.get("name", "")
    kind = b["kind"] + ("(" + name + ")" if b["kind"] == "input" else "")
    kind += "(%d)" % b["layer"] if "layer" in b else ""
    return "%s:%s[%s]" % (kind, b["dtype"], ",".join(str(d) for d in b["shape"]))


print("block_size", plan["block_size"], "kv_layers", plan["kv_layers"],
      "kv_width", plan["kv_width"], "kv_dtype", plan["kv_dtype"])
print("inputs", " ".join("%s=%d" % kv for kv in sorted(plan["inputs"].items())))
for step in plan["steps"]:
    guard = []
    if "from_tokens" in step:
        guard.append("T>=%d" % step["from_tokens"])
    if "below_tokens" in step:
        guard.append("T<%d" % step["below_tokens"])
    if "from_run_tokens" in step:
        guard.append("run>=%d" % step["from_run_tokens"])
    if "below_run_tokens" in step:
        guard.append("run<%d" % step["below_run_tokens"])
    prefix = "[%s] " % " ".join(guard) if guard else ""
    if step["kind"] == "gemm":
        print(prefix + "gemm", show(step["a"]), show(step["b"]), "->",
              show(step["c"]))
    elif step["kind"] == "grouped_gemm":
        print(prefix + "grouped_gemm", show(step["a"]), show(step["b"]),
              "by", show(step["offsets"]), "->", show(step["c"]))
    else:
        print(prefix + "kernel", step["kernel"],
              " ".join(show(a) for a in step["args"]))
print("logits", show(plan["outputs"]["logits"]))
host = doc["host_object"]
data = base64.b64decode(host["base64"])
print("host_object", host["format"], "ELF" if data[:4] == b"\x7fELF" else "?",
      "size ok" if len(data) == host["size"] else "size BAD")
