#!/bin/sh
# Quick start: installs what sluice needs (Debian 12 packages), builds it, and runs the
# gateway with the built-in demo model. Arguments go to sluice (e.g. -c sluice.yaml).
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -j"$(nproc)" build/sluice
exec build/sluice "$@"
