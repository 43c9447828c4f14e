// Simulated time: whole machine cycles, everywhere below the scenario boundary.
#pragma once
#include <cstdint>
#include <limits>

namespace ipcsim {

using Cycles = std::uint64_t;
constexpr Cycles kNever = std::numeric_limits<Cycles>::max();

} // namespace ipcsim
