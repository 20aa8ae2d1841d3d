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
