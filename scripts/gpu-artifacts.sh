#!/usr/bin/env bash
# Compiles the artifacts scripts/gpu-check.sh runs on the device machine
# (which has no MLIR). Names follow test/unit/CudaExecutionTest.cpp:
#   NAME.host.moeart      the host target (the GPU code's reference)
#   NAME.cuda-f32.moeart  the cuda target in f32 (compared with the host)
#   NAME.cuda.moeart      the cuda target in the model's dtype (bf16)
# plus gpt4-mini (the one-GPU benchmark model) and a partitioned host plan.
# Carry build/gpu-artifacts to the device machine with the source tree.
#   scripts/gpu-artifacts.sh [OUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/build/gpu-artifacts}"
moec="$root/build/bin/moec"
mkdir -p "$out"
# gpu-check.sh runs every artifact it finds: none left from an older run.
rm -f "$out"/*.moeart
for model in tiny-moe tiny-gqa tiny-draft; do
  "$moec" "$root/models/$model.json" --emit=artifact -o "$out/$model.host.moeart"
  "$moec" "$root/models/$model.json" --target=cuda --dtype=f32 \
    --emit=artifact -o "$out/$model.cuda-f32.moeart"
  "$moec" "$root/models/$model.json" --target=cuda --emit=artifact \
    -o "$out/$model.cuda.moeart"
done
for model in gpt4-mini gpt4-mini-draft; do
  "$moec" "$root/models/$model.json" --target=cuda --emit=artifact \
    -o "$out/$model.cuda.moeart"
done
# gpt4-mini with the expert kernel at every step size, for gpu-bench.sh's
# prefill comparison with the grouped expert GEMMs.
"$moec" "$root/models/gpt4-mini.json" --target=cuda --expert-gemm-tokens=0 \
  --emit=artifact -o "$out/gpt4-mini.expert-kernel.cuda.moeart"
"$moec" "$root/models/tiny-moe.json" --tensor-parallel=2 --pipeline-parallel=2 \
  --expert-parallel=2 --emit=artifact -o "$out/tiny-moe.tp2pp2.host.moeart"
# Partitioned cuda plans, run by threads on the one GPU.
"$moec" "$root/models/tiny-moe.json" --target=cuda --dtype=f32 \
  --tensor-parallel=2 --pipeline-parallel=2 --emit=artifact \
  -o "$out/tiny-moe.tp2-pp2.cuda-f32.moeart"
"$moec" "$root/models/tiny-gqa.json" --target=cuda --dtype=f32 \
  --tensor-parallel=2 --expert-parallel=2 --emit=artifact \
  -o "$out/tiny-gqa.tp2-ep2.cuda-f32.moeart"
"$moec" "$root/models/tiny-gqa.json" --target=cuda --dtype=f32 \
  --tensor-parallel=2 --expert-all-to-all --emit=artifact \
  -o "$out/tiny-gqa.tp2-a2a.cuda-f32.moeart"
# The routed experts as grouped cuBLAS GEMMs from 8 tokens on (prefill),
# and the host plan with the same steps (CudaSteps compares them step by
# step).
"$moec" "$root/models/tiny-moe.json" --expert-gemm-tokens=8 --emit=artifact \
  -o "$out/tiny-moe.expert-gemm.host.moeart"
"$moec" "$root/models/tiny-moe.json" --target=cuda --dtype=f32 \
  --expert-gemm-tokens=8 --emit=artifact \
  -o "$out/tiny-moe.expert-gemm.cuda-f32.moeart"
"$moec" "$root/models/tiny-moe.json" --target=cuda --expert-gemm-tokens=8 \
  --emit=artifact -o "$out/tiny-moe.expert-gemm.cuda.moeart"
"$moec" "$root/models/tiny-gqa.json" --target=cuda --dtype=f32 \
  --tensor-parallel=2 --expert-parallel=2 --expert-gemm-tokens=8 \
  --emit=artifact -o "$out/tiny-gqa.tp2-ep2.expert-gemm.cuda-f32.moeart"
# Attention on the tensor cores from 8 tokens on (kernel_flash_attend), and
# its host form (CudaSteps compares them up to the first flash step).
"$moec" "$root/models/tiny-moe.json" --target=cuda --flash-attention-tokens=8 \
  --emit=artifact -o "$out/tiny-moe.flash.cuda.moeart"
"$moec" "$root/models/tiny-moe.json" --grid-kernels --flash-attention-tokens=8 \
  --emit=artifact -o "$out/tiny-moe.flash.grid.host.moeart"
echo "gpu-artifacts: wrote $(ls "$out" | wc -l) artifacts to $out"
