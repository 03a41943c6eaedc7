# ANYTURN_SANITIZE: builds everything (libraries, daemon, tests) with
# sanitizers. Used by scripts/test.sh --sanitize and --tsan, each in its own
# build directory (build-asan/, build-tsan/).
#
#   -DANYTURN_SANITIZE=address,undefined   ASan + UBSan (ON means the same)
#   -DANYTURN_SANITIZE=thread              TSan
#   empty / OFF                            none (default)
#
# Every finding aborts the process (-fno-sanitize-recover=all), so a test
# that trips a sanitizer fails instead of printing a warning nobody reads.
# Suppressions, if ever needed, live in tests/sanitizers/ with a comment
# saying why each one is a false positive.
set(ANYTURN_SANITIZE "" CACHE STRING "Sanitizers: address,undefined | thread | empty")

if(ANYTURN_SANITIZE STREQUAL "ON")
  set(ANYTURN_SANITIZE "address,undefined" CACHE STRING "" FORCE)
elseif(ANYTURN_SANITIZE STREQUAL "OFF")
  set(ANYTURN_SANITIZE "" CACHE STRING "" FORCE)
endif()

if(ANYTURN_SANITIZE)
  string(REPLACE "," ";" _san_list "${ANYTURN_SANITIZE}")
  foreach(_san IN LISTS _san_list)
    if(NOT _san MATCHES "^(address|undefined|thread)$")
      message(FATAL_ERROR "ANYTURN_SANITIZE: unknown sanitizer '${_san}' (address, undefined, thread)")
    endif()
  endforeach()
  if("thread" IN_LIST _san_list AND "address" IN_LIST _san_list)
    message(FATAL_ERROR "ANYTURN_SANITIZE: thread and address cannot be combined")
  endif()
  message(STATUS "anyturn: sanitizers ${ANYTURN_SANITIZE}")
  add_compile_options(-fsanitize=${ANYTURN_SANITIZE} -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${ANYTURN_SANITIZE} -fno-sanitize-recover=all)
  # Tests may ask which sanitizer they run under (e.g. to widen timeouts).
  if("thread" IN_LIST _san_list)
    add_compile_definitions(ANYTURN_SANITIZE_THREAD=1)
  else()
    add_compile_definitions(ANYTURN_SANITIZE_ADDRESS=1)
  endif()
endif()
