#!/usr/bin/env bash
# Builds everything and runs every test: lit (FileCheck, verify-diagnostics)
# and GoogleTest, through ctest. GPU checks skip, saying so, without a GPU.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$build"
cd "$build"
ctest --output-on-failure -j "$(nproc)"
# The runtime alone, as the GPU machine builds it (-DMOEC_RUNTIME_ONLY=ON:
# no MLIR, no compiler): that build must not break unseen. Its GPU tests
# skip here too; the host ones share the full build's sources.
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake "${generator[@]}" -S "$root" -B "$build/runtime-only" \
  -DCMAKE_BUILD_TYPE=Release -DMOEC_RUNTIME_ONLY=ON > /dev/null
cmake --build "$build/runtime-only" -j "$(nproc)"
cd "$build/runtime-only"
ctest --output-on-failure -j "$(nproc)"
