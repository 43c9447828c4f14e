// Simulated time: whole machine cycles, everywhere below the scenario boundary.
#pragma once
#include <cstdint>
#include <limits>

namespace ipcsim {

using Cycles = std::uint64_t;
constexpr Cycles kNever = std::numeric_limits<Cycles>::max();

// Times leave the simulator as doubles (nanoseconds in reports, numbers in JSON that most readers
// parse as doubles), which hold every cycle exactly up to 2^53 (104 days at 1 GHz) and no further.
// A run stops with an error rather than let its clock pass this (Kernel).
constexpr Cycles kClockLimitCycles = Cycles{1} << 53;

} // namespace ipcsim
