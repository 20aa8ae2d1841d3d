"""Assembles every PTX kernel in the output of gpu-module-to-binary
(format=isa) with ptxas for the given arch and prints its resource report,
one line per kernel: registers, stack frame and spills, shared memory.
  ptxas_report.py FILE.mlir PTXAS ARCH"""
import re
import subprocess
import sys
import tempfile

text = open(sys.argv[1], encoding="utf-8").read()
ptxas, arch = sys.argv[2], sys.argv[3]
for match in re.finditer(r'gpu\.binary @(\w+)\s+\[#gpu\.object<.*?assembly = "(.*?)">\]',
                         text, re.S):
    name = match.group(1)
    ptx = re.sub(r"\\([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)),
                 match.group(2))
    with tempfile.NamedTemporaryFile("w", suffix=".ptx") as f:
        f.write(ptx)
        f.flush()
        run = subprocess.run([ptxas, "-arch=" + arch, "-v", f.name, "-o",
                              "/dev/null"], capture_output=True, text=True)
    if run.returncode != 0:
        print(name, "ptxas FAILED:", run.stderr.strip().replace("\n", " | "))
        continue
    report = " ".join(run.stderr.split())
    regs = re.search(r"Used (\d+) registers", report)
    spills = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, "
                       r"(\d+) bytes spill loads", report)
    smem = re.search(r"(\d+) bytes smem", report)
    print("%s: %s registers, stack %s, spill stores %s, spill loads %s, "
          "smem %s" % (name, regs.group(1), spills.group(1), spills.group(2),
                       spills.group(3), smem.group(1) if smem else "0"))
