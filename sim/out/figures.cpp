#include "figures.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

namespace ipcsim {

namespace {

constexpr double kWidth = 820, kPlotLeft = 90, kPlotRight = 600, kPlotTop = 50, kPlotBottom = 330;
constexpr double kLegendX = 620;

// Tableau 10: distinguishable, and readable by most colour-blind readers.
const char* const kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
constexpr std::size_t kColours = std::size(kPalette);
const char* colour(std::size_t i) { return i < kColours ? kPalette[i] : "#888888"; }

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

// A tick label: up to 4 significant digits, no exponent for the ranges a figure shows.
// Large values with a k, M or G suffix (15M cycles), small ones plainly.
std::string label(double v) {
  if (v == 0) return "0";
  char buf[32];
  double a = std::fabs(v);
  if (a >= 1e10)
    std::snprintf(buf, sizeof buf, "%.4gG", v / 1e9);
  else if (a >= 1e7)
    std::snprintf(buf, sizeof buf, "%.4gM", v / 1e6);
  else if (a >= 1e4)
    std::snprintf(buf, sizeof buf, "%.4gk", v / 1e3);
  else if (a < 1e-3)
    std::snprintf(buf, sizeof buf, "%.3g", v);
  else
    std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// Splits a caption into lines of at most `width` characters, at spaces.
std::vector<std::string> wrap(const std::string& text, std::size_t width) {
  std::vector<std::string> lines;
  std::istringstream words(text);
  std::string word, line;
  while (words >> word) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(line);
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

struct Scale {
  double lo = 0, hi = 1;
  bool log = false;
  double from = 0, to = 1; // pixels
  double operator()(double v) const {
    double a = log ? std::log10(v) : v, l = log ? std::log10(lo) : lo, h = log ? std::log10(hi) : hi;
    return from + (a - l) / (h - l) * (to - from);
  }
};

// "Nice" linear ticks: steps of 1, 2 or 5 times a power of ten, about five of them.
std::vector<double> linear_ticks(double lo, double hi) {
  double span = hi - lo;
  double raw = span / 5;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  // A relative slack, so that a sum of percentages a rounding error above 100 still fits 0..100.
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw * (1 - 1e-9)) {
      step = m * mag;
      break;
    }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(t);
  return ticks;
}

// Powers of two on a bytes axis: every k-th, so that at most ten show.
int bytes_step(int a, int b) { return std::max(1, (b - a + 8) / 9); }

std::vector<double> log_ticks(double lo, double hi, bool bytes) {
  std::vector<double> ticks;
  if (bytes) { // the axis was fitted to multiples of the step (fit), so both ends are ticks
    int a = static_cast<int>(std::lround(std::log2(lo))), b = static_cast<int>(std::lround(std::log2(hi)));
    int k = bytes_step(a, b);
    for (int e = a; e <= b; e += k) ticks.push_back(std::ldexp(1.0, e));
    return ticks;
  }
  int a = static_cast<int>(std::floor(std::log10(lo))), b = static_cast<int>(std::ceil(std::log10(hi)));
  for (int e = a; e <= b; ++e) {
    ticks.push_back(std::pow(10.0, e));
    if (b - a <= 1 && e < b)
      for (double m : {2.0, 5.0}) ticks.push_back(m * std::pow(10.0, e));
  }
  std::sort(ticks.begin(), ticks.end());
  return ticks;
}

// The range an axis shows around [lo, hi], with its ticks.
void fit(Scale& s, const Axis& axis, double lo, double hi, bool from_zero) {
  s.log = axis.log;
  if (axis.log) {
    if (!(lo > 0)) lo = 1;
    if (!(hi > lo)) hi = lo * 10;
    if (axis.bytes) {
      int a = static_cast<int>(std::floor(std::log2(lo))), b = static_cast<int>(std::ceil(std::log2(hi)));
      if (b <= a) b = a + 1;
      int k = bytes_step(a, b);
      // Whole steps from a multiple of k: 8 B .. 1 MiB in steps of 4x gives 4 B, 16 B, ... 1 MiB.
      int from = a - ((a % k) + k) % k;
      int to = from + (b - from + k - 1) / k * k;
      s.lo = std::ldexp(1.0, from);
      s.hi = std::ldexp(1.0, to);
      return;
    }
    s.lo = std::pow(10.0, std::floor(std::log10(lo)));
    s.hi = std::pow(10.0, std::ceil(std::log10(hi)));
    if (s.hi <= s.lo) s.hi = s.lo * 10;
    return;
  }
  if (from_zero) lo = std::min(lo, 0.0);
  if (!(hi > lo)) hi = lo + 1;
  auto ticks = linear_ticks(lo, hi);
  double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1;
  s.lo = std::floor(lo / step + 1e-9) * step;
  s.hi = std::ceil(hi / step - 1e-9) * step;
}

class Svg {
public:
  Svg(double height, const std::string& title) : height_(height) {
    out_ << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(kWidth) << "\" height=\""
         << num(height) << "\" viewBox=\"0 0 " << num(kWidth) << " " << num(height)
         << "\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n"
         << "<title>" << xml_escape(title) << "</title>\n"
         << "<rect x=\"0\" y=\"0\" width=\"" << num(kWidth) << "\" height=\"" << num(height)
         << "\" fill=\"#ffffff\"/>\n"
         << "<text x=\"" << num(kWidth / 2) << "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" "
         << "font-weight=\"bold\">" << xml_escape(title) << "</text>\n";
  }
  void path(const std::string& d, const std::string& stroke, const std::string& fill, double width,
            const std::string& cls, const std::string& tip = "") {
    if (d.empty()) return; // nothing to draw (an axis without ticks)
    out_ << "<path class=\"" << cls << "\" d=\"" << d << "\" stroke=\"" << stroke << "\" fill=\"" << fill
         << "\" stroke-width=\"" << num(width) << "\"";
    if (tip.empty())
      out_ << "/>\n";
    else
      out_ << "><title>" << xml_escape(tip) << "</title></path>\n";
  }
  void text(double x, double y, const std::string& t, const std::string& anchor = "start", double rotate = 0,
            const std::string& cls = "") {
    out_ << "<text";
    if (!cls.empty()) out_ << " class=\"" << cls << "\"";
    out_ << " x=\"" << num(x) << "\" y=\"" << num(y) << "\" text-anchor=\"" << anchor << "\"";
    if (rotate != 0) out_ << " transform=\"rotate(" << num(rotate) << " " << num(x) << " " << num(y) << ")\"";
    out_ << ">" << xml_escape(t) << "</text>\n";
  }
  void caption(const std::string& caption, double y) {
    out_ << "<desc>" << xml_escape(caption) << "</desc>\n";
    for (const auto& line : wrap(caption, 125)) {
      text(20, y, line, "start", 0, "caption");
      y += 15;
    }
  }
  void legend(const std::vector<std::string>& names, bool lines) {
    double y = kPlotTop + 6;
    for (std::size_t i = 0; i < names.size(); ++i, y += 18) {
      std::string c = colour(i);
      if (lines)
        path("M" + num(kLegendX) + " " + num(y) + " h22", c, "none", 2.5, "legend-mark");
      else
        path("M" + num(kLegendX) + " " + num(y - 6) + " h14 v12 h-14 Z", c, c, 1, "legend-mark");
      text(kLegendX + 28, y + 4, names[i].size() > 26 ? names[i].substr(0, 25) + "…" : names[i], "start", 0,
           "legend");
    }
  }
  void axes(const Scale& x, const Scale& y, const std::vector<double>& xticks,
            const std::vector<double>& yticks, bool xbytes, const std::string& xtitle,
            const std::string& ytitle) {
    std::string grid;
    for (double t : yticks) {
      if (t < y.lo * 0.999999 || t > y.hi * 1.000001) continue;
      double py = y(t);
      grid += "M" + num(kPlotLeft) + " " + num(py) + " H" + num(kPlotRight) + " ";
      text(kPlotLeft - 6, py + 4, label(t), "end", 0, "tick");
    }
    path(grid, "#e0e0e0", "none", 1, "grid");
    std::string xt;
    for (double t : xticks) {
      if (t < x.lo * 0.999999 || t > x.hi * 1.000001) continue;
      double px = x(t);
      xt += "M" + num(px) + " " + num(kPlotBottom) + " v5 ";
      text(px, kPlotBottom + 18, xbytes ? format_bytes(t) : label(t), "middle", 0, "tick");
    }
    path(xt, "#000000", "none", 1, "ticks");
    path("M" + num(kPlotLeft) + " " + num(kPlotTop) + " V" + num(kPlotBottom) + " H" + num(kPlotRight),
         "#000000", "none", 1, "axis");
    text((kPlotLeft + kPlotRight) / 2, kPlotBottom + 40, xtitle, "middle", 0, "axis-title");
    text(22, (kPlotTop + kPlotBottom) / 2, ytitle, "middle", -90, "axis-title");
  }
  std::string finish() {
    out_ << "</svg>\n";
    return out_.str();
  }
  double height() const { return height_; }

private:
  double height_;
  std::ostringstream out_;
};

double caption_height(const std::string& caption) {
  return 15.0 * static_cast<double>(wrap(caption, 125).size());
}

} // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) switch (c) {
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '&':
      out += "&amp;";
      break;
    case '"':
      out += "&quot;";
      break;
    default:
      out += c;
    }
  return out;
}

std::string format_bytes(double bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t u = 0;
  while (bytes >= 1024 && u + 1 < std::size(units)) bytes /= 1024, ++u;
  return num(bytes) + " " + units[u];
}

std::string render(const LineChart& chart) {
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  auto usable = [&](double v, const Axis& a) { return std::isfinite(v) && (!a.log || v > 0); };
  for (const auto& s : chart.series)
    for (auto [x, y] : s.points)
      if (usable(x, chart.x) && usable(y, chart.y)) {
        xlo = std::min(xlo, x), xhi = std::max(xhi, x), ylo = std::min(ylo, y), yhi = std::max(yhi, y);
      }
  if (!std::isfinite(xlo)) xlo = 1, xhi = 10, ylo = 1, yhi = 10;
  Scale x, y;
  fit(x, chart.x, xlo, xhi, false);
  fit(y, chart.y, ylo, yhi, true);
  x.from = kPlotLeft, x.to = kPlotRight, y.from = kPlotBottom, y.to = kPlotTop;
  Svg svg(kPlotBottom + 70 + caption_height(chart.caption), chart.title);
  auto xticks = chart.x.log ? log_ticks(x.lo, x.hi, chart.x.bytes) : linear_ticks(x.lo, x.hi);
  auto yticks = chart.y.log ? log_ticks(y.lo, y.hi, false) : linear_ticks(y.lo, y.hi);
  svg.axes(x, y, xticks, yticks, chart.x.bytes, chart.x.title, chart.y.title);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < chart.series.size(); ++i) {
    auto points = chart.series[i].points;
    std::stable_sort(points.begin(), points.end(), [](auto a, auto b) { return a.first < b.first; });
    std::string d, marks;
    for (auto [px, py] : points) {
      if (!usable(px, chart.x) || !usable(py, chart.y)) continue;
      double sx = x(px), sy = y(py);
      d += (d.empty() ? "M" : " L") + num(sx) + " " + num(sy);
      // A marker as a small square: a path too, so every drawn thing is a path.
      marks += "M" + num(sx - 3) + " " + num(sy - 3) + " h6 v6 h-6 Z ";
    }
    names.push_back(chart.series[i].name);
    if (d.empty()) continue;
    svg.path(d, colour(i), "none", 2, "series", chart.series[i].name);
    svg.path(marks, colour(i), colour(i), 1, "marker", chart.series[i].name);
  }
  svg.legend(names, true);
  svg.caption(chart.caption, kPlotBottom + 66);
  return svg.finish();
}

std::string render(const BarChart& chart) {
  std::vector<std::string> names; // legend: part names in first-seen order
  std::map<std::string, std::size_t> index;
  double top = 0;
  for (const auto& bar : chart.bars) {
    double sum = 0;
    for (const auto& p : bar.parts) {
      if (!index.count(p.name)) index[p.name] = names.size(), names.push_back(p.name);
      if (std::isfinite(p.value) && p.value > 0) sum += p.value;
    }
    top = std::max(top, sum);
  }
  Scale y;
  fit(y, Axis{}, 0, top > 0 ? top : 1, true);
  y.from = kPlotBottom, y.to = kPlotTop;
  Scale x; // unused by bars: categories
  x.lo = 0, x.hi = 1, x.from = kPlotLeft, x.to = kPlotRight;
  bool slanted = chart.bars.size() > 6;
  double extra = slanted ? 60 : 0;
  Svg svg(kPlotBottom + 70 + extra + caption_height(chart.caption), chart.title);
  svg.axes(x, y, {}, linear_ticks(y.lo, y.hi), false, "", chart.y_title);
  double slot = (kPlotRight - kPlotLeft) / static_cast<double>(std::max<std::size_t>(1, chart.bars.size()));
  double width = std::min(60.0, slot * 0.7);
  for (std::size_t b = 0; b < chart.bars.size(); ++b) {
    const auto& bar = chart.bars[b];
    double cx = kPlotLeft + slot * (static_cast<double>(b) + 0.5);
    double base = 0;
    for (const auto& p : bar.parts) {
      if (!std::isfinite(p.value) || p.value <= 0) continue;
      double y0 = y(base), y1 = y(base + p.value);
      base += p.value;
      std::string d = "M" + num(cx - width / 2) + " " + num(y0) + " V" + num(y1) + " H" +
                      num(cx + width / 2) + " V" + num(y0) + " Z";
      std::size_t i = index[p.name];
      svg.path(d, "#ffffff", colour(i), 0.5, "bar", bar.label + ": " + p.name + " " + label(p.value));
    }
    std::string text = bar.label.size() > 22 ? bar.label.substr(0, 21) + "…" : bar.label;
    if (slanted)
      svg.text(cx, kPlotBottom + 14, text, "end", -35, "bar-label");
    else
      svg.text(cx, kPlotBottom + 18, text, "middle", 0, "bar-label");
  }
  if (names.size() > kColours) { // the rest share the grey after the palette: say so
    names.resize(kColours + 1);
    names.back() = "others";
  }
  svg.legend(names, false);
  svg.caption(chart.caption, kPlotBottom + 66 + extra);
  return svg.finish();
}

std::string render(const Timeline& chart) {
  std::vector<std::string> names;
  std::map<std::string, std::size_t> index;
  for (const auto& row : chart.rows)
    for (const auto& s : row.spans)
      if (!index.count(s.what)) index[s.what] = names.size(), names.push_back(s.what);
  Scale x;
  fit(x, Axis{}, 0, chart.x_end > 0 ? chart.x_end : 1, true);
  x.from = kPlotLeft, x.to = kPlotRight;
  double row_height = std::min(40.0, (kPlotBottom - kPlotTop) /
                                         static_cast<double>(std::max<std::size_t>(1, chart.rows.size())));
  Svg svg(kPlotBottom + 70 + caption_height(chart.caption), chart.title);
  Scale y;
  y.lo = 0, y.hi = 1, y.from = kPlotBottom, y.to = kPlotTop;
  svg.axes(x, y, linear_ticks(x.lo, x.hi), {}, false, chart.x_title, "core");
  for (std::size_t r = 0; r < chart.rows.size(); ++r) {
    double top = kPlotTop + row_height * static_cast<double>(r) + 4, bottom = top + row_height - 8;
    svg.text(kPlotLeft - 6, (top + bottom) / 2 + 4, chart.rows[r].label, "end", 0, "row-label");
    // One path per thread and row: a run of rectangles, with the thread's name as its tooltip.
    std::map<std::size_t, std::string> paths;
    for (const auto& s : chart.rows[r].spans) {
      double a = x(std::max(s.start, x.lo)), b = x(std::min(s.end, x.hi));
      if (b - a < 0.5) b = a + 0.5; // a dispatch shorter than a pixel still shows
      paths[index[s.what]] +=
          "M" + num(a) + " " + num(top) + " H" + num(b) + " V" + num(bottom) + " H" + num(a) + " Z ";
    }
    for (const auto& [i, d] : paths) svg.path(d, colour(i), colour(i), 0.5, "span", names[i]);
  }
  if (names.size() > kColours) {
    names.resize(kColours + 1);
    names.back() = "others";
  }
  svg.legend(names, false);
  svg.caption(chart.caption, kPlotBottom + 66);
  return svg.finish();
}

} // namespace ipcsim
