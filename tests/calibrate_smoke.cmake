# `ipcsim calibrate` then `ipcsim check-preset` on the calibration fixture (docs/calibrate.md): the
# two commands a user runs on their own hostbench file. Called by ctest with -DIPCSIM=... -DFIXTURE=...
# -DWORK=...
file(MAKE_DIRECTORY ${WORK})
execute_process(COMMAND ${IPCSIM} calibrate ${FIXTURE} --base teaching --out ${WORK}/fitted.json
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "ipcsim calibrate: exit status ${status}\n${out}${err}")
endif()
string(FIND "${out}" "wrote ${WORK}/fitted.json" at)
if(at EQUAL -1)
  message(FATAL_ERROR "ipcsim calibrate did not say what it wrote:\n${out}")
endif()
execute_process(COMMAND ${IPCSIM} check-preset ${WORK}/fitted.json ${FIXTURE}
                OUTPUT_VARIABLE check ERROR_VARIABLE err RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "ipcsim check-preset on the calibrated preset: exit status ${status}\n${check}${err}")
endif()
# The verdict calibrate recorded in the preset is the one check-preset prints.
file(READ ${WORK}/fitted.json preset)
string(REGEX MATCH "verdict: [^\"\n]*" recorded "${preset}")
string(REGEX MATCH "verdict: [^\n]*" printed "${check}")
if(NOT recorded OR NOT recorded STREQUAL printed)
  message(FATAL_ERROR "calibrate recorded '${recorded}', check-preset printed '${printed}'")
endif()
# Every memcpy row follows the footprint model the fixture was written from: simulated exactly.
string(REGEX MATCHALL "\nmemcpy[^\n]*" rows "${check}")
list(LENGTH rows count)
if(NOT count EQUAL 9)
  message(FATAL_ERROR "expected 9 memcpy rows in check-preset's table:\n${check}")
endif()
foreach(row ${rows})
  if(NOT row MATCHES "[+-]0\\.0%  yes")
    message(FATAL_ERROR "a memcpy row is not reproduced: ${row}")
  endif()
endforeach()
