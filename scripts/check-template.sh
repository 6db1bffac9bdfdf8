#!/usr/bin/env bash
# Lints template.yaml with cfn-lint and `sam validate --lint` (both pinned in
# requirements-dev.txt, installed into .venv by scripts/setup-venv.sh), then transforms it as
# `sam validate` does and lints the CloudFormation that SAM generates. Any error or warning
# fails. Nothing reaches the network: dummy credentials, a fixed region, no metadata probe,
# no telemetry, no AWS config from the caller's home, and SAM CLI's weekly PyPI version check
# marked as done (it has no switch of its own). Where the system allows it, the checks also
# run in an empty network namespace, so a call that slipped through could not leave anyway.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup-venv.sh

venv="$PWD/.venv"
template=template.yaml
region=us-east-1

# A home of SAM CLI's own: its metadata file says the version check ran (in 2100), so it
# never fetches https://pypi.org/pypi/aws-sam-cli/json; telemetry is off here and below.
sam_home="$venv/sam-home"
mkdir -p "$sam_home/.aws-sam"
echo '{"telemetryEnabled": false, "lastVersionCheck": 4102444800.0}' >"$sam_home/.aws-sam/metadata.json"

offline_env=(
  env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL
  AWS_REGION="$region" AWS_DEFAULT_REGION="$region"
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
  AWS_EC2_METADATA_DISABLED=true
  SAM_CLI_TELEMETRY=0
  HOME="$sam_home"
)
isolate=()
if unshare --net --map-root-user true 2>/dev/null; then
  isolate=(unshare --net --map-root-user)
fi

status=0
run() {
  local name=$1
  shift
  local start=$SECONDS
  if "${isolate[@]}" "${offline_env[@]}" "$@"; then
    echo "check-template: $name: no errors, no warnings ($((SECONDS - start)) s)" >&2
  else
    echo "check-template: $name FAILED: fix template.yaml (see above)" >&2
    status=1
  fi
}

# --non-zero-exit-code warning: warnings fail too (informational rules are not enabled).
run cfn-lint "$venv/bin/cfn-lint" --regions "$region" --non-zero-exit-code warning -- "$template"
# --lint: cfn-lint through SAM CLI (its own settings); any match, error or warning, fails it.
run "sam validate --lint" "$venv/bin/sam" validate --lint --region "$region" --template "$template"

# cfn-lint 1.58 lints a SAM template as written: it no longer runs the SAM transform, so it
# never sees what SAM generates (the EventBridge rules, roles, permissions, the schedule) and
# skips its IAM action check (W3037) on SAM templates. So also transform the template the way
# `sam validate` does (SAM CLI's own SamTemplateValidator, fully offline: the template names
# no managed policies, which only IAM could resolve), and lint the CloudFormation that comes
# out. Line numbers in that output refer to .venv/template.transformed.yaml.
transformed="$venv/template.transformed.yaml"
transform=$(
  cat <<'PY'
import sys
from samcli.commands.validate.lib.exceptions import InvalidSamDocumentException
from samcli.lib.translate.sam_template_validator import SamTemplateValidator
from samcli.yamlhelper import yaml_parse

class NoManagedPolicyNames:
    def load(self):
        sys.exit("template.yaml names a managed policy: use its ARN or an inline statement")

source, target, region = sys.argv[1:]
with open(source, encoding="utf-8") as f:
    template = yaml_parse(f.read())
try:
    out = SamTemplateValidator(template, NoManagedPolicyNames(), region=region).get_translated_template_if_valid()
except InvalidSamDocumentException as e:
    sys.exit(f"E-sam {source} is not a valid SAM template: {e}")
with open(target, "w", encoding="utf-8") as f:
    f.write(out)
PY
)
transform_and_lint() {
  rm -f "$transformed"
  "${isolate[@]}" "${offline_env[@]}" "$venv/bin/python" -c "$transform" "$template" "$transformed" "$region" &&
    "${isolate[@]}" "${offline_env[@]}" "$venv/bin/cfn-lint" --regions "$region" --non-zero-exit-code warning -- "$transformed"
}
start=$SECONDS
if transform_and_lint; then
  echo "check-template: SAM transform + cfn-lint of its output: no errors, no warnings ($((SECONDS - start)) s)" >&2
else
  echo "check-template: SAM transform + cfn-lint of its output FAILED: fix template.yaml (see above)" >&2
  status=1
fi

exit "$status"
