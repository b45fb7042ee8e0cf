#!/usr/bin/env bash
# Install the test dependencies pip cannot, from Debian with apt-get: chromium, for the browser
# tests (pytest -m browser), and the PostgreSQL server, for the PostgreSQL store tests (pytest -m
# postgres, which start a throwaway server with initdb and pg_ctl). Without them those tests skip
# with a reason. Idempotent: installs only what is missing. Prints one line per dependency.
set -euo pipefail

# install NAME CHECK PACKAGES...: apt-get install PACKAGES unless the command CHECK succeeds.
install() {
    local name=$1 check=$2
    shift 2
    if eval "$check" >/dev/null 2>&1; then
        echo "setup-test-deps: $name already installed"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "setup-test-deps: $name missing and not root with apt-get; its tests will skip"
        return 0
    fi
    local log
    log=$(mktemp)
    if DEBIAN_FRONTEND=noninteractive timeout 900 sh -c \
        "apt-get update -qq && apt-get install -y -qq --no-install-recommends $*" \
        >"$log" 2>&1 && eval "$check" >/dev/null 2>&1; then
        echo "setup-test-deps: installed $name with apt-get ($*)"
    else
        echo "setup-test-deps: apt-get install $name failed; its tests will skip" \
            "(last line: $(tail -n 1 "$log"))"
    fi
    rm -f "$log"
}

install chromium "command -v chromium" chromium fonts-liberation
install postgresql "command -v initdb || ls /usr/lib/postgresql/*/bin/initdb" postgresql
