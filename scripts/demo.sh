#!/usr/bin/env bash
# The main job end to end: send the example invoice with its PDF, then show its journal entry
# with the send date (Versanddatum).
set -euo pipefail
VENV=${1:-.venv}
cd "$(dirname "$0")/.."
export PATH="$PWD/$VENV/bin:$PATH"
rm -rf demo-run && mkdir -p demo-run
CONFIG=examples/pickup.yaml
SEND=(--config "$CONFIG" --purpose invoice --to "Müller & Söhne GmbH <buchhaltung@mueller-soehne.example>"
      --data examples/invoice.json --attach examples/RE-2026-00042.pdf)

echo "== ccm-mail config check"
ccm-mail config check --config "$CONFIG"
echo
echo "== Bestätigungsdialog (ccm-mail preview)"
ccm-mail preview "${SEND[@]}"
echo
echo "== Senden (Bestätigung mit --yes erteilt)"
ccm-mail send "${SEND[@]}" --yes
echo
echo "== Journal: Versanddatum"
ccm-mail journal --config "$CONFIG" --reference RE-2026-00042
