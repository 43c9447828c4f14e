// The cycle-cost model: named primitives, declared once below, and presets (models/costs/*.json,
// compiled into the binary) that give each a value and a source. Every mechanism composes its
// costs from these primitives and nothing else.
#pragma once
#include "params.hpp"
#include "units.hpp"

#include <array>
#include <cstdint>
#include <optional>
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
  X(copy_bytes_per_cycle, "bytes/cycle", "copy rate while the footprint fits the L1 cache")                  \
  X(copy_bytes_per_cycle_l2, "bytes/cycle", "copy rate while the footprint fits the L2 cache")               \
  X(copy_bytes_per_cycle_l3, "bytes/cycle", "copy rate while the footprint fits the L3 cache")               \
  X(copy_bytes_per_cycle_uncached, "bytes/cycle", "copy rate from memory, the footprint beyond every cache") \
  X(copy_bytes_per_cycle_remote, "bytes/cycle",                                                              \
    "copy rate of lines held by another core's cache, the footprint within the last level")                  \
  X(cache_l1_bytes, "bytes", "size of the L1 data cache")                                                    \
  X(cache_l2_bytes, "bytes", "size of the L2 cache")                                                         \
  X(cache_l3_bytes, "bytes", "size of the L3 cache (the last level)")                                        \
  X(page_fault, "cycles", "handling a minor page fault")                                                     \
  X(map_page, "cycles", "mapping one page into an address space")                                            \
  X(capability_lookup, "cycles", "looking up and checking a capability")                                     \
  X(procedure_call, "cycles", "a plain procedure call and return")                                           \
  X(stub, "cycles", "an RPC stub's marshalling work for a null call")                                        \
  X(signal_frame, "cycles", "building a signal frame on the user stack (context, siginfo, mask)")            \
  X(sigreturn, "cycles", "sigreturn restoring the context and mask saved in the signal frame")               \
  X(atomic_rmw, "cycles", "an uncontended atomic read-modify-write (lock cmpxchg; a reference count)")       \
  X(page_zero, "cycles", "clearing a newly allocated 4 KiB page (first touch of a shared page anywhere)")    \
  X(cache_line_transfer, "cycles", "moving a 64-byte cache line last written by another core to this one")   \
  X(fd_lookup, "cycles", "finding the open file behind a descriptor (fdget, sockfd_lookup_light)")           \
  X(ipc_id_lookup, "cycles",                                                                                 \
    "finding a System V object by id (ipc_obtain_object_check: idr_find, seq check)")                        \
  X(permission_check, "cycles", "checking the caller's credentials against an object's mode (ipcperms)")     \
  X(security_hook, "cycles", "one Linux Security Module hook (security_file_permission, ..._msgsnd, ...)")   \
  X(lock_acquire, "cycles", "taking and releasing an uncontended kernel lock (spin_lock, mutex_lock)")       \
  X(slab_alloc, "cycles", "allocating a small kernel object (kmalloc, kmem_cache_alloc)")                    \
  X(slab_free, "cycles", "freeing a small kernel object (kfree, kmem_cache_free)")                           \
  X(page_alloc, "cycles", "allocating a page (alloc_page)")                                                  \
  X(page_free, "cycles", "freeing a page (put_page, __free_pages)")                                          \
  X(list_op, "cycles", "linking or unlinking an entry of a kernel list (list_add_tail, skb_queue_tail)")     \
  X(tree_op, "cycles", "inserting or erasing a red-black tree node with rebalancing (rb_insert_color)")      \
  X(waitqueue_op, "cycles", "a wait-queue operation under its lock (prepare_to_wait_event, __wake_up)")      \
  X(socket_dispatch, "cycles", "the socket layer around a send or receive (sock_sendmsg, msghdr, scm)")      \
  X(user_page_lookup, "cycles",                                                                              \
    "finding and pinning the page behind a user address, then unpinning it (get_user_pages_fast, "           \
    "folio_put)")                                                                                            \
  X(hash_lookup, "cycles", "hashing a key to its bucket of a kernel hash table (futex_hash: jhash2)")

// The largest value of a cycle-valued primitive: 2^32 cycles (4.3 s at 1 GHz), far beyond any real
// kernel path. A cost times a count the kernel multiplies it by (working-set pages, at most
// kMaxWorkingSetPages) then stays inside the clock's exact range (units.hpp), without overflow.
constexpr Cycles kMaxPrimitiveCycles = Cycles{1} << 32;
// Working sets stop at 10^6 pages (about 4 GiB of 4 KiB pages).
constexpr std::uint32_t kMaxWorkingSetPages = 1'000'000;
static_assert(kMaxPrimitiveCycles * kMaxWorkingSetPages < kClockLimitCycles);
// Cache sizes stop where sizes do: 1 TiB.
constexpr double kMaxCacheBytes = 1099511627776.0;

enum class Primitive : std::uint8_t {
#define IPCSIM_ENUM(name, unit, description) name,
  IPCSIM_PRIMITIVES(IPCSIM_ENUM)
#undef IPCSIM_ENUM
      count,
  // Not a kernel primitive: the cycles a script's own compute ops burn. Attributed like the others
  // so the breakdown adds up to the busy time of every core.
  user = count,
  // Not a preset value either: the cycles a thread spins waiting for a kernel-object lock held on
  // another core until its holder releases it (sim/kernel/lock.hpp), a time rather than a constant.
  lock_wait,
  // Nor this: the handler work of a device interrupt (machine.irq_every / irq_handler), a time the
  // scenario gives rather than a machine constant.
  irq_handler,
};
constexpr size_t kPrimitiveCount = static_cast<size_t>(Primitive::count);
constexpr size_t kAttributedPrimitiveCount = kPrimitiveCount + 3;

struct PrimitiveInfo {
  const char* name;
  const char* unit;
  const char* description;
};
const PrimitiveInfo& primitive_info(Primitive p);
const char* primitive_name(Primitive p); // includes "user", "lock_wait" and "irq_handler"
std::vector<std::string> primitive_names();

struct PresetInfo {
  std::string name;
  std::string description;
  std::string frequency;
  json document; // the preset file
};
// The built-in presets, by name.
const std::vector<PresetInfo>& list_presets();

// A deeper idle state than the one idle_exit leaves (a preset's "idle_states", like cpuidle's
// table): a core idle for at least target_residency cycles is in it, and leaving it takes
// exit_latency cycles. `ipi`, when given, is what waking a core in it costs the waker instead of
// the ipi primitive (on a virtual machine the host wakes a descheduled vCPU inside the waker's trap).
struct IdleState {
  std::string name;
  Cycles target_residency = 0;
  Cycles exit_latency = 0;
  std::optional<Cycles> ipi;
};

// The largest idle_exit_spread a preset or scenario may give: exp(2 x 4), the widest draw, is a
// factor of about 3000, already beyond any measured wakeup.
constexpr double kMaxIdleExitSpread = 2;

struct CostModel {
  std::string preset;
  double preset_hz = 0;
  bool tagged_tlb = false;
  // The host's time slice (a preset's "time_slice", a duration such as "4ms"; null when it gives
  // none): the round-robin policy's quantum when the scenario sets none.
  json time_slice;
  std::array<double, kPrimitiveCount> value{};
  std::vector<IdleState> idle_states; // deeper states, by increasing target residency
  // How much leaving idle varies from one wakeup to the next (a preset's "idle_exit_spread", the
  // sigma of a log-normal): a halted vCPU's wakeup on a virtual machine spreads from a third to
  // twice its median. 0: every exit takes exactly its state's latency.
  double idle_exit_spread = 0;

  // What leaving idle costs a core idle for `idle_for` cycles: idle_exit, or the exit latency of
  // the deepest state whose target residency that idle period reached.
  Cycles idle_exit_after(Cycles idle_for) const {
    Cycles exit = cycles(Primitive::idle_exit);
    for (const auto& state : idle_states)
      if (idle_for >= state.target_residency) exit = state.exit_latency;
    return exit;
  }

  // What waking a core idle for `idle_for` cycles costs the waker: the ipi of the deepest state
  // that idle period reached, when that state gives one, else the ipi primitive.
  Cycles ipi_after(Cycles idle_for) const {
    Cycles ipi = cycles(Primitive::ipi);
    for (const auto& state : idle_states)
      if (idle_for >= state.target_residency) ipi = state.ipi.value_or(cycles(Primitive::ipi));
    return ipi;
  }

  Cycles cycles(Primitive p) const { return static_cast<Cycles>(value[static_cast<size_t>(p)]); }
  double get(Primitive p) const { return value[static_cast<size_t>(p)]; }
  // The byte cycles of copying `bytes` that are part of a transfer of `transfer` bytes, by level:
  // (copy_bytes_per_cycle, the cycles at the L1 rate), then for each slower level the cycles it
  // adds (copy_bytes_per_cycle_l2, _l3, _uncached). The footprint is source plus destination,
  // 2 x transfer; the time per byte stays at a level's rate while the footprint fits that cache,
  // and moves linearly to the next level's as the footprint grows from the cache's size to twice
  // it (docs/machine.md). Rounded up to whole cycles; a copy longer than the clock's exact range
  // counts as just past it (the kernel then stops the run).
  std::array<std::pair<Primitive, Cycles>, 4> copy_split(std::uint64_t bytes, std::uint64_t transfer) const;
  // The same for a footprint given in bytes (a copy out of a queue: the queued data and the user's side).
  std::array<std::pair<Primitive, Cycles>, 4> copy_split_at(std::uint64_t bytes, double footprint) const;
  // copy_setup plus every level's byte cycles.
  Cycles copy_cycles(std::uint64_t bytes, std::uint64_t transfer = 0) const;
  // The time per byte (cycles) of a transfer of `transfer` bytes.
  double cycles_per_byte(std::uint64_t transfer) const;
  // The time per byte (cycles) of copying lines that another core's cache holds (written there, or
  // read there since this core wrote them), at a footprint of `footprint` bytes: 1 /
  // copy_bytes_per_cycle_remote while it fits the last-level cache, which the cores share and
  // through which the lines move; then moving linearly to the memory rate as it grows to twice the
  // cache, as cycles_per_byte does between levels.
  double remote_cycles_per_byte_at(double footprint) const;
  // The time per byte at a footprint of `footprint` bytes.
  double cycles_per_byte_at(double footprint) const;
};

// The machine.costs table: "preset" plus any primitive name as an override.
const ParamTable& costs_table();

// Builds the model from a resolved machine.costs object: preset (a built-in name, or a path to a
// preset file), then overrides, then a consistency check. Errors name file and path.
CostModel build_cost_model(const json& costs, const std::string& path, const ReadContext& ctx);

// machine.frequency_scaling "time": the model at `ratio` times its preset's clock with the same
// times: cycle counts (and idle states) times ratio, rounded to whole cycles; copy rates in bytes
// per cycle divided by it; cache sizes unchanged. A cost scaled past 2^32 cycles is an error at
// `path`.
void scale_to_clock(CostModel& model, double ratio, const std::string& path, const ReadContext& ctx);

// The frequency a preset was written for ("3GHz"): the machine's default clock.
double preset_frequency_hz(const std::string& preset, const std::string& path, const ReadContext& ctx);

// The raw JSON text of every built-in preset, keyed by name (generated at build time).
const std::vector<std::pair<std::string, std::string>>& builtin_preset_texts();

} // namespace ipcsim
