#!/usr/bin/env bash
# Creates the project-local virtualenv (.venv) with the pinned Python tools the tests use
# (moto in server mode). Re-running is cheap: it reinstalls only when requirements change.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
stamp="$venv/.requirements.sha256"
want=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setup-venv: installing Python test tools into $venv (moto server)..." >&2
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-dev.txt
echo "$want" > "$stamp"
echo "setup-venv: done" >&2
