#!/usr/bin/env bash
# The whole test suite: formatting, then every test (unit tests and the scenario tier) in a normal
# build and in an AddressSanitizer + UndefinedBehaviorSanitizer build.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

echo "== clang-format"
git ls-files -- '*.cpp' '*.hpp' | xargs clang-format --dry-run -Werror

echo "== build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIPCSIM_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== build with address and undefined-behaviour sanitizers"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIPCSIM_SANITIZE=ON -DIPCSIM_WERROR=ON >/dev/null
cmake --build build-asan -j"$jobs" --target ipcsim ipcsim_tests
# SimGrid switches stacks under ASan's feet: tell it not to treat that as stack overflow.
ASAN_OPTIONS=detect_stack_use_after_return=0:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"

# A minute of fuzzing the loader, --set and a bounded run (docs/limits.md), when clang is there
# (tools/setup.sh installs it). The corpus starts from the scenarios.
if command -v clang++ >/dev/null; then
  echo "== fuzzing (60 s)"
  CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIPCSIM_FUZZ=ON >/dev/null
  cmake --build build-fuzz -j"$jobs" --target ipcsim_fuzz
  mkdir -p build-fuzz/corpus
  ASAN_OPTIONS=detect_stack_use_after_return=0:detect_leaks=0 \
    build-fuzz/ipcsim_fuzz -max_total_time=60 -max_len=65536 -timeout=20 -rss_limit_mb=4096 \
    -print_final_stats=1 build-fuzz/corpus scenarios
  echo "== fuzzing the hostbench file reader (30 s)"
  cmake --build build-fuzz -j"$jobs" --target ipcsim_fuzz_hostbench
  mkdir -p build-fuzz/corpus-hostbench
  ASAN_OPTIONS=detect_stack_use_after_return=0:detect_leaks=0 \
    build-fuzz/ipcsim_fuzz_hostbench -max_total_time=30 -max_len=65536 -timeout=20 -rss_limit_mb=4096 \
    -print_final_stats=1 build-fuzz/corpus-hostbench tests/fixtures tools/hostbench/results
else
  echo "== fuzzing skipped: clang++ not installed (tools/setup.sh installs it)"
fi
