# Windows: what `make demo` does. Run: powershell -ExecutionPolicy Bypass -File scripts\demo.ps1
# Starts the Microsoft 365 sandbox (a development tool), points config.example.yaml at it and sends
# the example invoice through OAuth 2.0 + Graph; nothing reaches Microsoft.
param([string]$Venv = ".venv")
$ErrorActionPreference = "Stop"
Set-Location (Split-Path $PSScriptRoot -Parent)
& "$PSScriptRoot\install.ps1" -Venv $Venv
$py = "$Venv\Scripts\python.exe"
$ccm = "$Venv\Scripts\ccm-mail.exe"
$run = "demo-run"
if (Test-Path $run) { Remove-Item -Recurse -Force $run }
New-Item -ItemType Directory $run | Out-Null
$sandbox = Start-Process -PassThru -NoNewWindow $py -ArgumentList @("-m", "ccm_mail_office365_sandbox",
    "--state-dir", "$run\sandbox", "--config", "examples\sandbox-seed.yaml") -RedirectStandardOutput "$run\sandbox.log"
try {
    for ($i = 0; $i -lt 100 -and -not (Test-Path "$run\sandbox\sandbox.json"); $i++) { Start-Sleep -Milliseconds 100 }
    & $py scripts\demo_config.py config.example.yaml "$run\sandbox\sandbox.json" $run |
        Out-File -Encoding utf8 "$run\ccm-mail.yaml"
    $env:CCM_MAIL_CONFIG = "$run\ccm-mail.yaml"
    $env:CCM_MAIL_O365_SECRET = "Demo~Sandbox.Geheimnis-nicht-produktiv"  # the sandbox's demo secret
    $send = @("--purpose", "invoice", "--to", "Müller & Söhne GmbH <buchhaltung@mueller-soehne.example>",
              "--data", "examples\invoice.json", "--attach", "examples\RE-2026-00042.pdf")
    & $ccm config check
    & $ccm accounts test Rechnungsversand
    & $ccm preview @send
    & $ccm send @send --yes --log-level warning
    & $ccm journal --reference RE-2026-00042
} finally {
    Stop-Process -Id $sandbox.Id -ErrorAction SilentlyContinue
}
