// `ipcsim report DIR`: the figures of a run, a comparison or a sweep. Reads what `ipcsim run --out`,
// `ipcsim compare --out` and `ipcsim sweep --out` wrote (docs/compare.md, docs/sweep.md, README's
// output files) and writes one self-contained HTML file (the figures inline as SVG, nothing fetched),
// each figure again as an .svg file, and a Markdown summary. docs/report.md lists the figures.
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace ipcsim {

struct ReportFiles {
  std::string kind; // "run", "compare" or "sweep"
  std::string html, markdown;
  std::vector<std::string> figures; // the .svg files, in the report's order
};

// Reads `dir`, writes into `out_dir` (created; default DIR/report). Throws UserError naming the file
// and what was expected when DIR holds none of the three layouts or a file is malformed.
ReportFiles write_report(const std::string& dir, const std::string& out_dir);

} // namespace ipcsim
