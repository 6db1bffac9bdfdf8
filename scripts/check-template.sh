#!/usr/bin/env bash
# Lints template.yaml with cfn-lint and `sam validate --lint` (both pinned in
# requirements-dev.txt, installed into .venv by scripts/setup-venv.sh), then transforms it as
# `sam validate` does and lints the CloudFormation that SAM generates. Any error or warning
# fails. Then scans both with checkov (requirements-checkov.txt, in .venv-checkov): any failed
# policy check fails, and so does a skip without a reason. Nothing reaches the network: dummy
# credentials, a fixed region, no metadata probe, no telemetry, no AWS config from the
# caller's home, SAM CLI's weekly PyPI version check marked as done (it has no switch of its
# own), checkov's update check and downloads off. Where the system allows it, the checks also
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

# checkov, the policy-as-code scan: the template as written, and the CloudFormation SAM made
# of it (the roles, permissions, rules and schedules SAM generates are scanned there too; SAM
# carries each function's Metadata over). A finding is fixed in template.yaml or skipped on
# its resource with its reason (Metadata: checkov: skip: [{id, comment}]); the summary below
# lists every failure, and any skip without a comment.
checkov_venv="$PWD/.venv-checkov"
checkov_home="$checkov_venv/home"
mkdir -p "$checkov_home"
summarise=$(
  cat <<'PY'
import json, sys

path, label = sys.argv[1:]
with open(path, encoding="utf-8") as f:
    report = json.load(f)
reports = report if isinstance(report, list) else [report]
passed = skipped = 0
problems = []
for one in reports:
    results = one.get("results", {})
    passed += len(results.get("passed_checks", []))
    for check in results.get("failed_checks", []):
        lines = "-".join(str(n) for n in check.get("file_line_range") or [])
        problems.append(f"{check['check_id']} {check['resource']} (lines {lines}): {check['check_name']}")
    for check in results.get("skipped_checks", []):
        reason = (check.get("check_result") or {}).get("suppress_comment", "").strip()
        if not reason or reason == "No comment provided":
            problems.append(f"{check['check_id']} {check['resource']}: skipped without a reason")
        else:
            skipped += 1
    errors = one.get("summary", {}).get("parsing_errors", 0)
    if errors:
        problems.append(f"{errors} parsing error(s)")
for problem in problems:
    print(f"check-template: checkov {label}: {problem}", file=sys.stderr)
print(f"check-template: checkov {label}: {passed} passed, {skipped} skipped with a reason", file=sys.stderr)
sys.exit(1 if problems or passed == 0 else 0)
PY
)
scan() {
  local label=$1 file=$2
  local out="$checkov_home/results-$(basename "$file").json"
  local start=$SECONDS
  rm -f "$out"
  # checkov exits 1 on any failed check; the summary decides, from the JSON.
  "${isolate[@]}" "${offline_env[@]}" HOME="$checkov_home" CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE \
    "$checkov_venv/bin/checkov" --file "$file" --framework cloudformation secrets --skip-download \
    --output json >"$out" 2>"$out.stderr" || true
  if [ -s "$out" ] && "$checkov_venv/bin/python" -c "$summarise" "$out" "$label"; then
    echo "check-template: checkov $label: no unexplained finding ($((SECONDS - start)) s)" >&2
  else
    cat "$out.stderr" >&2
    echo "check-template: checkov $label FAILED: fix template.yaml, or skip the check on the resource with its reason" >&2
    status=1
  fi
}
scan template.yaml "$template"
if [ -s "$transformed" ]; then
  scan "of SAM's output" "$transformed"
fi

exit "$status"
