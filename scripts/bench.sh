#!/usr/bin/env bash
# The benchmark table (`make bench`, docs/performance.md).
#
# Starts the mock upstream (build/sluice-mock, synthetic streams only) and, for each
# scenario, a fresh release sluice (build/sluice) whose models point at it; runs
# build/sluice-loadgen through sluice (WebSocket, and OpenAI-style SSE once sluice serves
# /v1/chat/completions), then the same load straight at the mock (the no-gateway
# baseline) and through the Portkey gateway pointed at the same mock, and prints one
# table. The loadgen samples each server's CPU time and RSS from /proc, so everything
# runs on this host.
#
#   (a) A_CONNS connections x 1 stream x A_TOKENS tokens as fast as the upstream sends,
#       with 1 and with 2 sluice workers; natively over WebSocket, and over Socket.IO
#       (the native protocol as events in namespace /sluice, websocket transport)
#   (b) B_CONNS connections x 1 stream x B_TOKENS tokens at B_RATE tokens/s
#   (c) C_CONNS idle authenticated connections: sluice's RSS per connection, native and
#       Socket.IO (joined to /sluice)
#   (d) sluice CPU-seconds per million tokens (= CPU-µs per token) of (a) and (b)
#   (e) E_CONNS connections x 1 stream x E_TOKENS tokens at E_RATE tokens/s, every
#       connection reset at one moment once the streams have E_CUT tokens on average, then
#       reconnected and resumed (each connection its own JWT user); with 1 and 2 sluice
#       workers (with 2, about half the resumes land on the other worker: the relay).
#       Every stream's text is checked token by token; resume latency, journal memory per
#       active stream (sluice's /metrics at the cut and its peak), detached sessions.
#       E_RATE is 20 tokens/s by default (20,000 tokens/s in all, which this 2-vCPU machine
#       carries with sub-millisecond added latency, see (b)'s sweep): at 100 tokens/s the
#       token path alone saturates it as (b) does, and the resume figures measure that.
#   (f) every client dialect (native, Socket.IO /sluice, and the seed frontends' chat, llm,
#       stream, ai over Socket.IO and ws-chat over WebSocket): sluice's CPU per token under
#       (a)'s load with 1 worker (F_CONNS x F_TOKENS, all dialects on one sluice, F_ROUNDS
#       rounds in turn, the median kept), and its RSS per idle connection under (c)'s
#       (F_IDLE_CONNS, a fresh sluice each); each against native WebSocket's. F_SCENARIO
#       replaces the mock scenario (default synth:tokens=F_TOKENS,ts=1: every token a
#       latency stamp of about 18 bytes; synth:tokens=F_TOKENS gives "tok1 tok2 ...").
#   (g) permessage-deflate: G_CONNS connections x 1 stream x A_TOKENS tokens as fast as the
#       upstream sends, 1 worker, the same load with the loadgen offering permessage-deflate
#       (--deflate) to a sluice without it (plain), with it (websocket.permessage_deflate,
#       the defaults: context takeover, 2 KiB window, memLevel 4, level 6), and with it
#       without context takeover; then G_IDLE idle connections per variant (RSS each).
#       sluice CPU-µs per token and bytes on the wire per token (everything read from the
#       socket, handshake included, over the tokens delivered).
#   (h) a burst of new streams with the default provider configuration: H_CONNS
#       connections, all up and idle first, then one chat each sent at the same moment
#       (H_TOKENS tokens at H_RATE tokens/s); cold (a fresh sluice: every upstream
#       connection opened in the burst) and warm (the same burst again: curl's cache has
#       them), with 1 and 2 workers, beside the same burst straight at the mock. TTFT
#       p10/p50/p99, token delay p99, failures, and sluice's CPU from the burst to the last
#       first token per new stream.
#
# Environment: the variables above override the scenario sizes; BENCH_OUT is where the JSON
# of every run and the logs go (default build/bench); BENCH_ONLY=a,b,c,e runs a subset;
# BENCH_SLUICE=path/to/sluice measures another build (say, of an older commit, for a
# before/after comparison; the load generator and the mock stay this tree's);
# BENCH_REDIS=1 runs every sluice in cluster mode (docs/cluster.md) against a redis-server
# started here on a Unix socket (BENCH_REDIS=redis://host:port: that one), and prints each
# run's Redis commands per token delivered (sluice_redis_commands_total);
# BENCH_SWEEP="500 1000 2000" also runs (b) at each of these connection counts and prints
# where sluice's added latency stays small (capacity planning); BENCH_PERF=1 records each run through sluice with `perf record -g` into
# $BENCH_OUT/perf-<run>.data (then read it with `perf report -i ...`); BENCH_PORTKEY=0 skips
# the Portkey rows; BENCH_HTTP_CLIENT=curl has every sluice reach the mock through libcurl
# instead of its builtin HTTP/1.1 client (providers.<name>.http_client), for an A/B.
#
# Portkey (npm @portkey-ai/gateway, pinned in bench/portkey/package-lock.json) is installed
# by `npm ci` into bench/portkey/node_modules on first use, started as one Node process
# (as `npx @portkey-ai/gateway` runs it) on 127.0.0.1 (bench/portkey/loopback.mjs), and
# sent the same requests as the mock with the headers that route them there
# (x-portkey-provider: openai, x-portkey-custom-host: the mock). Without node and npm, or
# if the install fails, its rows say "no run" and the rest of the table stands.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
SLUICE=${BENCH_SLUICE:-$ROOT/build/sluice}
MOCK=$ROOT/build/sluice-mock
LOADGEN=$ROOT/build/sluice-loadgen
OUT=${BENCH_OUT:-$ROOT/build/bench}

A_CONNS=${A_CONNS:-1000}
A_TOKENS=${A_TOKENS:-500}
B_CONNS=${B_CONNS:-5000}
B_TOKENS=${B_TOKENS:-200}
B_RATE=${B_RATE:-20}
B_SPREAD=${B_SPREAD:-2s}
C_CONNS=${C_CONNS:-15000}
C_HOLD=${C_HOLD:-3s}
E_CONNS=${E_CONNS:-1000}
E_TOKENS=${E_TOKENS:-500}
E_RATE=${E_RATE:-20}
E_CUT=${E_CUT:-200}
F_CONNS=${F_CONNS:-$A_CONNS}
F_TOKENS=${F_TOKENS:-$A_TOKENS}
F_ROUNDS=${F_ROUNDS:-1}
F_IDLE_CONNS=${F_IDLE_CONNS:-$C_CONNS}
G_CONNS=${G_CONNS:-500}
G_IDLE=${G_IDLE:-5000}
H_CONNS=${H_CONNS:-1000}
H_TOKENS=${H_TOKENS:-60}
H_RATE=${H_RATE:-20}
H_IDLE=${H_IDLE:-1s}
ONLY=${BENCH_ONLY:-a,b,c,e,f,g,h}
SWEEP=${BENCH_SWEEP:-}
PERF=${BENCH_PERF:-0}
PORTKEY=${BENCH_PORTKEY:-1}
PK_DIR=$ROOT/bench/portkey
REDIS=${BENCH_REDIS:-}

for b in "$SLUICE" "$MOCK" "$LOADGEN"; do
    [ -x "$b" ] || { echo "bench: $b is missing (run make)" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "bench: jq is needed to print the table" >&2; exit 2; }

rm -rf "$OUT"
mkdir -p "$OUT"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT

# Waits until file $1 has a line matching $2 (or the process $3 died); prints the match.
wait_line() {
    local i
    for i in $(seq 1 200); do
        if grep -qE "$2" "$1" 2>/dev/null; then
            grep -oE "$2" "$1" | head -1
            return 0
        fi
        kill -0 "$3" 2>/dev/null || break
        sleep 0.05
    done
    echo "bench: no '$2' in $1" >&2
    cat "$1" >&2
    return 1
}

# --- the mock upstream ---------------------------------------------------------------------
mkdir -p "$OUT/fixtures"
echo '{"fixtures":[]}' >"$OUT/fixtures/index.json"
"$MOCK" --listen 127.0.0.1:0 --fixtures "$OUT/fixtures" --log-cap 100 \
    >"$OUT/mock.out" 2>"$OUT/mock.err" &
MOCK_PID=$!
PIDS+=("$MOCK_PID")
MOCK_ADDR=$(wait_line "$OUT/mock.out" '127\.0\.0\.1:[0-9]+' "$MOCK_PID") || exit 1
MOCK_URL="http://$MOCK_ADDR/v1"

# --- Redis (BENCH_REDIS) ----------------------------------------------------------------------
REDIS_URL=
if [ "$REDIS" = 1 ]; then
    command -v redis-server >/dev/null || { echo "bench: BENCH_REDIS=1 needs redis-server" >&2; exit 2; }
    redis-server --port 0 --unixsocket "$OUT/redis.sock" --save '' --appendonly no \
        --dir "$OUT" >"$OUT/redis.log" 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    wait_line "$OUT/redis.log" '[Rr]eady to accept connections' "$REDIS_PID" >/dev/null || exit 1
    REDIS_URL="unix://$OUT/redis.sock"
elif [ -n "$REDIS" ]; then
    REDIS_URL=$REDIS
fi

SCEN_A="synth:tokens=$A_TOKENS,ts=1"
SCEN_B="synth:tokens=$B_TOKENS,rate=$B_RATE,ts=1"
# ts=2: "tok<i>@<µs> ", text the load generator can check token by token, and time.
SCEN_E="synth:tokens=$E_TOKENS,rate=$E_RATE,ts=2"
SCEN_F=${F_SCENARIO:-"synth:tokens=$F_TOKENS,ts=1"}
SCEN_H="synth:tokens=$H_TOKENS,rate=$H_RATE,ts=1"
KEY="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
JWT_SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
KEY_SHA=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)

# --- sluice ------------------------------------------------------------------------------------
# Upstream connections per worker: sluice reserves a descriptor for each of them at start
# (and refuses to start when the file limit cannot hold them), beside its clients'. With a
# small hard limit (20,000 here) 10,000 per worker leave no room, so the streaming scenarios
# get what the limit holds beside their largest client count, and the idle ones (c), (f),
# which call no upstream, 100. BENCH_UPSTREAM_CONNS overrides.
NOFILE_HARD=$(ulimit -Hn)
if [ -n "${BENCH_UPSTREAM_CONNS:-}" ]; then
    UPSTREAM_CONNS=$BENCH_UPSTREAM_CONNS
elif [ "$NOFILE_HARD" = unlimited ]; then
    UPSTREAM_CONNS=10000
else
    STREAMS_MAX=$A_CONNS
    for n in "$B_CONNS" "$E_CONNS" "$F_CONNS" $SWEEP; do
        [ "$n" -gt "$STREAMS_MAX" ] && STREAMS_MAX=$n
    done
    UPSTREAM_CONNS=$(((NOFILE_HARD - STREAMS_MAX - 1000) / $(nproc)))
    [ "$UPSTREAM_CONNS" -gt 10000 ] && UPSTREAM_CONNS=10000
    [ "$UPSTREAM_CONNS" -lt 100 ] && UPSTREAM_CONNS=100
fi
IDLE_UPSTREAM_CONNS=${BENCH_UPSTREAM_CONNS:-100}
SLUICE_PID=
SLUICE_URL=
SLUICE_HTTP=
SLUICE_METRICS=
SLUICE_SIO=
SLUICE_WSCHAT=
# The provider's settings beyond kind, URL and key: the benchmark's own (a wide pool, no
# retries, long timeouts), or with PROVIDER_DEFAULTS=1 sluice's defaults, as shipped.
provider_settings() { # [upstream connections per worker]
    [ -n "${BENCH_HTTP_CLIENT:-}" ] && printf '    http_client: %s\n' "$BENCH_HTTP_CLIENT"
    [ "${PROVIDER_DEFAULTS:-0}" = 1 ] && return
    printf '    %s\n' "max_connections: ${1:-$UPSTREAM_CONNS}" "max_retries: 0" \
        "first_byte_timeout: 60s" "idle_timeout: 60s"
}
start_sluice() { # workers name [log level] [upstream connections per worker] [extra YAML line]
    local cfg="$OUT/sluice-$2.yaml"
    cat >"$cfg" <<EOF
${5:-}
listen: 127.0.0.1:0
workers: $1
auth:
  jwt: { secret: "$JWT_SECRET" }
  api_keys: [ { name: bench, sha256: "$KEY_SHA" } ]
limits:
  max_connections: 1000000
  max_streams_per_connection: 64
  messages_per_minute: 1000000
  max_streams_per_user: 0         # every load generator connection is the same user
  max_connections_per_user: 0
  auth_timeout: 60s
heartbeat: { interval: 1h, timeout: 2h }
# Socket.IO's own pings, like the WebSocket heartbeat above, out of the measured runs.
socketio: { ping_interval: 1h, ping_timeout: 1h }
# ws-chat requests name no model: theirs is the default.
default_model: bench-f
shutdown: { drain_timeout: 1s }
log: { level: ${3:-warn} }
providers:
  mock:
    kind: openai
    base_url: "$MOCK_URL"
    api_key: x
$(provider_settings "${4:-}")
models:
  bench-a: { provider: mock, upstream_model: "$SCEN_A" }
  bench-b: { provider: mock, upstream_model: "$SCEN_B" }
  bench-e: { provider: mock, upstream_model: "$SCEN_E" }
  bench-f: { provider: mock, upstream_model: "$SCEN_F" }
  bench-h: { provider: mock, upstream_model: "$SCEN_H" }
  bench-warm: { provider: mock, upstream_model: "synth:tokens=1" }
EOF
    [ -n "$REDIS_URL" ] && printf 'redis: { url: "%s" }\n' "$REDIS_URL" >>"$cfg"
    "$SLUICE" -c "$cfg" >"$OUT/sluice-$2.out" 2>"$OUT/sluice-$2.err" &
    SLUICE_PID=$!
    PIDS+=("$SLUICE_PID")
    local addr
    addr=$(wait_line "$OUT/sluice-$2.out" 'listening on http://[^ ]+' "$SLUICE_PID") || return 1
    SLUICE_URL="ws://${addr#listening on http://}/ws"
    SLUICE_HTTP="http://${addr#listening on http://}/v1"
    SLUICE_METRICS="http://${addr#listening on http://}/metrics"
    SLUICE_SIO="ws://${addr#listening on http://}/socket.io/"
    SLUICE_WSCHAT="ws://${addr#listening on http://}/ws/chat"
}

# The load generator's arguments for a dialect: its URL and --dialect. The namespaces are
# sluice's defaults (/sluice, / for chat and llm, /stream, /ai), each requiring a token,
# which goes in the Socket.IO CONNECT as the seeds' clients send it.
dialect_args() { # dialect
    case $1 in
    native) echo "$SLUICE_URL" ;;
    ws-chat) echo "--dialect ws-chat $SLUICE_WSCHAT" ;;
    *) echo "--dialect $1 $SLUICE_SIO" ;;
    esac
}
DIALECTS="native sluice chat llm stream ai ws-chat"

# Whether this sluice serves OpenAI-style SSE at /v1/chat/completions (a one-stream probe).
SSE_STATE=unknown
sluice_sse() { # model
    if [ "$SSE_STATE" = unknown ]; then
        if "$LOADGEN" -c 1 -s 1 -m "$1" --token "$KEY" --no-progress --timeout 30s \
            "$SLUICE_HTTP" >"$OUT/sse-probe.txt" 2>&1; then
            SSE_STATE=yes
        else
            SSE_STATE=no
            echo "  (sluice does not serve /v1/chat/completions yet: no 'sluice sse' rows;" \
                "probe: $(grep -m1 -oE 'errors +[^ ].*' "$OUT/sse-probe.txt" || echo failed))"
        fi
    fi
    [ "$SSE_STATE" = yes ]
}

# --- the Portkey gateway -------------------------------------------------------------------
PK_PID=
PK_URL=
PK_HDRS=()
start_portkey() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "  (no node/npm: no portkey rows; scripts/install-deps.sh --bench installs them)"
        return 1
    fi
    local stamp=$PK_DIR/node_modules/.package-lock.json
    if [ ! -f "$stamp" ] || [ "$PK_DIR/package-lock.json" -nt "$stamp" ]; then
        if ! (cd "$PK_DIR" && npm ci --no-audit --no-fund --ignore-scripts) \
            >"$OUT/portkey-npm.log" 2>&1; then
            echo "  (npm ci in bench/portkey failed, see $OUT/portkey-npm.log: no portkey rows)"
            return 1
        fi
    fi
    NODE_ENV=production node --import "$PK_DIR/loopback.mjs" \
        "$PK_DIR/node_modules/@portkey-ai/gateway/build/start-server.js" --port=0 --headless \
        >"$OUT/portkey.out" 2>"$OUT/portkey.err" &
    PK_PID=$!
    PIDS+=("$PK_PID")
    local addr
    addr=$(wait_line "$OUT/portkey.err" 'listening 127\.0\.0\.1:[0-9]+' "$PK_PID") || return 1
    PK_URL="http://${addr#listening }/v1"
    PK_HDRS=(-H "x-portkey-provider: openai" -H "x-portkey-custom-host: $MOCK_URL")
}

stop_sluice() {
    kill -TERM "$SLUICE_PID" 2>/dev/null
    wait "$SLUICE_PID" 2>/dev/null
    SLUICE_PID=
}

redis_commands() { # sluice_redis_commands_total of the running sluice
    curl -s "$SLUICE_METRICS" | awk '/^sluice_redis_commands_total /{print $2}'
}

STATUS=0
run() { # name, loadgen arguments...
    local name=$1
    shift
    local perf_pid=
    if [ "$PERF" = 1 ] && [[ $name == *sluice* || $name == f-* || $name == g-* ]] && [ -n "$SLUICE_PID" ]; then
        perf record -g -F 999 -p "$SLUICE_PID" -o "$OUT/perf-$name.data" \
            >"$OUT/perf-$name.log" 2>&1 &
        perf_pid=$!
        sleep 0.5
    fi
    local rc cmds0=
    if [ -n "$REDIS_URL" ] && [[ $name == *sluice* ]] && [ -n "$SLUICE_PID" ]; then
        cmds0=$(redis_commands)
    fi
    if [ -t 2 ]; then
        # The loadgen's live progress line goes to the terminal.
        "$LOADGEN" --json --label "$name" "$@" >"$OUT/$name.json"
        rc=$?
    else
        "$LOADGEN" --json --label "$name" --progress "$@" >"$OUT/$name.json" 2>"$OUT/$name.progress"
        rc=$?
    fi
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid"
        wait "$perf_pid"
    fi
    if [ $rc -ne 0 ]; then
        STATUS=1
        [ -s "$OUT/$name.json" ] || echo "{\"label\":\"$name\",\"errors\":null}" >"$OUT/$name.json"
    fi
    if [ -n "$cmds0" ]; then
        local cmds1 tokens
        cmds1=$(redis_commands)
        tokens=$(jq -r '.tokens.total // 0' "$OUT/$name.json")
        echo "$((cmds1 - cmds0)) $tokens" >"$OUT/$name.redis"
    fi
    printf '  %-12s ' "$name"
    jq -r 'if .errors == null then "no report (see \(.label).progress)" else
        "\(.connect.ok)/\(.connections) connected in \(.connect.wall_s) s, \(.streams.ok) streams ok" +
        (if .tokens.total > 0 then ", \(.tokens.total) tokens in \(.streams.wall_s) s" +
            ", latency p99 \(.latency_ms.p99) ms" else "" end) +
        ", \(.errors.total) errors" end' "$OUT/$name.json"
}

want() { [[ ",$ONLY," == *",$1,"* ]]; }

echo "sluice benchmark: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(uname -sr), $("$SLUICE" --version 2>/dev/null | head -1)"
# Other processes on the machine skew every figure: say so before the table does.
cpu_busy() { # percent of CPU time not idle over one second
    local a b
    read -r -a a < <(head -1 /proc/stat)
    sleep 1
    read -r -a b < <(head -1 /proc/stat)
    local total=0 i
    for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
    local idle=$((b[4] - a[4] + b[5] - a[5]))
    [ "$total" -gt 0 ] && echo $(((total - idle) * 100 / total)) || echo 0
}
BUSY=$(cpu_busy)
if [ "$BUSY" -gt 10 ]; then
    echo "warning: the machine is already ${BUSY}% busy before the benchmark starts; the figures" \
        "below include that contention (top shows who)"
fi
echo "runs (JSON and logs in $OUT):"

if want c; then
    NOFILE=$(ulimit -Hn)
    if [ "$NOFILE" != unlimited ] && [ "$C_CONNS" -gt $((NOFILE - 200)) ]; then
        C_CONNS=$((NOFILE - 200))
        echo "  (c) capped at $C_CONNS connections by the open-file limit $NOFILE" >&2
    fi
    start_sluice auto c warn "$IDLE_UPSTREAM_CONNS" || exit 1
    run c-sluice -c "$C_CONNS" -s 0 --idle "$C_HOLD" --token "$KEY" \
        --server-pid "$SLUICE_PID" "$SLUICE_URL"
    stop_sluice
    # A fresh sluice: RSS once grown stays, and would hide the next run's growth.
    start_sluice auto c-sio warn "$IDLE_UPSTREAM_CONNS" || exit 1
    run c-sluice-sio -c "$C_CONNS" -s 0 --idle "$C_HOLD" --token "$KEY" \
        --server-pid "$SLUICE_PID" --dialect sluice "$SLUICE_SIO"
    stop_sluice
    run c-direct -c "$C_CONNS" -s 0 --idle "$C_HOLD" --server-pid "$MOCK_PID" "$MOCK_URL"
fi

if [ "$PORTKEY" = 1 ] && { want a || want b; }; then
    start_portkey || PK_URL=
fi

if want a; then
    for w in 1 2; do
        start_sluice "$w" "a$w" || exit 1
        # A gateway in service has its upstream connections open already: one unmeasured
        # pass opens them, so that the measured one is the steady state, not the start-up.
        "$LOADGEN" -c "$A_CONNS" -s 1 -m bench-a --token "$KEY" --no-progress "$SLUICE_URL" \
            >"$OUT/a-warmup-w$w.txt" 2>&1
        run "a-sluice-w$w" -c "$A_CONNS" -s 1 -m bench-a --expect-tokens "$A_TOKENS" \
            --token "$KEY" --server-pid "$SLUICE_PID" "$SLUICE_URL"
        run "a-sluice-sio-w$w" -c "$A_CONNS" -s 1 -m bench-a --expect-tokens "$A_TOKENS" \
            --token "$KEY" --server-pid "$SLUICE_PID" --dialect sluice "$SLUICE_SIO"
        if [ "$w" = 2 ] && sluice_sse bench-a; then
            run a-sluice-sse -c "$A_CONNS" -s 1 -m bench-a --expect-tokens "$A_TOKENS" \
                --token "$KEY" --server-pid "$SLUICE_PID" "$SLUICE_HTTP"
        fi
        stop_sluice
    done
    run a-direct -c "$A_CONNS" -s 1 -m "$SCEN_A" --expect-tokens "$A_TOKENS" \
        --server-pid "$MOCK_PID" "$MOCK_URL"
    if [ -n "$PK_URL" ]; then
        "$LOADGEN" -c "$A_CONNS" -s 1 -m "$SCEN_A" "${PK_HDRS[@]}" --no-progress "$PK_URL" \
            >"$OUT/a-warmup-portkey.txt" 2>&1
        run a-portkey -c "$A_CONNS" -s 1 -m "$SCEN_A" --expect-tokens "$A_TOKENS" \
            "${PK_HDRS[@]}" --server-pid "$PK_PID" "$PK_URL"
    fi
fi

if want b; then
    start_sluice auto b || exit 1
    run b-sluice -c "$B_CONNS" -s 1 -m bench-b --expect-tokens "$B_TOKENS" --spread "$B_SPREAD" \
        --token "$KEY" --server-pid "$SLUICE_PID" "$SLUICE_URL"
    if sluice_sse bench-b; then
        run b-sluice-sse -c "$B_CONNS" -s 1 -m bench-b --expect-tokens "$B_TOKENS" \
            --spread "$B_SPREAD" --token "$KEY" --server-pid "$SLUICE_PID" "$SLUICE_HTTP"
    fi
    stop_sluice
    run b-direct -c "$B_CONNS" -s 1 -m "$SCEN_B" --expect-tokens "$B_TOKENS" \
        --spread "$B_SPREAD" --server-pid "$MOCK_PID" "$MOCK_URL"
    if [ -n "$PK_URL" ]; then
        run b-portkey -c "$B_CONNS" -s 1 -m "$SCEN_B" --expect-tokens "$B_TOKENS" \
            --spread "$B_SPREAD" "${PK_HDRS[@]}" --server-pid "$PK_PID" "$PK_URL"
    fi
fi

for n in $SWEEP; do
    start_sluice auto "s$n" || exit 1
    run "sweep-$n-sluice" -c "$n" -s 1 -m bench-b --expect-tokens "$B_TOKENS" --spread "$B_SPREAD" \
        --token "$KEY" --server-pid "$SLUICE_PID" "$SLUICE_URL"
    stop_sluice
    run "sweep-$n-direct" -c "$n" -s 1 -m "$SCEN_B" --expect-tokens "$B_TOKENS" \
        --spread "$B_SPREAD" --server-pid "$MOCK_PID" "$MOCK_URL"
done

if want e; then
    for w in 1 2; do
        # Log level info: the log says which resumes were served by the other worker.
        start_sluice "$w" "e$w" info || exit 1
        # The upstream pool warm, as in (a): the cut, not 1,000 connects to the mock, is measured.
        "$LOADGEN" -c "$E_CONNS" -s 1 -m bench-warm --jwt-secret "$JWT_SECRET" --no-progress \
            "$SLUICE_URL" >"$OUT/e-warmup-w$w.txt" 2>&1
        run "e-sluice-w$w" -c "$E_CONNS" -s 1 -m bench-e --expect-tokens "$E_TOKENS" --verify-text \
            --cut-at "$E_CUT" --jwt-secret "$JWT_SECRET" --metrics "$SLUICE_METRICS" \
            --server-pid "$SLUICE_PID" "$SLUICE_URL"
        stop_sluice
        # Resumes served through the relay (stream owned by the other worker): "owner=" in the log.
        jq --argjson n "$(grep -c 'event=stream.resumed.*owner=' "$OUT/sluice-e$w.err")" \
            '.relayed_resumes = $n' "$OUT/e-sluice-w$w.json" >"$OUT/e-sluice-w$w.tmp" &&
            mv "$OUT/e-sluice-w$w.tmp" "$OUT/e-sluice-w$w.json"
    done
fi

if want f; then
    # CPU per token: one sluice, every dialect in turn (the same upstream pool, the same
    # heap), F_ROUNDS times over so that a neighbour's burst does not land on one dialect.
    start_sluice 1 f || exit 1
    "$LOADGEN" -c "$F_CONNS" -s 1 -m bench-f --token "$KEY" --no-progress "$SLUICE_URL" \
        >"$OUT/f-warmup.txt" 2>&1
    read -r -a FD <<<"$DIALECTS"
    for r in $(seq 1 "$F_ROUNDS"); do
        # Each round starts one dialect later: none is always the first after the warm-up.
        for i in $(seq 0 $((${#FD[@]} - 1))); do
            d=${FD[$(((i + r - 1) % ${#FD[@]}))]}
            model=(-m bench-f)
            [ "$d" = ws-chat ] && model=() # the default model (bench-f)
            # shellcheck disable=SC2046
            run "f-$d-r$r" -c "$F_CONNS" -s 1 "${model[@]}" --expect-tokens "$F_TOKENS" \
                --token "$KEY" --server-pid "$SLUICE_PID" $(dialect_args "$d")
        done
    done
    stop_sluice
    # RSS per idle connection: a fresh sluice per dialect.
    for d in $DIALECTS; do
        start_sluice auto "fi-$d" warn "$IDLE_UPSTREAM_CONNS" || exit 1
        # shellcheck disable=SC2046
        run "fi-$d" -c "$F_IDLE_CONNS" -s 0 --idle "$C_HOLD" --token "$KEY" \
            --server-pid "$SLUICE_PID" $(dialect_args "$d")
        stop_sluice
    done
fi

if want g; then
    # plain: the loadgen offers deflate, this sluice does not answer it (so no --deflate).
    for v in plain deflate nct; do
        case $v in
        plain) extra="" lg=() ;;
        deflate) extra="websocket: { permessage_deflate: true }" lg=(--deflate) ;;
        nct) extra="websocket: { permessage_deflate: true, deflate_context_takeover: false }" lg=(--deflate) ;;
        esac
        start_sluice 1 "g-$v" warn "" "$extra" || exit 1
        "$LOADGEN" -c "$G_CONNS" -s 1 -m bench-a --token "$KEY" --no-progress "${lg[@]}" \
            "$SLUICE_URL" >"$OUT/g-warmup-$v.txt" 2>&1
        run "g-sluice-$v" -c "$G_CONNS" -s 1 -m bench-a --expect-tokens "$A_TOKENS" "${lg[@]}" \
            --token "$KEY" --server-pid "$SLUICE_PID" "$SLUICE_URL"
        stop_sluice
        start_sluice 1 "g-idle-$v" warn "" "$extra" || exit 1
        run "g-idle-$v" -c "$G_IDLE" -s 0 --idle 3s "${lg[@]}" --token "$KEY" \
            --server-pid "$SLUICE_PID" "$SLUICE_URL"
        stop_sluice
    done
fi

if want h; then
    for w in 1 2; do
        PROVIDER_DEFAULTS=1 start_sluice "$w" "h$w" || exit 1
        for phase in cold warm; do
            run "h-$phase-sluice-w$w" -c "$H_CONNS" -s 1 -m bench-h --expect-tokens "$H_TOKENS" \
                --idle "$H_IDLE" --token "$KEY" --server-pid "$SLUICE_PID" "$SLUICE_URL"
        done
        stop_sluice
    done
    run h-direct -c "$H_CONNS" -s 1 -m "$SCEN_H" --expect-tokens "$H_TOKENS" --idle "$H_IDLE" \
        --server-pid "$MOCK_PID" "$MOCK_URL"
fi

# --- the table ---------------------------------------------------------------------------------
# shellcheck disable=SC2046
jq -s '.' $(ls "$OUT"/[abcefgh]-*.json "$OUT"/fi-*.json 2>/dev/null) >"$OUT/results.json" 2>/dev/null ||
    echo '[]' >"$OUT/results.json"

jq -r --arg A "$A_CONNS conn x $A_TOKENS tok, max rate" \
      --arg B "$B_CONNS conn x $B_TOKENS tok @ $B_RATE/s" \
      --arg C "$C_CONNS idle auth. conns" \
      --arg E "$E_CONNS conn x $E_TOKENS tok @ $E_RATE/s, cut" '
  def f(x; d): if x == null then "-" else (x * pow(10; d) | round / pow(10; d) | tostring) end;
  def k(x): if x == null then "-" elif x >= 10000 then ((x / 1000 | round | tostring) + "k") else (x | round | tostring) end;
  def errs(r): if r.errors == null then "no run"
               elif r.errors.total == 0 then "0"
               else (r.errors.by_code | to_entries | map("\(.key)=\(.value)") | join(",")) end;
  def kib(x): if x == null then "-" else ((x / 1024 * 100 | round / 100 | tostring) + " KiB") end;
  def hv(h; p; d): if (h.count // 0) == 0 then "-" else f(h[p]; d) end;
  def row(title; path; r):
    [title, path, (if (r.tokens.total // 0) == 0 then "-" else k(r.tokens.per_s) end),
     hv(r.latency_ms; "p50"; 3), hv(r.latency_ms; "p99"; 3), hv(r.latency_ms; "p99.9"; 3),
     hv(r.latency_ms; "max"; 2), hv(r.ttft_ms; "p99"; 2), hv(r.connect.ms; "p99"; 2),
     hv(r.connect.auth_ms; "p99"; 2),
     f(r.server.cpu_us_per_token // null; 2),
     (if (r.streams_per_connection // 1) == 0 then kib(r.server.rss_bytes_per_connection // null) else "-" end),
     errs(r)];
  (map({key: .label, value: .}) | from_entries) as $r
  | ( ["scenario", "path", "tok/s", "lat p50", "p99", "p99.9", "max", "TTFT p99",
       "conn p99", "auth p99", "CPU µs/tok", "RSS/conn", "errors"] ),
    ( ["", "", "", "ms", "ms", "ms", "ms", "ms", "ms", "ms", "server", "server", ""] ),
    ( if $r["a-sluice-w1"] then row("(a) " + $A; "sluice 1w"; $r["a-sluice-w1"]) else empty end ),
    ( if $r["a-sluice-sio-w1"] then row(""; "sluice sio 1w"; $r["a-sluice-sio-w1"]) else empty end ),
    ( if $r["a-sluice-w2"] then row(""; "sluice 2w"; $r["a-sluice-w2"]) else empty end ),
    ( if $r["a-sluice-sio-w2"] then row(""; "sluice sio 2w"; $r["a-sluice-sio-w2"]) else empty end ),
    ( if $r["a-sluice-sse"] then row(""; "sluice sse 2w"; $r["a-sluice-sse"]) else empty end ),
    ( if $r["a-direct"] then row(""; "direct"; $r["a-direct"]) else empty end ),
    ( if $r["a-portkey"] then row(""; "portkey"; $r["a-portkey"]) else empty end ),
    ( if $r["b-sluice"] then row("(b) " + $B; "sluice 2w"; $r["b-sluice"]) else empty end ),
    ( if $r["b-sluice-sse"] then row(""; "sluice sse 2w"; $r["b-sluice-sse"]) else empty end ),
    ( if $r["b-direct"] then row(""; "direct"; $r["b-direct"]) else empty end ),
    ( if $r["b-portkey"] then row(""; "portkey"; $r["b-portkey"]) else empty end ),
    ( if $r["c-sluice"] then row("(c) " + $C; "sluice 2w"; $r["c-sluice"]) else empty end ),
    ( if $r["c-sluice-sio"] then row(""; "sluice sio 2w"; $r["c-sluice-sio"]) else empty end ),
    ( if $r["c-direct"] then row(""; "direct"; $r["c-direct"]) else empty end ),
    ( if $r["e-sluice-w1"] then row("(e) " + $E; "sluice 1w"; $r["e-sluice-w1"]) else empty end ),
    ( if $r["e-sluice-w2"] then row(""; "sluice 2w"; $r["e-sluice-w2"]) else empty end )
  | @tsv' "$OUT/results.json" >"$OUT/table.tsv"

# Columns: the first two left-aligned, the figures right-aligned.
align() {
    awk -F'\t' '
  { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; l = length($i); if (l > w[i]) w[i] = l } n = NR; nf = NF }
  END {
    for (r = 1; r <= n; r++) {
      line = ""
      for (i = 1; i <= nf; i++) {
        fmt = (i <= 2 || i == nf) ? "%-" w[i] "s" : "%" w[i] "s"
        line = line sprintf(fmt, cell[r, i]) (i < nf ? "  " : "")
      }
      sub(/ +$/, "", line)
      print line
    }
  }' "$1"
}
echo
align "$OUT/table.tsv"

# (e) in detail: the cut, the text check, the resumes and the server's journals.
jq -r '
  def f(x; d): if x == null then "-" else (x * pow(10; d) | round / pow(10; d) | tostring) end;
  def hv(h; p; d): if (h.count // 0) == 0 then "-" else f(h[p]; d) end;
  def kib(x): if x == null then "-" else ((x / 1024 * 100 | round / 100 | tostring) + " KiB") end;
  def errs(r): if r.errors == null then "no run"
               elif r.errors.total == 0 then "0"
               else (r.errors.by_code | to_entries | map("\(.key)=\(.value)") | join(",")) end;
  def erow(path; r):
    [path, f(r.cut.at_s // null; 2), "\(r.cut.streams // 0)/\(r.connections)",
     "\(r.verify.exact // 0)/\(r.connections)", "\(r.verify.tokens_lost // "-")",
     "\(r.verify.tokens_duplicated // "-")",
     hv(r.cut.reconnect_ms; "p50"; 1), hv(r.cut.reconnect_ms; "p99"; 1),
     "\(r.cut.replay_ms.count // 0)/\(r.cut.streams // 0)",
     hv(r.cut.replay_ms; "p50"; 2), hv(r.cut.replay_ms; "p99"; 2), hv(r.cut.replay_ms; "max"; 2),
     hv(r.cut.live_lag_ms; "p99"; 2),
     (if r.relayed_resumes == null then "-" else "\(r.relayed_resumes)/\(r.cut.resumes_sent // 0)" end),
     kib(r.server_metrics.journal_bytes_per_stream_at_cut // null),
     kib(r.server_metrics.journal_bytes_per_stream_peak // null),
     kib(r.server_metrics.peak.sluice_journal_bytes // null),
     f(r.server_metrics.peak.sluice_sessions_detached // null; 0),
     f(r.server.cpu_us_per_token // null; 2), errs(r)];
  (map({key: .label, value: .}) | from_entries) as $r
  | if ($r["e-sluice-w1"] // $r["e-sluice-w2"]) == null then empty else
    ( ["path", "cut at", "streams cut", "exact text", "lost", "dup", "reconnect p50", "p99",
       "replayed", "resume p50", "p99", "max", "live lag p99", "relayed", "journal/stream",
       "peak/stream", "journals peak", "detached peak", "CPU µs/tok", "errors"] ),
    ( ["", "s", "", "", "tokens", "tokens", "ms", "ms", "streams", "ms", "ms", "ms", "ms",
       "resumes", "at the cut", "", "", "sessions", "server", ""] ),
    ( if $r["e-sluice-w1"] then erow("sluice 1w"; $r["e-sluice-w1"]) else empty end ),
    ( if $r["e-sluice-w2"] then erow("sluice 2w"; $r["e-sluice-w2"]) else empty end )
    | @tsv end' "$OUT/results.json" >"$OUT/table-e.tsv"
if [ -s "$OUT/table-e.tsv" ]; then
    echo
    echo "(e) $E_CONNS streams x $E_TOKENS tokens at $E_RATE tokens/s; every connection reset (TCP RST) at $E_CUT tokens per stream, reconnected and resumed"
    echo "    resume: \`resume\` sent to the first replayed token (stamped before it), over the streams that had one (replayed)"
    align "$OUT/table-e.tsv"
fi

# (f) per dialect: the median CPU per token over the rounds, RSS per idle connection, each
# against native WebSocket's.
jq -r --argjson rounds "$F_ROUNDS" --arg dialects "$DIALECTS" '
  def f(x; d): if x == null then "-" else (x * pow(10; d) | round / pow(10; d) | tostring) end;
  def kib(x): if x == null then "-" else ((x / 1024 * 100 | round / 100 | tostring) + " KiB") end;
  def median: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
  def ratio(x; y): if x == null or y == null or y == 0 then "-" else "x" + f(x / y; 2) end;
  (map({key: .label, value: .}) | from_entries) as $r
  | ($dialects | split(" ")) as $ds
  | def runs(d): [range(1; $rounds + 1) | $r["f-\(d)-r\(.)"] | select(. != null)];
    def cpu(d): [runs(d)[] | .server.cpu_us_per_token // empty] | median;
    def rate(d): [runs(d)[] | .tokens.per_s // empty] | median;
    def rss(d): $r["fi-\(d)"].server.rss_bytes_per_connection // null;
    def errs(d): ([runs(d)[], ($r["fi-\(d)"] // empty)] | map(.errors.total // 1) | add // null);
    def where(d): {"native": "WebSocket /ws", "sluice": "Socket.IO /sluice", "chat": "Socket.IO /",
                   "llm": "Socket.IO /", "stream": "Socket.IO /stream", "ai": "Socket.IO /ai",
                   "ws-chat": "WebSocket /ws/chat"}[d];
    if ([$ds[] | runs(.)[]] | length) == 0 and ([$ds[] | $r["fi-\(.)"] // empty] | length) == 0
    then empty else
    ( ["dialect", "where", "tok/s", "CPU µs/tok", "vs native", "RSS/conn", "vs native", "errors"] ),
    ( $ds[] as $d
      | [$d, where($d), (if rate($d) == null then "-" else (rate($d) / 1000 | round | tostring) + "k" end),
         f(cpu($d); 2), ratio(cpu($d); cpu("native")), kib(rss($d)), ratio(rss($d); rss("native")),
         (if errs($d) == null then "no run" else (errs($d) | tostring) end)] )
    | @tsv end' "$OUT/results.json" >"$OUT/table-f.tsv"
if [ -s "$OUT/table-f.tsv" ]; then
    echo
    echo "(f) each client dialect: sluice CPU per token under $F_CONNS conn x $F_TOKENS tok at max rate, 1 worker (median of $F_ROUNDS round(s), dialects in turn on one sluice);"
    echo "    RSS per idle authenticated connection, $F_IDLE_CONNS connections held $C_HOLD (a fresh sluice each, workers auto)"
    align "$OUT/table-f.tsv"
fi

# (h) in detail: the burst, beside the direct path.
jq -r '
  def f(x; d): if x == null then "-" else (x * pow(10; d) | round / pow(10; d) | tostring) end;
  def hv(h; p; d): if (h.count // 0) == 0 then "-" else f(h[p]; d) end;
  def errs(r): if r.errors == null then "no run"
               elif r.errors.total == 0 then "0"
               else (r.errors.by_code | to_entries | map("\(.key)=\(.value)") | join(",")) end;
  def frow(path; r):
    [path, "\(r.streams.ok // 0)/\(r.connections)", hv(r.ttft_ms; "p10"; 1), hv(r.ttft_ms; "p50"; 1),
     hv(r.ttft_ms; "p99"; 1), hv(r.ttft_ms; "max"; 1), hv(r.latency_ms; "p50"; 2),
     hv(r.latency_ms; "p99"; 2), f(r.server.firsts_wall_s // null; 3),
     f(r.server.cpu_us_per_new_stream // null; 1), f(r.server.cpu_us_per_token // null; 2), errs(r)];
  (map({key: .label, value: .}) | from_entries) as $r
  | if ([$r | keys[] | select(startswith("h-"))] | length) == 0 then empty else
    ( ["path", "streams ok", "TTFT p10", "p50", "p99", "max", "delay p50", "p99",
       "all first by", "CPU µs/new", "CPU µs/tok", "errors"] ),
    ( ["", "", "ms", "ms", "ms", "ms", "ms", "ms", "s", "stream", "server", ""] ),
    ( $r | to_entries | map(select(.key | startswith("h-"))) | sort_by(.key == "h-direct", .key)
      | .[] | frow(.key | ltrimstr("h-"); .value) )
    | @tsv end' "$OUT/results.json" >"$OUT/table-h.tsv"
if [ -s "$OUT/table-h.tsv" ]; then
    echo
    echo "(h) a burst: $H_CONNS streams x $H_TOKENS tokens at $H_RATE tokens/s, every chat sent at once, the default provider configuration"
    echo "    CPU µs/new stream: sluice's CPU from the burst until every stream had its first token, per stream"
    align "$OUT/table-h.tsv"
    jq -r '
      (map({key: .label, value: .}) | from_entries) as $r
      | def v(x; d): if x == null then "n/a" else (x * pow(10; d) | round / pow(10; d) | tostring) end;
        def verdict(ok): if ok == null then "n/a" elif ok then "met" else "NOT met" end;
        ($r["h-direct"].ttft_ms.p50 // null) as $d50
      | ($r["h-direct"].latency_ms.p99 // null) as $d99
      | [$r | to_entries[] | select(.key | test("^h-.*sluice")) | .value] as $s
      | if ($s | length) == 0 then empty else
        ([$s[] | .ttft_ms.p50 // 1e9] | max) as $p50
      | ([$s[] | .ttft_ms.p99 // 1e9] | max) as $p99
      | ([$s[] | .latency_ms.p99 // 1e9] | max) as $l99
      | ([$s[] | .server.cpu_us_per_new_stream // 1e9] | max) as $cpu
      | ([$s[] | .errors.total // 1] | add) as $errs
      | "targets (h), worst of the sluice runs:",
        "  zero failures:                         \($errs)  \(verdict($errs == 0))",
        "  TTFT p50 <= 2x direct:                 \(v($p50; 1)) ms vs \(v($d50; 1)) ms direct  \(verdict(if $d50 == null then null else $p50 <= 2 * $d50 end))",
        "  TTFT p99 <= 150 ms:                    \(v($p99; 1)) ms  \(verdict($p99 <= 150))",
        "  added token delay p99 <= 5 ms:         \(if $d99 == null then "n/a" else v($l99 - $d99; 2) end) ms  \(verdict(if $d99 == null then null else $l99 - $d99 <= 5 end))",
        "  <= 100 CPU-µs per new stream:          \(v($cpu; 1))  \(verdict($cpu <= 100))"
        end' "$OUT/results.json"
fi

echo
jq -r '
  (map({key: .label, value: .}) | from_entries) as $r
  | def v(x; d): if x == null then "n/a" else (x * pow(10; d) | round / pow(10; d) | tostring) end;
    def verdict(ok): if ok == null then "n/a" elif ok then "met" else "NOT met" end;
    ($r["a-sluice-w1"].server.cpu_us_per_token // null) as $a1
  | ($r["a-sluice-w2"].server.cpu_us_per_token // null) as $a2
  | ($r["b-sluice"].server.cpu_us_per_token // null) as $b2
  | (if $r["b-sluice"].latency_ms.p99 != null and $r["b-direct"].latency_ms.p99 != null
     then $r["b-sluice"].latency_ms.p99 - $r["b-direct"].latency_ms.p99 else null end) as $added
  | ($r["c-sluice"].server.rss_bytes_per_connection // null) as $rss
  | ($r["a-sluice-sse"].server.cpu_us_per_token // null) as $asse
  | ($r["b-sluice-sse"].server.cpu_us_per_token // null) as $bsse
  | ($r["a-portkey"].server.cpu_us_per_token // null) as $apk
  | ($r["b-portkey"].server.cpu_us_per_token // null) as $bpk
  | (if $r["b-sluice-sse"].latency_ms.p99 != null and $r["b-sluice"].latency_ms.p99 != null
     then $r["b-sluice-sse"].latency_ms.p99 - $r["b-sluice"].latency_ms.p99 else null end) as $sse_added
  | ($asse // $a2) as $acmp | ($bsse // $b2) as $bcmp
  | (if $asse == null then "WebSocket" else "SSE" end) as $apath
  | (if $bsse == null then "WebSocket" else "SSE" end) as $bpath
  | def ratio(s; p): if s == null or p == null or p == 0 or s == 0 then "n/a" else "1/" + v(p / s; 1) end;
    ([[$acmp, $apk], [$bcmp, $bpk]] | map(select(.[0] != null and .[1] != null))) as $pairs
  | ([.[] | select(.label | test("sluice")) | .errors.total // 1] | add // 0) as $errs
  | [$r["e-sluice-w1"], $r["e-sluice-w2"]] as $e
  | def ev(k): [$e[] | select(. != null) | k] ;
    def pair(k; d): ($e | map(if . == null then "n/a" else v(k; d) end) | "\(.[0]) (1 worker), \(.[1]) (2 workers)");
    (ev(.verify.exact // 0) | add) as $e_exact
  | (ev(.connections) | add) as $e_streams
  | (ev((.verify.tokens_lost // 1) + (.verify.tokens_duplicated // 1)) | add) as $e_bad
  | (ev(.cut.replay_ms.p99 // null) | max) as $e_p99
  | "(d) sluice CPU-seconds per million tokens delivered: \(v($a1; 2)) with 1 worker, \(v($a2; 2)) with 2 workers in (a); \(v($b2; 2)) in (b)",
    "targets (2-core machine):",
    "  (a) <= 2 CPU-µs per token delivered:       \(v($a1; 2)) (1 worker), \(v($a2; 2)) (2 workers)  \(verdict(if $a1 == null then null else ([$a1, $a2 // $a1] | min) <= 2 end))",
    "  (b) added delivery latency p99 <= 1 ms:     \(v($added; 3)) ms (\(v($r["b-sluice"].latency_ms.p99 // null; 3)) through sluice - \(v($r["b-direct"].latency_ms.p99 // null; 3)) direct)  \(verdict(if $added == null then null else $added <= 1 end))",
    "  (c) <= 4 KiB RSS per idle authenticated connection: \(if $rss == null then "n/a" else v($rss / 1024; 2) + " KiB" end)  \(verdict(if $rss == null then null else $rss <= 4096 end))",
    (if $e_streams == null then empty else
    "  (e) every stream complete with its full text: \($e_exact)/\($e_streams)  \(verdict($e_exact == $e_streams))",
    "  (e) zero lost or duplicated tokens:          \($e_bad)  \(verdict($e_bad == 0))",
    "  (e) resume p99 < 50 ms (resume sent to the first replayed token): \(pair(.cut.replay_ms.p99 // null; 2)) ms  \(verdict(if $e_p99 == null then null else $e_p99 < 50 end))",
    "  (e) journal memory per active stream at the cut: \(pair(.server_metrics.journal_bytes_per_stream_at_cut // null; 0)) bytes; peak \(pair(.server_metrics.journal_bytes_per_stream_peak // null; 0)); detached sessions peak \(pair(.server_metrics.peak.sluice_sessions_detached // null; 0))" end),
    "  no errors in any scenario:                 \($errs) errors through sluice  \(verdict($errs == 0))",
    "portkey (one Node process, the same mock; CPU-µs per token): \(v($apk; 2)) in (a), \(v($bpk; 2)) in (b)",
    "  sluice CPU per token <= 1/10 of portkey: (a) \($apath) \(v($acmp; 2)) vs \(v($apk; 2)) = \(ratio($acmp; $apk)), (b) \($bpath) \(v($bcmp; 2)) vs \(v($bpk; 2)) = \(ratio($bcmp; $bpk))  \(verdict(if ($pairs | length) == 0 then null else ($pairs | all(.[0] * 10 <= .[1])) end))",
    "  SSE added p99 within 1 ms of the WebSocket path (b): \(if $sse_added == null then "n/a (no sluice sse run)" else v($sse_added; 3) + " ms" end)  \(verdict(if $sse_added == null then null else $sse_added <= 1 end))"
' "$OUT/results.json"
jq -r --argjson rounds "$F_ROUNDS" --arg dialects "$DIALECTS" '
  (map({key: .label, value: .}) | from_entries) as $r
  | def v(x; d): if x == null then "n/a" else (x * pow(10; d) | round / pow(10; d) | tostring) end;
    def verdict(ok): if ok == null then "n/a" elif ok then "met" else "NOT met" end;
    def median: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
    def cpu(d): [range(1; $rounds + 1) | $r["f-\(d)-r\(.)"].server.cpu_us_per_token // empty] | median;
    def x(a; b): if a == null or b == null or b == 0 then null else a / b end;
    ($dialects | split(" ") | map(select(. != "native"))) as $ds
  | (x($r["a-sluice-sio-w1"].server.cpu_us_per_token // null; $r["a-sluice-w1"].server.cpu_us_per_token // null)) as $a1
  | (x($r["a-sluice-sio-w2"].server.cpu_us_per_token // null; $r["a-sluice-w2"].server.cpu_us_per_token // null)) as $a2
  | ($r["c-sluice-sio"].server.rss_bytes_per_connection // null) as $csio
  | [$ds[] | {d: ., x: x(cpu(.); cpu("native"))} | select(.x != null)] as $fx
  | [$ds[] | select(. != "ws-chat") | {d: ., b: ($r["fi-\(.)"].server.rss_bytes_per_connection // null)} | select(.b != null)] as $fr
  | ([.[] | select(.label | test("^(f|fi)-|-sio")) | .errors.total // 1] | add // 0) as $errs
  | "Socket.IO and the dialects:",
    "  (a) Socket.IO (/sluice) CPU per token within 1.3x of native WebSocket: x\(v($a1; 2)) (1 worker), x\(v($a2; 2)) (2 workers)  \(verdict(if $a1 == null then null else ([$a1, $a2 // $a1] | max) <= 1.3 end))",
    "  (c) <= 2 KiB RSS per idle Socket.IO connection: \(if $csio == null then "n/a" else v($csio / 1024; 2) + " KiB" end) (/sluice)\(if ($fr | length) > 0 then "; (f) " + ($fr | map("\(.d) \(v(.b / 1024; 2))") | join(", ")) + " KiB" else "" end)  \(verdict(if $csio == null and ($fr | length) == 0 then null else ([$csio // 0, ($fr[] | .b)] | max) <= 2048 end))",
    (if ($fx | length) == 0 then empty else
    "  (f) each dialect CPU per token within 1.3x of native: " + ($fx | map("\(.d) x\(v(.x; 2))") | join(", ")) + "  " + (($fx | map(select(.x > 1.3) | .d)) as $miss | if ($miss | length) == 0 then "met" else "NOT met (" + ($miss | join(", ")) + ")" end) end),
    "  no errors in the Socket.IO and dialect runs: \($errs)  \(verdict($errs == 0))"
' "$OUT/results.json"
if [ -f "$OUT/g-sluice-plain.json" ]; then
    echo
    echo "(g) permessage-deflate: $G_CONNS conn x $A_TOKENS tok, max rate, 1 worker; idle: $G_IDLE connections"
    jq -r -s '
      def f(x; d): if x == null then "-" else (x * pow(10; d) | round / pow(10; d) | tostring) end;
      (map({key: .label, value: .}) | from_entries) as $r
      | ["variant", "tok/s", "CPU µs/tok", "wire B/tok", "lat p99 ms", "idle RSS/conn", "errors"],
        ( ["plain", "deflate", "nct"][] as $v
          | $r["g-sluice-\($v)"] as $s | $r["g-idle-\($v)"] as $i
          | select($s != null)
          | [ (if $v == "plain" then "off" elif $v == "deflate" then "on (context takeover)"
               else "on, server_no_context_takeover" end),
              f($s.tokens.per_s; 0), f($s.server.cpu_us_per_token; 2),
              f(if ($s.tokens.total // 0) > 0 then $s.tokens.bytes / $s.tokens.total else null end; 1),
              f($s.latency_ms.p99; 3),
              (if $i == null or $i.server.rss_bytes_per_connection == null then "-"
               else f($i.server.rss_bytes_per_connection / 1024; 2) + " KiB" end),
              ((($s.errors.total // 1) + ($i.errors.total // 0)) | tostring) ] )
      | @tsv' "$OUT"/g-*.json | column -t -s $'\t'
fi
if [ -n "$REDIS_URL" ]; then
    echo
    echo "cluster mode (redis.url $REDIS_URL): Redis commands per token delivered"
    for f in "$OUT"/*.redis; do
        [ -e "$f" ] || continue
        read -r cmds tokens <"$f"
        awk -v n="$(basename "$f" .redis)" -v c="$cmds" -v t="$tokens" 'BEGIN {
            printf "  %-14s %9d commands  %9d tokens  %.4f per token\n", n, c, t, t > 0 ? c / t : 0 }'
    done
fi
if [ -n "$SWEEP" ]; then
    echo
    echo "(b) at other sizes: $B_TOKENS tokens per stream at $B_RATE tokens/s, starts spread over $B_SPREAD"
    {
        printf 'conns\toffered tok/s\tsluice p50\tp99\tp99.9\tdirect p50\tp99\tp99.9\tadded p99\tsluice µs/tok\terrors\n'
        for n in $SWEEP; do
            jq -r -s --arg n "$n" --arg rate "$B_RATE" '
              def f(x): if x == null then "-" else (x * 1000 | round / 1000 | tostring) end;
              (.[0]) as $s | (.[1]) as $d
              | [$n, (($n | tonumber) * ($rate | tonumber) | tostring),
                 f($s.latency_ms.p50), f($s.latency_ms.p99), f($s.latency_ms["p99.9"]),
                 f($d.latency_ms.p50), f($d.latency_ms.p99), f($d.latency_ms["p99.9"]),
                 f(if $s.latency_ms.p99 != null and $d.latency_ms.p99 != null
                   then $s.latency_ms.p99 - $d.latency_ms.p99 else null end),
                 f($s.server.cpu_us_per_token),
                 (($s.errors.total // 1) + ($d.errors.total // 1) | tostring)] | @tsv' \
                "$OUT/sweep-$n-sluice.json" "$OUT/sweep-$n-direct.json"
        done
    } | column -t -s $'\t'
fi
exit $STATUS
