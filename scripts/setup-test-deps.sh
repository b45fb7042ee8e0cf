#!/usr/bin/env bash
# Install the test dependencies pip cannot: Debian's chromium, for the browser tests
# (pytest -m browser; they skip with a reason without it). Idempotent: does nothing when
# `chromium` is already on PATH. Prints one line saying what it did.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "setup-test-deps: chromium already installed ($(command -v chromium))"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-test-deps: chromium missing and not root with apt-get; browser tests will skip"
    exit 0
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if DEBIAN_FRONTEND=noninteractive timeout 900 sh -c \
    'apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-liberation' \
    >"$log" 2>&1 && command -v chromium >/dev/null 2>&1; then
    echo "setup-test-deps: installed chromium with apt-get ($(command -v chromium))"
else
    echo "setup-test-deps: apt-get install chromium failed; browser tests will skip" \
        "(last line: $(tail -n 1 "$log"))"
fi
