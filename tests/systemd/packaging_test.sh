#!/usr/bin/env bash
# packaging_test.sh CASE BUILD_DIR SOURCE_DIR — one ctest case per CASE (see
# tests/systemd/CMakeLists.txt). Environment: CMAKE, CPACK (the configured
# tools), DIRSYNC_VERSION (the project version).
#
# Every case stages `DESTDIR=<tmp> cmake --install BUILD_DIR --prefix /usr`,
# exactly what the .deb holds, and checks it with the tools Debian 12 itself
# uses. No case skips: a missing tool is a failure that names its package.
set -euo pipefail

case_name=$1
build=$2
src=$3
CMAKE=${CMAKE:-cmake}
CPACK=${CPACK:-cpack}

work=$(mktemp -d "${TMPDIR:-/tmp}/dirsync-systemd.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/stage
unit_rel=usr/lib/systemd/system/dirsync.service

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

need() {
  command -v "$1" >/dev/null || fail "$1 not found: install the Debian package '$2' (scripts/install-deps)"
}

# Everything the package installs, relative to /, one path per line, sorted.
expected_files() {
  printf '%s\n' \
    etc/dirsync/dirsync.yaml.example \
    usr/bin/dirsync \
    usr/lib/systemd/system/dirsync.service \
    usr/lib/sysusers.d/dirsync.conf \
    usr/lib/tmpfiles.d/dirsync.conf \
    usr/share/doc/dirsync/README.md \
    usr/share/doc/dirsync/README.systemd.md | LC_ALL=C sort
}

stage_install() {
  if ! DESTDIR=$stage "$CMAKE" --install "$build" --prefix /usr >"$work/install.log" 2>&1; then
    cat "$work/install.log" >&2
    fail "cmake --install $build failed (is the dirsync target built?)"
  fi
}

# The staged install completed into the minimal OS that `systemd-analyze
# --root` needs to judge the unit as Debian 12 would: merged /usr, the
# systemd units the service is ordered against (sysinit.target,
# network-online.target, ...), and the commands of its Exec lines that dirsync
# does not ship (/bin/kill), taken from this machine. /usr/bin/dirsync is the
# staged binary, never the host's.
stage_os_root() {
  stage_install
  local dir cmd real
  for dir in bin sbin lib; do
    ln -s "usr/$dir" "$stage/$dir"
  done
  mkdir -p "$stage/usr/lib/systemd/system"
  for dir in /lib/systemd/system /usr/lib/systemd/system; do
    # -n: the staged dirsync.service wins over any installed on this machine.
    if [ -d "$dir" ]; then
      cp -an "$dir/." "$stage/usr/lib/systemd/system/"
    fi
  done
  [ -e "$stage/usr/lib/systemd/system/sysinit.target" ] ||
    fail "this machine has no systemd units in /lib/systemd/system: install the Debian package 'systemd'"
  # First word of each Exec*= line, without the -@:+! prefixes.
  sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\([^ ]*\).*/\1/p' "$stage/$unit_rel" | sort -u | while read -r cmd; do
    [ -e "$stage$cmd" ] && continue
    real=$(readlink -f "$cmd") || true
    [ -n "$real" ] && [ -x "$real" ] || fail "$cmd (from an Exec line) is not on this machine"
    mkdir -p "$stage$(dirname "$real")"
    cp "$real" "$stage$real"
  done
}

case_verify() {
  need systemd-analyze systemd
  stage_os_root
  local out rc=0
  out=$(cd "$work" && systemd-analyze verify --root="$stage" "$stage/$unit_rel" 2>&1) || rc=$?
  # verify exits 0 on warnings such as an unknown key: any output fails.
  if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
    echo "$out" >&2
    fail "systemd-analyze verify: exit $rc, output above"
  fi
  # The check looks inside the root: without the staged binary it must fail.
  rm "$stage/usr/bin/dirsync"
  rc=0
  out=$(cd "$work" && systemd-analyze verify --root="$stage" "$stage/$unit_rel" 2>&1) || rc=$?
  if [ "$rc" -eq 0 ] || [[ "$out" != *"/usr/bin/dirsync is not executable"* ]]; then
    echo "$out" >&2
    fail "systemd-analyze verify did not notice that /usr/bin/dirsync is missing from the root"
  fi
  echo "systemd-analyze verify: the staged unit is clean"
}

case_security() {
  need systemd-analyze systemd
  stage_install
  local out figure
  out=$(cd "$work" && systemd-analyze security --offline=true --root="$stage" --no-pager "$stage/$unit_rel" 2>&1) ||
    { echo "$out" >&2; fail "systemd-analyze security failed"; }
  figure=$(sed -n 's/^.*Overall exposure level for dirsync\.service: \([0-9][0-9.]*\) .*$/\1/p' <<<"$out")
  [ -n "$figure" ] || { echo "$out" >&2; fail "no overall exposure level in the output above"; }
  if ! awk -v x="$figure" 'BEGIN { exit !(x < 2.0) }'; then
    grep '✗' <<<"$out" >&2 || true
    fail "overall exposure $figure is not below 2.0 (the settings that count are listed above)"
  fi
  echo "overall exposure: $figure"
}

case_contents() {
  stage_install
  local actual
  actual=$(cd "$stage" && find . -mindepth 1 ! -type d | sed 's|^\./||' | LC_ALL=C sort)
  if [ "$actual" != "$(expected_files)" ]; then
    diff -u <(expected_files) <(echo "$actual") >&2 || true
    fail "the staged install differs from the expected files (- expected, + installed)"
  fi
  [ -x "$stage/usr/bin/dirsync" ] || fail "usr/bin/dirsync is not executable"
  cmp "$src/systemd/dirsync.service" "$stage/$unit_rel"
  cmp "$src/systemd/dirsync.sysusers" "$stage/usr/lib/sysusers.d/dirsync.conf"
  cmp "$src/systemd/dirsync.tmpfiles" "$stage/usr/lib/tmpfiles.d/dirsync.conf"
  cmp "$src/examples/perscom.yaml" "$stage/etc/dirsync/dirsync.yaml.example"
  echo "staged install: exactly $(wc -l <<<"$actual") files"
}

# as_root SCRIPT ARGS...: runs the bash SCRIPT (with ARGS as $1...) as root
# would, without needing root: under fakeroot, chown and stat agree with each
# other inside the one session, so SCRIPT both makes and reports the owners,
# and the test checks the same thing whoever runs it. One session per test:
# starting fakeroot's daemon is the slow part.
as_root() {
  fakeroot -- bash -euo pipefail -c "$1" as_root "${@:2}"
}

# Field N of the passwd/group line for NAME in the root's FILE.
entry() {
  awk -F: -v name="$2" -v n="$3" '$1 == name { print $n }' "$stage/etc/$1"
}

case_users() {
  need systemd-sysusers systemd
  need systemd-tmpfiles systemd
  need fakeroot fakeroot
  stage_install
  mkdir -p "$stage/etc/dirsync"
  # A live configuration with careless modes, to see tmpfiles fix them.
  chmod 0755 "$stage/etc/dirsync"
  echo "state_dir: /var/lib/dirsync" >"$stage/etc/dirsync/dirsync.yaml"
  chmod 0644 "$stage/etc/dirsync/dirsync.yaml"
  # tmpfiles runs after sysusers, as in postinst and at boot: it needs the group.
  as_root '
    systemd-sysusers --root="$1" dirsync.conf 2>"$2/sysusers.err" || { cat "$2/sysusers.err" >&2; exit 1; }
    systemd-tmpfiles --root="$1" --create dirsync.conf 2>"$2/tmpfiles.err"
    stat -c "%a %u %g" "$1/etc/dirsync" "$1/etc/dirsync/dirsync.yaml" >"$2/stat.out"
  ' "$stage" "$work" || { cat "$work/tmpfiles.err" >&2; fail "systemd-sysusers or systemd-tmpfiles --create failed"; }
  [ ! -s "$work/tmpfiles.err" ] || { cat "$work/tmpfiles.err" >&2; fail "systemd-tmpfiles --create complained"; }

  local uid gid ops name
  uid=$(entry passwd dirsync 3)
  gid=$(entry group dirsync 3)
  ops=$(entry group dirsync-operators 3)
  [ -n "$uid" ] && [ "$uid" -lt 1000 ] || fail "no system user dirsync (uid '$uid')"
  [ -n "$gid" ] && [ "$(entry passwd dirsync 4)" = "$gid" ] || fail "dirsync's primary group is not group dirsync"
  [ -n "$ops" ] && [ "$ops" -lt 1000 ] || fail "no system group dirsync-operators (gid '$ops')"
  [ "$(entry passwd dirsync 6)" = /var/lib/dirsync ] || fail "dirsync's home is not /var/lib/dirsync"
  [ "$(entry passwd dirsync 7)" = /usr/sbin/nologin ] || fail "dirsync has a login shell"
  # Every user and group the unit names exists (systemd refuses to start otherwise).
  for name in $(sed -n 's/^\(User\|Group\|SupplementaryGroups\)=//p' "$stage/$unit_rel"); do
    [ -n "$(entry passwd "$name" 1)$(entry group "$name" 1)" ] || fail "the unit names '$name', which sysusers does not create"
  done
  # mode uid gid: /etc/dirsync, then the live configuration (the `z` line).
  local expected
  expected=$(printf '750 0 %s\n640 0 %s' "$gid" "$gid")
  [ "$(cat "$work/stat.out")" = "$expected" ] ||
    fail "/etc/dirsync and dirsync.yaml are '$(cat "$work/stat.out")', expected '$expected' (mode uid gid)"
  echo "sysusers: dirsync uid $uid gid $gid, dirsync-operators gid $ops; tmpfiles: /etc/dirsync 0750 root:dirsync"
}

case_deb() {
  need dpkg-deb dpkg
  need dpkg-shlibdeps dpkg-dev
  need file file
  need fakeroot fakeroot
  local log=$work/cpack.log deb
  if ! (cd "$work" && "$CPACK" --config "$build/CPackConfig.cmake" -B "$work/out") >"$log" 2>&1; then
    cat "$log" >&2
    fail "cpack failed"
  fi
  deb=$(find "$work/out" -maxdepth 1 -name 'dirsync_*.deb')
  [ "$(wc -l <<<"$deb")" -eq 1 ] && [ -f "$deb" ] || fail "expected one dirsync_*.deb in the output, found: '$deb'"
  [ "$(dpkg-deb -f "$deb" Package)" = dirsync ] || fail "Package is not dirsync"
  [ "$(dpkg-deb -f "$deb" Version)" = "$DIRSYNC_VERSION" ] || fail "Version is not $DIRSYNC_VERSION"
  [ -n "$(dpkg-deb -f "$deb" Maintainer)" ] || fail "no Maintainer"
  local depends
  depends=$(dpkg-deb -f "$deb" Depends)
  # libc6 can only come from dpkg-shlibdeps; systemd from the maintainer scripts' needs.
  [[ ", $depends," == *", libc6 (>="* ]] || fail "Depends has no computed libc6 entry: $depends"
  [[ "$depends" == systemd,* ]] || fail "Depends does not start with systemd: $depends"

  dpkg-deb -e "$deb" "$work/control"
  [ "$(cat "$work/control/conffiles")" = /etc/dirsync/dirsync.yaml.example ] || fail "conffiles is not the example configuration"
  local script
  for script in postinst prerm postrm; do
    [ -x "$work/control/$script" ] || fail "no executable $script"
    sh -n "$work/control/$script" || fail "$script is not valid sh"
  done
  grep -q '^  systemd-sysusers .*dirsync.conf$' "$work/control/postinst" || fail "postinst does not run systemd-sysusers"
  grep -q '^  systemd-tmpfiles .*--create dirsync.conf$' "$work/control/postinst" || fail "postinst does not run systemd-tmpfiles"

  local listing
  listing=$(dpkg-deb -c "$deb")
  if grep -v '^[-dl][rwxst-]* root/root ' <<<"$listing" | grep -q .; then
    echo "$listing" >&2
    fail "files in the package are not owned by root/root"
  fi
  local files
  files=$(grep -v '^d' <<<"$listing" | awk '{ print $6 }' | sed 's|^\./||' | LC_ALL=C sort)
  if [ "$files" != "$(expected_files)" ]; then
    diff -u <(expected_files) <(echo "$files") >&2 || true
    fail "the package's files differ from the expected files (- expected, + packaged)"
  fi
  dpkg-deb -x "$deb" "$work/extracted"
  file "$work/extracted/usr/bin/dirsync" | grep -q ', stripped' || fail "usr/bin/dirsync in the package is not stripped"

  # Install and purge it with dpkg into an empty root: the maintainer scripts
  # run for real (chrootless, with DPKG_ROOT set), dependencies aside.
  local root=$work/dpkg-root
  stage=$root  # entry() reads the root's /etc
  mkdir -p "$root/etc" "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
  touch "$root/var/lib/dpkg/status"
  as_root '
    root=$1
    dpkg() { command dpkg --root="$root" --force-script-chrootless --force-depends --log=/dev/null "$@"; }
    dpkg -i "$2" >"$3/dpkg.log" 2>&1
    stat -c "%a %u %g" "$1/etc/dirsync" >"$3/stat.out"
    cp "$1/etc/passwd" "$1/etc/group" "$3/"
    dpkg --purge dirsync >>"$3/dpkg.log" 2>&1
  ' "$root" "$deb" "$work" || { cat "$work/dpkg.log" >&2; fail "dpkg -i or dpkg --purge failed"; }
  local gid
  gid=$(awk -F: '$1 == "dirsync" { print $3 }' "$work/group")
  grep -q '^dirsync:' "$work/passwd" && [ -n "$gid" ] && grep -q '^dirsync-operators:' "$work/group" ||
    fail "postinst did not create the dirsync user and the dirsync-operators group"
  [ "$(cat "$work/stat.out")" = "750 0 $gid" ] ||
    fail "after postinst /etc/dirsync is '$(cat "$work/stat.out")', expected '750 0 $gid' (mode uid gid)"
  # Purge leaves the users (Debian never deletes system users) and dpkg's database.
  local left
  left=$(cd "$root" && find . -mindepth 1 ! -path './var*' ! -path ./etc ! -name passwd ! -name group ! -name shadow \
    ! -name gshadow ! -name .pwd.lock | LC_ALL=C sort)
  [ -z "$left" ] || fail "dpkg --purge left: $left"
  echo "$(basename "$deb"): Depends: $depends; installs and purges cleanly"
}

case "$case_name" in
  StagedUnitPassesSystemdAnalyzeVerify) case_verify ;;
  UnitExposureIsBelowTwo) case_security ;;
  InstallContainsExactlyTheExpectedFiles) case_contents ;;
  SysusersAndTmpfilesCreateTheUsersAndTheConfigDirectory) case_users ;;
  DebPackageHasDependsConffilesAndMaintainerScripts) case_deb ;;
  *) fail "unknown case $case_name" ;;
esac
