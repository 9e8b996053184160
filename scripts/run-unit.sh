#!/bin/sh
# Runs each Criterion binary given as an argument. Criterion runs every test in a
# child process and does not fail a test whose child only reports a leak or an
# undefined behaviour at exit, so the output is also searched for sanitizer reports.
set -u
status=0
LSAN_OPTIONS="suppressions=$(cd "$(dirname "$0")/.." && pwd)/tests/unit/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "$@"; do
    echo "== $t"
    if ! "$t" --jobs 2 --short-filename >"$log" 2>&1; then
        status=1
    fi
    cat "$log"
    if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
        echo "!! sanitizer report in $t" >&2
        status=1
    fi
done
exit $status
