"""Prints what a cuda artifact holds, one line per item, for FileCheck:
  module M function F ptx CHIPS cubin CHIPS [regs R stack S spills A B smem M]
  launch KERNEL FUNCTION grid [..] block [..] params [..]   (each kernel once)
  print_cuda.py ARTIFACT
or, with --loads, the global memory accesses of each module's first PTX:
  loads M wide W narrow N   (W: 16-byte ld/st.global.v4, N: 2-byte ones)
or, with --count TEXT, how often each module's first PTX has TEXT:
  count M N"""
import json
import re
import sys

if sys.argv[1] == "--loads":
    artifact = json.load(open(sys.argv[2], encoding="utf-8"))
    for module in artifact["cuda"]["modules"]:
        ptx = next(iter(module["ptx"].values()))
        wide = len(re.findall(r"\b(?:ld|st)\.global(?:\.nc)?\.v4\.", ptx))
        narrow = len(re.findall(r"\b(?:ld|st)\.global(?:\.nc)?\.[bsu]16\b", ptx))
        print("loads %s wide %d narrow %d" % (module["module"], wide, narrow))
    sys.exit(0)

if sys.argv[1] == "--count":
    artifact = json.load(open(sys.argv[3], encoding="utf-8"))
    for module in artifact["cuda"]["modules"]:
        ptx = next(iter(module["ptx"].values()))
        print("count %s %d" % (module["module"], ptx.count(sys.argv[2])))
    sys.exit(0)

artifact = json.load(open(sys.argv[1], encoding="utf-8"))
cuda = artifact["cuda"]
print("chips", " ".join(cuda["chips"]))
for module in cuda["modules"]:
    line = "module %s function %s ptx %s cubin %s" % (
        module["module"], module["function"],
        ",".join(sorted(module["ptx"])) or "-",
        ",".join(sorted(module["cubin"])) or "-")
    for chip, ptx in module["ptx"].items():
        # Every PTX declares its entry and the target it was made for.
        assert ".entry " + module["function"] in ptx, module["module"]
        assert ".target " + chip in ptx, (module["module"], chip)
    report = module.get("ptxas")
    if report:
        line += " regs %d stack %d spills %d %d smem %d" % (
            report["registers"], report["stack_bytes"],
            report["spill_stores"], report["spill_loads"],
            report["shared_bytes"])
    print(line)
seen = set()
for stage in artifact["stages"]:
    for step in stage["execution"]["steps"]:
        if step["kind"] != "kernel" or step["kernel"] in seen:
            continue
        seen.add(step["kernel"])
        for launch in step["launches"]:
            print("launch %s %s grid %s block %s params %s" % (
                step["kernel"], launch["module"],
                json.dumps(launch["grid"]), json.dumps(launch["block"]),
                json.dumps(launch["params"])))
