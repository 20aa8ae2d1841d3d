#!/usr/bin/env bash
# Installs what moec needs on Debian 12: LLVM/MLIR 22 and the build tools.
# CUDA 13 is expected in /usr/local/cuda (optional: without it the CUDA parts
# are skipped). Safe to run again: installs only what is missing.
set -euo pipefail

packages=(
  cmake ninja-build ccache clang-22 lld-22
  libmlir-22-dev mlir-22-tools llvm-22-dev llvm-22-tools
  nlohmann-json3-dev libgtest-dev libopenblas-dev libopenmpi-dev openmpi-bin
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
