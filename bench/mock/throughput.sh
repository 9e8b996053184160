#!/usr/bin/env bash
# The mock's own throughput (docs/mock.md, "Performance"): starts a mock, runs PROCS curl
# processes of PER parallel streaming transfers each straight at it, and prints the wall
# time, the mock's CPU time (from /proc/<pid>/stat), tokens per mock CPU-second, and the
# transfers' total time at the median and p99.
#
#   bench/mock/throughput.sh [MOCK] [SCENARIO] [PROCS] [PER]
#   bench/mock/throughput.sh build/sluice-mock synth:tokens=500 4 250
#   bench/mock/throughput.sh build/sluice-mock synth:tokens=100,rate=20 20 250
set -uo pipefail

MOCK=${1:-build/sluice-mock}
SCN=${2:-synth:tokens=500}
PROCS=${3:-4}
PER=${4:-250}

command -v jq >/dev/null || { echo "throughput: jq is needed" >&2; exit 2; }
[ -x "$MOCK" ] || { echo "throughput: $MOCK is missing (run make)" >&2; exit 2; }

D=$(mktemp -d)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$D"
}
trap cleanup EXIT

mkdir -p "$D/fx"
echo '{"fixtures":[]}' >"$D/fx/index.json"
"$MOCK" --listen 127.0.0.1:0 --fixtures "$D/fx" --log-cap 100 >"$D/out" 2>"$D/err" &
PID=$!
for _ in $(seq 100); do
    grep -q listening "$D/out" && break
    sleep 0.05
done
ADDR=$(awk '{print $2}' "$D/out")
[ -n "$ADDR" ] || { echo "throughput: the mock did not start" >&2; cat "$D/err" >&2; exit 1; }

BODY="{\"model\":\"$SCN\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}"
for _ in $(seq "$PER"); do
    echo "url = \"http://$ADDR/v1/chat/completions\""
    echo 'output = "/dev/null"'
done >"$D/cfg"

cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
c0=$(cpu)
t0=$(date +%s.%N)
CURLS=()
for p in $(seq "$PROCS"); do
    curl -s -Z --parallel-immediate --parallel-max "$PER" -K "$D/cfg" -w '%{time_total}\n' \
        -H 'content-type: application/json' -H 'authorization: Bearer x' -d "$BODY" \
        >"$D/times.$p" 2>/dev/null &
    CURLS+=($!)
done
wait "${CURLS[@]}"
t1=$(date +%s.%N)
c1=$(cpu)
tokens=$(curl -s "http://$ADDR/_mock/stats" | jq .tokens_sent)
sort -n "$D"/times.* >"$D/times"
awk -v c0="$c0" -v c1="$c1" -v hz="$(getconf CLK_TCK)" -v t0="$t0" -v t1="$t1" -v tok="$tokens" \
    'BEGIN { cpu = (c1 - c0) / hz;
             printf "wall %.2f s, mock CPU %.2f s, %d tokens, %.0f tokens per mock CPU-second\n",
                    t1 - t0, cpu, tok, (cpu > 0 ? tok / cpu : 0) }'
awk '{ t[NR] = $1 } END { printf "transfers: %d, total time p50 %.3f s, p99 %.3f s\n",
                                 NR, t[int(NR * 0.5)], t[int(NR * 0.99)] }' "$D/times"
