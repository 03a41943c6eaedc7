# BPF programs: compiled at build time with `clang -target bpf`, and turned
# into a libbpf skeleton header by `bpftool gen skeleton`.
#
#   anyturn_add_bpf_object(<target> <source.bpf.c> [SKELETON] [NAME skel_name] [INCLUDES dir...])
#
# builds <binary dir>/<name>.bpf.o (name: the source's file name without
# .bpf.c) as the custom target <target>; with SKELETON also
# <binary dir>/<name>.skel.h (skeleton name NAME, default <name>). The object's path is the
# target property BPF_OBJECT (and the variable <target>_OBJECT in the
# caller's scope), the skeleton's directory the property BPF_SKELETON_DIR:
# tests and benchmarks that load the object directly read them.
#
# clang, bpftool and libbpf's headers are required: configure fails with the
# package to install when one is missing.

find_program(ANYTURN_BPF_CLANG NAMES clang clang-16 clang-15 clang-14)
find_program(ANYTURN_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin)
find_path(ANYTURN_BPF_HELPERS_DIR bpf/bpf_helpers.h)
if(NOT ANYTURN_BPF_CLANG)
  message(FATAL_ERROR "BPF: clang not found (install the Debian package clang; scripts/setup.sh)")
endif()
if(NOT ANYTURN_BPFTOOL)
  message(FATAL_ERROR "BPF: bpftool not found (install the Debian package bpftool; scripts/setup.sh)")
endif()
if(NOT ANYTURN_BPF_HELPERS_DIR)
  message(FATAL_ERROR "BPF: <bpf/bpf_helpers.h> not found (install the Debian package libbpf-dev; scripts/setup.sh)")
endif()

# asm/types.h lives in the multiarch include directory, which clang does not
# search for -target bpf.
set(ANYTURN_BPF_MULTIARCH_INCLUDE /usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
if(NOT CMAKE_LIBRARY_ARCHITECTURE)
  set(ANYTURN_BPF_MULTIARCH_INCLUDE /usr/include/x86_64-linux-gnu)
endif()

function(anyturn_add_bpf_object target source)
  cmake_parse_arguments(PARSE_ARGV 2 arg "SKELETON" "NAME" "INCLUDES")
  get_filename_component(src ${source} ABSOLUTE)
  get_filename_component(file ${src} NAME)
  string(REGEX REPLACE "\\.bpf\\.c$" "" name ${file})
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(includes -I${ANYTURN_BPF_HELPERS_DIR} -I${ANYTURN_BPF_MULTIARCH_INCLUDE})
  foreach(dir IN LISTS arg_INCLUDES)
    list(APPEND includes -I${dir})
  endforeach()
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${ANYTURN_BPF_CLANG} -target bpf -O2 -g -Wall -D__TARGET_ARCH_x86 ${includes}
            -MD -MF ${obj}.d -c ${src} -o ${obj}
    DEPENDS ${src}
    DEPFILE ${obj}.d
    COMMENT "BPF ${file}"
    VERBATIM)
  set(outputs ${obj})
  if(arg_SKELETON)
    set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
    set(skel_name ${name})
    if(arg_NAME)
      set(skel_name ${arg_NAME})
    endif()
    add_custom_command(
      OUTPUT ${skel}
      COMMAND sh -c "\"$0\" gen skeleton \"$1\" name $2 > \"$3\"" ${ANYTURN_BPFTOOL} ${obj} ${skel_name} ${skel}
      DEPENDS ${obj}
      COMMENT "BPF skeleton ${name}.skel.h"
      VERBATIM)
    list(APPEND outputs ${skel})
  endif()
  add_custom_target(${target} DEPENDS ${outputs})
  set_target_properties(${target} PROPERTIES BPF_OBJECT ${obj}
                                              BPF_SKELETON_DIR ${CMAKE_CURRENT_BINARY_DIR})
  set(${target}_OBJECT ${obj} PARENT_SCOPE)
endfunction()
