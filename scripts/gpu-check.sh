#!/usr/bin/env bash
# Runs every GPU check on a machine with CUDA and CMake but no MLIR (the
# device machine), in one call:
#   1. builds the runtime alone (-DMOEC_RUNTIME_ONLY=ON) and runs its tests,
#      the GPU ones (test/unit/CudaExecutionTest.cpp: cuda artifacts against
#      host artifacts) on the carried artifacts;
#   2. generates with every carried small-model artifact (partitioned
#      plans, host and cuda, also under mpirun).
# The timings of the one-GPU benchmark model are scripts/gpu-bench.sh's.
#   scripts/gpu-check.sh [BUILD_DIR] [ARTIFACT_DIR]
# ARTIFACT_DIR (default build/gpu-artifacts) is made by scripts/gpu-artifacts.sh
# on a machine with MLIR and carried over. Without a GPU the GPU tests skip
# and say so.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build-gpu}"
artifacts="$(cd "${2:-$root/build/gpu-artifacts}" 2>/dev/null && pwd || true)"

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
export MOEC_TEST_ARTIFACTS="$artifacts"
(cd "$build" && ctest --output-on-failure -j "$(nproc)")
if [ -x "$build/bin/moert-cuda-tests" ]; then
  # The comparisons print their errors and token agreement.
  "$build/bin/moert-cuda-tests" 2>&1 | grep -E "relative logit error|greedy tokens|Skipped|PASSED|FAILED" || true
fi
if [ -n "$artifacts" ] && [ -d "$artifacts" ]; then
  for artifact in "$artifacts"/*.moeart; do
    [ -e "$artifact" ] || continue
    case "$(basename "$artifact")" in gpt4-mini*) continue ;; esac # gpu-bench.sh
    echo "gpu-check: $(basename "$artifact")"
    "$build/bin/moe-run" "$artifact" generate --prompt=1,2,3,4 --max-new-tokens=8 || true
    ranks=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['plan']['ranks'])" "$artifact")
    # Partitioned plans also as one process per rank (cuda ones share the
    # one GPU, where NCCL refuses two ranks: their transfers are staged
    # through the host over MPI).
    if [ "$ranks" -gt 1 ] && command -v mpirun >/dev/null; then
      mpirun --allow-run-as-root --oversubscribe -np "$ranks" \
        "$build/bin/moe-run" "$artifact" generate --prompt=1,2,3,4 \
        --max-new-tokens=8 --collectives=host
    fi
  done
fi
# NCCL bootstrapped over MPI, with the one rank this machine allows.
if [ -e "$artifacts/tiny-moe.cuda-f32.moeart" ] && command -v mpirun >/dev/null; then
  echo "gpu-check: NCCL, one rank under mpirun"
  mpirun --allow-run-as-root -np 1 "$build/bin/moe-run" \
    "$artifacts/tiny-moe.cuda-f32.moeart" generate --prompt=1,2,3,4 \
    --max-new-tokens=8 --collectives=nccl
fi
echo "gpu-check: done"
