#!/usr/bin/env bash
# Runs the whole test suite. The browser tests (admin consent, the settings pages) drive Debian's
# chromium headless (the pages' through Playwright, never 'playwright install'); it is
# installed here when missing and we are root (CI), otherwise those tests say why they skip.
set -euo pipefail
VENV=${1:-.venv}
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian chromium for the admin-consent browser tests" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium missing and not root: browser tests will be skipped" >&2
  fi
fi
"$VENV/bin/ruff" check --quiet .
"$VENV/bin/mypy"
exec "$VENV/bin/python" -m pytest "${@:2}"
