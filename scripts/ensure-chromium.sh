#!/usr/bin/env bash
# Install Debian's chromium for the browser tests (tests/test_web_browser.py) if it is missing.
# Playwright's own browser download does not work everywhere, so the tests drive the system's
# chromium. This never fails the build: where chromium cannot be installed, those tests skip
# and say why.
set -u
CHROMIUM="${PAINTERLY_CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0

say() { echo "ensure-chromium: $*" >&2; }
if ! command -v apt-get >/dev/null 2>&1; then
    say "no apt-get here; install chromium yourself or the browser tests will skip"
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        say "not root and no sudo; install chromium yourself or the browser tests will skip"
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
say "installing chromium with apt-get (for the browser tests)"
if ! $SUDO apt-get install -y -q chromium >/dev/null 2>&1; then
    # A fresh machine may have no package lists yet.
    $SUDO apt-get update -q >/dev/null 2>&1
    if ! $SUDO apt-get install -y -q chromium >/dev/null; then
        say "apt-get could not install chromium; the browser tests will skip"
        exit 0
    fi
fi
say "installed $("$CHROMIUM" --version 2>/dev/null)"
