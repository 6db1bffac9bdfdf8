#!/usr/bin/env bash
# Creates the project-local virtualenvs with the pinned Python tools `make test` uses:
# .venv (requirements-dev.txt): moto in server mode (the tests' second local AWS), cfn-lint +
# aws-sam-cli (the template checks, scripts/check-template.sh) and schemathesis (the API
# contract check, scripts/check-api.sh); .venv-checkov (requirements-checkov.txt): checkov,
# whose pins conflict with SAM CLI's. Re-running is cheap: each reinstalls only when its
# requirements file changes.
set -euo pipefail
cd "$(dirname "$0")/.."

setup() {
  local venv=$1 requirements=$2 what=$3
  local stamp="$venv/.requirements.sha256"
  local want
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "setup-venv: installing $what into $venv..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" >"$stamp"
  echo "setup-venv: $venv done" >&2
}

setup .venv requirements-dev.txt "Python test tools (moto server, cfn-lint, aws-sam-cli, schemathesis)"
setup .venv-checkov requirements-checkov.txt "checkov"
