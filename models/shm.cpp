// Shared memory: System V segments (shmget(2), shmat(2), shmdt(2), shmctl(2), ipcs -m) following
// Linux's ipc/shm.c, POSIX objects (shm_open(3), ftruncate(2), mmap(2), munmap(2), shm_unlink(3))
// on a tmpfs as /dev/shm is, anonymous mappings (MAP_SHARED ones are passed on by spawn, as by
// fork), the script ops that read and write words and byte ranges of a mapping (plain and atomic),
// and busy polling (spin: a compute that ends at a store to the word it watches). docs/shm.md
// describes the model and every charge.
#include "shm.hpp"

#include "call_name.hpp"
#include "error.hpp"
#include "fs.hpp"
#include "names.hpp"
#include "sysv_ids.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace ipcsim {

namespace {

// ---- Limits (ipcs -l; include/uapi/linux/shm.h) -----------------------------------------------

constexpr std::uint64_t kShmMin = 1;
constexpr std::uint64_t kShmMax = UINT64_MAX - (std::uint64_t{1} << 24); // SHMMAX
constexpr std::size_t kShmMni = 4096;                                    // SHMMNI
// The simulated machine's memory for shared segments (sysctl kernel.shmall, in pages): 256 MiB, so
// that a scenario cannot make the simulator allocate more than that (every touched page is real).
constexpr std::uint64_t kShmAllPages = 65536;
constexpr std::uint32_t kShmDest = 01000;    // mode bit: marked for removal (IPC_RMID while attached)
constexpr std::uint64_t kShmidDsBytes = 112; // sizeof(struct shmid_ds) on x86-64
constexpr std::uint64_t kFirstAddress = 0x7f0000000000; // where mappings go (mmap_base, top-down in Linux)
constexpr std::size_t kNameMax = 255;                   // NAME_MAX: a POSIX object's name after the '/'

std::uint64_t pages_of(std::uint64_t bytes) { return bytes / kPageBytes + (bytes % kPageBytes ? 1 : 0); }

std::string octal(std::uint32_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%o", mode);
  return buf;
}

// ---- Kernel objects ---------------------------------------------------------------------------

struct ShmSegment { // shmid_kernel
  std::int64_t id = 0;
  std::size_t index = 0;
  std::uint32_t key = 0;
  std::uint32_t uid = 0, gid = 0, cuid = 0, cgid = 0, mode = 0;
  std::uint64_t segsz = 0;
  std::uint64_t nattch = 0;
  std::int64_t cpid = 0, lpid = 0;
  Cycles atime = 0, dtime = 0, ctime = 0;
  std::shared_ptr<Segment> memory;
};

struct PosixShm { // a file in /dev/shm
  std::string name;
  std::uint32_t uid = 0, gid = 0, mode = 0;
  std::shared_ptr<Segment> memory;
};

// A descriptor of a POSIX shared-memory object.
class ShmFile : public OpenFile {
public:
  ShmFile(std::shared_ptr<PosixShm> object, bool writable) : object(std::move(object)), writable(writable) {}
  std::string describe() const override { return "posix shm " + object->name; }
  std::shared_ptr<PosixShm> object;
  bool writable;
};

// What one core touched of shared memory, for the reuse distance of a page: the bytes of other
// pages the core touched since it last touched this one. An LRU cache holds a page while its
// distance and the copy's own footprint fit, so the distance decides which level a copy reads
// from (docs/shm.md, "Reuse distance"): a ring of slots larger than L1 is read back from L2
// however small each slot is. Pages are ordered by their last touch (a stamp); a Fenwick tree over
// the stamps sums the bytes touched since any stamp in O(log n). Records farther back than `reach`
// (every cache level's reach: beyond it the rate no longer changes), or behind as many newer pages
// as all shared memory has (kShmAllPages), are dropped when the stamps are renumbered.
class TouchHistory {
public:
  struct Key {
    std::uint64_t serial = 0, page = 0; // Segment::serial: never reused in a run
    auto operator<=>(const Key&) const = default;
  };
  struct Record {
    std::uint64_t stamp = 0, bytes = 0;
  };
  explicit TouchHistory(std::uint64_t reach) : reach_(reach) {}

  const Record* find(const Key& key) const {
    auto it = records_.find(key);
    return it == records_.end() ? nullptr : &it->second;
  }
  // Bytes of the records touched after `stamp`.
  std::uint64_t bytes_after(std::uint64_t stamp) const { return total_ - prefix(stamp); }
  std::uint64_t reach() const { return reach_; }
  // `bytes` of page `key` touched now (whole lines).
  void touch(const Key& key, std::uint64_t bytes) {
    auto [it, added] = records_.try_emplace(key);
    if (!added) {
      add(it->second.stamp, -it->second.bytes);
      total_ -= it->second.bytes;
    }
    if (clock_ + 1 >= tree_.size()) {
      renumber(&it->second);
    }
    it->second = {++clock_, bytes};
    add(clock_, bytes);
    total_ += bytes;
  }

private:
  std::uint64_t prefix(std::uint64_t stamp) const { // bytes of the records with stamps up to `stamp`
    std::uint64_t sum = 0;
    for (std::uint64_t i = std::min<std::uint64_t>(stamp, tree_.size() - 1); i > 0; i -= i & (~i + 1))
      sum += tree_[i];
    return sum;
  }
  void add(std::uint64_t stamp, std::uint64_t bytes) { // modular: a removal adds the negation
    for (std::uint64_t i = stamp; i < tree_.size(); i += i & (~i + 1)) tree_[i] += bytes;
  }
  // Stamps 1..n again in the same order, the records beyond the reach dropped; `skip` (the record
  // being touched, already out of the tree) is not kept.
  void renumber(const Record* skip) {
    std::vector<std::pair<std::uint64_t, Key>> order;
    order.reserve(records_.size());
    for (const auto& [key, record] : records_)
      if (&record != skip) order.push_back({record.stamp, key});
    std::sort(order.begin(), order.end());
    std::uint64_t newer = 0;
    std::size_t keep = order.size();
    while (keep > 0 && newer < reach_ && order.size() - keep < kShmAllPages)
      newer += records_.at(order[--keep].second).bytes;
    // order[keep] is the oldest record kept (the one that reached the reach is kept too).
    for (std::size_t i = 0; i < keep; ++i) records_.erase(order[i].second);
    const std::size_t n = order.size() - keep;
    tree_.assign(std::max<std::size_t>(2 * n + 2, 1024), 0);
    total_ = 0;
    clock_ = 0;
    for (std::size_t i = keep; i < order.size(); ++i) {
      Record& record = records_.at(order[i].second);
      record.stamp = ++clock_;
      add(record.stamp, record.bytes);
      total_ += record.bytes;
    }
  }

  std::uint64_t reach_;
  std::map<Key, Record> records_;
  std::vector<std::uint64_t> tree_ = std::vector<std::uint64_t>(1024, 0);
  std::uint64_t clock_ = 0, total_ = 0;
};

} // namespace

class ShmState : public IpcState, public Observer {
public:
  explicit ShmState(Kernel& kernel) : kernel_(kernel), reach_(touch_reach(kernel.model().costs)) {
    kernel.subscribe(*this);
  }

  // ---- Segments and their memory ----
  std::shared_ptr<Segment> new_memory(const std::string& name, std::uint64_t size) {
    auto segment = std::make_shared<Segment>();
    segment->name = name;
    segment->size = size;
    segment->serial = ++serials_;
    return segment;
  }
  // Pages every segment may use, against kShmAllPages (shm_tot).
  bool reserve(std::uint64_t old_size, std::uint64_t new_size) {
    std::uint64_t add = pages_of(new_size), drop = pages_of(old_size);
    std::uint64_t rest = total_pages_ - std::min(drop, total_pages_);
    if (add > kShmAllPages || rest + add > kShmAllPages) return false;
    total_pages_ = rest + add;
    return true;
  }
  void release(std::uint64_t size) { total_pages_ -= std::min(total_pages_, pages_of(size)); }

  // ---- System V ids (ipc/util.c, as models/sysv_msg.cpp) ----
  ShmSegment* find_key(std::uint32_t key) {
    return ids_.find_if([&](const ShmSegment& s) { return s.key == key && !(s.mode & kShmDest); });
  }
  ShmSegment* find_id(std::int64_t id) { return ids_.find_id(id); }
  // newseg() / ipc_addid() (sim/kernel/sysv_ids.hpp).
  ShmSegment* create(std::uint32_t key, const Process& process, std::uint32_t mode, std::uint64_t size,
                     Cycles now) {
    ShmSegment* segment = ids_.add([](std::int64_t id, std::size_t index) {
      auto made = std::make_unique<ShmSegment>();
      made->id = id;
      made->index = index;
      return made;
    });
    if (!segment) return nullptr;
    ShmSegment& s = *segment;
    s.key = key;
    s.uid = s.cuid = process.spec->uid;
    s.gid = s.cgid = process.spec->gid;
    s.mode = mode & 0777;
    s.segsz = size;
    s.cpid = process.pid;
    s.ctime = now;
    s.memory = new_memory("shmid " + std::to_string(s.id), size);
    return &s;
  }
  std::size_t segments() const { return ids_.size(); }
  // shm_destroy(): the id is gone; the memory lives while a mapping still holds it (none, here).
  void destroy(ShmSegment& s) {
    release(s.segsz);
    ids_.remove(s.index);
  }
  // shm_close() of a System V attachment: IPC_RMID takes effect after the last detach.
  void detached(std::int64_t shmid, const Process& process, Cycles now) {
    ShmSegment* s = find_id(shmid);
    if (!s) return;
    --s->nattch;
    s->lpid = process.pid;
    s->dtime = now;
    if (s->nattch == 0 && (s->mode & kShmDest)) destroy(*s);
  }

  // ---- POSIX objects ----
  std::map<std::string, std::shared_ptr<PosixShm>> posix;

  // ---- Mappings ----
  std::vector<Attachment>& mappings(const AddressSpace& space) { return spaces_[space.id]; }
  Attachment* find_mapping(const AddressSpace& space, const std::string& name) {
    auto it = spaces_.find(space.id);
    if (it == spaces_.end()) return nullptr;
    for (auto& a : it->second)
      if (a.name == name) return &a;
    return nullptr;
  }
  // truncate_pagecache -> unmap_mapping_range (even_cows): the page-table entries of the object's
  // pages from `first_page` on go from every mapping of it, and a private mapping's copies of
  // them too; a later access within a new size faults the object's page in again.
  void zap_from(const Segment& object, std::uint64_t first_page) {
    for (auto& [space, list] : spaces_)
      for (auto& a : list) {
        if (a.segment.get() != &object && a.segment->backing.get() != &object) continue;
        for (std::uint64_t page = first_page; page < a.present.size(); ++page) a.present[page] = false;
        if (a.segment.get() != &object)
          std::erase_if(a.segment->pages, [&](const auto& entry) { return entry.first >= first_page; });
      }
  }
  // Maps `segment` into `space` under `name` (an existing mapping of that name is unmapped first,
  // as MAP_FIXED over it would): the next free address above the last mapping.
  Attachment& map(AddressSpace& space, const std::string& name, std::shared_ptr<Segment> segment,
                  std::uint64_t length, bool writable, bool shared, std::int64_t shmid) {
    auto& list = spaces_[space.id];
    std::uint64_t address = kFirstAddress;
    for (const auto& a : list) address = std::max(address, a.address + a.length + kPageBytes); // a guard gap
    Attachment a;
    a.name = name;
    a.segment = std::move(segment);
    a.address = address;
    a.length = pages_of(length) * kPageBytes;
    a.writable = writable;
    a.shared = shared;
    a.shmid = shmid;
    a.present.assign(a.length / kPageBytes, false);
    ++a.segment->mappings;
    space.mappings.push_back({name, address / kPageBytes, a.length / kPageBytes, shared, a.segment->name});
    list.push_back(std::move(a));
    return list.back();
  }
  // munmap / shmdt / exit: the mapping goes; a System V attachment's nattch drops.
  void unmap(AddressSpace& space, const std::string& name, const Process& process, Cycles now) {
    auto& list = spaces_[space.id];
    for (auto it = list.begin(); it != list.end(); ++it) {
      if (it->name != name) continue;
      --it->segment->mappings;
      forget_spinners(*it->segment);
      if (it->segment->mappings == 0 && it->segment->anonymous) release(it->segment->size);
      std::int64_t shmid = it->shmid;
      list.erase(it);
      auto& m = space.mappings;
      m.erase(std::remove_if(m.begin(), m.end(), [&](const Mapping& x) { return x.name == name; }), m.end());
      if (shmid >= 0) detached(shmid, process, now);
      return;
    }
  }

  // ---- Busy polling ----
  std::vector<Spinner> spinners; // threads whose word held the spin's condition at their last look
  void spinning(Thread& thread, Segment& segment, std::uint64_t offset) {
    stop_spinning(thread);
    spinners.push_back({&thread, &segment, offset});
  }
  void stop_spinning(const Thread& thread) {
    spinners.erase(std::remove_if(spinners.begin(), spinners.end(),
                                  [&](const Spinner& s) { return s.thread == &thread; }),
                   spinners.end());
  }
  void forget_spinners(const Segment& segment) {
    if (segment.mappings > 0) return;
    spinners.erase(std::remove_if(spinners.begin(), spinners.end(),
                                  [&](const Spinner& s) { return s.segment == &segment; }),
                   spinners.end());
  }
  // A store to [offset, offset + bytes) of `segment`: every spinner whose word it overlaps looks
  // again (a running one at once, through the cache: no interrupt is charged).
  void stored(OpContext& ctx, const Segment& segment, std::uint64_t offset, std::uint64_t bytes) {
    if (spinners.empty()) return;
    std::vector<Spinner> hit;
    // A private view sees a store to its object on the pages it has no copy of.
    auto sees = [&](const Spinner& s) {
      return s.segment == &segment ||
             (s.segment->backing.get() == &segment && !s.segment->pages.count(s.offset / kPageBytes));
    };
    for (const auto& s : spinners)
      if (sees(s) && s.offset < offset + bytes && offset < s.offset + 8) hit.push_back(s);
    for (const auto& s : hit) {
      stop_spinning(*s.thread);
      if (s.thread->state == ThreadState::Running && s.thread != &ctx.thread && s.thread->last_core >= 0)
        ctx.kernel.poke(ctx.core, *ctx.kernel.cores()[static_cast<std::size_t>(s.thread->last_core)]);
    }
  }
  bool is_spinning(const Thread& thread) const {
    for (const auto& s : spinners)
      if (s.thread == &thread) return true;
    return false;
  }

  // ---- Events ----
  void on_process_exit(OpContext& ctx, Process& process) override {
    AddressSpace& space = *process.space;
    auto it = spaces_.find(space.id);
    if (it == spaces_.end()) return;
    std::vector<std::string> names;
    for (const auto& a : it->second) names.push_back(a.name);
    for (const auto& name : names) unmap(space, name, process, ctx.now());
    for (std::uint32_t i = 0; i < process.threads_total(); ++i)
      stop_spinning(kernel_.threads()[process.thread_id(i)]);
  }
  // fork: the child shares every MAP_SHARED mapping and System V attachment (shm_open() counts it in
  // nattch); its page tables start empty, so its first touches fault. A MAP_PRIVATE mapping is
  // copied on write (dup_mmap, copy_page_range): the child's view holds the parent's copies, which
  // both sides' page tables now map read-only; where the parent's view has copies (an anon_vma),
  // its page-table entries are copied too (map_page each, to the spawn), else the child's start
  // empty. The child runs its own script (docs/shm.md).
  void on_process_spawn(OpContext& ctx, Process& parent, Process& child) override {
    auto it = spaces_.find(parent.space->id);
    if (it == spaces_.end()) return;
    std::vector<Attachment> inherited = it->second;
    const std::uint16_t activity = ctx.thread.program->ops[ctx.thread.pc]->activity;
    for (auto& a : inherited) {
      std::shared_ptr<Segment> memory = a.segment;
      if (!a.shared) {
        Segment& from = *a.segment;
        memory = new_memory(from.name, from.size);
        memory->backing = from.backing;
        memory->anonymous = from.anonymous && reserve(0, from.size); // its share of shmall
        memory->pages = from.pages;
        for (const auto& [page, data] : from.pages) {
          from.write_protected.insert(page);
          memory->write_protected.insert(page);
        }
      }
      Attachment& c = map(*child.space, a.name, memory, a.length, a.writable, a.shared, a.shmid);
      c.address = a.address;
      if (!a.shared && !a.segment->pages.empty()) {
        c.present = a.present;
        for (bool present : c.present)
          if (present) ctx.charge(activity, Primitive::map_page);
      }
      for (auto& m : child.space->mappings)
        if (m.name == a.name) m.first_page = a.address / kPageBytes;
      if (a.shmid >= 0)
        if (ShmSegment* s = find_id(a.shmid)) ++s->nattch;
    }
  }

  // `ipcs -m`'s lines (util-linux's column widths).
  std::vector<std::string> ipcs_lines() const {
    std::vector<std::string> lines{"------ Shared Memory Segments --------"};
    char buf[200];
    std::snprintf(buf, sizeof buf, "%-10s %-10s %-10s %-10s %-10s %-10s %-12s", "key", "shmid", "owner",
                  "perms", "bytes", "nattch", "status");
    lines.push_back(trim(buf));
    for (const auto& [index, s] : ids_.objects()) {
      std::snprintf(buf, sizeof buf, "%s %-10lld %-10s %-10o %-10llu %-10llu %-6s", hex_key(s->key).c_str(),
                    static_cast<long long>(s->id), owner_name(s->uid).c_str(), s->mode & 0777,
                    static_cast<unsigned long long>(s->segsz), static_cast<unsigned long long>(s->nattch),
                    s->mode & kShmDest ? "dest" : "");
      lines.push_back(trim(buf));
    }
    return lines;
  }
  static std::string trim(std::string s) {
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  }

  void list(std::vector<IpcTable>& tables) const override {
    if (!ids_.empty()) {
      IpcTable t{
          "Shared Memory Segments", {"key", "shmid", "owner", "perms", "bytes", "nattch", "status"}, {}};
      for (const auto& [index, s] : ids_.objects())
        t.rows.push_back({hex_key(s->key), std::to_string(s->id), owner_name(s->uid), octal(s->mode & 0777),
                          std::to_string(s->segsz), std::to_string(s->nattch),
                          s->mode & kShmDest ? "dest" : ""});
      tables.push_back(t);
    }
    if (!posix.empty()) {
      IpcTable t{"POSIX Shared Memory", {"name", "owner", "perms", "bytes"}, {}};
      for (const auto& [name, o] : posix)
        t.rows.push_back({name, owner_name(o->uid), octal(o->mode), std::to_string(o->memory->size)});
      tables.push_back(t);
    }
  }

  std::int64_t ns(Cycles cycles) const {
    return static_cast<std::int64_t>(std::llround(static_cast<double>(cycles) * 1e9 / kernel_.model().hz));
  }
  std::uint64_t next_anonymous() { return ++anonymous_; }
  // The core's history of touches, or nullptr when the preset's copy rate does not depend on the
  // footprint (nothing to track).
  TouchHistory* touches(std::size_t core) {
    if (reach_ == 0) return nullptr;
    while (touches_.size() <= core) touches_.emplace_back(reach_);
    return &touches_[core];
  }

private:
  // Every cache level's reach (twice the largest cache), or 0 when the copy rate is the same at
  // every footprint.
  static std::uint64_t touch_reach(const CostModel& costs) {
    double reach = 0;
    for (Primitive size : {Primitive::cache_l1_bytes, Primitive::cache_l2_bytes, Primitive::cache_l3_bytes})
      reach = std::max(reach, 2.0 * costs.get(size));
    if (!(reach > 0) || costs.cycles_per_byte_at(0) == costs.cycles_per_byte_at(reach)) return 0;
    return static_cast<std::uint64_t>(reach);
  }

  Kernel& kernel_;
  std::uint64_t reach_; // of the touch histories
  SysvIds<ShmSegment> ids_;
  std::uint64_t total_pages_ = 0;
  std::uint64_t serials_ = 0, anonymous_ = 0;
  std::map<std::uint32_t, std::vector<Attachment>> spaces_; // by AddressSpace::id
  std::vector<TouchHistory> touches_;                       // by core
};

// ---- User-space access --------------------------------------------------------------------------

std::optional<Access> user_access(OpContext& ctx, const std::string& map, std::int64_t offset,
                                  std::uint64_t bytes, bool write, std::uint16_t activity, int* fault) {
  ShmState& state = ctx.kernel.ipc<ShmState>();
  Attachment* a = state.find_mapping(*ctx.thread.space, map);
  int signal = 0;
  if (!a || offset < 0 || static_cast<std::uint64_t>(offset) > a->length ||
      bytes > a->length - static_cast<std::uint64_t>(offset) || (write && !a->writable))
    signal = kSIGSEGV;
  else if (static_cast<std::uint64_t>(offset) + bytes >
           pages_of((a->segment->backing ? *a->segment->backing : *a->segment).size) * kPageBytes)
    signal = kSIGBUS; // beyond the page holding the object's last byte
  if (signal) {
    if (fault) { // inside a system call: the call fails with EFAULT instead
      *fault = signal;
      return std::nullopt;
    }
    ctx.kernel.kill_process(ctx, *ctx.thread.process, signal, activity);
    return std::nullopt;
  }
  return Access{a, static_cast<std::uint64_t>(offset)};
}

namespace {
// The reuse distance of [offset, offset + bytes) on this core, and the touch recorded: for each
// page, the bytes of other pages this core touched since it last touched that page (pages of the
// range itself are the copy's own footprint), averaged over the range's lines. A page this core
// has touched but no longer has a record of is as far as the reach (every cache's); one it never
// touched is near (where its lines are, the transfers say), as is one this touch cleared or copied.
double reuse_distance(OpContext& ctx, Segment& s, std::uint64_t first, std::uint64_t last,
                      std::uint64_t offset, std::uint64_t bytes, const std::vector<std::uint64_t>& made_now) {
  TouchHistory* history = ctx.kernel.ipc<ShmState>().touches(ctx.core.index);
  if (!history) return 0;
  // A private view reads its object's page where it has no copy of its own.
  auto holder = [&](std::uint64_t page) -> Segment& {
    return s.backing && !s.pages.count(page) ? *s.backing : s;
  };
  auto key = [&](std::uint64_t page) { return TouchHistory::Key{holder(page).serial, page}; };
  const std::uint64_t core = ctx.core.index;
  auto bytes_in = [&](std::uint64_t page) { // this touch's whole lines of the page
    const std::uint64_t from = std::max(offset, page * kPageBytes) / kCacheLineBytes;
    const std::uint64_t to = (std::min(offset + bytes, (page + 1) * kPageBytes) - 1) / kCacheLineBytes;
    return (to - from + 1) * kCacheLineBytes;
  };
  // The range's own records by stamp, and the bytes of those at or after each: a page's distance
  // leaves out the range's pages touched after it.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> own; // (stamp, bytes)
  for (std::uint64_t page = first; page <= last; ++page)
    if (const auto* record = history->find(key(page))) own.push_back({record->stamp, record->bytes});
  std::sort(own.begin(), own.end());
  std::vector<std::uint64_t> own_from(own.size() + 1, 0);
  for (std::size_t i = own.size(); i > 0; --i) own_from[i - 1] = own_from[i] + own[i - 1].second;
  double weighted = 0, lines = 0;
  for (std::uint64_t page = first; page <= last; ++page) {
    double d = 0;
    if (std::binary_search(made_now.begin(), made_now.end(), page)) { // in page order
      d = 0;
    } else if (const auto* record = history->find(key(page))) {
      const auto newer = std::upper_bound(own.begin(), own.end(), std::make_pair(record->stamp, UINT64_MAX));
      const std::uint64_t own_newer = own_from[static_cast<std::size_t>(newer - own.begin())];
      d = static_cast<double>(std::min(history->bytes_after(record->stamp) - own_newer, history->reach()));
    } else if (holder(page).touched_on.count(page * 4096 + core)) {
      d = static_cast<double>(history->reach());
    }
    weighted += d * static_cast<double>(bytes_in(page));
    lines += static_cast<double>(bytes_in(page));
  }
  for (std::uint64_t page = first; page <= last; ++page) {
    history->touch(key(page), bytes_in(page));
    holder(page).touched_on.insert(page * 4096 + core);
  }
  return weighted / lines;
}
} // namespace

void charge_touch(OpContext& ctx, const Access& access, std::uint64_t bytes, bool write,
                  std::uint16_t activity) {
  if (bytes == 0) return;
  Attachment& a = *access.attachment;
  Segment& s = *a.segment;
  const CostModel& costs = ctx.kernel.model().costs;
  std::uint64_t first = access.offset / kPageBytes, last = (access.offset + bytes - 1) / kPageBytes;
  std::uint64_t page = first;
  std::vector<std::uint64_t> made_now; // pages this touch cleared or copied: in this core's cache
  // A new page, cleared (the first touch anywhere: shmem_fault, do_anonymous_page).
  auto zeroed_page = [&] {
    ctx.charge(activity, Primitive::page_zero);
    made_now.push_back(page);
    return std::make_shared<std::uint8_t[]>(kPageBytes); // value-initialised: zeros
  };
  // copy_user_highpage: a page at the copy rate of its 4 KiB, each level's share under its name.
  auto copied_page = [&](const std::uint8_t* from) {
    for (const auto& [primitive, cycles] : costs.copy_split(kPageBytes, kPageBytes))
      if (cycles > 0) ctx.charge(activity, primitive, cycles);
    auto copy = std::make_shared<std::uint8_t[]>(kPageBytes);
    std::memcpy(copy.get(), from, kPageBytes);
    made_now.push_back(page);
    return copy;
  };
  for (; page <= last; ++page) {
    auto own = s.pages.find(page);
    if (write && own != s.pages.end() && s.write_protected.erase(page)) {
      // Written after a fork: copy when another view still holds the page, else reuse it.
      ctx.charge(activity, Primitive::page_fault);
      a.present[page] = true;
      if (own->second.use_count() > 1) own->second = copied_page(own->second.get());
      continue;
    }
    if (write && s.backing && own == s.pages.end()) {
      // A private mapping's first write to a page of its object: one fault (do_cow_fault, or
      // do_wp_page after a read mapped the object's page), the object's page copied.
      ctx.charge(activity, Primitive::page_fault);
      a.present[page] = true;
      auto& source = s.backing->pages[page];
      if (!source) source = zeroed_page();
      s.pages[page] = copied_page(source.get());
      continue;
    }
    if (a.present[page]) continue;
    a.present[page] = true;
    ctx.charge(activity, Primitive::page_fault);
    // A read of a private mapping's page it has no copy of maps the object's page.
    auto& data = s.backing && own == s.pages.end() ? s.backing->pages[page] : s.pages[page];
    if (!data) data = zeroed_page();
  }
  const auto core = static_cast<std::int32_t>(ctx.core.index);
  // Lines written last by another core; and, for a range, lines this core wrote last that another
  // core has read since (the write must take them back from that core's cache).
  std::uint64_t transfers = 0, taken_back = 0;
  for (std::uint64_t line = access.offset / kCacheLineBytes;
       line <= (access.offset + bytes - 1) / kCacheLineBytes; ++line) {
    // A private view reads the object's lines where it has no copy of the page.
    Segment& holder = s.backing && !s.pages.count(line * kCacheLineBytes / kPageBytes) ? *s.backing : s;
    if (write) {
      Segment::Line& l = holder.lines[line];
      if (l.writer >= 0 && l.writer != core)
        ++transfers;
      else if (l.writer == core && l.read_elsewhere)
        ++taken_back;
      l.writer = core;
      l.read_elsewhere = false;
      ++l.version;
    } else {
      auto it = holder.lines.find(line);
      if (it == holder.lines.end() || it->second.writer < 0 || it->second.writer == core) continue;
      it->second.read_elsewhere = true;
      auto& seen = holder.seen[line * 1024 + static_cast<std::uint64_t>(core)];
      if (seen != it->second.version) ++transfers;
      seen = it->second.version;
    }
  }
  // Lines this core holds come at the rate of their reuse distance; a range that takes lines from
  // another core is charged by the transfer instead (below), its footprint its own.
  const double distance = reuse_distance(ctx, s, first, last, access.offset, bytes, made_now);
  const auto split = costs.copy_split_at(bytes, 2.0 * static_cast<double>(bytes) +
                                                    (transfers + taken_back == 0 ? distance : 0.0));
  Cycles byte_cycles = 0;
  for (const auto& part : split) byte_cycles += part.second;
  auto charge_split = [&] { // each level's share under its own rate's name
    for (const auto& [primitive, cycles] : split)
      if (cycles > 0) ctx.charge(activity, primitive, cycles);
  };
  // A word: each foreign line is a transfer's latency. A store to a line others only read is not
  // charged: the store buffer hides taking the line back.
  if (bytes <= kCacheLineBytes || transfers + taken_back == 0) {
    if (transfers)
      ctx.charge(activity, Primitive::cache_line_transfer,
                 costs.cycles(Primitive::cache_line_transfer) * transfers);
    charge_split();
    return;
  }
  // A range streams: the hardware prefetcher overlaps the line transfers, so the range pays one
  // transfer's latency, and its remote lines come at the rate of lines in another core's cache
  // (copy_bytes_per_cycle_remote through the shared last-level cache, memory's beyond it) where
  // that is slower than this core's rate for the footprint: the difference is booked under the
  // remote rate, and under the uncached one for the part beyond the remote rate.
  charge_split();
  const auto remote = static_cast<double>(std::min(bytes, (transfers + taken_back) * kCacheLineBytes));
  const double local = std::floor(static_cast<double>(byte_cycles) * remote / static_cast<double>(bytes));
  charge_from_other_core(ctx, activity, remote, local, 2.0 * static_cast<double>(bytes));
}

namespace {
// Where a store goes: the segment's own page (a private view's copy, made by charge_touch).
std::uint8_t* byte_at(const Segment& segment, std::uint64_t offset) {
  auto it = segment.pages.find(offset / kPageBytes);
  return it == segment.pages.end() ? nullptr : it->second.get() + offset % kPageBytes;
}
// What a load reads: the own page, else a private view's object.
const std::uint8_t* read_byte_at(const Segment& segment, std::uint64_t offset) {
  if (const std::uint8_t* b = byte_at(segment, offset)) return b;
  return segment.backing ? byte_at(*segment.backing, offset) : nullptr;
}
} // namespace

std::int64_t peek_word(const Segment& segment, std::uint64_t offset) {
  std::uint64_t v = 0;
  for (unsigned i = 0; i < 8; ++i)
    if (const std::uint8_t* b = read_byte_at(segment, offset + i)) v |= std::uint64_t{*b} << (8 * i);
  return static_cast<std::int64_t>(v);
}

void poke_word(OpContext& ctx, Segment& segment, std::uint64_t offset, std::int64_t value) {
  auto v = static_cast<std::uint64_t>(value);
  for (unsigned i = 0; i < 8; ++i)
    if (std::uint8_t* b = byte_at(segment, offset + i)) *b = static_cast<std::uint8_t>(v >> (8 * i));
  ctx.kernel.ipc<ShmState>().stored(ctx, segment, offset, 8);
}

void write_bytes(OpContext& ctx, Segment& segment, std::uint64_t offset, const std::string& text,
                 std::uint64_t bytes) {
  for (std::uint64_t i = 0; i < bytes; ++i)
    if (std::uint8_t* b = byte_at(segment, offset + i))
      *b = i < text.size() ? static_cast<std::uint8_t>(text[i]) : 0;
  ctx.kernel.ipc<ShmState>().stored(ctx, segment, offset, bytes);
}

std::string read_text(const Segment& segment, std::uint64_t offset, std::uint64_t bytes) {
  std::string text;
  for (std::uint64_t i = 0; i < bytes; ++i) {
    const std::uint8_t* b = read_byte_at(segment, offset + i);
    if (!b || *b == 0) break;
    text += static_cast<char>(*b);
  }
  return text;
}

bool stuck_spinning(const Kernel& kernel, const ShmState& state) {
  for (const auto& t : kernel.threads()) {
    if (t.state == ThreadState::Exited) continue;
    if (t.process->killed_by) return false;
    if (t.state == ThreadState::Blocked && !t.timer_armed) continue;
    if (state.is_spinning(t)) continue;
    return false;
  }
  return true;
}

// ---- Op fields --------------------------------------------------------------------------------

IntRef read_int_ref(const json& f, const std::string& field, const std::string& path, CompileContext& ctx) {
  return read_int_or_variable(f, field, path, ctx,
                              "a whole number or the name of a script variable that holds one");
}

ParamSpec int_ref_param(const std::string& name, const std::string& what, json default_value) {
  return {name, ParamType::Scalar, std::move(default_value), "",
          what + ": a whole number or a script variable"};
}

ParamSpec map_param() {
  return {"map", ParamType::String, nullptr, "",
          "the mapping, by the name shmat or mmap gave it (\"as\"); an unmapped name is SIGSEGV"};
}

std::string read_into_var(const json& f, const std::string& field, const std::string& path,
                          CompileContext& ctx) {
  return read_into_variable(f, field, path, ctx);
}

namespace {

// A mapping name given by "as" (shmat, mmap): a descriptor-like name.
std::string read_map_name(const json& f, const std::string& field, const std::string& path,
                          const CompileContext& ctx) {
  auto name = f.at(field).get<std::string>();
  if (!valid_variable(name))
    fail_at(ctx.read.file, join_path(path, field),
            "invalid mapping name \"" + name + "\"; use letters, digits, _ and .");
  return name;
}

std::vector<std::string> read_flag_names(const json& f, const std::string& field, const std::string& path,
                                         const CompileContext& ctx,
                                         const std::vector<std::string>& accepted) {
  std::vector<std::string> flags;
  const json& list = f.at(field);
  for (std::size_t i = 0; i < list.size(); ++i) {
    std::string where = join_path(join_path(path, field), i);
    std::string name = list[i].is_string() ? list[i].get<std::string>() : list[i].dump();
    if (!list[i].is_string() || std::find(accepted.begin(), accepted.end(), name) == accepted.end())
      fail_at(ctx.read.file, where,
              "unknown flag " + list[i].dump() + did_you_mean(name, accepted) +
                  "; accepted: " + join_list(accepted));
    flags.push_back(name);
  }
  return flags;
}
bool has(const std::vector<std::string>& flags, const char* name) {
  return std::find(flags.begin(), flags.end(), name) != flags.end();
}
ParamSpec flag_list_param(const std::string& name, const std::vector<std::string>& accepted,
                          json def = json::array()) {
  return {name, ParamType::StringList, std::move(def), "flag names", "a list of: " + join_list(accepted)};
}

// shmget's key: a number, "0x1234", "IPC_PRIVATE", or a variable (ftok's into).
IntRef read_key(const json& f, const std::string& path, CompileContext& ctx) {
  const json& value = f.at("key");
  if (value.is_string()) {
    auto text = value.get<std::string>();
    if (text == "IPC_PRIVATE") return {0, {}};
    if (auto hex = parse_hex(text)) return {*hex, {}};
  }
  return read_int_ref(f, "key", path, ctx);
}

// ---- Memory ops (user space: no system call) ---------------------------------------------------

enum class MemKind : std::uint8_t { Load, Store, Read, Write, AtomicLoad, AtomicStore, Cas, Add, Xchg };

class MemOp : public Op {
public:
  MemOp(std::uint16_t activity, MemKind kind, std::string map, IntRef offset, IntRef value, IntRef desired,
        std::uint64_t bytes, std::string text, std::string into)
      : Op(activity), kind_(kind), map_(std::move(map)), offset_(std::move(offset)), value_(std::move(value)),
        desired_(std::move(desired)), bytes_(bytes), text_(std::move(text)), into_(std::move(into)) {}
  Step execute(OpContext& ctx) const override {
    std::int64_t offset = 0, value = 0, desired = 0;
    const char* name = activity_names()[activity].c_str();
    if (!offset_.resolve(ctx, offset, name) || !value_.resolve(ctx, value, name) ||
        !desired_.resolve(ctx, desired, name))
      return Step::Exit;
    const bool ranged = kind_ == MemKind::Read || kind_ == MemKind::Write;
    const std::uint64_t bytes = ranged ? bytes_ : 8;
    const bool writes = kind_ != MemKind::Load && kind_ != MemKind::Read && kind_ != MemKind::AtomicLoad;
    ctx.sync(); // the memory is shared: this core's clock reaches the access first
    auto access = user_access(ctx, map_, offset, bytes, writes, activity);
    if (!access) return Step::Exit;
    charge_touch(ctx, *access, bytes, writes, activity);
    // A locked instruction (lock cmpxchg, lock xadd, xchg; a sequentially consistent store is an
    // xchg on x86) drains the store buffer and holds the line: atomic_rmw on top of the access.
    if (kind_ == MemKind::AtomicStore || kind_ == MemKind::Cas || kind_ == MemKind::Add ||
        kind_ == MemKind::Xchg)
      ctx.charge(activity, Primitive::atomic_rmw);
    ctx.sync(); // the access takes effect once its cycles (a fault, a transfer) have passed
    Segment& segment = *access->attachment->segment;
    const std::uint64_t at = access->offset;
    auto& locals = ctx.thread.script_locals();
    switch (kind_) {
    case MemKind::Load:
    case MemKind::AtomicLoad:
      locals.set(into_, peek_word(segment, at));
      break;
    case MemKind::Store:
    case MemKind::AtomicStore:
      poke_word(ctx, segment, at, value);
      break;
    case MemKind::Read:
      if (!into_.empty()) locals.set(into_, read_text(segment, at, bytes));
      break;
    case MemKind::Write:
      write_bytes(ctx, segment, at, text_, bytes);
      break;
    case MemKind::Cas: {
      std::int64_t old = peek_word(segment, at);
      if (old == value) poke_word(ctx, segment, at, desired);
      locals.set(into_, old);
      break;
    }
    case MemKind::Add: {
      std::int64_t old = peek_word(segment, at);
      // Two's complement wrap-around, as the hardware adds.
      poke_word(
          ctx, segment, at,
          static_cast<std::int64_t>(static_cast<std::uint64_t>(old) + static_cast<std::uint64_t>(value)));
      if (!into_.empty()) locals.set(into_, old);
      break;
    }
    case MemKind::Xchg: {
      std::int64_t old = peek_word(segment, at);
      poke_word(ctx, segment, at, value);
      if (!into_.empty()) locals.set(into_, old);
      break;
    }
    }
    ++ctx.thread.pc;
    return Step::Continue;
  }

private:
  MemKind kind_;
  std::string map_;
  IntRef offset_, value_, desired_;
  std::uint64_t bytes_;
  std::string text_, into_;
};

ParamSpec offset_param() { return int_ref_param("offset", "byte offset in the mapping"); }
ParamSpec into_param(const std::string& what, bool optional) {
  ParamSpec spec{"into", ParamType::String, nullptr, "", what};
  if (optional) spec.default_note = "none";
  return spec;
}

struct MemDecl {
  const char* name;
  MemKind kind;
  const char* description;
};

const MemDecl kMemOps[] = {
    {"mem_load", MemKind::Load,
     "read the 8-byte word at an offset of a mapping into a variable (a plain load)"},
    {"mem_store", MemKind::Store,
     "write a whole number as the 8-byte word at an offset of a mapping (a plain store)"},
    {"mem_read", MemKind::Read,
     "read a byte range of a mapping (memcpy out of it); INTO gets its text up to the first zero byte"},
    {"mem_write", MemKind::Write, "write a byte range of a mapping (memcpy into it): `text`, then zeros"},
    {"atomic_load", MemKind::AtomicLoad, "atomic load of a word (a plain load on x86)"},
    {"atomic_store", MemKind::AtomicStore, "sequentially consistent store of a word (xchg on x86)"},
    {"atomic_cas", MemKind::Cas,
     "compare-and-swap: if the word holds `expected`, store `desired`; INTO gets the old value either way"},
    {"atomic_add", MemKind::Add,
     "fetch-and-add (lock xadd): add `value` to the word; INTO gets the old value"},
    {"atomic_xchg", MemKind::Xchg, "exchange: store `value`; INTO gets the old value"},
};

OpDecl mem_decl(const MemDecl& d) {
  std::vector<ParamSpec> params{map_param(), offset_param()};
  switch (d.kind) {
  case MemKind::Load:
  case MemKind::AtomicLoad:
    params.push_back(into_param("the variable that gets the word", false));
    break;
  case MemKind::Store:
  case MemKind::AtomicStore:
    params.push_back(int_ref_param("value", "the word to store"));
    break;
  case MemKind::Read:
    params.push_back({"bytes", ParamType::Bytes, nullptr, "bytes", "how many bytes", 1.0, 1073741824.0});
    params.push_back(into_param("the variable that gets the text read (up to the first zero byte)", true));
    break;
  case MemKind::Write:
    params.push_back({"bytes", ParamType::Bytes, nullptr, "bytes", "how many bytes", 1.0, 1073741824.0});
    params.push_back({"text", ParamType::String, "", "",
                      "what the range starts with ({NAME} not filled in); zeros follow"});
    break;
  case MemKind::Cas:
    params.push_back(int_ref_param("expected", "the value the word must hold"));
    params.push_back(int_ref_param("desired", "the value stored if it does"));
    params.push_back(into_param("the variable that gets the word's old value", false));
    break;
  case MemKind::Add:
  case MemKind::Xchg:
    params.push_back(int_ref_param("value", d.kind == MemKind::Add ? "what to add" : "the word to store"));
    params.push_back(into_param("the variable that gets the word's old value", true));
    break;
  }
  const MemKind kind = d.kind;
  return {d.name,
          d.description,
          {std::string(d.name) + " op", "", params},
          [kind](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
            auto map = f.at("map").get<std::string>();
            IntRef offset = read_int_ref(f, "offset", path, ctx);
            IntRef value, desired;
            std::uint64_t bytes = 0;
            std::string text, into;
            if (f.contains("value")) value = read_int_ref(f, "value", path, ctx);
            if (f.contains("expected")) value = read_int_ref(f, "expected", path, ctx);
            if (f.contains("desired")) desired = read_int_ref(f, "desired", path, ctx);
            if (f.contains("bytes")) bytes = read_bytes(f.at("bytes"));
            if (f.contains("text")) text = f.at("text").get<std::string>();
            if (f.contains("into")) into = read_into_var(f, "into", path, ctx);
            if (kind == MemKind::Write && text.size() > bytes)
              fail_at(ctx.read.file, join_path(path, "text"),
                      "the text is " + std::to_string(text.size()) + " bytes, longer than \"bytes\" (" +
                          std::to_string(bytes) + "); raise \"bytes\" or shorten the text");
            p.ops.push_back(std::make_unique<MemOp>(a, kind, map, offset, value, desired, bytes, text, into));
          }};
}

struct MemRegistrars {
  MemRegistrars() {
    for (const auto& d : kMemOps) registrars.emplace_back(mem_decl(d));
  }
  std::vector<OpRegistrar> registrars;
};
const MemRegistrars register_mem_ops_now;

// ---- Busy polling -----------------------------------------------------------------------------

// A spin is one long compute: the thread burns its core (user time) until a store to its word,
// its slice's end or a preemption stops it, and then looks at the word again. kSpinChunk bounds one
// compute; SpinAgainOp (compiled right after) sends a spin that used it all back to look again.
constexpr Cycles kSpinChunk = Cycles{1} << 40;

struct SpinCondition {
  enum class Cmp : std::uint8_t { Eq, Ne, Lt, Le, Gt, Ge } cmp = Cmp::Eq;
  IntRef value;
  std::string text;
  bool holds(std::int64_t word, std::int64_t v) const {
    switch (cmp) {
    case Cmp::Eq:
      return word == v;
    case Cmp::Ne:
      return word != v;
    case Cmp::Lt:
      return word < v;
    case Cmp::Le:
      return word <= v;
    case Cmp::Gt:
      return word > v;
    case Cmp::Ge:
      return word >= v;
    }
    return false;
  }
};

class SpinOp : public Op {
public:
  SpinOp(std::uint16_t activity, std::string map, IntRef offset, SpinCondition cond, std::string into)
      : Op(activity), map_(std::move(map)), offset_(std::move(offset)), cond_(std::move(cond)),
        into_(std::move(into)) {}
  Step execute(OpContext& ctx) const override {
    Thread& thread = ctx.thread;
    std::int64_t offset = 0, value = 0;
    if (!offset_.resolve(ctx, offset, "spin") || !cond_.value.resolve(ctx, value, "spin")) return Step::Exit;
    ShmState& state = ctx.kernel.ipc<ShmState>();
    ctx.sync();
    auto access = user_access(ctx, map_, offset, 8, false, activity);
    if (!access) return Step::Exit;
    charge_touch(ctx, *access, 8, false, activity);
    ctx.sync(); // the word is read once the access's cycles have passed
    Segment& segment = *access->attachment->segment;
    std::int64_t word = peek_word(segment, access->offset);
    if (!cond_.holds(word, value)) {
      state.stop_spinning(thread);
      thread.compute_left = 0;
      if (!into_.empty()) thread.script_locals().set(into_, word);
      thread.pc += 2; // past SpinAgainOp
      return Step::Continue;
    }
    state.spinning(thread, segment, access->offset);
    if (stuck_spinning(ctx.kernel, state)) {
      ctx.kernel.abort_run(thread, "livelock: every thread spins on a word no other thread will store to, or "
                                   "sleeps with nothing left to wake it (spin on " +
                                       map_ + " offset " + std::to_string(offset) + " while the word " +
                                       cond_.text + ", and it is " + std::to_string(word) + ")");
      return Step::Exit;
    }
    thread.compute_left = kSpinChunk;
    ctx.compute = kSpinChunk;
    return Step::Compute;
  }

private:
  std::string map_;
  IntRef offset_;
  SpinCondition cond_;
  std::string into_;
};

class SpinAgainOp : public Op {
public:
  using Op::Op;
  Step execute(OpContext& ctx) const override {
    --ctx.thread.pc;
    return Step::Continue;
  }
};

SpinCondition parse_spin_condition(const json& f, const std::string& path, CompileContext& ctx) {
  auto text = f.at("while").get<std::string>();
  std::string where = join_path(path, "while");
  auto bad = [&](const std::string& why) {
    fail_at(ctx.read.file, where,
            "invalid condition \"" + text + "\": " + why +
                "; expected OP VALUE with OP one of == != < <= > >= and VALUE a whole number or a variable, "
                "such as "
                "\"== next\" (spin while the word equals next)");
  };
  auto space = text.find(' ');
  if (space == std::string::npos) bad("not two words");
  std::string op = text.substr(0, space), rest = text.substr(space + 1);
  while (!rest.empty() && rest.front() == ' ') rest.erase(rest.begin());
  while (!rest.empty() && rest.back() == ' ') rest.pop_back();
  static const std::vector<std::pair<std::string, SpinCondition::Cmp>> ops{
      {"==", SpinCondition::Cmp::Eq}, {"!=", SpinCondition::Cmp::Ne}, {"<", SpinCondition::Cmp::Lt},
      {"<=", SpinCondition::Cmp::Le}, {">", SpinCondition::Cmp::Gt},  {">=", SpinCondition::Cmp::Ge}};
  SpinCondition c;
  c.text = text;
  bool found = false;
  for (const auto& [name, cmp] : ops)
    if (op == name) c.cmp = cmp, found = true;
  if (!found) bad("unknown comparison \"" + op + "\"");
  if (rest.empty() || rest.find(' ') != std::string::npos) bad("VALUE must be one word");
  std::int64_t number = 0;
  bool negative = rest[0] == '-';
  std::string digits = negative ? rest.substr(1) : rest;
  if (!digits.empty() &&
      std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    try {
      number = std::stoll(rest);
    } catch (const std::exception&) {
      bad("number out of range");
    }
    c.value = {number, {}};
  } else if (valid_variable_not_number(rest)) {
    ctx.used.push_back({rest, where});
    c.value = {0, VarRef(rest)};
  } else {
    bad("\"" + rest + "\" is neither a number nor a variable name");
  }
  return c;
}

const OpRegistrar register_spin_op(
    {"spin",
     "busy-wait while the word at an offset of a mapping satisfies a condition: the thread burns its core "
     "(user "
     "time) until a store changes the word, its slice ends or it is preempted, then looks again",
     {"spin op",
      "",
      {map_param(),
       offset_param(),
       {"while", ParamType::String, nullptr, "",
        "OP VALUE: spin while the word OP VALUE holds, e.g. \"== next\" (OP: == != < <= > >=; VALUE: a "
        "number or a "
        "variable)"},
       into_param("the variable that gets the word's value that ended the spin", true)}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto map = f.at("map").get<std::string>();
       IntRef offset = read_int_ref(f, "offset", path, ctx);
       SpinCondition cond = parse_spin_condition(f, path, ctx);
       std::string into = f.contains("into") ? read_into_var(f, "into", path, ctx) : "";
       p.ops.push_back(std::make_unique<SpinOp>(a, map, offset, std::move(cond), into));
       p.ops.push_back(std::make_unique<SpinAgainOp>(a));
     }});

// ---- System V shared memory --------------------------------------------------------------------

ParamSpec shmid_param() { return int_ref_param("shmid", "the segment's id (shmget's into)"); }

class ShmgetOp : public SyscallOp {
public:
  ShmgetOp(std::uint16_t activity, IntRef key, IntRef size, bool creat, bool excl, std::uint32_t mode,
           std::string into)
      : SyscallOp(activity, {}), key_(std::move(key)), size_(std::move(size)), creat_(creat), excl_(excl),
        mode_(mode), into_(std::move(into)) {}
  IoStatus call(OpContext& ctx) const override {
    std::int64_t raw = 0, size = 0;
    if (!key_.resolve(ctx, raw, "shmget") || !size_.resolve(ctx, size, "shmget")) return IoStatus::Done;
    auto key = static_cast<std::uint32_t>(raw);
    ctx.sync();
    ShmState& state = ctx.kernel.ipc<ShmState>();
    const Process& process = *ctx.thread.process;
    ShmSegment* s = key == 0 ? nullptr : state.find_key(key);
    auto usize = static_cast<std::uint64_t>(size); // size_t: a negative size is huge
    if (s) { // ipcget_public(): EEXIST, then shm_more_checks() (EINVAL), then ipcperms() (EACCES)
      if (creat_ && excl_) return fail_call(ctx, activity, EEXIST);
      if (s->segsz < usize) return fail_call(ctx, activity, EINVAL);
      if (!ipcperms(*s, process, mode_)) return fail_call(ctx, activity, EACCES);
    } else { // newseg()
      if (key != 0 && !creat_) return fail_call(ctx, activity, ENOENT);
      if (usize < kShmMin || usize > kShmMax) return fail_call(ctx, activity, EINVAL);
      if (state.segments() >= kShmMni || !state.reserve(0, usize)) return fail_call(ctx, activity, ENOSPC);
      if (!ctx.kernel.new_ipc_object(ctx, "a System V shared memory segment")) {
        state.release(usize);
        return fail_call(ctx, activity, ENOSPC); // the run stops
      }
      s = state.create(key, process, mode_, usize, ctx.now());
      if (!s) {
        state.release(usize);
        return fail_call(ctx, activity, ENOSPC);
      }
    }
    ctx.thread.script_locals().set(into_, s->id);
    ctx.succeed(s->id);
    return IoStatus::Done;
  }

private:
  IntRef key_, size_;
  bool creat_, excl_;
  std::uint32_t mode_;
  std::string into_;
};

class ShmatOp : public SyscallOp {
public:
  ShmatOp(std::uint16_t activity, IntRef shmid, std::string as, bool rdonly)
      : SyscallOp(activity, {}), shmid_(std::move(shmid)), as_(as), rdonly_(rdonly) {}
  IoStatus call(OpContext& ctx) const override {
    std::int64_t id = 0;
    if (!shmid_.resolve(ctx, id, "shmat")) return IoStatus::Done;
    ctx.sync();
    ShmState& state = ctx.kernel.ipc<ShmState>();
    const Process& process = *ctx.thread.process;
    ShmSegment* s = state.find_id(id);
    if (!s) return fail_call(ctx, activity, EINVAL);
    // Linux lets a segment marked for removal (IPC_RMID, still attached) be attached by its id.
    if (!ipcperms(*s, process, rdonly_ ? 0444 : 0666)) return fail_call(ctx, activity, EACCES);
    if (state.find_mapping(*ctx.thread.space, as_)) state.unmap(*ctx.thread.space, as_, process, ctx.now());
    Attachment& a = state.map(*ctx.thread.space, as_, s->memory, s->segsz, !rdonly_, true, s->id);
    ++s->nattch;
    s->atime = ctx.now();
    s->lpid = process.pid;
    ctx.succeed(static_cast<std::int64_t>(a.address));
    return IoStatus::Done;
  }

private:
  IntRef shmid_;
  std::string as_;
  bool rdonly_;
};

// shmdt and munmap: the mapping named `map` goes. shmdt of a name that is no System V attachment
// is EINVAL; munmap of a name not mapped succeeds, as munmap of an unmapped range does.
class UnmapOp : public SyscallOp {
public:
  UnmapOp(std::uint16_t activity, std::string map, bool shmdt)
      : SyscallOp(activity, {}), map_(std::move(map)), shmdt_(shmdt) {}
  IoStatus call(OpContext& ctx) const override {
    ctx.sync();
    ShmState& state = ctx.kernel.ipc<ShmState>();
    Attachment* a = state.find_mapping(*ctx.thread.space, map_);
    if (shmdt_ && (!a || a->shmid < 0)) return fail_call(ctx, activity, EINVAL);
    if (a) state.unmap(*ctx.thread.space, map_, *ctx.thread.process, ctx.now());
    ctx.succeed(0);
    return IoStatus::Done;
  }

private:
  std::string map_;
  bool shmdt_;
};

enum class ShmCmd : std::uint8_t { Stat, Set, Rmid };

const std::vector<std::string> kShmStatFields{"segsz", "nattch", "cpid", "lpid", "atime", "dtime", "ctime",
                                              "uid",   "gid",    "cuid", "cgid", "mode",  "perms"};

class ShmctlOp : public SyscallOp {
public:
  ShmctlOp(std::uint16_t activity, IntRef shmid, ShmCmd cmd, std::string into, IpcSetOwner owner)
      : SyscallOp(activity, {}), shmid_(std::move(shmid)), cmd_(cmd), into_(std::move(into)), owner_(owner) {}
  IoStatus call(OpContext& ctx) const override {
    std::int64_t id = 0;
    if (!shmid_.resolve(ctx, id, "shmctl")) return IoStatus::Done;
    if (cmd_ == ShmCmd::Set) charge_copy(ctx, activity, kShmidDsBytes); // copy_shmid_from_user, first
    ctx.sync();
    ShmState& state = ctx.kernel.ipc<ShmState>();
    const Process& process = *ctx.thread.process;
    ShmSegment* s = state.find_id(id);
    if (!s) return fail_call(ctx, activity, EINVAL);
    const std::uint32_t uid = process.spec->uid;
    const bool owner = uid == 0 || uid == s->uid || uid == s->cuid;
    switch (cmd_) {
    case ShmCmd::Stat: {
      if (!ipcperms(*s, process, 0444)) return fail_call(ctx, activity, EACCES);
      auto& locals = ctx.thread.script_locals();
      auto set = [&](const char* field, std::int64_t v) { locals.set(into_ + "." + field, v); };
      set("segsz", static_cast<std::int64_t>(s->segsz));
      set("nattch", static_cast<std::int64_t>(s->nattch));
      set("cpid", s->cpid);
      set("lpid", s->lpid);
      set("atime", s->atime ? state.ns(s->atime) : 0);
      set("dtime", s->dtime ? state.ns(s->dtime) : 0);
      set("ctime", state.ns(s->ctime));
      set("uid", s->uid);
      set("gid", s->gid);
      set("cuid", s->cuid);
      set("cgid", s->cgid);
      set("mode", s->mode);
      locals.set(into_ + ".perms", octal(s->mode));
      charge_copy(ctx, activity, kShmidDsBytes);
      break;
    }
    case ShmCmd::Set:
      if (!owner) return fail_call(ctx, activity, EPERM);
      owner_.apply(*s);
      s->ctime = ctx.now();
      break;
    case ShmCmd::Rmid: // do_shm_rmid(): gone now if unattached, else marked (and its key freed)
      if (!owner) return fail_call(ctx, activity, EPERM);
      if (s->nattch == 0) {
        state.destroy(*s);
      } else {
        s->mode |= kShmDest;
        s->key = 0;
      }
      break;
    }
    ctx.succeed(0);
    return IoStatus::Done;
  }

private:
  IntRef shmid_;
  ShmCmd cmd_;
  std::string into_;
  IpcSetOwner owner_;
};

// ---- POSIX shared memory -----------------------------------------------------------------------

// shm_open's name: "/name", one component (glibc's __shm_get_name: EINVAL otherwise), at most
// NAME_MAX characters after the slash (ENAMETOOLONG). Checked at load time.
void check_shm_name(const std::string& name, const std::string& where, CompileContext& ctx) {
  if (name.size() < 2 || name[0] != '/' || name.find('/', 1) != std::string::npos)
    fail_at(ctx.read.file, where,
            "invalid name \"" + name +
                "\"; expected \"/name\": a slash, then a name without slashes (shm_open "
                "gives EINVAL otherwise)");
  if (name.size() - 1 > kNameMax)
    fail_at(ctx.read.file, where,
            "name \"" + name.substr(0, 20) + "...\" is longer than NAME_MAX (255) after the slash");
  check_template(name, where, ctx); // {pid}, {index}, variables: filled, and checked again, at the call
}

class ShmOpenOp : public SyscallOp {
public:
  ShmOpenOp(std::uint16_t activity, std::string name, bool rdwr, bool creat, bool excl, bool trunc,
            std::uint32_t mode, std::string fd)
      : SyscallOp(activity, {}), name_(std::move(name)), rdwr_(rdwr), creat_(creat), excl_(excl),
        trunc_(trunc), mode_(mode), fd_(fd) {}
  IoStatus call(OpContext& ctx) const override {
    const CallName filled = call_name(name_, NameKind::ShmOpen, ctx, "shm_open", "name");
    if (!filled.ok()) return filled.fail(ctx, activity);
    const std::string& name = filled.name;
    ctx.sync();
    ShmState& state = ctx.kernel.ipc<ShmState>();
    const Process& process = *ctx.thread.process;
    auto it = state.posix.find(name);
    std::shared_ptr<PosixShm> object;
    if (it != state.posix.end()) {
      if (creat_ && excl_) return fail_call(ctx, activity, EEXIST);
      object = it->second;
      // may_open(): read, and write for O_RDWR or O_TRUNC.
      std::uint32_t want = 0444 | (rdwr_ || trunc_ ? 0222 : 0);
      if (!ipc_permitted(object->mode, object->uid, object->gid, object->uid, object->gid, process, want))
        return fail_call(ctx, activity, EACCES);
      if (trunc_ && object->memory->size > 0) {
        state.release(object->memory->size);
        object->memory->size = 0;
        object->memory->pages.clear();
        object->memory->lines.clear();
        object->memory->seen.clear();
      }
    } else {
      if (!creat_) return fail_call(ctx, activity, ENOENT);
      if (!ctx.kernel.new_ipc_object(ctx, "a POSIX shared memory object"))
        return fail_call(ctx, activity, ENFILE); // the run stops
      object = std::make_shared<PosixShm>();
      object->name = name;
      object->uid = process.spec->uid;
      object->gid = process.spec->gid;
      object->mode = mode_ & 0777;
      object->memory = state.new_memory("posix shm " + name, 0);
      state.posix[name] = object;
    }
    install_descriptor(ctx, fd_, std::make_shared<ShmFile>(object, rdwr_), activity);
    ctx.succeed(0);
    return IoStatus::Done;
  }

private:
  std::string name_;
  bool rdwr_, creat_, excl_, trunc_;
  std::uint32_t mode_;
  Symbol fd_;
};

class FtruncateOp : public SyscallOp {
public:
  FtruncateOp(std::uint16_t activity, std::string fd, IntRef length)
      : SyscallOp(activity, {}), fd_(fd), length_(std::move(length)) {}
  IoStatus call(OpContext& ctx) const override {
    std::int64_t length = 0;
    if (!length_.resolve(ctx, length, "ftruncate")) return IoStatus::Done;
    ctx.sync();
    OpenFile* file = lookup_descriptor(ctx, fd_);
    if (!file) return fail_call(ctx, activity, EBADF);
    auto* shm = dynamic_cast<ShmFile*>(file);
    if (!shm || !shm->writable || length < 0) return fail_call(ctx, activity, EINVAL);
    ShmState& state = ctx.kernel.ipc<ShmState>();
    Segment& memory = *shm->object->memory;
    auto size = static_cast<std::uint64_t>(length);
    if (!state.reserve(memory.size, size)) return fail_call(ctx, activity, EFBIG);
    // Shrinking drops the pages past the new end (a later access there raises SIGBUS); growing
    // adds holes that read as zeros.
    for (auto it = memory.pages.begin(); it != memory.pages.end();)
      it = it->first >= pages_of(size) ? memory.pages.erase(it) : std::next(it);
    if (size < memory.size) state.zap_from(memory, pages_of(size));
    if (size < memory.size && size % kPageBytes)
      if (auto it = memory.pages.find(size / kPageBytes); it != memory.pages.end())
        std::memset(it->second.get() + size % kPageBytes, 0, kPageBytes - size % kPageBytes);
    memory.size = size;
    ctx.succeed(0);
    return IoStatus::Done;
  }

private:
  Symbol fd_;
  IntRef length_;
};

class MmapOp : public SyscallOp {
public:
  MmapOp(std::uint16_t activity, std::string fd, IntRef length, bool shared, bool write, std::string as)
      : SyscallOp(activity, {}), fd_(fd), length_(std::move(length)), shared_(shared), write_(write),
        as_(as) {}
  IoStatus call(OpContext& ctx) const override {
    std::int64_t length = 0;
    if (!length_.resolve(ctx, length, "mmap")) return IoStatus::Done;
    ctx.sync();
    ShmState& state = ctx.kernel.ipc<ShmState>();
    if (length <= 0) return fail_call(ctx, activity, EINVAL);
    auto bytes = static_cast<std::uint64_t>(length);
    std::shared_ptr<Segment> memory;
    if (fd_.empty()) { // MAP_ANONYMOUS: a fresh zero-filled segment (shmem for MAP_SHARED)
      if (!state.reserve(0, bytes)) return fail_call(ctx, activity, ENOMEM);
      if (!ctx.kernel.new_ipc_object(ctx, "an anonymous mapping")) {
        state.release(bytes);
        return fail_call(ctx, activity, ENOMEM); // the run stops
      }
      memory = state.new_memory("anonymous " + std::to_string(state.next_anonymous()), bytes);
      memory->anonymous = true;
    } else {
      OpenFile* file = lookup_descriptor(ctx, fd_);
      if (!file) return fail_call(ctx, activity, EBADF);
      auto* shm = dynamic_cast<ShmFile*>(file);
      if (!shm) return fail_call(ctx, activity, ENODEV); // a pipe or a socket cannot be mapped
      // A private mapping's writes never reach the object: a read-only descriptor will do.
      if (write_ && shared_ && !shm->writable) return fail_call(ctx, activity, EACCES);
      memory = shm->object->memory;
      if (!shared_) { // MAP_PRIVATE: a view of its own, reading the object until it writes a page
        std::shared_ptr<Segment> view = state.new_memory(memory->name + " (private)", memory->size);
        view->backing = std::move(memory);
        memory = std::move(view);
      }
    }
    if (state.find_mapping(*ctx.thread.space, as_))
      state.unmap(*ctx.thread.space, as_, *ctx.thread.process, ctx.now());
    Attachment& a = state.map(*ctx.thread.space, as_, memory, bytes, write_, shared_, -1);
    ctx.succeed(static_cast<std::int64_t>(a.address));
    return IoStatus::Done;
  }

private:
  Symbol fd_;
  IntRef length_;
  bool shared_, write_;
  std::string as_;
};

class ShmUnlinkOp : public SyscallOp {
public:
  ShmUnlinkOp(std::uint16_t activity, std::string name) : SyscallOp(activity, {}), name_(std::move(name)) {}
  IoStatus call(OpContext& ctx) const override {
    const CallName filled = call_name(name_, NameKind::ShmUnlink, ctx, "shm_unlink", "name");
    if (!filled.ok()) return filled.fail(ctx, activity);
    const std::string& name = filled.name;
    ctx.sync();
    ShmState& state = ctx.kernel.ipc<ShmState>();
    auto it = state.posix.find(name);
    if (it == state.posix.end()) return fail_call(ctx, activity, ENOENT);
    std::uint32_t uid = ctx.thread.process->spec->uid;
    if (uid != 0 && uid != it->second->uid)
      // /dev/shm is sticky (1777): unlink says EPERM, which glibc's shm_unlink reports as EACCES
      // (Linux 6.18 with glibc, measured).
      return fail_call(ctx, activity, EACCES);
    // The name goes; the memory lives on while a descriptor or a mapping holds it.
    state.release(it->second->memory->size); // the name's share of shmall (a guard, not Linux's accounting)
    state.posix.erase(it);
    ctx.succeed(0);
    return IoStatus::Done;
  }

private:
  std::string name_;
};

class IpcsShmOp : public SyscallOp {
public:
  explicit IpcsShmOp(std::uint16_t activity) : SyscallOp(activity, {}) {}
  IoStatus call(OpContext& ctx) const override {
    ctx.sync();
    for (auto& line : ctx.kernel.ipc<ShmState>().ipcs_lines()) ctx.kernel.print(ctx.now(), ctx.thread, line);
    ctx.succeed(0);
    return IoStatus::Done;
  }
};

const OpRegistrar register_ipcs_shm(
    {"ipcs_shm",
     "print the System V shared memory segments as `ipcs -m` does (key, shmid, owner, perms, bytes, nattch, "
     "status)",
     {"ipcs_shm op", "", {}},
     [](const json&, const std::string&, CompileContext&, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<IpcsShmOp>(a));
     }});

ParamSpec as_param() {
  return {"as", ParamType::String, nullptr, "",
          "the mapping's name: memory ops, shmdt and munmap use it (a mapping of that name already there is "
          "replaced)"};
}

const OpRegistrar register_shmget(
    {"shmget",
     "get (or create) a System V shared memory segment by key; {result} and INTO are its shmid",
     {"shmget op",
      "",
      {{"key", ParamType::Scalar, nullptr, "",
        "a whole number, \"0x1234\", \"IPC_PRIVATE\" (always a new segment), or a script variable (ftok's "
        "into)"},
       int_ref_param("bytes", "the segment's size (shm_segsz)"),
       flag_list_param("flags", {"IPC_CREAT", "IPC_EXCL"}),
       {"mode", ParamType::String, "0666", "",
        "permission bits of a new segment, octal; also what access is asked for"},
       into_param("variable for the shmid", false)}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       IntRef key = read_key(f, path, ctx);
       IntRef size = read_int_ref(f, "bytes", path, ctx);
       auto flags = read_flag_names(f, "flags", path, ctx, {"IPC_CREAT", "IPC_EXCL"});
       auto mode = read_mode(f, path, ctx);
       auto into = read_into_var(f, "into", path, ctx);
       p.ops.push_back(std::make_unique<ShmgetOp>(a, key, size, has(flags, "IPC_CREAT"),
                                                  has(flags, "IPC_EXCL"), mode, into));
     }});

const OpRegistrar register_shmat(
    {"shmat",
     "attach a System V segment to the process's address space under a name; {result} is its address",
     {"shmat op", "", {shmid_param(), as_param(), flag_list_param("flags", {"SHM_RDONLY"})}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       IntRef id = read_int_ref(f, "shmid", path, ctx);
       auto as = read_map_name(f, "as", path, ctx);
       auto flags = read_flag_names(f, "flags", path, ctx, {"SHM_RDONLY"});
       p.ops.push_back(std::make_unique<ShmatOp>(a, id, as, has(flags, "SHM_RDONLY")));
     }});

const OpRegistrar register_shmdt(
    {"shmdt",
     "detach a System V segment (by the name shmat gave it); IPC_RMID takes effect after the last detach",
     {"shmdt op", "", {map_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<UnmapOp>(a, read_map_name(f, "map", path, ctx), true));
     }});

const OpRegistrar register_shmctl(
    {"shmctl",
     "IPC_STAT a segment into variables, IPC_SET its uid/gid/mode, or IPC_RMID it (at once if unattached, "
     "else after "
     "the last detach)",
     {"shmctl op", "",
      with_ipc_set_owner(
          {shmid_param(),
           ipc_cmd_param({"IPC_STAT", "IPC_SET", "IPC_RMID"}),
           {"into",
            ParamType::String,
            nullptr,
            "",
            "IPC_STAT only: sets INTO.segsz, .nattch, .cpid, .lpid, .atime, .dtime, .ctime (ns), .uid, .gid, "
            ".cuid, .cgid, "
            ".mode (with SHM_DEST 01000 once removed), .perms (octal text)",
            std::nullopt,
            std::nullopt,
            {},
            "none"}})},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       IntRef id = read_int_ref(f, "shmid", path, ctx);
       auto name = f.at("cmd").get<std::string>();
       ShmCmd cmd = name == "IPC_STAT" ? ShmCmd::Stat : name == "IPC_SET" ? ShmCmd::Set : ShmCmd::Rmid;
       std::string into;
       if (cmd == ShmCmd::Stat) {
         if (!f.contains("into"))
           fail_at(ctx.read.file, join_path(path, "into"),
                   "IPC_STAT needs \"into\": the variable whose fields (INTO.segsz, ...) receive the "
                   "segment's state");
         into = read_into_var(f, "into", path, ctx);
         for (const auto& field : kShmStatFields) ctx.assigned.push_back(into + "." + field);
       } else if (f.contains("into")) {
         fail_at(ctx.read.file, join_path(path, "into"), "\"into\" goes with IPC_STAT only; drop it");
       }
       IpcSetOwner owner = read_ipc_set_owner(f, path, ctx, cmd == ShmCmd::Set);
       if (cmd == ShmCmd::Set && owner.empty())
         fail_at(ctx.read.file, path, "IPC_SET changes nothing; give at least one of uid, gid, mode");
       p.ops.push_back(std::make_unique<ShmctlOp>(a, id, cmd, into, owner));
     }});

const OpRegistrar register_shm_open(
    {"shm_open",
     "open (or create) a POSIX shared memory object \"/name\" as a descriptor; a new object is 0 bytes: "
     "ftruncate it",
     {"shm_open op",
      "",
      {{"name", ParamType::String, nullptr, "", "\"/name\""},
       flag_list_param("flags", {"O_RDONLY", "O_RDWR", "O_CREAT", "O_EXCL", "O_TRUNC"}, nullptr),
       {"mode", ParamType::String, "0600", "", "permission bits of a new object, octal"},
       {"fd", ParamType::String, nullptr, "", "the descriptor's name"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto name = f.at("name").get<std::string>();
       check_shm_name(name, join_path(path, "name"), ctx);
       auto flags =
           read_flag_names(f, "flags", path, ctx, {"O_RDONLY", "O_RDWR", "O_CREAT", "O_EXCL", "O_TRUNC"});
       if (has(flags, "O_RDONLY") == has(flags, "O_RDWR"))
         fail_at(ctx.read.file, join_path(path, "flags"),
                 "give exactly one access mode: \"O_RDONLY\" or \"O_RDWR\" (shm_open takes no O_WRONLY)");
       auto fd = f.at("fd").get<std::string>();
       p.ops.push_back(std::make_unique<ShmOpenOp>(a, name, has(flags, "O_RDWR"), has(flags, "O_CREAT"),
                                                   has(flags, "O_EXCL"), has(flags, "O_TRUNC"),
                                                   read_mode(f, path, ctx), fd));
     }});

const OpRegistrar register_ftruncate(
    {"ftruncate",
     "set the size of a POSIX shared memory object through its descriptor (opened O_RDWR)",
     {"ftruncate op",
      "",
      {{"fd", ParamType::String, nullptr, "", "the descriptor"}, int_ref_param("bytes", "the new size")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<FtruncateOp>(a, f.at("fd").get<std::string>(),
                                                     read_int_ref(f, "bytes", path, ctx)));
     }});

const OpRegistrar register_mmap(
    {"mmap",
     "map a POSIX shared memory object (fd) or anonymous memory (MAP_ANONYMOUS) under a name; {result} is "
     "its address",
     {"mmap op",
      "",
      {{"fd",
        ParamType::String,
        nullptr,
        "",
        "the object's descriptor; absent with MAP_ANONYMOUS",
        std::nullopt,
        std::nullopt,
        {},
        "none"},
       int_ref_param("bytes", "the mapping's length"),
       flag_list_param("flags", {"MAP_SHARED", "MAP_PRIVATE", "MAP_ANONYMOUS"}, nullptr),
       flag_list_param("prot", {"PROT_READ", "PROT_WRITE"}, json::array({"PROT_READ", "PROT_WRITE"})),
       as_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto flags = read_flag_names(f, "flags", path, ctx, {"MAP_SHARED", "MAP_PRIVATE", "MAP_ANONYMOUS"});
       auto prot = read_flag_names(f, "prot", path, ctx, {"PROT_READ", "PROT_WRITE"});
       if (has(flags, "MAP_SHARED") == has(flags, "MAP_PRIVATE"))
         fail_at(ctx.read.file, join_path(path, "flags"),
                 "give exactly one of \"MAP_SHARED\" and \"MAP_PRIVATE\" (mmap gives EINVAL otherwise)");
       bool anonymous = has(flags, "MAP_ANONYMOUS");
       if (anonymous == f.contains("fd"))
         fail_at(ctx.read.file, anonymous ? join_path(path, "fd") : join_path(path, "flags"),
                 anonymous
                     ? "MAP_ANONYMOUS maps no file: drop \"fd\""
                     : "give \"fd\" (a shm_open descriptor), or \"MAP_ANONYMOUS\" for anonymous memory");
       if (!has(prot, "PROT_READ"))
         fail_at(ctx.read.file, join_path(path, "prot"),
                 "mappings without PROT_READ are not modelled (x86 has no write-only pages); include "
                 "\"PROT_READ\"");
       std::string fd = anonymous ? "" : f.at("fd").get<std::string>();
       p.ops.push_back(std::make_unique<MmapOp>(a, fd, read_int_ref(f, "bytes", path, ctx),
                                                has(flags, "MAP_SHARED"), has(prot, "PROT_WRITE"),
                                                read_map_name(f, "as", path, ctx)));
     }});

const OpRegistrar register_munmap(
    {"munmap",
     "unmap a mapping by name (a name not mapped is no error, as munmap of an unmapped range is none)",
     {"munmap op", "", {map_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<UnmapOp>(a, read_map_name(f, "map", path, ctx), false));
     }});

const OpRegistrar register_shm_unlink(
    {"shm_unlink",
     "remove a POSIX shared memory object's name; its memory lives while mapped or open",
     {"shm_unlink op", "", {{"name", ParamType::String, nullptr, "", "\"/name\""}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto name = f.at("name").get<std::string>();
       check_shm_name(name, join_path(path, "name"), ctx);
       p.ops.push_back(std::make_unique<ShmUnlinkOp>(a, name));
     }});

} // namespace

} // namespace ipcsim
