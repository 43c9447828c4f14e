# Writes OUT with the source tree's git revision (suffixed -dirty with local changes), rewriting
# it only when it changed so that builds stay incremental.
execute_process(COMMAND git -C ${SRC} describe --always --dirty --abbrev=12
                OUTPUT_VARIABLE revision OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE failed)
if(failed OR revision STREQUAL "")
  set(revision "unknown")
endif()
file(WRITE ${OUT}.tmp "#define IPCSIM_GIT_REVISION \"${revision}\"\n")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
