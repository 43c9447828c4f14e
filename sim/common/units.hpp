// Quantities with units, parsed once at the scenario boundary. Inside the simulator time is an
// integer number of machine cycles; nanoseconds exist only in reports.
#pragma once
#include "cycles.hpp"

#include <optional>
#include <string>

namespace ipcsim {

// "3GHz", "2.4 GHz", "12.5MHz", or a plain number of Hz. nullopt when malformed.
std::optional<double> parse_frequency_hz(const std::string& text);
// "1.5us", "10ms", "2s", "300ns", "20 cycles": converted at `hz` and rounded to the nearest
// whole cycle. nullopt when malformed.
std::optional<Cycles> parse_time_cycles(const std::string& text, double hz);
// "4KiB", "1MiB", "512B", "64 KB" (KB = 1000): bytes. nullopt when malformed.
std::optional<std::uint64_t> parse_bytes(const std::string& text);

double cycles_to_ns(Cycles cycles, double hz);
// Shortest exact-enough decimal for reports: fixed 3 decimals.
std::string format_ns(double ns);
std::string format_hz(double hz);

} // namespace ipcsim
