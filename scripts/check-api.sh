#!/usr/bin/env bash
# Fuzzes the API contract against the real handlers: schemathesis (pinned in
# requirements-dev.txt, installed into .venv by scripts/setup-venv.sh) generates requests from
# docs/openapi.yaml, valid and invalid, and sends them to the local stack (an empty one, on a
# free loopback port, its data in a temporary folder). Each answer must be no 5xx, a status,
# content type, body and headers the contract declares for that request, a refusal for what
# the contract forbids and an acceptance for what it allows (scripts/check-api-hooks.py names
# the rules the contract can state only in words; scripts/check-api.toml has the settings).
# Any failure fails the script.
#
# Nothing leaves the machine: where the system allows it, the stack and schemathesis run in an
# empty network namespace with only loopback up. Set CHECK_API_ARGS to pass more options to
# `schemathesis run` (e.g. "--max-examples 200 --seed 7").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ "${CHECK_API_ISOLATED:-}" != 1 ]; then
  ./scripts/setup-venv.sh
  # A no-op after `make test`'s build step.
  cargo build --quiet -p stepsync-local --bin stepsync-local
  if unshare --net --map-root-user true 2>/dev/null && command -v ip >/dev/null; then
    exec unshare --net --map-root-user env CHECK_API_ISOLATED=1 "$root/scripts/check-api.sh" "$@"
  fi
  echo "check-api: no network namespace here; running on the host's loopback" >&2
else
  ip link set lo up
fi

export AWS_EC2_METADATA_DISABLED=true AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_DYNAMODB STEPSYNC_LOCAL_DYNAMODB

work=$(mktemp -d)
stack_pid=
stop() {
  if [ -n "$stack_pid" ]; then
    kill "$stack_pid" 2>/dev/null || true
    wait "$stack_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop EXIT

# Port 0: the stack picks free ports and says which in its "ready:" line.
start=$SECONDS
STEPSYNC_DEMO=0 STEPSYNC_PORT=0 STEPSYNC_APP_PORT=0 STEPSYNC_DATA_DIR="$work/data" \
  "$root/target/debug/stepsync-local" >"$work/stack.log" 2>&1 &
stack_pid=$!
base=
for _ in $(seq 1 600); do
  base=$(sed -n 's|^ready: StepSync at \(http://127\.0\.0\.1:[0-9]*\) .*|\1|p' "$work/stack.log")
  if [ -n "$base" ] && curl -fsS --max-time 2 "$base/healthz" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$stack_pid" 2>/dev/null; then
    cat "$work/stack.log" >&2
    echo "check-api: the local stack exited before it was ready" >&2
    exit 1
  fi
  base=
  sleep 0.1
done
if [ -z "$base" ]; then
  cat "$work/stack.log" >&2
  echo "check-api: the local stack was not ready within 60 s" >&2
  exit 1
fi
echo "check-api: local stack ready at $base ($((SECONDS - start)) s)" >&2

token() {
  curl -fsS --max-time 5 -X POST "$base/dev/token" -H 'content-type: application/json' -d "$1" |
    "$root/.venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}
FUZZ_TOKEN=$(token '{"user": "fuzz-walker", "admin": false}')
FUZZ_ADMIN_TOKEN=$(token '{"user": "fuzz-admin", "admin": true}')
export FUZZ_TOKEN FUZZ_ADMIN_TOKEN

# schemathesis writes nothing into the work tree: its reports (and a cache) go to $work.
cd "$work"
export SCHEMATHESIS_HOOKS="$root/scripts/check-api-hooks.py"
start=$SECONDS
status=0
# shellcheck disable=SC2086 # CHECK_API_ARGS is split into options on purpose.
"$root/.venv/bin/schemathesis" --no-color --config-file "$root/scripts/check-api.toml" \
  run "$root/docs/openapi.yaml" --url "$base" ${CHECK_API_ARGS:-} || status=$?
if [ "$status" -eq 0 ]; then
  echo "check-api: docs/openapi.yaml holds against the local stack ($((SECONDS - start)) s)" >&2
else
  echo "check-api: the local stack's last log lines (warnings and errors):" >&2
  tail -n 40 "$work/stack.log" >&2
  echo "check-api: FAILED: the handlers and docs/openapi.yaml disagree (see above); fix the contract or the handler" >&2
fi
exit "$status"
