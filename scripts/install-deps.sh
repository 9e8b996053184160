#!/bin/sh
# Installs what sluice needs from Debian 12 packages. Idempotent: packages already
# present are skipped, so a second run costs a few dpkg queries.
#
#   scripts/install-deps.sh          build and run the gateway
#   scripts/install-deps.sh --test   also what the test suite needs (Criterion, Node.js,
#                                    Chromium for the browser test, Python's Socket.IO and
#                                    websockets clients (seed 002's Python client),
#                                    clang for fuzzing, jq, redis-server for the cluster tests)
#   scripts/install-deps.sh --bench  also what `make bench` needs (jq for the table, Node.js
#                                    for the Portkey comparison rows)
set -eu

BUILD="build-essential pkg-config libuv1-dev libcurl4-openssl-dev libwslay-dev
libhttp-parser-dev libjansson-dev libjwt-dev libhiredis-dev libyaml-dev libssl-dev zlib1g-dev
ca-certificates"
TEST="libcriterion-dev redis-server chromium python3 python3-socketio python3-requests python3-websocket python3-websockets clang libclang-rt-14-dev curl jq"
BENCH="jq"

want="$BUILD"
[ "${1:-}" = "--bench" ] && want="$want $BENCH"
[ "${1:-}" = "--test" ] && want="$want $TEST"
# Node.js (tests; the bench's Portkey rows): Debian's own unless one is already on the PATH.
case "${1:-}" in
--test | --bench) command -v node >/dev/null 2>&1 || want="$want nodejs npm" ;;
esac

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
