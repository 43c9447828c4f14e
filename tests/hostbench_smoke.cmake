# Smoke test of tools/hostbench (docs/hostbench.md): a quick run of the null system call, the
# lone sched_yield, a one-core pipe stream and the cross-core wakeup must write a version-1 file
# describing the machine with those rows, the stream's switches_per_message note and the wakeup
# ladder's notes (on a machine with two CPUs; with one the wakeup is skipped), and a bad option must
# be refused.
# The full benchmark never runs in the tests. Called by ctest with -DHOSTBENCH=... -DWORK=...
file(MAKE_DIRECTORY ${WORK})
set(only "null_syscall|lone_yield|stream,pipe,8,same_core|wakeup,pipe,1,cross_core")
execute_process(COMMAND ${HOSTBENCH} --quick --only "${only}" --out ${WORK}/smoke.csv ERROR_VARIABLE err
                RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "hostbench --quick --only '${only}': exit status ${status}\n${err}")
endif()
file(READ ${WORK}/smoke.csv csv)
foreach(expected "# hostbench 1\n" "\n# kernel: " "\n# clocksource: "
                 "\nkind,mechanism,bytes,placement,trials,ops_per_trial,median_ns,p99_ns,min_ns,bytes_per_s\n"
                 "\nnull_syscall,getppid,0,same_core," "\nlone_yield,sched_yield,0,same_core,"
                 "\nstream,pipe,8,same_core,")
  string(FIND "${csv}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "hostbench output lacks '${expected}':\n${csv}")
  endif()
endforeach()
# Each side's voluntary and involuntary switches per message: four numbers.
if(NOT csv MATCHES "\n# switches_per_message: stream,pipe,8,same_core [0-9]+\\.[0-9]+ [0-9]+\\.[0-9]+ [0-9]+\\.[0-9]+ [0-9]+\\.[0-9]+\n")
  message(FATAL_ERROR "hostbench output lacks the stream's switches_per_message note:\n${csv}")
endif()
# The wakeup ladder: 15 idle times from 2 us to 5 ms, each its idle time, median, 10th and 90th
# percentiles, trials and the write()'s median.
string(FIND "${csv}" "\nwakeup,pipe,1,cross_core," wakeup_at)
if(wakeup_at EQUAL -1)
  string(FIND "${csv}" "# skip: wakeup,pipe,1,cross_core" skipped)
  if(skipped EQUAL -1)
    message(FATAL_ERROR "hostbench output has neither the wakeup row nor its skip:\n${csv}")
  endif()
else()
  string(REGEX MATCHALL "# wakeup_after_idle_ns: [0-9]+ [0-9.]+ [0-9.]+ [0-9.]+ [0-9]+ [0-9.]+\n" rungs "${csv}")
  list(LENGTH rungs count)
  if(NOT count EQUAL 15)
    message(FATAL_ERROR "hostbench wrote ${count} wakeup_after_idle_ns notes, expected 15:\n${csv}")
  endif()
  # Two CPUs, a cross-core cell: whether they share a core, measured (tools/hostbench/siblings.hpp).
  if(NOT csv MATCHES "\n# cross_core_siblings: [0-9]+\\.[0-9][0-9] \\(64 KiB copies on CPU [0-9]+ ran at [0-9.]+ of their rate alone while CPU [0-9]+ copied too: [^\n]+\\)\n")
    message(FATAL_ERROR "hostbench output lacks the cross_core_siblings note:\n${csv}")
  endif()
  foreach(idle 2000 125000 150000 5000000)
    string(FIND "${csv}" "\n# wakeup_after_idle_ns: ${idle} " at)
    if(at EQUAL -1)
      message(FATAL_ERROR "hostbench output lacks the wakeup ladder's ${idle} ns rung:\n${csv}")
    endif()
  endforeach()
endif()
string(REGEX MATCHALL "\nroundtrip,|\nstream,[^p]|\nstream,pipe,[^8]|\nwakeup_call," rows "${csv}")
if(rows)
  message(FATAL_ERROR "--only '${only}' ran other cells:\n${csv}")
endif()

execute_process(COMMAND ${HOSTBENCH} --only no_such_cell ERROR_VARIABLE err RESULT_VARIABLE status)
string(FIND "${err}" "--only 'no_such_cell' matches no cell" at)
if(NOT status EQUAL 2 OR at EQUAL -1)
  message(FATAL_ERROR "hostbench --only no_such_cell: status ${status}, message:\n${err}")
endif()
execute_process(COMMAND ${HOSTBENCH} --bogus ERROR_VARIABLE err RESULT_VARIABLE status)
string(FIND "${err}" "unknown argument '--bogus'" at)
if(NOT status EQUAL 2 OR at EQUAL -1)
  message(FATAL_ERROR "hostbench --bogus: status ${status}, message:\n${err}")
endif()
execute_process(COMMAND ${HOSTBENCH} --quick --only null_syscall --out ${WORK}/no/such/dir/x.csv
                ERROR_VARIABLE err RESULT_VARIABLE status)
string(FIND "${err}" "cannot write '${WORK}/no/such/dir/x.csv'" at)
if(NOT status EQUAL 2 OR at EQUAL -1)
  message(FATAL_ERROR "hostbench --out into a missing directory: status ${status}, message:\n${err}")
endif()
