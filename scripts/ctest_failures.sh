#!/usr/bin/env bash
# Prints the tests that failed in a build's last ctest run, each with the
# end of its output (from ctest's own Testing/Temporary logs), so that the
# tail of a long CI log still says what failed and why.
#
#   scripts/ctest_failures.sh BUILD_DIR [LINES]
set -euo pipefail
build="${1:?usage: $0 BUILD_DIR [LINES]}"
lines="${2:-25}"
failed="$build/Testing/Temporary/LastTestsFailed.log"
log="$build/Testing/Temporary/LastTest.log"
[[ -s "$failed" ]] || exit 0
while IFS= read -r entry; do
  name="${entry#*:}"
  echo "--- FAILED: $name"
  [[ -f "$log" ]] || continue
  # The block between "N/M Test: NAME" and its "end time" line.
  awk -v name="$name" '
    $0 ~ /^[0-9]+\/[0-9]+ Test: / { sub(/^[0-9]+\/[0-9]+ Test: /, ""); inside = ($0 == name); next }
    inside && index($0, "\"" name "\" end time:") == 1 { inside = 0 }
    inside { print }
  ' "$log" | tail -n "$lines"
done <"$failed"
