// System V IPC ids and permissions (Linux's ipc/util.c), shared by the message queues
// (models/sysv_msg.cpp), the semaphore sets (models/sysv_sem.cpp) and the shared memory segments
// (models/shm.cpp): each kind has a table of its own in the IPC namespace, with the same id
// allocation, key lookup and permission check.
#pragma once
#include "ipc.hpp"
#include "kernel.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ipcsim {

// A key as ipcs prints it ("0x0000002a"), or unpadded as ftok's result reads ("0x2a").
inline std::string hex_key(std::uint32_t key, bool padded = true) {
  char buf[16];
  std::snprintf(buf, sizeof buf, padded ? "0x%08x" : "0x%x", key);
  return buf;
}
// An owner as ipcs prints it.
inline std::string owner_name(std::uint32_t uid) { return uid == 0 ? "root" : std::to_string(uid); }

inline constexpr std::int64_t kIpcMni = 32768;     // IPCMNI: an id is seq * IPCMNI + index
inline constexpr std::uint64_t kIpcSeqMax = 65535; // ipcid_seq_max(): INT_MAX / IPCMNI
inline constexpr std::size_t kIpcMinCycle = 64;    // ipc_min_cycle: RADIX_TREE_MAP_SIZE

// ipcperms(): whether `process` may access an object of `mode` owned by (uid, gid), created by
// (cuid, cgid), for `flag` (0400 read, 0200 write, as S_IRUGO / S_IWUGO ask them of each class).
// uid 0 has CAP_IPC_OWNER.
inline bool ipc_permitted(std::uint32_t mode, std::uint32_t uid, std::uint32_t gid, std::uint32_t cuid,
                          std::uint32_t cgid, const Process& process, std::uint32_t flag) {
  std::uint32_t caller_uid = process.spec->uid, caller_gid = process.spec->gid;
  std::uint32_t requested = (flag >> 6) | (flag >> 3) | flag;
  std::uint32_t granted = mode;
  if (caller_uid == cuid || caller_uid == uid)
    granted >>= 6;
  else if (caller_gid == cgid || caller_gid == gid)
    granted >>= 3;
  return !((requested & ~granted & 0007) && caller_uid != 0);
}
// The same for an object with kern_ipc_perm's fields (mode, uid, gid, cuid, cgid).
template <class T> bool ipcperms(const T& object, const Process& process, std::uint32_t flag) {
  return ipc_permitted(object.mode, object.uid, object.gid, object.cuid, object.cgid, process, flag);
}
// ipcctl_obtain_check's owner test: uid 0, the owner or the creator (IPC_SET, IPC_RMID).
template <class T> bool ipc_owner_or_root(const T& object, const Process& process) {
  std::uint32_t uid = process.spec->uid;
  return uid == 0 || uid == object.uid || uid == object.cuid;
}

// IPC_SET's owner fields (struct ipc_perm's uid, gid and mode), the same for msgctl, shmctl and
// semctl.
struct IpcSetOwner {
  std::optional<std::uint32_t> uid, gid, mode;
  bool empty() const { return !uid && !gid && !mode; }
  // ipc_update_perm(): the new owner, and the low nine mode bits (the kind's own bits stay).
  template <class T> void apply(T& object) const {
    if (uid) object.uid = *uid;
    if (gid) object.gid = *gid;
    if (mode) object.mode = (object.mode & ~0777u) | (*mode & 0777u);
  }
};
// A ctl op's "cmd" field: one of `commands`.
ParamSpec ipc_cmd_param(std::vector<std::string> commands);
// A ctl op's parameters with IPC_SET's "uid", "gid" and "mode" fields after them.
std::vector<ParamSpec> with_ipc_set_owner(std::vector<ParamSpec> params);
// Reads them at load time; each is refused (naming the field) unless `is_set` (the op's cmd is
// IPC_SET).
IpcSetOwner read_ipc_set_owner(const json& fields, const std::string& op_path, const CompileContext& ctx,
                               bool is_set);

// One kind's table of objects (T has `id`, `index` and `key`), by index: ipcs lists them in index
// order.
template <class T> class SysvIds {
public:
  // The first object (in index order) for which `pred` holds: ipc_findkey with its own rule.
  template <class Pred> T* find_if(Pred pred) const {
    for (const auto& [index, object] : slots_)
      if (pred(*object)) return object.get();
    return nullptr;
  }
  T* find_key(std::uint32_t key) const {
    return find_if([&](const T& object) { return object.key == key; });
  }
  // ipc_obtain_object_check(): the object at the id's index, if its seq is the id's (ipc_checkid).
  T* find_id(std::int64_t id) const {
    if (id < 0) return nullptr;
    auto it = slots_.find(static_cast<std::size_t>(id % kIpcMni));
    return it != slots_.end() && it->second->id == id ? it->second.get() : nullptr;
  }
  // ipc_addid() / ipc_idr_alloc() (Linux 5.1+): the new object is make(id, index), a
  // std::unique_ptr<T>; nullptr when no index is free. The index comes from idr_alloc_cyclic(0,
  // max_idx): the lowest free index from the one after the last allocation, wrapping around to 0
  // when none is free below max_idx = min(max(in_use * 3 / 2, 64), IPCMNI). The namespace's seq grows
  // when the index is not above the last one (the allocation wrapped); it goes back to 0 at
  // ipcid_seq_max(). The id is seq * IPCMNI + index.
  template <class Make> T* add(Make make) {
    const std::size_t max_idx =
        std::min(std::max(slots_.size() * 3 / 2, kIpcMinCycle), static_cast<std::size_t>(kIpcMni));
    auto lowest_free = [&](std::size_t from) -> std::optional<std::size_t> {
      for (std::size_t index = from; index < max_idx; ++index)
        if (!slots_.count(index)) return index;
      return std::nullopt;
    };
    auto found = lowest_free(next_idx_);
    if (!found && next_idx_ > 0) found = lowest_free(0);
    if (!found) return nullptr;
    const std::size_t index = *found;
    next_idx_ = index + 1; // idr->idr_next
    if (static_cast<std::int64_t>(index) <= last_idx_ && ++seq_ >= kIpcSeqMax) seq_ = 0;
    last_idx_ = static_cast<std::int64_t>(index);
    const std::int64_t id = static_cast<std::int64_t>(seq_) * kIpcMni + static_cast<std::int64_t>(index);
    auto& slot = slots_[index];
    slot = make(id, index);
    return slot.get();
  }
  // ipc_rmid(): the index is free again. A later object reaches it only after the allocation has
  // wrapped, with another seq, so the old id stays refused.
  void remove(std::size_t index) { slots_.erase(index); }
  // ipc_rmid() for a removal that wakes sleepers: the id is gone at once (no other core finds or
  // removes the object again), while the caller keeps the object alive through the wakes.
  std::unique_ptr<T> take(std::size_t index) {
    auto node = slots_.extract(index);
    return node ? std::move(node.mapped()) : nullptr;
  }
  std::size_t size() const { return slots_.size(); }
  bool empty() const { return slots_.empty(); }
  // Every object, in index order.
  const std::map<std::size_t, std::unique_ptr<T>>& objects() const { return slots_; }

private:
  std::map<std::size_t, std::unique_ptr<T>> slots_;
  std::size_t next_idx_ = 0;   // idr_alloc_cyclic's idr_next
  std::int64_t last_idx_ = -1; // ids->last_idx
  std::uint64_t seq_ = 0;      // ids->seq
};

} // namespace ipcsim
