# Install layout and the Debian package (CPack DEB). Included once, at the end of
# the top-level CMakeLists.txt, after every target exists.
#
#   cmake --install build --prefix /usr            # what the .deb contains, at /
#   DESTDIR=/tmp/stage cmake --install build --prefix /usr
#   cpack --config build/CPackConfig.cmake -B out  # out/dirsync_<version>_<arch>.deb
#
# Layout for the prefix /usr (the only prefix the unit supports: its ExecStart=
# names /usr/bin/dirsync, and the binary's default configuration is
# /etc/dirsync/dirsync.yaml whatever the prefix):
#   bin/dirsync                          daemon/CMakeLists.txt's install(TARGETS)
#   lib/systemd/system/dirsync.service   see DIRSYNC_SYSTEMD_UNIT_DIR
#   lib/sysusers.d/dirsync.conf          the dirsync user, the dirsync-operators group
#   lib/tmpfiles.d/dirsync.conf          /etc/dirsync root:dirsync 0750
#   share/doc/dirsync/                   README.md, README.systemd.md
#   /etc/dirsync/dirsync.yaml.example    absolute: never the live configuration
#
# Nothing else is installed: the dirsync_* static libraries and the test
# binaries have no install() rule (tests/systemd checks the staged tree).
include(GNUInstallDirs)

# Relative to the prefix, so DESTDIR and CPack stage it like everything else.
# Debian 12's systemd 252 loads units from both /lib/systemd/system (what its
# pkg-config file still reports, for the dpkg file moratorium of the /usr
# merge) and /usr/lib/systemd/system (`systemd-analyze unit-paths`); Debian 12
# is merged-/usr, so both name one directory. /usr/lib is systemd's own
# default, keeps the unit under the prefix, and is where Debian 13 moved all
# units. "lib", not CMAKE_INSTALL_LIBDIR: these paths are not multiarch.
set(DIRSYNC_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
  "Where the service unit goes, relative to the install prefix")
set(DIRSYNC_SYSUSERS_DIR "lib/sysusers.d" CACHE STRING "sysusers.d, relative to the install prefix")
set(DIRSYNC_TMPFILES_DIR "lib/tmpfiles.d" CACHE STRING "tmpfiles.d, relative to the install prefix")
# Absolute: the binary and the unit look for /etc/dirsync, not <prefix>/etc.
set(DIRSYNC_CONFIG_DIR "/etc/dirsync")

if(NOT TARGET dirsync)
  message(FATAL_ERROR "packaging/install.cmake must be included after daemon/ defines the dirsync target")
endif()

install(FILES ${PROJECT_SOURCE_DIR}/systemd/dirsync.service DESTINATION ${DIRSYNC_SYSTEMD_UNIT_DIR})
install(FILES ${PROJECT_SOURCE_DIR}/systemd/dirsync.sysusers
  DESTINATION ${DIRSYNC_SYSUSERS_DIR} RENAME dirsync.conf)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/dirsync.tmpfiles
  DESTINATION ${DIRSYNC_TMPFILES_DIR} RENAME dirsync.conf)
install(FILES ${PROJECT_SOURCE_DIR}/examples/perscom.yaml
  DESTINATION ${DIRSYNC_CONFIG_DIR} RENAME dirsync.yaml.example)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/systemd/README.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME README.systemd.md)

# --- the .deb -------------------------------------------------------------------
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "dirsync")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "dirsync")
set(DIRSYNC_PACKAGE_MAINTAINER "dirsync maintainers <dirsync@localhost>" CACHE STRING
  "The Maintainer: field of the .deb (name <email>)")
set(CPACK_PACKAGE_CONTACT "${DIRSYNC_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${DIRSYNC_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "directory synchronisation daemon (LDAP/SCIM/HTTP/CSV to SaaS user APIs)")
# The long description under the summary line: CPack indents each line and
# turns the empty line into Debian's " .".
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
  "dirsync keeps user accounts in target systems in step with a source of truth.
It pulls users from LDAP / Active Directory, SCIM 2.0, a generic HTTP JSON API
or a CSV file, maps each record to the payload a target expects, diffs the
result against a snapshot kept in LMDB and pushes only what changed.

The package installs a hardened systemd service (dirsync.service), the
dirsync system user, the dirsync-operators group and an example
configuration in /etc/dirsync.")
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# dirsync_<version>_<arch>.deb (Debian's naming; no "-1" revision: none is set).
set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
# Library dependencies (libc6, libcurl4, libldap, liblmdb0, libyaml-cpp, ...)
# come from dpkg-shlibdeps (package dpkg-dev) reading the binary's NEEDED
# entries; systemd itself is a dependency of the maintainer scripts
# (systemd-sysusers, systemd-tmpfiles), not of the binary. CPack appends the
# computed list to this one.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd")
# Debian ships stripped binaries; RelWithDebInfo's debug info is ~90% of the file.
set(CPACK_STRIP_FILES ON)
# postinst creates the user, group and /etc/dirsync; prerm stops the service
# on removal; postrm reloads systemd. conffiles: every file the package ships
# in /etc, so that dpkg keeps an administrator's edits on upgrade.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/deb/postinst
  ${PROJECT_SOURCE_DIR}/packaging/deb/prerm
  ${PROJECT_SOURCE_DIR}/packaging/deb/postrm
  ${PROJECT_SOURCE_DIR}/packaging/deb/conffiles)
# Maintainer scripts 0755, conffiles 0644, whatever the checkout's modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
# `package_source` would otherwise tar every build directory of the checkout.
set(CPACK_SOURCE_GENERATOR "TGZ")
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "/out/" "/\\\\.quickstart/")
include(CPack)
