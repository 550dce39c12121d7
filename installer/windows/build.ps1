# Builds the Windows installer of the Spoke client (run in PowerShell on Windows 10/11, x64).
#   1. Python 3.11 x64 from python.org, and Inno Setup 6 (https://jrsoftware.org/isinfo.php) installed.
#   2. From the repository root:  powershell -ExecutionPolicy Bypass -File installer\windows\build.ps1
# Output: build\dist\spoke\ (the one folder) and build\Spoke-Setup-<version>.exe
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")
if (-not (Test-Path .venv)) { py -3.11 -m venv .venv }
.\.venv\Scripts\python -m pip install -q --upgrade pip
.\.venv\Scripts\python -m pip install -q -e . "pyinstaller>=6.10" babel
# The translations: .po -> .mo (what scripts/i18n.sh compile does on Linux with msgfmt).
Get-ChildItem resources\locale\*\LC_MESSAGES\spoke.po | ForEach-Object {
  .\.venv\Scripts\pybabel compile -i $_.FullName -o ($_.FullName -replace '\.po$', '.mo')
}
.\.venv\Scripts\pyinstaller --noconfirm --distpath build\dist --workpath build\work installer\spoke.spec
$check = Join-Path $env:TEMP ("spoke-check-" + [guid]::NewGuid())
& build\dist\spoke\spoke.exe --data-dir $check selfcheck
if ($LASTEXITCODE -ne 0) { throw "the bundle's selfcheck failed" }
Remove-Item -Recurse -Force $check
$version = .\.venv\Scripts\python -c "import spoke_client; print(spoke_client.__version__)"
& "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe" "/DAppVersion=$version" installer\windows\spoke.iss
