#include "sysv_ids.hpp"

#include "error.hpp"
#include "fs.hpp"

namespace ipcsim {

ParamSpec ipc_cmd_param(std::vector<std::string> commands) {
  return {"cmd",        ParamType::Choice, nullptr,      "",
          "what to do", std::nullopt,      std::nullopt, std::move(commands)};
}

std::vector<ParamSpec> with_ipc_set_owner(std::vector<ParamSpec> params) {
  params.insert(
      params.end(),
      {{"uid", ParamType::Integer, nullptr, "", "IPC_SET: the owner", 0.0, 4294967294.0, {}, "unchanged"},
       {"gid",
        ParamType::Integer,
        nullptr,
        "",
        "IPC_SET: the owner's group",
        0.0,
        4294967294.0,
        {},
        "unchanged"},
       {"mode",
        ParamType::String,
        nullptr,
        "",
        "IPC_SET: permission bits, octal",
        std::nullopt,
        std::nullopt,
        {},
        "unchanged"}});
  return params;
}

IpcSetOwner read_ipc_set_owner(const json& f, const std::string& path, const CompileContext& ctx,
                               bool is_set) {
  IpcSetOwner owner;
  for (const char* field : {"uid", "gid", "mode"})
    if (f.contains(field) && !is_set)
      fail_at(ctx.read.file, join_path(path, field),
              std::string("\"") + field + "\" goes with IPC_SET only; drop it");
  if (!is_set) return owner;
  if (f.contains("uid")) owner.uid = f.at("uid").get<std::uint32_t>();
  if (f.contains("gid")) owner.gid = f.at("gid").get<std::uint32_t>();
  if (f.contains("mode")) owner.mode = read_mode(f, path, ctx);
  return owner;
}

} // namespace ipcsim
