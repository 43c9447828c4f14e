// The simulated file-system namespace: just enough of it for IPC. Paths name regular files (what
// ftok() stats), FIFOs (mkfifo) and socket files (bind); each entry has an inode number, an owner
// and a mode. Mechanisms attach their kernel object to the entry (a FIFO's pipe, a listening
// socket). Paths are plain strings: no directories are modelled.
#pragma once
#include "ipc.hpp"

#include <map>

namespace ipcsim {

enum class FileKind : std::uint8_t { Regular, Fifo, Socket };
const char* file_kind_name(FileKind kind);

struct FsEntry {
  std::string path;
  FileKind kind = FileKind::Regular;
  std::uint32_t inode = 0;
  std::uint32_t uid = 0, gid = 0;
  std::uint32_t mode = 0644;
  std::shared_ptr<void> object; // the mechanism's kernel object (a FIFO's pipe, a bound socket)
};

class FileSystem : public IpcState {
public:
  explicit FileSystem(Kernel&) {}
  // Device number of the one simulated file system: ftok() uses its low byte.
  static constexpr std::uint32_t kDevice = 0x01;
  // Inode numbers count up from here, so the first file created matches the material's ftok key
  // 0x27011c6c (project id 0x27, device 0x01, inode 0x1c6c).
  static constexpr std::uint32_t kFirstInode = 0x1c6c;

  FsEntry* find(const std::string& path);
  // Creates an entry; nullptr when the path exists (EEXIST).
  FsEntry* create(const std::string& path, FileKind kind, const Process& owner, std::uint32_t mode);
  // Removes the name (open objects live on); false when absent (ENOENT).
  bool unlink(const std::string& path);
  void list(std::vector<IpcTable>& tables) const override;

private:
  std::map<std::string, FsEntry> entries_;
  std::uint32_t next_inode_ = kFirstInode;
};

// Checks a path field at load time: absolute, no spaces, at most 107 characters (sun_path).
void check_path(const std::string& path, const std::string& where, CompileContext& ctx);
// The "path" field of an op that names a path, and the "mode" field of one that creates a file.
ParamSpec path_param(const std::string& what);
ParamSpec file_mode_param();
// Reads an octal "mode" field ("0666") at load time.
std::uint32_t read_mode(const json& fields, const std::string& op_path, const CompileContext& ctx);

} // namespace ipcsim
