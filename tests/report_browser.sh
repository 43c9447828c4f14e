#!/usr/bin/env bash
# `ipcsim report` in a real browser: runs a scenario, writes its report, opens the HTML in headless
# Chromium and checks that every figure is drawn (each SVG path has a non-empty box), that the page
# logs no console error, and saves a screenshot. Exit 77 (CTest: skipped) when Chromium is absent.
# Usage: report_browser.sh IPCSIM SOURCE_DIR WORK_DIR
set -euo pipefail
ipcsim=$1 source=$2 work=$3
browser=""
for candidate in chromium chromium-browser google-chrome; do
  if command -v "$candidate" >/dev/null 2>&1; then browser=$candidate; break; fi
done
if [ -z "$browser" ]; then
  echo "SKIPPED: no chromium on this machine (apt-get install chromium); the SVG structure is checked by ipcsim_tests -tc='report:*'"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work"
"$ipcsim" run "$source/scenarios/pingpong-pipe.json" --set machine.cores=2 --out "$work/run" -q
"$ipcsim" report "$work/run" --out "$work/report" >/dev/null
html=$work/report/report.html
[ -s "$html" ] || { echo "FAIL: no report.html"; exit 1; }
# The report has no script of its own: a copy with a probe appended measures what the browser drew.
probe=$work/report/probe.html
sed 's#</body>#<script>\
window.addEventListener("load", () => {\
  const paths = [...document.querySelectorAll("svg path")];\
  const empty = paths.filter(p => { const b = p.getBBox(); return b.width <= 0 \&\& b.height <= 0; });\
  const figures = document.querySelectorAll("figure svg").length;\
  document.body.setAttribute("data-probe", "figures=" + figures + " paths=" + paths.length + " empty=" + empty.length);\
});\
</script></body>#' "$html" >"$probe"
flags=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --hide-scrollbars
       --user-data-dir="$work/profile" --virtual-time-budget=5000)
"$browser" "${flags[@]}" --enable-logging=stderr --v=0 --dump-dom "file://$probe" >"$work/dom.html" 2>"$work/console.log" || true
"$browser" "${flags[@]}" --window-size=900,4000 --screenshot="$work/report-screenshot.png" "file://$html" \
  >/dev/null 2>>"$work/console.log" || true
probe_line=$(grep -o 'data-probe="[^"]*"' "$work/dom.html" || true)
echo "browser: $browser; $probe_line"
[ -n "$probe_line" ] || { echo "FAIL: the probe did not run (see $work/console.log)"; exit 1; }
figures=$(echo "$probe_line" | sed 's/.*figures=\([0-9]*\).*/\1/')
paths=$(echo "$probe_line" | sed 's/.*paths=\([0-9]*\).*/\1/')
empty=$(echo "$probe_line" | sed 's/.*empty=\([0-9]*\).*/\1/')
[ "$figures" -ge 4 ] || { echo "FAIL: $figures figures drawn, expected at least 4"; exit 1; }
[ "$paths" -gt 20 ] || { echo "FAIL: only $paths SVG paths"; exit 1; }
[ "$empty" -eq 0 ] || { echo "FAIL: $empty SVG paths drawn empty"; exit 1; }
if grep -E 'CONSOLE\(|Uncaught|console\.error' "$work/console.log" >/dev/null; then
  echo "FAIL: console messages:"; grep -E 'CONSOLE\(|Uncaught' "$work/console.log"; exit 1
fi
[ -s "$work/report-screenshot.png" ] || { echo "FAIL: no screenshot"; exit 1; }
echo "screenshot: $work/report-screenshot.png ($(wc -c <"$work/report-screenshot.png") bytes)"
