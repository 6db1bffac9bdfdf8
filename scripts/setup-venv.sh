#!/usr/bin/env bash
# Creates the project-local virtualenv (.venv) with the pinned Python tools `make test` uses:
# moto in server mode (the tests' second local AWS) and cfn-lint + aws-sam-cli (the template
# checks, scripts/check-template.sh). Re-running is cheap: it reinstalls only when
# requirements-dev.txt changes.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
stamp="$venv/.requirements.sha256"
want=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setup-venv: installing Python test tools into $venv (moto server, cfn-lint, aws-sam-cli)..." >&2
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-dev.txt
echo "$want" > "$stamp"
echo "setup-venv: done" >&2
