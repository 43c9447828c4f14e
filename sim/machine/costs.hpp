// The cycle-cost model: named primitives, declared once below, and presets (models/costs/*.json,
// compiled into the binary) that give each a value and a source. Every mechanism composes its
// costs from these primitives and nothing else.
#pragma once
#include "params.hpp"
#include "units.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace ipcsim {

// X(name, unit, description). Cycle-valued primitives are whole numbers.
#define IPCSIM_PRIMITIVES(X)                                                                                 \
  X(trap_enter, "cycles", "user to kernel transition of a system call")                                      \
  X(trap_exit, "cycles", "kernel to user return")                                                            \
  X(syscall_dispatch, "cycles", "system-call table lookup and argument checks")                              \
  X(context_save, "cycles", "saving the outgoing thread's state in a context switch")                        \
  X(context_restore, "cycles", "restoring the incoming thread's state")                                      \
  X(address_space_switch, "cycles", "loading another address space's page-table root")                       \
  X(tlb_refill_per_page, "cycles", "one page walk refilling the TLB after a flush, per working-set page")    \
  X(sched_pick, "cycles", "the scheduler choosing the next thread")                                          \
  X(wakeup, "cycles", "moving a thread from a wait queue to a run queue")                                    \
  X(ipi, "cycles", "sending an inter-processor interrupt (sender side)")                                     \
  X(idle_exit, "cycles", "an idle core leaving its idle state")                                              \
  X(timer_interrupt, "cycles", "handling a timer interrupt (slice end, sleep expiry)")                       \
  X(copy_setup, "cycles", "fixed cost of one user/kernel copy")                                              \
  X(copy_bytes_per_cycle, "bytes/cycle", "copy throughput while the data fits in cache")                     \
  X(copy_bytes_per_cycle_uncached, "bytes/cycle", "copy throughput beyond the cache")                        \
  X(copy_cache_bytes, "bytes", "copies up to this size run at the cached rate")                              \
  X(page_fault, "cycles", "handling a minor page fault")                                                     \
  X(map_page, "cycles", "mapping one page into an address space")                                            \
  X(capability_lookup, "cycles", "looking up and checking a capability")                                     \
  X(procedure_call, "cycles", "a plain procedure call and return")                                           \
  X(stub, "cycles", "an RPC stub's marshalling work for a null call")                                        \
  X(signal_frame, "cycles", "building a signal frame on the user stack (context, siginfo, mask)")            \
  X(sigreturn, "cycles", "sigreturn restoring the context and mask saved in the signal frame")               \
  X(atomic_rmw, "cycles", "an uncontended atomic read-modify-write in user space (lock cmpxchg)")

// The largest value of a cycle-valued primitive: 2^32 cycles (4.3 s at 1 GHz), far beyond any real
// kernel path. A cost times a count the kernel multiplies it by (working-set pages, at most
// kMaxWorkingSetPages) then stays inside the clock's exact range (units.hpp), without overflow.
constexpr Cycles kMaxPrimitiveCycles = Cycles{1} << 32;
// Working sets stop at 10^6 pages (about 4 GiB of 4 KiB pages).
constexpr std::uint32_t kMaxWorkingSetPages = 1'000'000;
static_assert(kMaxPrimitiveCycles * kMaxWorkingSetPages < kClockLimitCycles);
// copy_cache_bytes stops where sizes do: 1 TiB.
constexpr double kMaxCacheBytes = 1099511627776.0;

enum class Primitive : std::uint8_t {
#define IPCSIM_ENUM(name, unit, description) name,
  IPCSIM_PRIMITIVES(IPCSIM_ENUM)
#undef IPCSIM_ENUM
      count,
  // Not a kernel primitive: the cycles a script's own compute ops burn. Attributed like the others
  // so the breakdown adds up to the busy time of every core.
  user = count,
};
constexpr size_t kPrimitiveCount = static_cast<size_t>(Primitive::count);
constexpr size_t kAttributedPrimitiveCount = kPrimitiveCount + 1;

struct PrimitiveInfo {
  const char* name;
  const char* unit;
  const char* description;
};
const PrimitiveInfo& primitive_info(Primitive p);
const char* primitive_name(Primitive p); // includes "user"
std::vector<std::string> primitive_names();

struct PresetInfo {
  std::string name;
  std::string description;
  std::string frequency;
  json document; // the preset file
};
// The built-in presets, by name.
const std::vector<PresetInfo>& list_presets();

struct CostModel {
  std::string preset;
  double preset_hz = 0;
  bool tagged_tlb = false;
  std::array<double, kPrimitiveCount> value{};

  Cycles cycles(Primitive p) const { return static_cast<Cycles>(value[static_cast<size_t>(p)]); }
  // copy_setup plus the bytes at the cached or uncached rate, rounded up to whole cycles; a copy
  // longer than the clock's exact range counts as just past it (the kernel then stops the run).
  Cycles copy_cycles(std::uint64_t bytes) const;
};

// The machine.costs table: "preset" plus any primitive name as an override.
const ParamTable& costs_table();

// Builds the model from a resolved machine.costs object: preset (a built-in name, or a path to a
// preset file), then overrides, then a consistency check. Errors name file and path.
CostModel build_cost_model(const json& costs, const std::string& path, const ReadContext& ctx);

// The frequency a preset was written for ("3GHz"): the machine's default clock.
double preset_frequency_hz(const std::string& preset, const std::string& path, const ReadContext& ctx);

// The raw JSON text of every built-in preset, keyed by name (generated at build time).
const std::vector<std::pair<std::string, std::string>>& builtin_preset_texts();

} // namespace ipcsim
