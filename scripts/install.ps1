# Windows: what `make install` does. Run from the repository folder:
#   powershell -ExecutionPolicy Bypass -File scripts\install.ps1
# Creates .venv with the Python launcher and installs the plugin API, the host and every plugin.
param([string]$Venv = ".venv")
$ErrorActionPreference = "Stop"
Set-Location (Split-Path $PSScriptRoot -Parent)
if (-not (Test-Path "$Venv\Scripts\python.exe")) { py -3.11 -m venv $Venv }
$py = "$Venv\Scripts\python.exe"
& $py -m pip install --quiet --upgrade pip
$packages = @("-e", ".\hookspecs", "-e", ".[test,keyring]")
Get-ChildItem plugins -Directory | Where-Object { Test-Path "$($_.FullName)\pyproject.toml" } |
    ForEach-Object { $packages += @("-e", "$($_.FullName)[test]") }
& $py -m pip install --quiet @packages
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
Write-Host "ccm-mail: $Venv\Scripts\ccm-mail.exe"
