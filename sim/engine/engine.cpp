#include "engine.hpp"

#include <simgrid/s4u.hpp>
#include <simgrid/version.h>
#include <xbt/log.h>

#include <cassert>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define IPCSIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IPCSIM_ASAN 1
#endif
#endif
#ifdef IPCSIM_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace sg4 = simgrid::s4u;

// ---- Stack switching -----------------------------------------------------------------------------
//
// A hand-off between two cores of a machine used to be a SimGrid semaphore release and acquire: two
// simcalls, each a switch to SimGrid's maestro and a scheduling round, several thousand instructions
// (docs/benchmark.md). The cores of a machine now run as fibers inside one SimGrid actor, and a
// hand-off is two stack switches (to the machine's scheduler and on to the next core): a few dozen
// instructions. Only one core of a machine runs at a time anyway (Kernel::park), so nothing else
// changes: the kernel decides who runs next exactly as before.

#if defined(__x86_64__)
// ipcsim_switch_stack(save, to): saves the callee-saved registers (and the SSE and x87 control words)
// on the current stack, stores its stack pointer in *save, and resumes the stack `to` where it was
// saved (System V AMD64 ABI).
extern "C" void ipcsim_switch_stack(void** save, void* to);
asm(R"(
  .text
  .globl ipcsim_switch_stack
  .type ipcsim_switch_stack, @function
ipcsim_switch_stack:
  .cfi_startproc
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .cfi_endproc
  .size ipcsim_switch_stack, .-ipcsim_switch_stack
)");
#endif

namespace ipcsim {

namespace {

// One core's stack and where it stopped.
struct Fiber {
  static constexpr std::size_t kStackBytes = 8 << 20; // as SimGrid's default actor stack; committed lazily
  std::size_t index = 0;
  void* memory = nullptr;
  bool finished = false;
  bool runnable = true;
  std::exception_ptr failure;
#if defined(__x86_64__)
  void* sp = nullptr;
#else
  ucontext_t context{};
#endif
};

class FiberRunner;
// The runner of the machine whose cores are running (machines run one after the other, each inside
// its own actor, and never switch actors while their cores run: no simcall happens there).
FiberRunner* g_runner = nullptr;

// Runs a machine's cores (each core_main on its own stack) inside the calling SimGrid actor: a core
// runs until it waits on its doorbell with no ring pending, or ends; then the next runnable core runs.
class FiberRunner {
public:
  explicit FiberRunner(const EngineMachine& machine) : machine_(machine), fibers_(machine.cores) {
    const long page = sysconf(_SC_PAGESIZE);
    for (std::size_t i = 0; i < fibers_.size(); ++i) {
      Fiber& f = fibers_[i];
      f.index = i;
      f.memory = mmap(nullptr, Fiber::kStackBytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
      if (f.memory == MAP_FAILED) throw std::runtime_error("cannot map a stack for a simulated core");
#ifdef IPCSIM_ASAN
      // Fresh pages, but perhaps at the address of a stack unmapped earlier (an ended machine's
      // fiber, a SimGrid actor) whose frames never returned: their redzones are still in the shadow.
      ASAN_UNPOISON_MEMORY_REGION(f.memory, Fiber::kStackBytes);
#endif
      mprotect(f.memory, static_cast<std::size_t>(page), PROT_NONE); // a guard page below it
      init(f);
    }
  }
  ~FiberRunner() {
    for (Fiber& f : fibers_)
      if (f.memory && f.memory != MAP_FAILED) {
#ifdef IPCSIM_ASAN
        ASAN_UNPOISON_MEMORY_REGION(f.memory, Fiber::kStackBytes); // its last frames never returned
#endif
        munmap(f.memory, Fiber::kStackBytes);
      }
  }
  FiberRunner(const FiberRunner&) = delete;
  FiberRunner& operator=(const FiberRunner&) = delete;

  // Runs every core to its end, in the order the SimGrid actors used to start: core 0 first.
  void run() {
    FiberRunner* outer = std::exchange(g_runner, this);
    std::size_t finished = 0;
    while (finished < fibers_.size()) {
      Fiber* next = nullptr;
      for (std::size_t k = 0; k < fibers_.size() && !next; ++k) {
        Fiber& f = fibers_[(last_ + 1 + k) % fibers_.size()];
        if (f.runnable && !f.finished) next = &f;
      }
      if (!next) {
        g_runner = outer;
        throw std::logic_error("every simulated core of machine " + machine_.name + " waits on its doorbell");
      }
      last_ = next->index;
      enter(*next);
      if (next->finished) {
        ++finished;
        if (next->failure) {
          g_runner = outer;
          std::rethrow_exception(next->failure);
        }
      }
    }
    g_runner = outer;
  }

  Fiber& current() { return fibers_[current_]; }
  Fiber& fiber(std::size_t index) { return fibers_[index]; }
  // The running core gives the stack back to run(): it is resumed when it is runnable again.
  void leave() { leave(current()); }

private:
  static void entry() {
    FiberRunner& runner = *g_runner;
#ifdef IPCSIM_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &runner.main_bottom_, &runner.main_size_);
#endif
    Fiber& f = runner.current();
    try {
      runner.machine_.core_main(f.index);
    } catch (...) {
      f.failure = std::current_exception();
    }
    f.finished = true;
    runner.leave(f); // never resumed
    std::abort();
  }

  void init(Fiber& f) {
#if defined(__x86_64__)
    // The first switch to it "returns" into entry(), as if entry had been called with an aligned stack.
    auto top = (reinterpret_cast<std::uintptr_t>(f.memory) + Fiber::kStackBytes) & ~std::uintptr_t{15};
    auto* slot = reinterpret_cast<std::uint64_t*>(top);
    *--slot = 0;                                         // entry's return address: none
    *--slot = reinterpret_cast<std::uintptr_t>(&entry);  // where the switch returns to
    for (int i = 0; i < 6; ++i) *--slot = 0;             // rbp rbx r12 r13 r14 r15
    *--slot = 0x1F80ull | (std::uint64_t{0x037F} << 32); // mxcsr and the x87 control word: defaults
    f.sp = slot;
#else
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = f.memory;
    f.context.uc_stack.ss_size = Fiber::kStackBytes;
    f.context.uc_link = nullptr;
    makecontext(&f.context, &entry, 0);
#endif
  }

  void enter(Fiber& f) {
    current_ = f.index;
#ifdef IPCSIM_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, f.memory, Fiber::kStackBytes);
#endif
#if defined(__x86_64__)
    ipcsim_switch_stack(&main_sp_, f.sp);
#else
    swapcontext(&main_context_, &f.context);
#endif
#ifdef IPCSIM_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  }

  void leave(Fiber& f) {
#ifdef IPCSIM_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(f.finished ? nullptr : &fake, main_bottom_, main_size_);
#endif
#if defined(__x86_64__)
    ipcsim_switch_stack(&f.sp, main_sp_);
#else
    swapcontext(&f.context, &main_context_);
#endif
#ifdef IPCSIM_ASAN
    __sanitizer_finish_switch_fiber(fake, &main_bottom_, &main_size_);
#endif
  }

  const EngineMachine& machine_;
  std::vector<Fiber> fibers_;
  std::size_t current_ = 0;
  std::size_t last_ = static_cast<std::size_t>(-1); // start with core 0
#if defined(__x86_64__)
  void* main_sp_ = nullptr;
#else
  ucontext_t main_context_{};
#endif
#ifdef IPCSIM_ASAN
  const void* main_bottom_ = nullptr;
  std::size_t main_size_ = 0;
#endif
};

} // namespace

// A ring that comes first leaves a token, as the semaphore it replaces did. The doorbell learns which
// core waits on it at its first wait (the running core's).
struct Doorbell::Impl {
  std::uint32_t tokens = 0;
  Fiber* waiter = nullptr;
};

Doorbell::Doorbell() : impl_(std::make_unique<Impl>()) {}
Doorbell::~Doorbell() = default;

void Doorbell::wait() {
  assert(g_runner && "a doorbell waited on outside a running machine");
  if (impl_->tokens == 0) {
    Fiber& me = g_runner->current();
    impl_->waiter = &me;
    me.runnable = false;
    while (impl_->tokens == 0) g_runner->leave();
    impl_->waiter = nullptr;
  }
  --impl_->tokens;
}

void Doorbell::ring() {
  ++impl_->tokens;
  if (impl_->waiter) impl_->waiter->runnable = true;
}

void engine_run(const std::vector<EngineMachine>& machines) {
  int argc = 1;
  char name[] = "ipcsim";
  char* argv[] = {name, nullptr};
  sg4::Engine engine(&argc, argv);
  // SimGrid's own chatter would pollute byte-identical outputs; ipcsim reports for itself.
  xbt_log_control_set("root.thresh:critical");
  sg4::Engine::set_config("contexts/factory:raw");
  auto* root = sg4::create_full_zone("simulation");
  std::vector<sg4::Host*> hosts;
  for (const auto& machine : machines) {
    auto* zone = sg4::create_full_zone(machine.name);
    zone->set_parent(root);
    hosts.push_back(zone->create_host(machine.name + ".cpu", 1.0));
    zone->seal();
  }
  root->seal();
  // One actor per machine runs its cores as fibers (see FiberRunner). An exception escaping a core
  // ends the run and is thrown again here, out of the engine.
  std::exception_ptr failure;
  for (std::size_t m = 0; m < machines.size(); ++m)
    sg4::Actor::create(machines[m].name + ".cores", hosts[m], [&machine = machines[m], &failure] {
      try {
        FiberRunner(machine).run();
      } catch (...) {
        if (!failure) failure = std::current_exception();
      }
    });
  engine.run();
  if (failure) std::rethrow_exception(failure);
}

const char* engine_version() { return SIMGRID_VERSION_STRING; }

} // namespace ipcsim
