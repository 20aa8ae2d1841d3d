#!/usr/bin/env bash
# Runs every GPU check on a machine with CUDA and CMake but no MLIR (the
# device machine): builds the runtime alone (-DMOEC_RUNTIME_ONLY=ON), runs its
# unit tests, and reports the GPU it found. Artifacts compiled elsewhere with
# moec can be copied in and checked with moe-run.
#   scripts/gpu-check.sh [BUILD_DIR] [ARTIFACT_DIR]
# ARTIFACT_DIR (default build/gpu-artifacts, made by scripts/gpu-artifacts.sh
# on a machine with MLIR and carried over) holds compiled artifacts; each is
# run with moe-run generate, and partitioned ones also under mpirun. The
# runtime has no CUDA execution path yet, so there is no GPU kernel to time;
# the script says so rather than pretending.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build-gpu}"
artifacts="${2:-$root/build/gpu-artifacts}"

if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
else
  echo "gpu-check: no GPU found (nvidia-smi missing); GPU checks are skipped"
fi

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake "${generator[@]}" -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DMOEC_RUNTIME_ONLY=ON
cmake --build "$build" -j "$(nproc)"
(cd "$build" && ctest --output-on-failure -j "$(nproc)")
if [ -d "$artifacts" ]; then
  for artifact in "$artifacts"/*.moeart; do
    [ -e "$artifact" ] || continue
    echo "gpu-check: $(basename "$artifact")"
    "$build/bin/moe-run" "$artifact" generate --prompt=1,2,3,4 --max-new-tokens=8
    ranks=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['plan']['ranks'])" "$artifact")
    if [ "$ranks" -gt 1 ] && command -v mpirun >/dev/null; then
      mpirun --allow-run-as-root --oversubscribe -np "$ranks" \
        "$build/bin/moe-run" "$artifact" generate --prompt=1,2,3,4 --max-new-tokens=8
    fi
  done
fi
echo "gpu-check: runtime built and tested; no CUDA kernels exist yet to run or time"
