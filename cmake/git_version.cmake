# Writes OUT from the template IN with the source tree's current `git describe` (run by the build every time, so an
# incremental build records the commit it was built from, not the one it was configured at). configure_file leaves
# OUT untouched when nothing changed, so an unchanged commit recompiles nothing.
# -DIN=... -DOUT=... -DSOURCE_DIR=... -DGIT=... -DPROJECT_VERSION=...
set(CNNPAR_GIT_COMMIT "unknown")
if(GIT AND EXISTS "${SOURCE_DIR}/.git")
  execute_process(COMMAND "${GIT}" describe --always --dirty --abbrev=12
                  WORKING_DIRECTORY "${SOURCE_DIR}" OUTPUT_VARIABLE described
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE failed)
  if(NOT failed AND described)
    set(CNNPAR_GIT_COMMIT "${described}")
  endif()
endif()
configure_file("${IN}" "${OUT}" @ONLY)
