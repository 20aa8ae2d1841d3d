#!/usr/bin/env bash
# Compiles the artifacts scripts/gpu-check.sh runs on the device machine
# (which has no MLIR): the small models for the host, whole and partitioned.
# Carry build/gpu-artifacts to the device machine with the source tree.
#   scripts/gpu-artifacts.sh [OUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/build/gpu-artifacts}"
moec="$root/build/bin/moec"
mkdir -p "$out"
"$moec" "$root/models/tiny-moe.json" --emit=artifact -o "$out/tiny-moe.moeart"
"$moec" "$root/models/tiny-gqa.json" --emit=artifact -o "$out/tiny-gqa.moeart"
"$moec" "$root/models/tiny-moe.json" --tensor-parallel=2 --pipeline-parallel=2 \
  --expert-parallel=2 --emit=artifact -o "$out/tiny-moe.tp2pp2.moeart"
echo "gpu-artifacts: wrote $(ls "$out" | wc -l) artifacts to $out"
