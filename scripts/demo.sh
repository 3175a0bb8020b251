#!/usr/bin/env bash
# The main job end to end, with no tenant needed: a local Microsoft 365 sandbox (Entra ID +
# Graph over HTTPS on loopback) stands in for Microsoft. The example invoice with its PDF goes
# out through the Office 365 plugin (OAuth 2.0 client credentials, Graph sendMail), confirmed,
# and its journal entry shows the send date (Versanddatum).
set -euo pipefail
VENV=${1:-.venv}
cd "$(dirname "$0")/.."
export PATH="$PWD/$VENV/bin:$PATH"
RUN=demo-run
rm -rf "$RUN" && mkdir -p "$RUN"

python -m ccm_mail_office365_sandbox --state-dir "$RUN/sandbox" --config examples/sandbox-seed.yaml \
  >"$RUN/sandbox.log" 2>&1 &
SANDBOX=$!
trap 'kill $SANDBOX 2>/dev/null || true; wait $SANDBOX 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$RUN/sandbox/sandbox.json" ] && break; sleep 0.1; done
[ -s "$RUN/sandbox/sandbox.json" ] || { cat "$RUN/sandbox.log" >&2; echo "sandbox did not start" >&2; exit 1; }

python scripts/demo_config.py config.example.yaml "$RUN/sandbox/sandbox.json" "$RUN" > "$RUN/ccm-mail.yaml"
chmod 600 "$RUN/ccm-mail.yaml"
export CCM_MAIL_CONFIG="$RUN/ccm-mail.yaml"
# the sandbox's demo secret (examples/sandbox-seed.yaml); a real one comes from Entra
export CCM_MAIL_O365_SECRET="Demo~Sandbox.Geheimnis-nicht-produktiv"
SEND=(--purpose invoice --to "Müller & Söhne GmbH <buchhaltung@mueller-soehne.example>"
      --data examples/invoice.json --attach examples/RE-2026-00042.pdf)

echo "== ccm-mail config check   (config.example.yaml, pointed at the sandbox)"
ccm-mail config check
echo
echo "== ccm-mail accounts test Rechnungsversand   (Verbindung testen)"
ccm-mail accounts test Rechnungsversand
echo
echo "== ccm-mail preview   (was der Bestätigungsdialog zeigt)"
ccm-mail preview "${SEND[@]}"
echo
echo "== ccm-mail send --yes   (Bestätigung erteilt)"
ccm-mail send "${SEND[@]}" --yes --log-level warning
echo
echo "== ccm-mail journal   (Versanddatum)"
ccm-mail journal --reference RE-2026-00042
echo
echo "== received by the sandbox mailbox rechnung@codicon.de"
find "$RUN/sandbox/mailboxes" -type f | sort
echo
echo "== die Einstellungsseiten im Browser / the settings pages in the browser: make ui"
echo "   (startet Sandbox und ccm-mail serve und zeigt einen Anmeldelink / starts the sandbox and"
echo "   ccm-mail serve and prints a login link; Screenshots: docs/ui/README.md)"
