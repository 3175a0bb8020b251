#!/usr/bin/env bash
# The settings pages with the demo's setup, no tenant needed: the Microsoft 365 sandbox (as in
# `make demo`) and `ccm-mail serve`, which prints a one-time login link for the browser.
# Ctrl+C stops both. Another address: UI_LISTEN=127.0.0.1:8411 make ui
set -euo pipefail
VENV=${1:-.venv}
cd "$(dirname "$0")/.."
export PATH="$PWD/$VENV/bin:$PATH"
RUN=demo-run/ui
rm -rf "$RUN" && mkdir -p "$RUN"

python -m ccm_mail_office365_sandbox --state-dir "$RUN/sandbox" --config examples/sandbox-seed.yaml \
  >"$RUN/sandbox.log" 2>&1 &
SANDBOX=$!
trap 'kill $SANDBOX 2>/dev/null || true; wait $SANDBOX 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$RUN/sandbox/sandbox.json" ] && break; sleep 0.1; done
[ -s "$RUN/sandbox/sandbox.json" ] || { cat "$RUN/sandbox.log" >&2; echo "sandbox did not start" >&2; exit 1; }

python scripts/demo_config.py config.example.yaml "$RUN/sandbox/sandbox.json" "$RUN" > "$RUN/ccm-mail.yaml"
# the service's keys beside the demo, not in this user's data folder
printf 'plugins:\n  settings:\n    server:\n      keys_dir: keys\n' >> "$RUN/ccm-mail.yaml"
chmod 600 "$RUN/ccm-mail.yaml"
# the sandbox's demo secret (examples/sandbox-seed.yaml); a real one comes from Entra
export CCM_MAIL_O365_SECRET="Demo~Sandbox.Geheimnis-nicht-produktiv"

echo "== ccm-mail serve: die Einstellungsseiten / the settings pages (Ctrl+C beendet / stops)"
echo "   Den Anmeldelink unten im Browser öffnen; 'Bei Microsoft anmelden' führt zur Sandbox"
echo "   (selbst signiertes Zertifikat: der Browser warnt). Open the login link below."
ccm-mail --config "$RUN/ccm-mail.yaml" serve --listen "${UI_LISTEN:-127.0.0.1:8410}"
