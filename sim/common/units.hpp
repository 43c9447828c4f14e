// Quantities with units, parsed once at the scenario boundary. Inside the simulator time is an
// integer number of machine cycles; nanoseconds exist only in reports.
#pragma once
#include "cycles.hpp"

#include <optional>
#include <string>

namespace ipcsim {

// The longest single time a scenario may give (compute, sleep, timeout, arrival, quantum): 2^50
// cycles, 13 days at 1 GHz. An eighth of the clock's exact range, so that the sum of a few times a
// run reaches stays exact (and a time added to any clock value never overflows Cycles); beyond
// that the kernel's clock limit stops the run.
constexpr Cycles kMaxTimeCycles = Cycles{1} << 50;

// Machine clocks from 1 kHz to 100 GHz. Below, a cycle is longer than a millisecond and short
// durations round to no cycles at all; above, the clock's exact range shrinks to hours
// (the longest time, 2^50 cycles, is 3.1 hours at 100 GHz).
constexpr double kMinFrequencyHz = 1e3;
constexpr double kMaxFrequencyHz = 1e11;
// "from 1kHz to 100GHz", for messages.
std::string frequency_range_text();

// "3GHz", "2.4 GHz", "12.5MHz", or a plain number of Hz. nullopt when malformed (not checked
// against the range above).
std::optional<double> parse_frequency_hz(const std::string& text);
// "1.5us", "10ms", "2s", "300ns", "20 cycles": the cycles it makes at `hz`, before rounding
// ("20 cycles" must be whole). nullopt when malformed; any size.
std::optional<double> parse_duration_cycles(const std::string& text, double hz);
// The same rounded to the nearest whole cycle; nullopt when malformed or above kMaxTimeCycles.
std::optional<Cycles> parse_time_cycles(const std::string& text, double hz);
// "4KiB", "1MiB", "512B", "64 KB" (KB = 1000): bytes. nullopt when malformed.
std::optional<std::uint64_t> parse_bytes(const std::string& text);

double cycles_to_ns(Cycles cycles, double hz);
// Shortest exact-enough decimal for reports: fixed 3 decimals.
std::string format_ns(double ns);
std::string format_hz(double hz);
// `cycles` at `hz` as a duration a scenario accepts, in the largest unit that keeps it >= 1, cut
// (not rounded) to 3 decimals so that it never exceeds `cycles`: "312.749h", "1.5us".
std::string format_duration(Cycles cycles, double hz);

} // namespace ipcsim
