#!/usr/bin/env bash
# Runs the official Engine.IO and Socket.IO protocol test suites against sluice's debug echo
# servers. The suites are not part of this repository: fetch them yourself (see
# docs/testing.md) and give the directory that holds their `test-suite/` folders:
#
#   scripts/socketio-suites.sh ENGINE_IO_PROTOCOL_DIR SOCKET_IO_PROTOCOL_DIR [WORKERS]
#
# The suites expect a server at http://localhost:3000 with ping interval 300 ms, ping timeout
# 200 ms, max payload 1e6 and connect timeout 1 s: sluice is started that way (port 3000
# must be free), with debug.echo. The Engine.IO suite talks to /engine.io/ as it is; the
# Socket.IO suite's /socket.io/ is rewritten to /echo.io/ in a copy of its test file (sluice's
# /socket.io/ serves the configured namespaces, not the echo). Uses build/sluice (make all).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
EIO=${1:?engine.io-protocol directory}
SIO=${2:?socket.io-protocol directory}
WORKERS=${3:-1}
BIN=${SLUICE_BIN:-$ROOT/build/sluice}

work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cat >"$work/sluice.yaml" <<EOF
listen: 127.0.0.1:3000
workers: $WORKERS
debug: { echo: true }
socketio: { ping_interval: 300ms, ping_timeout: 200ms, max_payload: 1000000, connect_timeout: 1s }
log: { level: warn }
EOF
"$BIN" -c "$work/sluice.yaml" >"$work/stdout" 2>"$work/stderr" &
pid=$!
for _ in $(seq 50); do
    grep -q "listening on" "$work/stdout" 2>/dev/null && break
    sleep 0.1
done
grep -q "listening on" "$work/stdout" || { cat "$work/stderr" >&2; exit 1; }

status=0
echo "== engine.io-protocol test suite (/engine.io/)"
(cd "$EIO/test-suite" && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npx mocha test-suite.js) ||
    status=1
echo "== socket.io-protocol test suite (/echo.io/)"
sed 's#/socket\.io/#/echo.io/#g' "$SIO/test-suite/test-suite.js" >"$SIO/test-suite/.sluice-test-suite.js"
(cd "$SIO/test-suite" && { [ -d node_modules ] || npm ci --no-audit --no-fund; } &&
    npx mocha .sluice-test-suite.js) || status=1
rm -f "$SIO/test-suite/.sluice-test-suite.js"
exit $status
