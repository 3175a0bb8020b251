#!/usr/bin/env bash
# Creates the virtual environment and installs the host, the plugin API and every plugin in
# plugins/ (editable), each with its test extra: what the tests need.
set -euo pipefail
PYTHON=${1:-python3}
VENV=${2:-.venv}
cd "$(dirname "$0")/.."
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
args=(-e ./hookspecs -e ".[test,keyring,postgresql]")
for plugin in plugins/*/; do
  [ -f "$plugin/pyproject.toml" ] && args+=(-e "./${plugin%/}[test]")
done
"$VENV/bin/python" -m pip install --quiet "${args[@]}"
touch "$VENV/bin/ccm-mail"
