# Installation rules and the Debian package of hiddify-sync (issue 6).
# Included from the top-level CMakeLists.txt after the daemons are defined.
#
#   cmake --build build --target hiddify-sync-hub hiddify-sync-reporter
#   (cd build && cpack -G DEB)
#     -> build/hiddify-sync_<version>_<arch>.deb
#
# Everything lands in the component `hsync_runtime`, the only one the package
# takes (tests, panelsim and benchmarks never ship). CPack only runs for
# `cpack` / the `package` target, never for the default build.

set(HSYNC_DEPLOY_DIR ${PROJECT_SOURCE_DIR}/deploy)

# `cpack` / `make install` package what is built and do not first build every
# target (with tests on, that is the whole test suite): build the daemons,
# then package. A daemon not built makes the install step fail, naming it.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY TRUE)

install(TARGETS hiddify-sync-hub hiddify-sync-reporter
  RUNTIME DESTINATION bin COMPONENT hsync_runtime)
# With the package's prefix /usr: /usr/lib/systemd/system (= /lib/systemd/system
# on Debian 12's merged /usr).
install(FILES
  ${HSYNC_DEPLOY_DIR}/hiddify-sync-hub.service
  ${HSYNC_DEPLOY_DIR}/hiddify-sync-reporter.service
  DESTINATION lib/systemd/system COMPONENT hsync_runtime)
# Examples and helpers; install.sh --deb copies the examples to
# /etc/hiddify-sync/ and the drop-in next to the unit when needed.
install(FILES
  ${HSYNC_DEPLOY_DIR}/hub.toml.example
  ${HSYNC_DEPLOY_DIR}/reporter.toml.example
  ${HSYNC_DEPLOY_DIR}/reporter-apply-command.conf
  DESTINATION share/hiddify-sync COMPONENT hsync_runtime)
install(PROGRAMS ${HSYNC_DEPLOY_DIR}/make-certs.sh
  DESTINATION share/hiddify-sync COMPONENT hsync_runtime)
install(FILES ${PROJECT_SOURCE_DIR}/README.md
  DESTINATION share/doc/hiddify-sync COMPONENT hsync_runtime)
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE
  DESTINATION share/doc/hiddify-sync RENAME copyright COMPONENT hsync_runtime)

set(HSYNC_PACKAGE_MAINTAINER "hiddify-sync maintainers <hiddify-sync@localhost>"
  CACHE STRING "Maintainer field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME hiddify-sync)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR hiddify-sync)
set(CPACK_PACKAGE_CONTACT ${HSYNC_PACKAGE_MAINTAINER})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "exact usage and user sync between a parent Hiddify panel and its children")
set(CPACK_PACKAGE_DESCRIPTION
  "hiddify-sync-hub runs next to the parent Hiddify panel: it receives usage
reports from every child over gRPC/TLS, applies them to the parent exactly
once and streams the parent's user roster back. hiddify-sync-reporter runs on
every child: it reports local usage and applies the roster to the child's
panel database. Both come with hardened systemd units (not enabled by the
package).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES TRUE)
# Only the runtime component, whatever other directories may install.
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};${PROJECT_NAME};hsync_runtime;/")

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${HSYNC_PACKAGE_MAINTAINER})
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# dpkg-shlibdeps turns the binaries' shared libraries (grpc++, protobuf,
# abseil, curl, mariadb, sqlite, systemd, ...) into Depends.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "openssl")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${HSYNC_DEPLOY_DIR}/debian/postinst
  ${HSYNC_DEPLOY_DIR}/debian/prerm
  ${HSYNC_DEPLOY_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

include(CPack)
