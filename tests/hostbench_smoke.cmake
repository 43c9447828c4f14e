# Smoke test of tools/hostbench (docs/hostbench.md): a quick run of the null system call, the
# lone sched_yield and a one-core pipe stream must write a version-1 file describing the machine
# with those three rows and the stream's switches_per_message note, and a bad option must be
# refused.
# The full benchmark never runs in the tests. Called by ctest with -DHOSTBENCH=... -DWORK=...
file(MAKE_DIRECTORY ${WORK})
execute_process(COMMAND ${HOSTBENCH} --quick --only "null_syscall|lone_yield|stream,pipe,8,same_core"
                        --out ${WORK}/smoke.csv ERROR_VARIABLE err RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "hostbench --quick --only 'null_syscall|lone_yield|stream,pipe,8,same_core': "
                      "exit status ${status}\n${err}")
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
string(REGEX MATCHALL "\nroundtrip,|\nstream,[^p]|\nstream,pipe,[^8]" rows "${csv}")
if(rows)
  message(FATAL_ERROR "--only 'null_syscall|lone_yield|stream,pipe,8,same_core' ran other cells:\n${csv}")
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
