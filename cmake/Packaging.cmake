# The Debian package (docs/packaging.md): `cpack -G DEB` in the build
# directory writes anyturn_<version>_<arch>.deb with
#   /usr/bin/anyturn                         stripped (CPACK_STRIP_FILES)
#   /etc/anyturn/anyturn.yaml                conffile: config/anyturn.yaml with
#                                            state_dir /var/lib/anyturn; no usable credential
#   /lib/systemd/system/anyturn.service      packaging/systemd/anyturn.service
#   /usr/share/doc/anyturn/                  copyright, changelog.gz, README and docs
#   /usr/share/doc/anyturn/examples/anyturn.service.d-xdp.conf
#                                            packaging/systemd/xdp.conf (XDP drop-in)
#   /usr/share/man/man1/anyturn.1.gz
# and maintainer scripts from packaging/debian/ (postinst: the system user
# `anyturn` and /var/lib/anyturn; postrm purge: both removed).
# Only the anyturn target is installed: tests and benchmarks are not.

set(_pkg ${PROJECT_SOURCE_DIR}/packaging)
set(_staging ${PROJECT_BINARY_DIR}/packaging)
set(ANYTURN_MAINTAINER "anyturn maintainers <maintainers@anyturn.org>")

install(TARGETS anyturn RUNTIME DESTINATION bin)

# The conffile: the example config, its state in /var/lib/anyturn (the
# unit's StateDirectory, created by the postinst for a hand-started server).
file(READ ${PROJECT_SOURCE_DIR}/config/anyturn.yaml _config)
string(REPLACE "\nstate_dir: \"\"\n" "\nstate_dir: /var/lib/anyturn\n" _packaged_config "${_config}")
if(_packaged_config STREQUAL _config)
  message(FATAL_ERROR "cmake/Packaging.cmake: config/anyturn.yaml has no 'state_dir: \"\"' line to point at /var/lib/anyturn")
endif()
file(WRITE ${_staging}/anyturn.yaml "${_packaged_config}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/config/anyturn.yaml)
# 0644 in the package (Debian's rule); the postinst makes it root:anyturn 0640.
install(FILES ${_staging}/anyturn.yaml DESTINATION /etc/anyturn
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

install(FILES ${_pkg}/systemd/anyturn.service DESTINATION /lib/systemd/system
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# Documentation. changelog.gz and the man page compressed the Debian way
# (gzip -9n: no name or time stamp, so the bytes are reproducible).
configure_file(${_pkg}/debian/changelog.in ${_staging}/changelog @ONLY)
find_program(ANYTURN_GZIP gzip REQUIRED)
foreach(_pair "${_staging}/changelog;changelog.gz" "${_pkg}/anyturn.1;anyturn.1.gz")
  list(GET _pair 0 _from)
  list(GET _pair 1 _to)
  execute_process(COMMAND ${ANYTURN_GZIP} -9nc ${_from} OUTPUT_FILE ${_staging}/${_to}
                  RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "cmake/Packaging.cmake: gzip ${_from} failed")
  endif()
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${_pkg}/debian/changelog.in ${_pkg}/anyturn.1)
set(_doc share/doc/anyturn)
install(FILES ${_pkg}/debian/copyright ${_staging}/changelog.gz DESTINATION ${_doc})
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/packaging.md
              ${PROJECT_SOURCE_DIR}/docs/configuration.md ${PROJECT_SOURCE_DIR}/docs/metrics.md
        DESTINATION ${_doc})
# The XDP fast path's page and the unit drop-in it asks for (docs/xdp.md).
install(FILES ${PROJECT_SOURCE_DIR}/docs/xdp.md DESTINATION ${_doc})
install(FILES ${_pkg}/systemd/xdp.conf DESTINATION ${_doc}/examples RENAME anyturn.service.d-xdp.conf
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES ${_staging}/anyturn.1.gz DESTINATION share/man/man1)

# cpack installs what is built already (in a test build: anyturn), without
# building every test and benchmark first.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME anyturn)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_CONTACT "${ANYTURN_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${ANYTURN_MAINTAINER}")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # anyturn_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/anyturn/anyturn")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends from dpkg-shlibdeps
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")  # useradd/groupadd in the postinst
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "TURN and STUN relay server for WebRTC")
# The synopsis is CPACK_PACKAGE_DESCRIPTION_SUMMARY; CPack indents these lines.
set(CPACK_PACKAGE_DESCRIPTION "anyturn relays media for WebRTC clients behind NAT (TURN, RFC 8656) and
answers STUN Binding requests (RFC 8489), over UDP, TCP and TLS. It serves
Prometheus metrics, health checks and a credentials API on a side HTTP
server, and runs as a systemd service (Type=notify, watchdog, drain on
stop) under its own system user.")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${_pkg}/debian/conffiles ${_pkg}/debian/postinst ${_pkg}/debian/prerm ${_pkg}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Only the files above, nothing of a superbuild.
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};${PROJECT_NAME};ALL;/")
include(CPack)
