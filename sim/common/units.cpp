#include "units.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <utility>

namespace ipcsim {

namespace {

// Splits "1.5 us" into 1.5 and "us"; nullopt when there is no leading number.
std::optional<std::pair<double, std::string>> split_number_unit(const std::string& text) {
  size_t pos = 0;
  while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
  size_t start = pos;
  while (pos < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[pos])) || text[pos] == '.' || text[pos] == 'e' ||
          text[pos] == 'E' || text[pos] == '+' || text[pos] == '-')) {
    // 'e' only counts as an exponent when digits follow, so "3 exa" style typos fail cleanly.
    if ((text[pos] == 'e' || text[pos] == 'E') &&
        !(pos + 1 < text.size() && (std::isdigit(static_cast<unsigned char>(text[pos + 1])) ||
                                    text[pos + 1] == '-' || text[pos + 1] == '+')))
      break;
    ++pos;
  }
  if (pos == start) return std::nullopt;
  std::string number = text.substr(start, pos - start);
  char* end = nullptr;
  double value = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size() || !std::isfinite(value) || value < 0) return std::nullopt;
  while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
  std::string unit = text.substr(pos);
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.back()))) unit.pop_back();
  return std::make_pair(value, unit);
}

} // namespace

std::optional<double> parse_frequency_hz(const std::string& text) {
  auto parsed = split_number_unit(text);
  if (!parsed) return std::nullopt;
  auto [value, unit] = *parsed;
  double scale = 0;
  if (unit == "Hz" || unit.empty())
    scale = 1;
  else if (unit == "kHz")
    scale = 1e3;
  else if (unit == "MHz")
    scale = 1e6;
  else if (unit == "GHz")
    scale = 1e9;
  else
    return std::nullopt;
  return value * scale;
}

std::string frequency_range_text() {
  return "from " + format_hz(kMinFrequencyHz) + " to " + format_hz(kMaxFrequencyHz);
}

std::optional<double> parse_duration_cycles(const std::string& text, double hz) {
  auto parsed = split_number_unit(text);
  if (!parsed) return std::nullopt;
  auto [value, unit] = *parsed;
  double seconds_scale = 0;
  if (unit == "cycles" || unit == "cycle") {
    if (value != std::floor(value)) return std::nullopt;
    return value;
  }
  if (unit == "h")
    seconds_scale = 3600;
  else if (unit == "min")
    seconds_scale = 60;
  else if (unit == "s")
    seconds_scale = 1;
  else if (unit == "ms")
    seconds_scale = 1e-3;
  else if (unit == "us" || unit == "\xC2\xB5s")
    seconds_scale = 1e-6;
  else if (unit == "ns")
    seconds_scale = 1e-9;
  else
    return std::nullopt;
  return value * seconds_scale * hz;
}

std::optional<Cycles> parse_time_cycles(const std::string& text, double hz) {
  auto cycles = parse_duration_cycles(text, hz);
  // Rounded to the nearest, kMaxTimeCycles + 0.5 would be kMaxTimeCycles + 1 (exact: 2^50 + 0.5 is a
  // double). The test comes first: llround of a larger double may not fit.
  if (!cycles || *cycles >= static_cast<double>(kMaxTimeCycles) + 0.5) return std::nullopt;
  return static_cast<Cycles>(std::llround(*cycles));
}

std::optional<std::uint64_t> parse_bytes(const std::string& text) {
  auto parsed = split_number_unit(text);
  if (!parsed) return std::nullopt;
  auto [value, unit] = *parsed;
  double scale = 0;
  if (unit == "B" || unit.empty())
    scale = 1;
  else if (unit == "KiB")
    scale = 1024;
  else if (unit == "MiB")
    scale = 1024.0 * 1024;
  else if (unit == "GiB")
    scale = 1024.0 * 1024 * 1024;
  else if (unit == "TiB")
    scale = 1024.0 * 1024 * 1024 * 1024;
  else if (unit == "KB" || unit == "kB")
    scale = 1e3;
  else if (unit == "MB")
    scale = 1e6;
  else if (unit == "GB")
    scale = 1e9;
  else
    return std::nullopt;
  double bytes = value * scale;
  if (bytes != std::floor(bytes) || bytes > 9.0e15) return std::nullopt;
  return static_cast<std::uint64_t>(bytes);
}

double cycles_to_ns(Cycles cycles, double hz) { return static_cast<double>(cycles) * 1e9 / hz; }

std::string format_ns(double ns) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.3f", ns);
  return buffer;
}

std::string format_hz(double hz) {
  char buffer[64];
  if (hz >= 1e9)
    std::snprintf(buffer, sizeof buffer, "%gGHz", hz / 1e9);
  else if (hz >= 1e6)
    std::snprintf(buffer, sizeof buffer, "%gMHz", hz / 1e6);
  else if (hz >= 1e3)
    std::snprintf(buffer, sizeof buffer, "%gkHz", hz / 1e3);
  else
    std::snprintf(buffer, sizeof buffer, "%gHz", hz);
  return buffer;
}

std::string format_duration(Cycles cycles, double hz) {
  static const std::pair<const char*, double> kUnits[] = {{"h", 3600},  {"min", 60},  {"s", 1},
                                                          {"ms", 1e-3}, {"us", 1e-6}, {"ns", 1e-9}};
  double seconds = static_cast<double>(cycles) / hz;
  const auto* unit = &kUnits[5];
  for (const auto& u : kUnits)
    if (seconds >= u.second) {
      unit = &u;
      break;
    }
  // Thousandths of the unit, rounded down (a bound shown never looks larger than it is), except
  // that a quotient within floating-point noise of a whole thousandth is that thousandth: 333
  // cycles at 1 GHz are 332.99999999999994 ns in doubles, and "333ns", not "332.999ns".
  double thousandths = seconds / unit->second * 1000;
  double nearest = std::round(thousandths);
  double value =
      (std::fabs(thousandths - nearest) <= 1e-9 * std::max(1.0, nearest) ? nearest
                                                                         : std::floor(thousandths)) /
      1000;
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.3f", value);
  std::string text = buffer;
  while (text.back() == '0') text.pop_back();
  if (text.back() == '.') text.pop_back();
  return text + unit->first;
}

} // namespace ipcsim
