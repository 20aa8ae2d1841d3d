#!/usr/bin/env bash
# Configures and builds moec into BUILD_DIR (default: build/).
#   scripts/build.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
shift || true

args=(-G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release)
if command -v clang++-22 >/dev/null; then
  args+=(-DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22)
  command -v ld.lld-22 >/dev/null || command -v ld.lld >/dev/null && \
    args+=(-DLLVM_USE_LINKER=lld)
fi
if command -v ccache >/dev/null; then
  # Let a fresh clone in another directory reuse the cache.
  export CCACHE_BASEDIR="$(dirname "$root")" CCACHE_NOHASHDIR=1
  args+=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
[ -f "$build/CMakeCache.txt" ] || cmake "${args[@]}" "$@"
cmake --build "$build"
