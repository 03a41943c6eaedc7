#!/usr/bin/env bash
# The Debian package (label: package; docs/packaging.md): cpack builds
# anyturn_<version>_<arch>.deb from the build directory, lintian reports no
# error (warnings are printed), `dpkg -i` installs it, the installed config
# passes `anyturn check-config`, the installed unit passes `systemd-analyze
# verify`, the installed binary started by hand (as the package's user
# `anyturn`, on loopback ephemeral ports) answers a STUN Binding from
# turnutils_stunclient and GET /healthz, and `dpkg --purge` leaves nothing of
# what it installed: files, the user, the group, /var/lib/anyturn.
#
# It installs into the real system, so it runs only as root and only when
# the system holds no anyturn package, user, group or directory (exit 77,
# skipped, otherwise); on any exit it purges what it installed.
#   deb.sh BUILD_DIR [OUT_DIR]   OUT_DIR keeps the .deb (docker/Dockerfile uses it)
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${1:?usage: deb.sh BUILD_DIR [OUT_DIR]}"
keep="${2:-}"
export ANYTURN_BINARY="$build/anyturn"
# shellcheck source=../interop/lib.sh
source "$here/../interop/lib.sh"

skip() {
  log "SKIP: $*"
  exit 77
}

((EUID == 0)) || skip "needs root: dpkg -i installs into the real system"
for tool in cpack dpkg dpkg-deb lintian setpriv file turnutils_stunclient curl; do
  command -v "$tool" >/dev/null 2>&1 || skip "$tool not found (scripts/setup.sh installs it)"
done
# The system must not hold anything the package creates: the test could not
# tell its own traces from earlier ones, nor leave the system as it found it.
if dpkg-query -W -f='${Status}' anyturn 2>/dev/null | grep -q 'installed\|config-files'; then
  skip "the anyturn package is already installed here (dpkg -l anyturn)"
fi
getent passwd anyturn >/dev/null && skip "a user 'anyturn' already exists"
getent group anyturn >/dev/null && skip "a group 'anyturn' already exists"
for path in /etc/anyturn /var/lib/anyturn /usr/bin/anyturn /lib/systemd/system/anyturn.service /usr/share/doc/anyturn; do
  [[ -e "$path" ]] && skip "$path already exists"
done

installed=0
package_cleanup() {
  if ((installed)); then
    log "cleanup: dpkg --purge anyturn"
    dpkg --purge anyturn >/dev/null 2>&1 || true
  fi
}
trap 'rc=$?; for p in "${started_pids[@]}"; do stop_pid "$p"; done; package_cleanup; (exit $rc); cleanup' EXIT

# ---- build ----
t0=$SECONDS
log "cpack -G DEB (build directory $build)"
cpack -G DEB -B "$work/cpack" --config "$build/CPackConfig.cmake" >"$work/cpack.log" 2>&1 ||
  fail "cpack failed: $(tail -n 20 "$work/cpack.log")"
arch="$(dpkg --print-architecture)"
version="$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")"
deb="$work/cpack/anyturn_${version}_${arch}.deb"
[[ -f "$deb" ]] || fail "no $(basename "$deb") in $(ls "$work/cpack")"
log "built $(basename "$deb") ($(stat -c %s "$deb") bytes) in $((SECONDS - t0)) s"
dpkg-deb --info "$deb" | sed 's/^/  /'
dpkg-deb --contents "$deb" >"$work/contents.txt"
for f in ./usr/bin/anyturn ./etc/anyturn/anyturn.yaml ./lib/systemd/system/anyturn.service \
  ./usr/share/doc/anyturn/copyright ./usr/share/doc/anyturn/changelog.gz ./usr/share/man/man1/anyturn.1.gz; do
  grep -q " $f\$" "$work/contents.txt" || fail "$f is not in the package"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/anyturn/anyturn.yaml ||
  fail "/etc/anyturn/anyturn.yaml is not a conffile"
mkdir -p "$work/unpacked"
dpkg-deb -x "$deb" "$work/unpacked"
file_out="$(file -b "$work/unpacked/usr/bin/anyturn")"
[[ "$file_out" == *", stripped"* ]] || fail "/usr/bin/anyturn is not stripped: $file_out"

# ---- lintian: errors fail, warnings are reported ----
lintian --allow-root --tag-display-limit 0 "$deb" >"$work/lintian.txt" 2>&1 || true
errors="$(grep -c '^E:' "$work/lintian.txt" || true)"
warnings="$(grep -c '^W:' "$work/lintian.txt" || true)"
log "lintian: $errors errors, $warnings warnings"
sed 's/^/  /' "$work/lintian.txt"
((errors == 0)) || fail "lintian reports errors"
grep -q '^E:\|^W:\|^I:\|^N:\|^P:' "$work/lintian.txt" || [[ ! -s "$work/lintian.txt" ]] ||
  fail "lintian printed something unexpected: $(head -n 5 "$work/lintian.txt")"

# ---- install ----
installed=1
dpkg -i "$deb" >"$work/dpkg-install.log" 2>&1 || fail "dpkg -i failed: $(cat "$work/dpkg-install.log")"
log "dpkg -i: installed"
getent passwd anyturn >/dev/null || fail "postinst did not create the user anyturn"
[[ "$(getent passwd anyturn | cut -d: -f7)" == /usr/sbin/nologin ]] || fail "user anyturn has a login shell"
[[ "$(stat -c %U:%G /var/lib/anyturn)" == anyturn:anyturn ]] || fail "/var/lib/anyturn is not owned by anyturn"
[[ "$(stat -c %U:%G:%a /etc/anyturn/anyturn.yaml)" == root:anyturn:640 ]] ||
  fail "/etc/anyturn/anyturn.yaml is $(stat -c %U:%G:%a /etc/anyturn/anyturn.yaml), expected root:anyturn:640"
/usr/bin/anyturn check-config /etc/anyturn/anyturn.yaml >"$work/check-config.log" 2>&1 ||
  fail "anyturn check-config /etc/anyturn/anyturn.yaml failed: $(cat "$work/check-config.log")"
log "check-config: $(tail -n 1 "$work/check-config.log")"
if systemd-analyze --version >/dev/null 2>&1; then
  verify="$(systemd-analyze verify /lib/systemd/system/anyturn.service 2>&1)" ||
    fail "systemd-analyze verify: $verify"
  [[ -z "$verify" ]] || fail "systemd-analyze verify warns: $verify"
  log "systemd-analyze verify /lib/systemd/system/anyturn.service: clean (man page found too)"
fi

# ---- the installed binary, by hand, as the package's user ----
port="$(free_port)"
tls_port="$(free_port)"
while [[ "$tls_port" == "$port" ]]; do tls_port="$(free_port)"; done
http="$(free_port)"
while [[ "$http" == "$port" || "$http" == "$tls_port" ]]; do http="$(free_port)"; done
setpriv --reuid anyturn --regid anyturn --init-groups -- /usr/bin/anyturn --config /etc/anyturn/anyturn.yaml \
  --listen "127.0.0.1:$port" --tls-listen "127.0.0.1:$tls_port" --http-listen "127.0.0.1:$http" \
  --relay-ip 127.0.0.1 --relay-ports "$(relay_range 22)" --threads 1 >"$work/anyturn.log" 2>&1 &
server_pid=$!
started_pids+=("$server_pid")
for ((i = 0; i < 50; i++)); do
  kill -0 "$server_pid" 2>/dev/null || fail "the installed anyturn exited during start-up"
  if stun_ping "$port" 0.2; then break; fi
done
out="$work/stunclient.log"
timeout 15 turnutils_stunclient -p "$port" 127.0.0.1 >"$out" 2>&1 || true
reflexive="$(grep -oE 'UDP reflexive addr: [0-9.]+:[0-9]+' "$out" | tail -n 1 | awk '{print $4}')"
[[ "${reflexive%:*}" == 127.0.0.1 ]] || fail "no STUN Binding answer from the installed binary: $(cat "$out")"
log "turnutils_stunclient: reflexive address $reflexive"
code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$http/healthz")"
[[ "$code" == 200 ]] || fail "GET /healthz answered $code"
log "GET /healthz: 200"
[[ -f /var/lib/anyturn/rest-secret ]] || fail "the server did not keep its generated REST secret in /var/lib/anyturn"
grep -q 'SELF-SIGNED' "$work/anyturn.log" || fail "expected the development-certificate warning in the log"
stop_server

# ---- purge: nothing left ----
dpkg --purge anyturn >"$work/dpkg-purge.log" 2>&1 || fail "dpkg --purge failed: $(cat "$work/dpkg-purge.log")"
installed=0
log "dpkg --purge: done"
left=()
while read -r _ _ _ _ _ _ path _; do
  path="${path#.}"
  [[ -z "$path" || "$path" == / ]] && continue
  # Directories the package shares with the system (/usr, /usr/bin, ...) stay.
  if [[ -d "$path" ]]; then
    case "$path" in
      /etc/anyturn | /usr/share/doc/anyturn) left+=("$path") ;;
    esac
    continue
  fi
  [[ -e "$path" || -L "$path" ]] && left+=("$path")
done <"$work/contents.txt"
for path in /var/lib/anyturn /etc/anyturn; do [[ -e "$path" ]] && left+=("$path"); done
getent passwd anyturn >/dev/null && left+=("user anyturn")
getent group anyturn >/dev/null && left+=("group anyturn")
dpkg-query -W anyturn >/dev/null 2>&1 && left+=("the dpkg database entry")
((${#left[@]} == 0)) || fail "left after dpkg --purge: ${left[*]}"
log "nothing left after the purge"

if [[ -n "$keep" ]]; then
  mkdir -p "$keep"
  cp "$deb" "$keep/"
  log "kept $keep/$(basename "$deb")"
fi
log "PASS"
