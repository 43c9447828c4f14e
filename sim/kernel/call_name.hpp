// Names and paths a call is given, read as Linux reads them once their {NAME} placeholders are
// filled in (docs/limits.md, "Names filled at run time").
#pragma once
#include "ipc.hpp"

#include <cstdint>
#include <string>

namespace ipcsim {

// How Linux reads a name or a path a call is given, once its placeholders are filled in: one set of
// rules per kind of argument, shared by every mechanism (docs/limits.md, "Names filled at run time").
// A name given directly was checked at load; a filled one may hold anything a variable holds.
enum class NameKind : std::uint8_t {
  Path,       // open, mkfifo, creat, unlink, ftok's stat: PATH_MAX, NAME_MAX per component
  SocketPath, // bind, connect, sendto: sockaddr_un's sun_path (108 bytes with the NUL), then Path
  MqName,     // mq_open, mq_unlink: glibc wants a leading '/', the kernel looks the rest up in mqueue
  ShmOpen,    // shm_open: glibc's __shm_get_name, then open in /dev/shm
  ShmUnlink,  // shm_unlink: the same, but glibc reports a bad name as ENOENT
  SemOpen,    // sem_open: as shm_open, the file named "sem." + name
  SemUnlink,  // sem_unlink: as shm_unlink, with "sem."
};
struct CallName {
  std::string name;     // the object's name as the kernel finds it ("/tmp//a/./b" is "/tmp/a/b")
  int error = 0;        // the errno the call fails with, 0 when the name is good
  bool stopped = false; // the run stopped: the name is one the simulator cannot model
  bool ok() const { return error == 0 && !stopped; }
  // Ends a call whose name is not ok(): fails it with `error` (or leaves it to the stopped run).
  IoStatus fail(OpContext& ctx, std::uint16_t activity) const;
};
// `text` (an op's field, "{NAME}" placeholders and all) filled in and read as `kind` says. A path
// naming a directory ("/", a trailing slash, "." or ".." last) stops the run with a message naming
// `op`, `field` and the filled value: the simulated file system has no directories.
CallName call_name(const std::string& text, NameKind kind, OpContext& ctx, const char* op, const char* field);

} // namespace ipcsim
