#!/usr/bin/env bash
# Runs every GPU check on a machine with CUDA and CMake but no MLIR (the
# device machine), in one call:
#   1. builds the runtime alone (-DMOEC_RUNTIME_ONLY=ON) and runs its tests,
#      the GPU ones (test/unit/CudaExecutionTest.cpp: cuda artifacts against
#      host artifacts) on the carried artifacts;
#   2. generates with every carried small-model artifact and checks that the
#      cuda target gives the host target's greedy tokens (f32 plans), and
#      that partitioned plans give the same tokens as one process per rank
#      under mpirun as they give in one process;
#   3. bootstraps NCCL over MPI with one rank (all one GPU allows).
# Every check runs even when an earlier one fails; the summary at the end
# names the failures and sets the exit status.
# The timings of the one-GPU benchmark model are scripts/gpu-bench.sh's.
#   scripts/gpu-check.sh [BUILD_DIR] [ARTIFACT_DIR]
# ARTIFACT_DIR (default build/gpu-artifacts) is made by scripts/gpu-artifacts.sh
# on a machine with MLIR and carried over. Without a GPU the GPU tests skip
# and say so, and the cuda artifacts are not run.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build-gpu}"
artifacts="$(cd "${2:-$root/build/gpu-artifacts}" 2>/dev/null && pwd || true)"
run="$build/bin/moe-run"
tokens="$build/gpu-check-tokens"
failures=()

# check NAME COMMAND...: runs it, records a failure, goes on.
check() {
  local name="$1"
  shift
  echo "gpu-check: $name"
  if ! "$@"; then
    echo "gpu-check: FAILED: $name"
    failures+=("$name")
  fi
}

gpu=0
if command -v nvidia-smi >/dev/null &&
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; then
  gpu=1
else
  echo "gpu-check: no GPU found; the GPU tests skip and cuda artifacts are not run"
fi

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake "${generator[@]}" -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DMOEC_RUNTIME_ONLY=ON || exit 1
cmake --build "$build" -j "$(nproc)" || exit 1
export MOEC_TEST_ARTIFACTS="$artifacts"
check "runtime tests (ctest)" bash -c "cd '$build' && ctest --output-on-failure -j $(nproc)"
if [ -x "$build/bin/moert-cuda-tests" ]; then
  # The comparisons print their errors and token agreement.
  "$build/bin/moert-cuda-tests" 2>&1 |
    grep -E "relative logit error|greedy tokens|Skipped|PASSED|FAILED" || true
fi

# generate NAME ARTIFACT OPTIONS [LAUNCHER...]: greedy tokens of the
# artifact into $tokens/NAME (OPTIONS: more generate options, or "").
generate() {
  local name="$1" artifact="$2" options="$3"
  shift 3
  # shellcheck disable=SC2086 # OPTIONS are words
  "$@" "$run" "$artifact" generate --prompt=1,2,3,4 --max-new-tokens=8 \
    $options >"$tokens/$name"
}
mpi=(mpirun --allow-run-as-root --oversubscribe)
mkdir -p "$tokens"
if [ -n "$artifacts" ] && [ -d "$artifacts" ]; then
  for artifact in "$artifacts"/*.moeart; do
    [ -e "$artifact" ] || continue
    name="$(basename "$artifact" .moeart)"
    case "$name" in gpt4-mini*) continue ;; esac # gpu-bench.sh
    target=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['target'])" "$artifact")
    ranks=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['plan']['ranks'])" "$artifact")
    if [ "$target" = cuda ] && [ "$gpu" = 0 ]; then
      continue
    fi
    check "$name: generate" generate "$name" "$artifact" ""
    # Partitioned plans also as one process per rank (cuda ones share the
    # one GPU, where NCCL refuses two ranks: their transfers are staged
    # through the host over MPI).
    if [ "$ranks" -gt 1 ] && command -v mpirun >/dev/null; then
      check "$name: generate under mpirun -np $ranks" \
        generate "$name.mpi" "$artifact" --collectives=host "${mpi[@]}" \
        -np "$ranks"
      check "$name: the same tokens under mpirun" \
        cmp "$tokens/$name" "$tokens/$name.mpi"
    fi
  done
  # The cuda target's greedy tokens are the host target's (f32 plans).
  for cuda in "$tokens"/*.cuda-f32; do
    [ -e "$cuda" ] || continue
    model="$(basename "$cuda" .cuda-f32)"
    host="$tokens/${model%%.*}.host"
    [ -e "$host" ] && check "$model: cuda tokens = host tokens" cmp "$host" "$cuda"
  done
fi
# NCCL bootstrapped over MPI, with the one rank this machine allows.
if [ "$gpu" = 1 ] && [ -e "$artifacts/tiny-moe.cuda-f32.moeart" ] &&
  command -v mpirun >/dev/null; then
  check "NCCL: one rank under mpirun" \
    "${mpi[@]}" -np 1 "$run" "$artifacts/tiny-moe.cuda-f32.moeart" generate \
    --prompt=1,2,3,4 --max-new-tokens=8 --collectives=nccl
fi

if [ "${#failures[@]}" -gt 0 ]; then
  echo "gpu-check: ${#failures[@]} failed:"
  printf '  %s\n' "${failures[@]}"
  exit 1
fi
echo "gpu-check: every check passed"
