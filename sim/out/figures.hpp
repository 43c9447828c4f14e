// A small SVG writer for the report's figures: line charts (linear or log axes), stacked bars and
// a timeline. Debian packages no maintained C++ plotting library that writes SVG (matplot++ needs
// gnuplot at run time and is not in Debian 12; plotutils' libplot is C, unmaintained since 2009,
// and gives no control over the document): a few hundred lines of our own give deterministic,
// self-contained files (no script, no font or style fetched) that a test can check element by
// element. Every figure carries axis titles with units, a legend and a caption.
#pragma once
#include <string>
#include <vector>

namespace ipcsim {

struct Axis {
  std::string title; // with its unit: "round-trip time, p50 (µs)"
  bool log = false;
  // Tick labels: numbers as they are (default) or sizes in bytes ("4 KiB"), powers of two.
  bool bytes = false;
};

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points; // (x, y), drawn in x order
};

struct LineChart {
  std::string title, caption;
  Axis x, y;
  std::vector<Series> series;
};

struct BarPart {
  std::string name; // the legend entry; the same name has the same colour in every bar
  double value;
};
struct Bar {
  std::string label;
  std::vector<BarPart> parts;
};
struct BarChart {
  std::string title, caption;
  std::string y_title; // with its unit
  std::vector<Bar> bars;
};

struct Span {
  double start, end; // in the x axis's unit
  std::string what;  // the legend entry (a thread)
};
struct TimelineRow {
  std::string label; // "core 0"
  std::vector<Span> spans;
};
struct Timeline {
  std::string title, caption;
  std::string x_title; // with its unit
  double x_end = 0;
  std::vector<TimelineRow> rows;
};

// Each returns a complete <svg> element (no XML declaration: it is inlined in the HTML as is; the
// .svg files get the declaration in front).
std::string render(const LineChart& chart);
std::string render(const BarChart& chart);
std::string render(const Timeline& chart);

std::string xml_escape(const std::string& text);
// "8 B", "4 KiB", "1 MiB", "1.5 MiB".
std::string format_bytes(double bytes);

} // namespace ipcsim
