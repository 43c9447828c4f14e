#!/usr/bin/env bash
# From a fresh Debian 12 machine: install what ipcsim needs, build it, and run a scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  g++ cmake make pkg-config git ca-certificates clang-format clang libclang-rt-dev \
  libsimgrid-dev nlohmann-json3-dev libcli11-dev doctest-dev \
  parallel >/dev/null  # GNU parallel: the test of `ipcsim sweep --emit-jobs` (docs/sweep.md)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
echo
build/ipcsim run scenarios/sysv-msg-demo.json
