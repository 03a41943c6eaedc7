#!/bin/sh
# anyturn on Kubernetes: the init container's step. Copies the config
# template (the ConfigMap) to the pod's memory-backed volume, replacing every
# ${ANYTURN_NAME} with the environment variable of that name (filled from the
# Secret), then validates the result with `anyturn check-config`, so a pod
# with a placeholder or a bad key never starts its server container.
# The values never appear on a command line (awk reads them from its
# environment). They go into YAML double-quoted strings: use hex keys
# (openssl rand -hex 32), never a quote or a backslash.
set -eu
template="${ANYTURN_TEMPLATE:-/etc/anyturn/template/anyturn.yaml}"
out="${ANYTURN_RENDERED:-/run/anyturn/anyturn.yaml}"
umask 077
awk '
{
  line = $0
  done = ""
  while (match(line, /\$\{ANYTURN_[A-Z0-9_]+\}/)) {
    name = substr(line, RSTART + 2, RLENGTH - 3)
    if (!(name in ENVIRON) || ENVIRON[name] == "") {
      print "render-config: " name " is not set (the Secret lacks it?)" > "/dev/stderr"
      failed = 1
      exit 1
    }
    done = done substr(line, 1, RSTART - 1) ENVIRON[name]
    line = substr(line, RSTART + RLENGTH)
  }
  print done line
}' "$template" > "$out.tmp"
mv "$out.tmp" "$out"
exec "${ANYTURN_BINARY:-anyturn}" check-config "$out"
