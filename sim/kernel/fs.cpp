#include "fs.hpp"

#include "call_name.hpp"
#include "error.hpp"

#include <cstdio>

namespace ipcsim {

const char* file_kind_name(FileKind kind) {
  switch (kind) {
  case FileKind::Regular:
    return "file";
  case FileKind::Fifo:
    return "fifo";
  case FileKind::Socket:
    return "socket";
  }
  return "?";
}

FsEntry* FileSystem::find(const std::string& path) {
  auto it = entries_.find(path);
  return it == entries_.end() ? nullptr : &it->second;
}

FsEntry* FileSystem::create(const std::string& path, FileKind kind, const Process& owner,
                            std::uint32_t mode) {
  if (entries_.count(path)) return nullptr;
  FsEntry& entry = entries_[path];
  entry.path = path;
  entry.kind = kind;
  entry.inode = next_inode_++;
  entry.uid = owner.spec->uid;
  entry.gid = owner.spec->gid;
  entry.mode = mode;
  return &entry;
}

bool FileSystem::unlink(const std::string& path) { return entries_.erase(path) > 0; }

void FileSystem::list(std::vector<IpcTable>& tables) const {
  bool any = false;
  for (const auto& [path, entry] : entries_) any = any || entry.kind != FileKind::Regular;
  if (!any) return;
  IpcTable table{"FIFOs and socket files", {"path", "type", "inode", "owner", "perms"}, {}};
  for (const auto& [path, entry] : entries_) {
    if (entry.kind == FileKind::Regular) continue;
    char perms[8];
    std::snprintf(perms, sizeof perms, "%o", entry.mode);
    table.rows.push_back(
        {path, file_kind_name(entry.kind), std::to_string(entry.inode), std::to_string(entry.uid), perms});
  }
  tables.push_back(table);
}

void check_path(const std::string& path, const std::string& where, CompileContext& ctx) {
  if (path.empty() || path[0] != '/' || path.find(' ') != std::string::npos || path.size() > 107)
    fail_at(ctx.read.file, where,
            "invalid path \"" + path +
                "\"; expected an absolute path without spaces, at most 107 characters, "
                "such as \"/tmp/myfifo\"");
  const std::size_t last = path.rfind('/') + 1;
  if (last == path.size() || path.compare(last, std::string::npos, ".") == 0 ||
      path.compare(last, std::string::npos, "..") == 0)
    fail_at(ctx.read.file, where,
            "path \"" + path +
                "\" names a directory; the simulated file system has none (it holds FIFOs, sockets and "
                "regular files): give the path of a file, such as \"/tmp/myfifo\"");
  check_template(path, where, ctx); // its {NAME} placeholders must name variables
}

namespace {

// creat(path, mode): the regular file ftok() needs to exist.
class CreatOp : public SyscallOp {
public:
  CreatOp(std::uint16_t activity, std::string path, std::uint32_t mode)
      : SyscallOp(activity, {}), path_(std::move(path)), mode_(mode) {}
  IoStatus call(OpContext& ctx) const override {
    const CallName filled = call_name(path_, NameKind::Path, ctx, "creat", "path");
    if (!filled.ok()) return filled.fail(ctx, activity);
    const std::string& file_path = filled.name;
    FileSystem& fs = ctx.kernel.ipc<FileSystem>();
    if (FsEntry* existing = fs.find(file_path)) {
      // creat() truncates an existing regular file: same inode, success.
      if (existing->kind == FileKind::Regular) {
        ctx.succeed();
      } else {
        ctx.fail(activity, EACCES);
      }
      return IoStatus::Done;
    }
    fs.create(file_path, FileKind::Regular, *ctx.thread.process, mode_);
    ctx.succeed();
    return IoStatus::Done;
  }

private:
  std::string path_;
  std::uint32_t mode_;
};

class UnlinkOp : public SyscallOp {
public:
  UnlinkOp(std::uint16_t activity, std::string path) : SyscallOp(activity, {}), path_(std::move(path)) {}
  IoStatus call(OpContext& ctx) const override {
    const CallName filled = call_name(path_, NameKind::Path, ctx, "unlink", "path");
    if (!filled.ok()) return filled.fail(ctx, activity);
    if (ctx.kernel.ipc<FileSystem>().unlink(filled.name))
      ctx.succeed();
    else
      ctx.fail(activity, ENOENT);
    return IoStatus::Done;
  }

private:
  std::string path_;
};

} // namespace

ParamSpec path_param(const std::string& what) { return {"path", ParamType::String, nullptr, "", what}; }

ParamSpec file_mode_param() { return {"mode", ParamType::String, "0644", "", "permission bits, octal"}; }

std::uint32_t read_mode(const json& f, const std::string& path, const CompileContext& ctx) {
  const json& value = f.at("mode");
  if (value.is_string()) {
    const auto text = value.get<std::string>();
    std::uint32_t mode = 0;
    bool ok = !text.empty() && text.size() <= 4;
    for (char c : text) {
      ok = ok && c >= '0' && c <= '7';
      mode = mode * 8 + static_cast<std::uint32_t>(c - '0');
    }
    if (ok) return mode;
  }
  fail_at(ctx.read.file, join_path(path, "mode"),
          "invalid value " + value.dump() +
              "; expected permission bits in octal as a string, such as \"0666\"");
}

namespace {

const OpRegistrar register_creat_op(
    {"creat",
     "create a regular file (ftok() needs one to exist); an existing file is kept",
     {"creat op", "", {path_param("the file's path"), file_mode_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto file = f.at("path").get<std::string>();
       check_path(file, join_path(path, "path"), ctx);
       p.ops.push_back(std::make_unique<CreatOp>(a, file, read_mode(f, path, ctx)));
     }});

const OpRegistrar register_unlink_op(
    {"unlink",
     "remove a path (a file, FIFO or socket file); objects already open stay usable",
     {"unlink op", "", {path_param("the path to remove")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto file = f.at("path").get<std::string>();
       check_path(file, join_path(path, "path"), ctx);
       p.ops.push_back(std::make_unique<UnlinkOp>(a, file));
     }});

} // namespace

} // namespace ipcsim
