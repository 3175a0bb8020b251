# Windows: what `make test` does (without the browser tests' Chromium install: they skip when
# no chromium is on PATH). Run: powershell -ExecutionPolicy Bypass -File scripts\test.ps1
param([string]$Venv = ".venv")
$ErrorActionPreference = "Stop"
Set-Location (Split-Path $PSScriptRoot -Parent)
& "$PSScriptRoot\install.ps1" -Venv $Venv
& "$Venv\Scripts\ruff.exe" check --quiet .
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
& "$Venv\Scripts\ruff.exe" format --check --quiet .
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
& "$Venv\Scripts\mypy.exe"
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
& "$Venv\Scripts\python.exe" -m pytest @args
exit $LASTEXITCODE
