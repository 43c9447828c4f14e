// `ipcsim report` (sim/out/report_dir.*, sim/out/figures.*): the SVG structure of each figure kind,
// the files written for a run, a comparison and a sweep directory, self-containment, determinism
// and the error messages. The browser check is tests/report_browser.sh.
#include "cli.hpp"
#include "error.hpp"
#include "figures.hpp"
#include "params.hpp"
#include "report_dir.hpp"

#include "cli_harness.hpp"

#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <unistd.h>

using namespace ipcsim;
namespace fs = std::filesystem;

using ipcsim::test::cli;
using ipcsim::test::contains;
using ipcsim::test::slurp;
using ipcsim::test::TempDir;

namespace {

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++n;
  return n;
}

// Every <path> has a d that draws something: starts with M and has at least one more command.
void check_paths(const std::string& svg) {
  std::regex d_attr("<path [^>]*d=\"([^\"]*)\"");
  std::size_t paths = 0;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), d_attr); it != std::sregex_iterator(); ++it) {
    std::string d = (*it)[1];
    CAPTURE(d);
    CHECK(d.rfind("M", 0) == 0);
    CHECK(d.find_first_of("LHVhvZ") != std::string::npos);
    ++paths;
  }
  CHECK(paths == count(svg, "<path "));
  CHECK(paths > 0);
}

// Elements open and close in order (a small well-formedness check: no XML parser in Debian's C++
// set that the project uses).
void check_balanced(const std::string& svg) {
  std::vector<std::string> open;
  std::regex tag("<(/?)([a-zA-Z]+)[^>]*?(/?)>");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), tag); it != std::sregex_iterator(); ++it) {
    std::string closing = (*it)[1], name = (*it)[2], self = (*it)[3];
    if (name == "xml") continue;
    if (!self.empty()) continue;
    if (closing.empty()) {
      open.push_back(name);
    } else {
      REQUIRE(!open.empty());
      CHECK(open.back() == name);
      open.pop_back();
    }
  }
  CHECK(open.empty());
}

} // namespace

TEST_CASE("report: a line chart on log axes") {
  LineChart chart;
  chart.title = "Latency & size";
  chart.caption = "What was run: <a test>.";
  chart.x = {"message size (bytes, log scale)", true, true};
  chart.y = {"round-trip time, p50 (µs, log scale)", true, false};
  chart.series = {{"pipe", {{8, 4.1}, {4096, 5.0}, {1048576, 190.0}}},
                  {"mailbox", {{8, 4.1}, {1048576, 84.0}}}};
  std::string svg = render(chart);
  check_balanced(svg);
  check_paths(svg);
  CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK(count(svg, "<title>Latency &amp; size</title>") == 1);
  CHECK(count(svg, "message size (bytes, log scale)") == 1);
  CHECK(count(svg, "round-trip time, p50 (µs, log scale)") == 1);
  CHECK(count(svg, "<desc>What was run: &lt;a test&gt;.</desc>") == 1);
  // Powers of four from 4 B to 1 MiB (at most ten ticks; the axis ends on ticks).
  CHECK(count(svg, ">4 B</text>") == 1);
  CHECK(count(svg, ">8 B</text>") == 0);
  CHECK(count(svg, ">16 B</text>") == 1);
  CHECK(count(svg, ">1 MiB</text>") == 1);
  // Decades from 1 to 1000 µs.
  for (const char* tick : {">1</text>", ">10</text>", ">100</text>", ">1000</text>"})
    CHECK(count(svg, tick) == 1);
  // A line and a marker path per series, and a legend entry each.
  CHECK(count(svg, "class=\"series\"") == 2);
  CHECK(count(svg, "class=\"marker\"") == 2);
  CHECK(count(svg, "class=\"legend\"") == 2);
  CHECK(count(svg, ">pipe</text>") == 1);
  // The pipe's line goes through its three points: three coordinates in its d.
  auto at = svg.find("class=\"series\" d=\"");
  std::string d = svg.substr(at + 18, svg.find('"', at + 18) - at - 18);
  CHECK(count(d, " L") == 2);
}

TEST_CASE("report: stacked bars and a timeline") {
  BarChart bars;
  bars.title = "Where the cycles went";
  bars.y_title = "cycles";
  bars.caption = "caption";
  bars.bars = {{"send", {{"trap_enter", 100}, {"copy_setup", 50}}},
               {"recv", {{"trap_enter", 100}, {"copy_setup", 0}}}};
  std::string svg = render(bars);
  check_balanced(svg);
  check_paths(svg);
  CHECK(count(svg, "class=\"bar\"") == 3); // a zero part draws nothing
  CHECK(count(svg, "class=\"legend\"") == 2);
  CHECK(count(svg, ">cycles</text>") == 1);
  // 150 cycles: about five ticks in steps of 1, 2 or 5 x 10^k: 0, 50, 100, 150.
  CHECK(count(svg, ">50</text>") == 1);
  CHECK(count(svg, ">150</text>") == 1);

  // Shares that add up to 100 give an axis to 100, even a rounding error above it.
  BarChart shares;
  shares.y_title = "share (%)";
  shares.bars = {{"a", {{"x", 100.0 / 3}, {"y", 100.0 / 3}, {"z", 100.0 / 3 + 1e-12}}}};
  std::string percent = render(shares);
  CHECK(count(percent, ">100</text>") == 1);
  CHECK(count(percent, ">120</text>") == 0);
  CHECK(count(percent, ">150</text>") == 0);

  Timeline t;
  t.title = "Timeline";
  t.x_title = "simulated time (µs)";
  t.caption = "caption";
  t.x_end = 10;
  t.rows = {{"core 0", {{0, 2, "a"}, {5, 6, "b"}, {7, 9, "a"}}}, {"core 1", {{1, 3, "b"}}}};
  std::string tl = render(t);
  check_balanced(tl);
  check_paths(tl);
  // One path per thread and core: a's two spans share one.
  CHECK(count(tl, "class=\"span\"") == 3);
  CHECK(count(tl, ">core 1</text>") == 1);
}

TEST_CASE("report: format_bytes and escaping") {
  CHECK(format_bytes(8) == "8 B");
  CHECK(format_bytes(4096) == "4 KiB");
  CHECK(format_bytes(1536) == "1.5 KiB");
  CHECK(format_bytes(1048576) == "1 MiB");
  CHECK(xml_escape("a<b & \"c\">") == "a&lt;b &amp; &quot;c&quot;&gt;");
}

TEST_CASE("report: a run directory") {
  TempDir dir("run");
  std::string scenario = std::string(IPCSIM_SOURCE_DIR) + "/scenarios/pingpong-pipe.json";
  auto run = cli({"run", scenario, "--set", "machine.cores=2", "--out", (dir.path / "run").string(), "-q"});
  REQUIRE(run.status == kExitOk);
  auto r = cli({"report", (dir.path / "run").string()});
  REQUIRE(r.status == kExitOk);
  CHECK(r.err.empty());
  fs::path out = dir.path / "run" / "report";
  CHECK(r.out == "wrote " + (out / "report.html").string() + ", " + (out / "report.md").string() +
                     " and 5 figures (run report)\n");
  std::string html = slurp(out / "report.html");
  for (const char* f : {"fig-latency.svg", "fig-throughput.svg", "fig-breakdown.svg", "fig-utilisation.svg",
                        "fig-timeline.svg"}) {
    CAPTURE(f);
    std::string svg = slurp(out / f);
    CHECK(svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg ", 0) == 0);
    check_balanced(svg.substr(svg.find('\n') + 1));
    check_paths(svg);
    // The same figure is inline in the HTML.
    CHECK(html.find(svg.substr(svg.find('\n') + 1)) != std::string::npos);
    // A caption saying what was run.
    CHECK(svg.find("Run of " + scenario + " (seed 1") != std::string::npos);
  }
  // Self-contained: nothing fetched, no script.
  CHECK(count(html, "<script") == 0);
  CHECK(count(html, "src=") == 0);
  CHECK(count(html, "href=") == 0);
  CHECK(count(html, "http") == count(html, "http://www.w3.org/2000/svg"));
  CHECK(count(html, "<figure") == 5);
  CHECK(count(html, "<figcaption>") == 5);
  // The latency figure has one series, rtt, with the seven sizes 8 B .. 1 MiB.
  std::string latency = slurp(out / "fig-latency.svg");
  CHECK(count(latency, "class=\"series\"") == 1);
  CHECK(count(latency, ">rtt</text>") == 1);
  auto at = latency.find("class=\"series\" d=\"");
  CHECK(count(latency.substr(at, latency.find('"', at + 18) - at), " L") == 6);
  // Two cores: two timeline rows and two utilisation bars (busy and idle each).
  std::string timeline = slurp(out / "fig-timeline.svg");
  CHECK(count(timeline, ">core 0</text>") == 1);
  CHECK(count(timeline, ">core 1</text>") == 1);
  CHECK(count(timeline, ">client</text>") == 1);
  CHECK(count(timeline, ">server</text>") == 1);
  CHECK(count(slurp(out / "fig-utilisation.svg"), "class=\"bar\"") == 4);
  std::string md = slurp(out / "report.md");
  CHECK(md.rfind("# ipcsim run: " + scenario + "\n", 0) == 0);
  CHECK(count(md, "](fig-") == 5);
  CHECK(md.find("| rtt-8B | 100 |") != std::string::npos);
  // The same directory gives the same report, byte for byte.
  auto again = cli({"report", (dir.path / "run").string(), "--out", (dir.path / "again").string()});
  REQUIRE(again.status == kExitOk);
  for (const char* f : {"report.html", "report.md", "fig-timeline.svg", "fig-latency.svg"})
    CHECK(slurp(out / f) == slurp(dir.path / "again" / f));
}

// docs/compare.md's layout (the comparison's own tests run the command; this fixture follows the
// documented files so that the report is tested on its own).
TEST_CASE("report: a comparison directory") {
  TempDir dir("compare");
  json compare = {{"context",
                   {{"ipcsim_version", "0.1.0"},
                    {"scenario_file", "scenarios/pingpong-pipe.json"},
                    {"seed", 1},
                    {"sets", json::array({"machine.cores=2"})}}},
                  {"mechanisms", json::array()}};
  for (const auto& [mech, scale] :
       std::vector<std::pair<std::string, double>>{{"pipe", 1.0}, {"mailbox", 0.5}}) {
    json intervals = json::array();
    for (int size : {8, 4096, 65536})
      intervals.push_back({{"name", "rtt-" + std::string(size == 8      ? "8B"
                                                         : size == 4096 ? "4KiB"
                                                                        : "64KiB")},
                           {"count", 10},
                           {"p50_ns", (1000.0 + size) * scale},
                           {"bytes_per_second", size * 2e9 / ((1000.0 + size) * scale)}});
    compare["mechanisms"].push_back(
        {{"mechanism", mech},
         {"result", "completed"},
         {"messages", 60},
         {"cycles_per_message", 1000 * scale},
         {"switches_per_message", 1.0},
         {"messages_per_second", 1e5},
         {"intervals", intervals},
         {"primitives", json::array({{{"primitive", "trap_enter"}, {"cycles_per_message", 300}},
                                     {{"primitive", "copy_setup"}, {"cycles_per_message", 700 * scale}}})}});
  }
  std::ofstream(dir.path / "compare.json") << compare.dump(2);
  auto r = cli({"report", dir.path.string()});
  REQUIRE(r.status == kExitOk);
  CHECK(r.out.find("and 3 figures (compare report)") != std::string::npos);
  std::string latency = slurp(dir.path / "report" / "fig-latency.svg");
  CHECK(count(latency, "class=\"series\"") == 2);
  CHECK(count(latency, ">pipe</text>") == 1);
  CHECK(count(latency, ">mailbox</text>") == 1);
  std::string breakdown = slurp(dir.path / "report" / "fig-breakdown.svg");
  CHECK(count(breakdown, "class=\"bar\"") == 4);
  CHECK(count(breakdown, ">cycles per message</text>") == 1);
  std::string md = slurp(dir.path / "report" / "report.md");
  CHECK(md.find("Comparison of pipe, mailbox running scenarios/pingpong-pipe.json --set machine.cores=2") !=
        std::string::npos);
  CHECK(md.find("no utilisation figure: runs/MECHANISM/summary.json is missing.") != std::string::npos);
}

// docs/sweep.md's layout: sweep.json, sweep.csv and the points' runs.
TEST_CASE("report: a sweep directory") {
  TempDir dir("sweep");
  std::string scenario = std::string(IPCSIM_SOURCE_DIR) + "/scenarios/sched-rr.json";
  json sweep = {{"ipcsim_version", "0.1.0"},
                {"scenario_file", "/abs/sweep-pingpong.json"},
                {"sets", json::array()},
                {"vary", json::array({{{"path", "params.size"}, {"values", {"8", "512", "32KiB"}}},
                                      {{"path", "machine.cores"}, {"values", {"1", "2"}}}})},
                {"repeat", 1}};
  std::ofstream(dir.path / "sweep.json") << sweep.dump(2);
  std::ofstream csv(dir.path / "sweep.csv");
  csv << "point,params.size,machine.cores,seed,scenario_hash,result,simulated_cycles,simulated_ns,rtt.count,"
         "rtt.min_ns,rtt.mean_ns,rtt.p50_ns,rtt.max_ns,rtt.stddev_ns,rtt.per_second,rtt.bytes_per_second\n";
  int point = 0;
  for (const char* size : {"8", "512", "32KiB"})
    for (int cores : {1, 2}) {
      double p50 = 1000.0 * cores + (point + 1) * 100;
      csv << point << "," << size << "," << cores << ",1,\"fnv1a64:0\",completed,1000,1000,10," << p50 << ","
          << p50 << "," << p50 << "," << p50 << ",0,10," << 1e6 * (point + 1) << "\n";
      ++point;
    }
  csv.close();
  // Two points have their run: the breakdown and utilisation figures read them.
  for (const char* p : {"0000", "0001"})
    REQUIRE(cli({"run", scenario, "--out", (dir.path / "points" / p).string(), "-q"}).status == kExitOk);
  auto r = cli({"report", dir.path.string(), "--out", (dir.path / "html").string()});
  REQUIRE(r.status == kExitOk);
  CHECK(r.out.find("and 4 figures (sweep report)") != std::string::npos);
  std::string latency = slurp(dir.path / "html" / "fig-latency.svg");
  // x: params.size on a log axis in bytes (8 .. 32 KiB); a series per machine.cores value.
  CHECK(count(latency, "class=\"series\"") == 2);
  CHECK(count(latency, ">machine.cores=1</text>") == 1);
  CHECK(count(latency, ">machine.cores=2</text>") == 1);
  CHECK(count(latency, "params.size (bytes, log scale)") == 1);
  CHECK(count(latency, ">8 B</text>") == 0); // ticks at powers of four: 4 B .. 64 KiB
  CHECK(count(latency, ">64 KiB</text>") == 1);
  std::string breakdown = slurp(dir.path / "html" / "fig-breakdown.svg");
  CHECK(count(breakdown, "share of busy cycles (%)") == 1);
  CHECK(count(breakdown, "class=\"bar-label\"") == 2);
  std::string md = slurp(dir.path / "html" / "report.md");
  CHECK(md.find("| 5 | 32KiB | 2 | 1 | completed | 2600 |") != std::string::npos);
}

TEST_CASE("report: errors") {
  TempDir dir("errors");
  auto missing = cli({"report", (dir.path / "nothing").string()});
  CHECK(missing.status == kExitBadInput);
  CHECK(missing.err == "error: " + (dir.path / "nothing").string() + ": not a directory\n");
  auto empty = cli({"report", dir.path.string()});
  CHECK(empty.status == kExitBadInput);
  CHECK(empty.err ==
        "error: " + dir.path.string() +
            ": not an ipcsim output directory: expected compare.json (`ipcsim compare --out`), "
            "sweep.json and sweep.csv (`ipcsim sweep --out`) or summary.json (`ipcsim run --out`)\n");
  std::ofstream(dir.path / "summary.json") << "{not json";
  auto bad = cli({"report", dir.path.string()});
  CHECK(bad.status == kExitBadInput);
  CHECK(bad.err.rfind("error: " + (dir.path / "summary.json").string() + ": not valid JSON (", 0) == 0);
  fs::remove(dir.path / "summary.json");
  std::ofstream(dir.path / "sweep.json") << R"({"vary": [{"path": "machine.cores", "values": ["1"]}]})";
  auto unmerged = cli({"report", dir.path.string()});
  CHECK(unmerged.status == kExitBadInput);
  CHECK(unmerged.err == "error: " + dir.path.string() +
                            ": a sweep without sweep.csv: finish it (run the same sweep "
                            "again) or merge it (`ipcsim sweep-merge " +
                            dir.path.string() + "`) first\n");
  std::ofstream(dir.path / "sweep.csv") << "point,machine.cores,seed,result\n0,1,1\n";
  auto short_row = cli({"report", dir.path.string()});
  CHECK(short_row.status == kExitBadInput);
  CHECK(short_row.err ==
        "error: " + (dir.path / "sweep.csv").string() + ": row 2 has 3 cells, the header 4\n");
  std::ofstream(dir.path / "sweep.csv") << "point,seed,result\n0,1,completed\n";
  auto column = cli({"report", dir.path.string()});
  CHECK(column.status == kExitBadInput);
  CHECK(column.err == "error: " + (dir.path / "sweep.csv").string() +
                          ": no column \"machine.cores\" (columns: point, seed, result)\n");
  auto none = cli({"report"});
  CHECK(none.status == kExitBadInput);
}
