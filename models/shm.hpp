// Shared memory as the models see it: segments (System V shm, POSIX shm objects, anonymous
// mappings), their mappings into address spaces, and user-space access to their bytes with what it
// costs (first-touch page faults, zeroing, the copy rate, cache-line transfers between cores). The
// memory ops, busy polling (models/shm.cpp) and the futex (models/futex.cpp) build on this.
// docs/shm.md describes the model and every charge.
#pragma once
#include "ipc.hpp"

#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>

namespace ipcsim {

inline constexpr std::uint64_t kPageBytes = 4096;
inline constexpr std::uint64_t kCacheLineBytes = 64;
inline constexpr int kSIGBUS = 7;
inline constexpr int kSIGSEGV = 11;

// The memory behind one or more mappings: tmpfs pages allocated (and zeroed) on first touch, and
// each cache line's coherence state (who wrote it last, and which cores read it since). A
// MAP_PRIVATE mapping has a segment of its own, its view: the pages it wrote (its copies), and for a
// private mapping of an object the object as `backing`, read where the view has no copy.
struct Segment {
  std::string name;         // "shmid 0", "posix shm /ring", "anonymous 1": Mapping::segment
  std::uint64_t serial = 0; // unique in the run: what a futex's key names (a name may come back)
  std::uint64_t size = 0;   // bytes (a POSIX object's file size; accesses beyond it raise SIGBUS)
  // Allocated pages. A private view's may be shared with a spawned child's view (copy-on-write:
  // the use count says how many views hold the page).
  std::unordered_map<std::uint64_t, std::shared_ptr<std::uint8_t[]>> pages;
  std::shared_ptr<Segment> backing; // a private view of an object: the object (else nullptr)
  // A private view's pages that fork made read-only in its page tables: the next write faults,
  // and copies the page if another view still holds it (do_wp_page), or takes it back if not.
  std::unordered_set<std::uint64_t> write_protected;
  struct Line {
    std::int32_t writer = -1;    // the core that wrote it last (-1: never written)
    std::uint32_t version = 0;   // counts writes: a core's copy is valid while it saw this version
    bool read_elsewhere = false; // since its last write, a core other than its writer read it
  };
  std::unordered_map<std::uint64_t, Line> lines;
  std::unordered_map<std::uint64_t, std::uint32_t> seen; // (line * 1024 + core) -> version read
  // (page * 4096 + core): pages each core has touched, so that a page whose record of its last touch
  // there was dropped (beyond every cache's reach, models/shm.cpp's TouchHistory) reads as cold.
  std::unordered_set<std::uint64_t> touched_on;
  std::uint32_t mappings = 0; // how many mappings refer to it
  bool anonymous = false;     // MAP_ANONYMOUS: its memory goes with its last mapping
};

// One mapping of a segment in an address space, found by the name the script gave it.
struct Attachment {
  std::string name;
  std::shared_ptr<Segment> segment;
  std::uint64_t address = 0, length = 0; // length: whole pages
  bool writable = true;
  bool shared = true;
  std::int64_t shmid = -1;   // a System V attachment: shm_nattch counts it
  std::vector<bool> present; // pages whose page-table entry this space has
};

// A range of a mapping an op touches, checked.
struct Access {
  Attachment* attachment = nullptr;
  std::uint64_t offset = 0; // in the segment
};

// What busy polling waits for: a store to the word at (segment, offset).
struct Spinner {
  Thread* thread;
  Segment* segment;
  std::uint64_t offset;
};

class ShmState;

// Finds mapping `map` of the running thread's space and checks [offset, offset + bytes): outside
// the mapping is SIGSEGV, beyond the end of a POSIX object's file is SIGBUS, a store to a read-only
// attachment is SIGSEGV. On a fault the process is terminated and nullopt returned (the op returns
// Step::Exit); with `fault` (a system call's access) the signal is stored there instead, and the
// call fails with EFAULT.
std::optional<Access> user_access(OpContext& ctx, const std::string& map, std::int64_t offset,
                                  std::uint64_t bytes, bool write, std::uint16_t activity,
                                  int* fault = nullptr);
// Charges touching [offset, offset + bytes) of a checked access from user space: a page fault per
// page not yet present in this space (and zeroing a page never touched anywhere), a cache-line
// transfer per line another core wrote last, and the bytes at the copy rate of their footprint and
// reuse distance (the other pages this core touched since it last touched them). `write` makes this
// core the lines' last writer. A write to a private mapping's page it has no copy of (or one fork
// shares) faults and copies the page first (copy-on-write): page_fault and 4 KiB at the copy rate.
void charge_touch(OpContext& ctx, const Access& access, std::uint64_t bytes, bool write,
                  std::uint16_t activity);
// The 8-byte little-endian word at a checked access (no charge).
std::int64_t peek_word(const Segment& segment, std::uint64_t offset);
// Stores a word (no charge) and lets every thread spinning on it see the store.
void poke_word(OpContext& ctx, Segment& segment, std::uint64_t offset, std::int64_t value);
// Writes `text` and then zeros over [offset, offset + bytes); spinners on those bytes look again.
void write_bytes(OpContext& ctx, Segment& segment, std::uint64_t offset, const std::string& text,
                 std::uint64_t bytes);
// The text at [offset, offset + bytes), up to its first zero byte.
std::string read_text(const Segment& segment, std::uint64_t offset, std::uint64_t bytes);

// ---- The futex's kernel steps (models/futex.cpp, docs/futex.md), shared with the library calls
// that make futex system calls of their own (the POSIX semaphores) ----

// get_futex_key and futex_hash: a shared futex (no FUTEX_PRIVATE_FLAG) finds the page behind the
// address for its key (user_page_lookup); a private one's key is the caller's mm and the address,
// with no lookup. Then the key is hashed to its bucket (hash_lookup).
void charge_futex_key(OpContext& ctx, std::uint16_t activity, bool shared);
// futex_unqueue of a waiter still on its bucket's list (a timer or a signal woke it, or it never
// slept): the bucket's lock around plist_del and futex_hb_waiters_dec.
void charge_futex_unqueue(OpContext& ctx, std::uint16_t activity);

// ---- Op fields shared by the memory, spin and futex ops ----

IntRef read_int_ref(const json& fields, const std::string& field, const std::string& path,
                    CompileContext& ctx);
ParamSpec int_ref_param(const std::string& name, const std::string& what, json default_value = nullptr);
// The mapping named by a "map" field.
ParamSpec map_param();
// A variable an op stores a value in ("into").
std::string read_into_var(const json& fields, const std::string& field, const std::string& path,
                          CompileContext& ctx);

} // namespace ipcsim
