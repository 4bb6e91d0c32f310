#!/usr/bin/env bash
# `cpack -G DEB` in the build dir makes one hiddify-sync .deb holding both
# daemons, both units (as shipped), the examples and docs, with Depends
# computed by dpkg-shlibdeps and the maintainer scripts; install.sh --deb
# installs from it. The package goes to a temp dir, not the build dir.
#   package_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
SRC="$1"
BUILD="$2"
source "$SRC/tests/deploy/test_lib.sh"
for tool in cpack dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || skip "$tool not installed"
done
[ -f "$BUILD/CPackConfig.cmake" ] || fail "$BUILD has no CPackConfig.cmake (deploy/packaging.cmake not included?)"

new_temp_dir package

step "cpack -G DEB"
(cd "$T" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$T/out") >"$T/cpack.log" 2>&1 ||
  fail "cpack failed: $(tail -30 "$T/cpack.log")"
debs=("$T"/out/*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || fail "expected one .deb, got: ${debs[*]}"
DEB="${debs[0]}"
[[ "$(basename "$DEB")" == hiddify-sync_*_*.deb ]] || fail "unexpected package file name $(basename "$DEB")"

step "contents: daemons, units, examples, docs, nothing from tests"
dpkg-deb -c "$DEB" >"$T/contents"
for path in ./usr/bin/hiddify-sync-hub ./usr/bin/hiddify-sync-reporter \
    ./usr/lib/systemd/system/hiddify-sync-hub.service ./usr/lib/systemd/system/hiddify-sync-reporter.service \
    ./usr/share/hiddify-sync/hub.toml.example ./usr/share/hiddify-sync/reporter.toml.example \
    ./usr/share/hiddify-sync/reporter-apply-command.conf ./usr/share/hiddify-sync/make-certs.sh \
    ./usr/share/doc/hiddify-sync/README.md ./usr/share/doc/hiddify-sync/copyright; do
  grep -q " $path\$" "$T/contents" || fail "package lacks $path; it has: $(awk '{print $6}' "$T/contents")"
done
grep -q -- '-rwxr-xr-x root/root .* ./usr/bin/hiddify-sync-hub$' "$T/contents" || fail "hub binary not 0755 root"
if grep -E -q 'panelsim|_test|bench|/include/|\.a$' "$T/contents"; then
  fail "test or development files in the package: $(grep -E 'panelsim|_test|bench|/include/|\.a$' "$T/contents")"
fi

step "control: name, version, maintainer, Depends from dpkg-shlibdeps, maintainer scripts"
dpkg-deb -I "$DEB" >"$T/info"
field() { dpkg-deb -f "$DEB" "$1"; }
[ "$(field Package)" = hiddify-sync ] || fail "Package is $(field Package)"
version=$(sed -n 's/^project(hiddify-sync VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
[ "$(field Version)" = "$version" ] || fail "Version $(field Version), project says $version"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"
depends=$(field Depends)
for lib in libc6 libstdc++6 'libgrpc++1' libprotobuf libmariadb3 libsqlite3-0 libsystemd0 libcurl4; do
  [[ "$depends" == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
for script in postinst prerm postrm; do
  grep -q -E "^ +[0-9]+ bytes, +[0-9]+ lines +\\* +$script " "$T/info" ||
    fail "$script missing or not executable: $(cat "$T/info")"
done

step "the packaged units and examples are the ones in deploy/"
dpkg-deb -x "$DEB" "$T/x"
for unit in hiddify-sync-hub.service hiddify-sync-reporter.service; do
  cmp -s "$SRC/deploy/$unit" "$T/x/usr/lib/systemd/system/$unit" || fail "$unit differs from deploy/"
done
cmp -s "$SRC/deploy/reporter.toml.example" "$T/x/usr/share/hiddify-sync/reporter.toml.example" ||
  fail "reporter.toml.example differs"
"$T/x/usr/bin/hiddify-sync-hub" --version >/dev/null || fail "packaged hub does not run"
"$T/x/usr/bin/hiddify-sync-reporter" --version >/dev/null || fail "packaged reporter does not run"

step "install.sh --deb installs the reporter and the hub from it"
R="$T/root"
"$SRC/deploy/install.sh" reporter --deb "$DEB" --root "$R" >"$T/install.log" 2>&1 ||
  fail "install.sh --deb failed: $(cat "$T/install.log")"
[ -x "$R/usr/bin/hiddify-sync-reporter" ] || fail "reporter not installed from the .deb"
cmp -s "$SRC/deploy/reporter.toml.example" "$R/etc/hiddify-sync/reporter.toml" || fail "reporter.toml not created"
expect_mode 600 "$R/etc/hiddify-sync/hub-token"
[ -f "$R/etc/systemd/system/hiddify-sync-reporter.service.d/apply-command.conf" ] || fail "drop-in not installed"
"$SRC/deploy/install.sh" hub --deb "$DEB" --root "$R" >>"$T/install.log" 2>&1 || fail "hub from .deb failed"
expect_mode 700 "$R/var/lib/hiddify-sync/hub"
[ -f "$R/etc/hiddify-sync/hub.toml" ] || fail "hub.toml not created"

step "maintainer scripts are valid sh"
for script in postinst prerm postrm; do
  sh -n "$SRC/deploy/debian/$script" || fail "$script has a syntax error"
done

pass
