#!/usr/bin/env bash
# Rewrites tests/expected/NAME.txt for every scenario (or the ones named) from the current build.
# Read the diff before committing it: a change in an expected summary is a change in what the
# simulator says.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build build -j2 --target ipcsim
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(scenarios/*.json)
for scenario in "${scenarios[@]}"; do
  cmake -DIPCSIM="$PWD/build/ipcsim" -DSCENARIO="$PWD/$scenario" -DEXPECTED_DIR="$PWD/tests/expected" \
    -DWORK="$PWD/build/scenario-runs" -DSOURCE_DIR="$PWD" -DUPDATE=1 -P tests/run_scenario.cmake
done
git --no-pager diff --stat -- tests/expected
