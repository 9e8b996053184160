#!/usr/bin/env bash
# Builds and runs the libFuzzer harnesses tests/fuzz/fuzz_<name>.c (clang, ASan + UBSan).
#
#   scripts/fuzz.sh                 every harness, FUZZ_SECONDS (default 20) seconds each
#   scripts/fuzz.sh sse ndjson      only these
#   FUZZ_SECONDS=0 scripts/fuzz.sh  build, then run each harness once over its seeds only
#   FUZZ_ARGS="-jobs=4" ...         extra libFuzzer arguments
#
# A harness says what it needs in comment lines of its own (each may repeat):
#   // fuzz-sources: src/upstream/sse.c src/base/buf.c src/base/alloc.c
#       the src/ files compiled with it (directly, with clang: not the gcc archive)
#   // fuzz-seeds: @fixtures/*/*.sse tests/fuzz/seeds/ws/*
#       files copied into its seed corpus; @fixtures is the upstream fixtures directory
#       ($SL_FIXTURES, else ../shared/upstream-fixtures); other paths are from the repo root
#   // fuzz-libs: jansson -lwslay
#       pkg-config packages, or linker flags (starting with '-')
#
# Output under build/fuzz/: the binaries, corpus/<name>/ (grows from run to run), seeds/<name>/
# and artifacts/<name>/ (crash-*, leak-*, timeout-* inputs; replay one with
# `build/fuzz/fuzz_<name> <file>`). Exits non-zero if a harness fails to build or a fuzzer
# finds a crash, leak, timeout or failed check.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=build/fuzz
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
FUZZ_ARGS=${FUZZ_ARGS:-}
CLANG=${CLANG:-clang}
FIXTURES=${SL_FIXTURES:-$ROOT/../shared/upstream-fixtures}

WARN="-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
      -Wformat-security -Wwrite-strings -Wvla"
# float-cast-overflow (a provider's 1e300 cast to an integer) is in clang's `undefined`
# already; it is named so that the check is visibly on, as in the Makefile's SAN_FLAGS.
CFLAGS="-std=c11 -g -O1 -fno-omit-frame-pointer -fno-strict-aliasing -pthread
        -fsanitize=fuzzer,address,undefined,float-cast-overflow
        -fno-sanitize-recover=undefined,float-cast-overflow
        -Isrc -D_GNU_SOURCE -DSL_VERSION=\"fuzz\""

command -v "$CLANG" >/dev/null || { echo "fuzz.sh: $CLANG not found (scripts/install-deps.sh --test)" >&2; exit 2; }

# The words after "// <key>:" on every such line of file $1.
directive() {
    sed -n "s|^// $2:[[:space:]]*||p" "$1" | tr '\n' ' '
}

if [ $# -gt 0 ]; then
    harnesses=()
    for n in "$@"; do harnesses+=("tests/fuzz/fuzz_${n#fuzz_}.c"); done
else
    shopt -s nullglob
    harnesses=(tests/fuzz/fuzz_*.c)
    shopt -u nullglob
fi
[ ${#harnesses[@]} -gt 0 ] || { echo "fuzz.sh: no harness in tests/fuzz/" >&2; exit 2; }

mkdir -p "$OUT"
failed=()
for h in "${harnesses[@]}"; do
    [ -f "$h" ] || { echo "fuzz.sh: no such harness $h" >&2; failed+=("$h"); continue; }
    name=$(basename "$h" .c)
    name=${name#fuzz_}
    bin=$OUT/fuzz_$name

    sources=$(directive "$h" fuzz-sources)
    libs=""
    read -r -a wanted <<<"$(directive "$h" fuzz-libs)"
    for l in ${wanted[@]+"${wanted[@]}"}; do
        case $l in
        -*) libs="$libs $l" ;;
        *) libs="$libs $(pkg-config --cflags --libs "$l")" ;;
        esac
    done

    echo "== fuzz_$name: building ($sources)"
    # shellcheck disable=SC2086 # word splitting of the flag lists is intended
    if ! $CLANG $CFLAGS $WARN -o "$bin" "$h" $sources $libs; then
        failed+=("$name (build)")
        continue
    fi

    seeds=$OUT/seeds/$name
    corpus=$OUT/corpus/$name
    artifacts=$OUT/artifacts/$name
    rm -rf "$seeds"
    mkdir -p "$seeds" "$corpus" "$artifacts"
    nseeds=0
    read -r -a patterns <<<"$(directive "$h" fuzz-seeds)"
    shopt -s nullglob
    for pattern in ${patterns[@]+"${patterns[@]}"}; do
        pattern=${pattern/#@fixtures/$FIXTURES}
        for f in $pattern; do
            [ -f "$f" ] || continue
            # flatten the path so that same-named files from two folders do not collide
            rel=${f#"$FIXTURES"/}
            cp "$f" "$seeds/${rel//\//_}"
            nseeds=$((nseeds + 1))
        done
    done
    shopt -u nullglob
    echo "== fuzz_$name: $nseeds seed files, running ${FUZZ_SECONDS}s"

    if [ "$FUZZ_SECONDS" = 0 ]; then
        args=(-runs=0 "$seeds")
    else
        args=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -print_final_stats=1 "$corpus" "$seeds")
    fi
    # shellcheck disable=SC2086
    if ! "$bin" -artifact_prefix="$artifacts/" $FUZZ_ARGS "${args[@]}" >"$OUT/fuzz_$name.log" 2>&1; then
        tail -n 40 "$OUT/fuzz_$name.log" >&2
        echo "== fuzz_$name: FAILED (log: $OUT/fuzz_$name.log, inputs: $artifacts/)" >&2
        failed+=("$name")
        continue
    fi
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^Done [0-9]+ runs' \
        "$OUT/fuzz_$name.log" | sed "s|^|   |" || true
    echo "== fuzz_$name: ok"
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: all ${#harnesses[@]} harnesses passed"
