#!/usr/bin/env bash
# packaging/systemd/anyturn.service passes `systemd-analyze verify` with no
# warning at all (verify exits 0 on unknown keys and bad values, so any
# output fails the test), and has the settings docs/packaging.md promises.
# ExecStart's /usr/bin/anyturn is replaced by this build's binary, which
# verify checks is executable; the man page is checked by the package test
# (here it is not installed: --man=no).
# Exits 77 (skipped) when systemd-analyze is missing or cannot run here.
#   systemd_unit.sh UNIT_FILE ANYTURN_BINARY
set -euo pipefail
unit="${1:?usage: systemd_unit.sh UNIT_FILE ANYTURN_BINARY}"
binary="$(realpath "${2:?usage: systemd_unit.sh UNIT_FILE ANYTURN_BINARY}")"

fail() {
  echo "FAIL: $*"
  exit 1
}

command -v systemd-analyze >/dev/null 2>&1 || { echo "SKIP: systemd-analyze not found (package systemd)"; exit 77; }
work="$(mktemp -d /tmp/anyturn-unit.XXXXXX)"
trap 'rm -rf "$work"' EXIT
# verify itself must work: a known-good minimal unit passes cleanly.
printf '[Service]\nType=simple\nExecStart=/bin/true\n' >"$work/probe.service"
if ! probe="$(systemd-analyze verify --man=no "$work/probe.service" 2>&1)" || [[ -n "$probe" ]]; then
  echo "SKIP: systemd-analyze verify does not work here: $probe"
  exit 77
fi

for setting in '^Type=notify$' '^WatchdogSec=' '^ExecReload=/bin/kill -HUP \$MAINPID$' '^User=anyturn$' \
  '^AmbientCapabilities=CAP_NET_BIND_SERVICE$' '^ProtectSystem=strict$' '^NoNewPrivileges=yes$' \
  '^LimitNOFILE=' '^StateDirectory=anyturn$' '^ExecStop=.*kill -USR1 \$\{MAINPID\}.*kill -0' '^TimeoutStopSec=' \
  '^NotifyAccess=main$'; do
  grep -Eq "$setting" "$unit" || fail "$unit has no line matching $setting"
done
# The stop timeout outlasts the drain the unit asks for.
drain="$(sed -n 's/^ExecStart=.*--drain-timeout \([0-9]*\).*/\1/p' "$unit")"
stop="$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit")"
[[ -n "$drain" && -n "$stop" ]] || fail "ExecStart needs --drain-timeout N and TimeoutStopSec=N (seconds)"
((stop > drain)) || fail "TimeoutStopSec=$stop does not outlast --drain-timeout $drain"

sed "s#/usr/bin/anyturn#$binary#g" "$unit" >"$work/anyturn.service"
if ! out="$(systemd-analyze verify --man=no "$work/anyturn.service" 2>&1)"; then
  fail "systemd-analyze verify: $out"
fi
[[ -z "$out" ]] || fail "systemd-analyze verify warns: $out"
# And the check must be able to fail: a misspelt key is reported.
sed 's/^WatchdogSec=/WatchdogSecs=/' "$work/anyturn.service" >"$work/bad.service"
bad="$(systemd-analyze verify --man=no "$work/bad.service" 2>&1 || true)"
[[ "$bad" == *WatchdogSecs* ]] || fail "systemd-analyze verify did not report a misspelt key: $bad"

# The XDP drop-in (packaging/systemd/xdp.conf, docs/xdp.md) beside the unit:
# verify reads drop-ins from the unit's directory, and the pair is clean. A
# misspelt key in the drop-in is reported, so the drop-in was read.
dropin="$(dirname "$unit")/xdp.conf"
[[ -f "$dropin" ]] || fail "no $dropin"
for setting in '^AmbientCapabilities=CAP_BPF CAP_NET_ADMIN CAP_PERFMON$' \
  '^CapabilityBoundingSet=CAP_BPF CAP_NET_ADMIN CAP_PERFMON$' '^SystemCallFilter=bpf$'; do
  grep -Eq "$setting" "$dropin" || fail "$dropin has no line matching $setting"
done
mkdir "$work/anyturn.service.d"
cp "$dropin" "$work/anyturn.service.d/xdp.conf"
if ! out="$(systemd-analyze verify --man=no "$work/anyturn.service" 2>&1)"; then
  fail "systemd-analyze verify with the XDP drop-in: $out"
fi
[[ -z "$out" ]] || fail "systemd-analyze verify warns with the XDP drop-in: $out"
printf 'AmbientCapabilitys=CAP_BPF\n' >>"$work/anyturn.service.d/xdp.conf"
bad="$(systemd-analyze verify --man=no "$work/anyturn.service" 2>&1 || true)"
[[ "$bad" == *AmbientCapabilitys* ]] || fail "verify did not read the drop-in (no word of its misspelt key): $bad"
echo "systemd-analyze verify $unit: clean; TimeoutStopSec=$stop > --drain-timeout $drain; with xdp.conf: clean"
echo PASS
