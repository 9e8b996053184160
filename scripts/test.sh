#!/bin/sh
# Runs every test: installs the test dependencies (Debian packages, npm packages),
# builds the release and the ASan+UBSan binaries with warnings as errors, then runs the
# Criterion unit tests and the end-to-end suite (real clients and a real browser) against
# the sanitizer build.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
make -j"$(nproc)" all asan
make test
