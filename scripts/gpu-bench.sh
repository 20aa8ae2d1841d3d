#!/usr/bin/env bash
# The GPU timings of the one-GPU benchmark model (gpt4-mini, bf16, random
# weights) on the device machine, after scripts/gpu-check.sh built the
# runtime there:
#   1. decode-step times at batch 1 and 32, context 512, next to the floor
#      of the bytes a step must read at the measured copy rate (moe-run
#      step-time), launched one by one and replayed from CUDA graphs;
#   2. every kernel and GEMM of a decode step at batch 64 x 2048 and at
#      batch 1, and of a 4096-token prefill (moe-run bench-kernels), the
#      prefill once more with the expert kernel instead of the grouped
#      expert GEMMs (gpt4-mini.expert-kernel.cuda.moeart, compiled with
#      --expert-gemm-tokens=0), to compare the two ways;
#   3. serving (moe-run bench): 64 requests of mixed lengths, all at once,
#      by continuous batching and by static batches of 32; then 8 requests
#      one at a time, plain and with the draft (gpt4-mini-draft) proposing
#      4 tokens. With random weights the draft rarely agrees, so this
#      measures its cost at low acceptance, not the speed-up of a trained
#      pair. JSON and SVG plots go to BUILD_DIR/bench.
#   scripts/gpu-bench.sh [BUILD_DIR] [ARTIFACT_DIR]
# Each measurement runs even when an earlier one fails; the failures are
# listed at the end.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build-gpu}"
artifacts="${2:-$root/build/gpu-artifacts}"
run="$build/bin/moe-run"
mini="$artifacts/gpt4-mini.cuda.moeart"
[ -x "$run" ] || { echo "gpu-bench: no $run (run scripts/gpu-check.sh first)"; exit 1; }
[ -e "$mini" ] || { echo "gpu-bench: no $mini (scripts/gpu-artifacts.sh makes it)"; exit 1; }
failures=()
measure() {
  echo "gpu-bench: $*"
  "$@" || failures+=("$*")
}
measure "$run" "$mini" step-time --batch=1,32 --context=512 --steps=20
measure env MOEC_CUDA_GRAPHS=1 "$run" "$mini" step-time --batch=1,32 \
  --context=512 --steps=20
measure "$run" "$mini" bench-kernels --batch=64 --context=2048
measure "$run" "$mini" bench-kernels --batch=1 --context=2048
measure "$run" "$mini" bench-kernels --prefill=4096 --repeats=5
kernel="$artifacts/gpt4-mini.expert-kernel.cuda.moeart"
if [ -e "$kernel" ]; then
  measure "$run" "$kernel" bench-kernels --prefill=4096 --repeats=5
else
  echo "gpu-bench: no $kernel; skipping the expert-kernel prefill"
fi
out="$build/bench"
mkdir -p "$out"
mixed=(--requests=64 --prompt-len=uniform:16:512 --output-len=uniform:16:256
       --seed=1)
measure "$run" "$mini" bench "${mixed[@]}" --max-running=32 \
  --json="$out/continuous.json" --plot="$out/continuous.svg"
measure "$run" "$mini" bench "${mixed[@]}" --mode=static --batch=32 \
  --json="$out/static.json" --plot="$out/static.svg"
single=(--requests=8 --prompt-len=fixed:128 --output-len=fixed:128 --seed=2
        --max-running=1)
measure "$run" "$mini" bench "${single[@]}" --json="$out/plain-batch1.json"
draft="$artifacts/gpt4-mini-draft.cuda.moeart"
if [ -e "$draft" ]; then
  measure "$run" "$mini" bench "${single[@]}" --draft="$draft" \
    --draft-tokens=4 --speculate=always --json="$out/speculative-batch1.json"
else
  echo "gpu-bench: no $draft; skipping speculative decoding"
fi
if [ "${#failures[@]}" -gt 0 ]; then
  echo "gpu-bench: ${#failures[@]} failed:"
  printf '  %s\n' "${failures[@]}"
  exit 1
fi
