#!/usr/bin/env bash
# Prints each failed GoogleTest assertion of a meson test log, with what it
# expected and saw, after everything else: CI keeps only the end of a run's
# output, where meson's summary alone would not say which check failed.
#
#   scripts/print-failures.sh build/meson-logs/testlog.txt
log=${1:?usage: print-failures.sh TESTLOG}
[ -f "$log" ] || exit 0
echo "=== failed checks in $log"
awk '/: Failure$/ { n = 12 } n > 0 { print; if (--n == 0) print "---"; next } /^\[  FAILED  \]/ { print }' "$log" | tail -n 120
