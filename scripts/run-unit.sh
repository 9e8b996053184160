#!/bin/sh
# Runs each Criterion binary given as an argument. Criterion runs every test in a
# child process and does not fail a test whose child only reports a leak or an
# undefined behaviour at exit, so the output is also searched for sanitizer reports.
#
# One leak is not ours: Criterion's own runner (the parent process, not a test) now and
# then loses 48 bytes when two test workers end together (--jobs 2). A suppression naming
# libcriterion would also hide every leak allocated from a test body (Criterion's frames
# are at the bottom of every test's stack), so instead a leak report fails the run unless
# every frame of every leaked block, the allocator's aside, lies in Criterion or libc.
set -u
status=0
# Leak reports decide below, not the exit status: Criterion's runner's own leak would
# otherwise fail the binary (LeakSanitizer's exit code 23 in the parent process).
LSAN_OPTIONS="exitcode=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Prints the number of leaked blocks with a frame outside Criterion and libc.
ours_leaks() {
    awk '
    /^(Direct|Indirect) leak of/ { inblk = 1; ours = 0; next }
    inblk && /^ *#[0-9]+ / {
        if ($1 == "#0") next                     # the allocator (malloc, calloc, ...)
        if ($0 !~ /libcriterion\.so|\/libc\.so|libc-start|__libc_start/) ours = 1
        next
    }
    inblk && /^ *$/ { if (ours) n++; inblk = 0 }
    END { if (inblk && ours) n++; print n + 0 }' "$1"
}

for t in "$@"; do
    echo "== $t"
    if ! "$t" --jobs 2 --short-filename >"$log" 2>&1; then
        status=1
    fi
    cat "$log"
    if grep -Eq 'ERROR: AddressSanitizer|runtime error:' "$log"; then
        echo "!! sanitizer report in $t" >&2
        status=1
    elif grep -q 'ERROR: LeakSanitizer' "$log"; then
        if [ "$(ours_leaks "$log")" -gt 0 ]; then
            echo "!! leak in $t" >&2
            status=1
        else
            echo "(a leak inside Criterion's runner only, none of this test's: ignored)"
        fi
    fi
done
exit $status
