#!/usr/bin/env bash
# The main job: install dependencies, build, and compile the shipped models:
# the GPT-4-class model's report and its 128-GPU plan, the one-GPU benchmark
# model's report, the moe IR of a small model, a small model's 4-rank
# artifact read back by moe-run, and a small model compiled for the host
# generating tokens.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build"
bin="$root/build/bin"
set -x
"$bin/moec" "$root/models/gpt4.json" --report
"$bin/moec" "$root/models/gpt4.json" --cluster=a100-40gb:16x8 --batch=32 --report
"$bin/moec" "$root/models/gpt4-mini.json" --report
"$bin/moec" "$root/models/tiny-moe.json" --emit=moe -o "$root/build/tiny-moe.mlir"
"$bin/moe-opt" "$root/build/tiny-moe.mlir" -moe-report -o /dev/null
"$bin/moec" "$root/models/tiny-moe.json" --tensor-parallel=2 --pipeline-parallel=2 \
  --expert-parallel=2 --cluster=h100-80gb:1x4 --emit=artifact -o "$root/build/tiny-moe.moeart"
"$bin/moe-run" "$root/build/tiny-moe.moeart" inspect
"$bin/moec" "$root/models/tiny-moe.json" --target=host --emit=artifact -o "$root/build/tiny-moe.host.moeart"
"$bin/moe-run" "$root/build/tiny-moe.host.moeart" generate --prompt=1,2,3,4,5 --max-new-tokens=16
