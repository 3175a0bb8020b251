#!/usr/bin/env bash
# Runs the whole test suite. The browser tests (admin consent, the settings pages) drive Debian's
# chromium headless (the pages' through Playwright, never 'playwright install') and the PostgreSQL
# journal tests run Debian's PostgreSQL server; both are installed here when missing and we are
# root (CI), otherwise those tests say why they skip.
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
# The PostgreSQL journal's tests start a server of their own (initdb/pg_ctl into a temporary
# folder); Debian's postgresql package brings the binaries.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian postgresql for the PostgreSQL journal tests" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL missing and not root: the PostgreSQL journal tests will be skipped" >&2
  fi
fi
"$VENV/bin/ruff" check --quiet .
"$VENV/bin/ruff" format --check --quiet .
"$VENV/bin/mypy"
exec "$VENV/bin/python" -m pytest "${@:2}"
