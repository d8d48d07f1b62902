#!/usr/bin/env bash
# Template checks, all offline and without AWS credentials:
#   sam validate --lint, cfn-lint and checkov on template.yaml, then cfn-lint and
#   checkov again on a rendered copy in which every IAM role's policy is resolved
#   into plain JSON, so that the policies checkov cannot read in the template as
#   written (JSON text, Fn::If statements) are checked too.
# Any finding fails the script.
#
# Usage (from anywhere; it works in the repository root):
#   bash tools/check-template.sh [VENV]        VENV defaults to .venv-lint
#
# VENV holds aws-sam-cli and cfn-lint (tools/requirements-lint.txt). checkov pins a
# boto3 that aws-sam-cli's pin excludes, so it lives in a venv of its own nested in
# VENV, VENV/checkov (tools/requirements-checkov.txt). When that one is missing it is
# created first: the only step here that needs the network (PyPI).
set -euo pipefail

venv=${1:-.venv-lint}
case $venv in /*) ;; *) venv=$PWD/$venv ;; esac
cd "$(dirname "${BASH_SOURCE[0]}")/.."

template=template.yaml
sam=$venv/bin/sam
cfn_lint=$venv/bin/cfn-lint
python=$venv/bin/python
checkov_venv=$venv/checkov
checkov=$checkov_venv/bin/checkov

for tool in "$sam" "$cfn_lint" "$python"; do
    if [[ ! -x $tool ]]; then
        echo "check-template: $tool not found; set up the venv first:" >&2
        echo "  python3 -m venv ${1:-.venv-lint} && ${1:-.venv-lint}/bin/pip install -r tools/requirements-lint.txt" >&2
        exit 2
    fi
done
if [[ ! -x $checkov ]] || ! cat tools/requirements-checkov.txt tools/versions.txt | cmp -s - "$checkov_venv/.requirements"; then
    echo "== setting up checkov in $checkov_venv (tools/requirements-checkov.txt)"
    "$python" -m venv "$checkov_venv"
    "$checkov_venv/bin/pip" install --quiet --disable-pip-version-check -r tools/requirements-checkov.txt
    cat tools/requirements-checkov.txt tools/versions.txt >"$checkov_venv/.requirements"
    # Like the venvs of Python >= 3.13: keep the whole venv out of git.
    [[ -e $venv/.gitignore ]] || echo '*' >"$venv/.gitignore"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- keep every tool offline and away from any real account -----------------
# No credentials, no profile, no instance metadata: a tool that wanted to call AWS
# fails instead of finding some.
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SECURITY_TOKEN \
      AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE \
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_EC2_METADATA_DISABLED=true
# cfn-lint and `sam validate --lint` need a region to check against; nothing is called.
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
# SAM CLI: no telemetry, and a private config dir that says the weekly "newer
# version?" request to PyPI was just made (it has no switch of its own).
export SAM_CLI_TELEMETRY=0
export __SAM_CLI_APP_DIR=$work/sam-app
mkdir -p "$__SAM_CLI_APP_DIR"
printf '{"telemetryEnabled": false, "lastVersionCheck": %s}\n' "$(date +%s)" \
    >"$__SAM_CLI_APP_DIR/metadata.json"
# checkov: no guideline mapping, no platform download, no update check.
export BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=TRUE
# No config file: every skip is written beside its resource in the template.
checkov_args=(--framework cloudformation --quiet --compact --skip-download)

# --- 1: the template as written ----------------------------------------------
echo "== sam validate --lint"
"$sam" validate --lint --template "$template"
echo "== cfn-lint"
"$cfn_lint" "$template"
echo "== checkov"
LOG_LEVEL=ERROR "$checkov" -f "$template" "${checkov_args[@]}"

# --- 2: rendered copy with every IAM role policy resolved -----------------------
# checkov cannot evaluate a policy it cannot read as plain data: the scheduler's is
# JSON text (an Fn::Sub string) and the reporter's has an Fn::If statement; in pass
# 1 it skips those roles (its "Failed enriching cloudsplaining" warnings, silenced
# there). Here each role's policy is resolved into plain JSON: pseudo parameters,
# parameter defaults (an example value for an empty one), made-up ARNs for
# resources, the first branch of every Fn::If (so every optional statement is
# there). A JSON-text policy that is not valid JSON fails here.
rendered=$work/rendered-template.json
"$python" - "$template" "$rendered" <<'PY'
import json
import re
import sys

from samcli.yamlhelper import yaml_parse

src, dst = sys.argv[1], sys.argv[2]
with open(src, encoding="utf-8") as f:
    template = yaml_parse(f.read())

ACCOUNT, REGION = "123456789012", "us-east-1"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "fleetops",
}
NO_VALUE = object()
EXAMPLE_FOR_EMPTY = {
    "CommaDelimitedList": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555",
}
params = {}
for name, spec in template.get("Parameters", {}).items():
    default = str(spec.get("Default", ""))
    if default == "":
        default = EXAMPLE_FOR_EMPTY.get(spec["Type"], f"example-{name.lower()}")
    params[name] = default.split(",") if spec["Type"] == "CommaDelimitedList" else default
resources = template["Resources"]


def attribute(logical_id, attr):
    kind = resources[logical_id]["Type"].split("::")[1].lower()
    return f"arn:aws:{kind}:{REGION}:{ACCOUNT}:{logical_id}/{attr}"


def ref(name):
    if name == "AWS::NoValue":
        return NO_VALUE
    if name in PSEUDO:
        return PSEUDO[name]
    if name in params:
        return params[name]
    if name in resources:
        return attribute(name, "Ref")
    raise SystemExit(f"render: unknown reference {name}")


def sub(arg):
    text, variables = (arg, {}) if isinstance(arg, str) else arg

    def one(match):
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in variables:
            return str(value(variables[name]))
        if "." in name:
            return attribute(*name.split(".", 1))
        resolved = ref(name)
        return ",".join(resolved) if isinstance(resolved, list) else str(resolved)

    return re.sub(r"\$\{([^}]+)\}", one, text)


def intrinsic(fn, arg):
    if fn == "Ref":
        return ref(arg)
    if fn == "Fn::GetAtt":
        logical_id, attr = arg.split(".", 1) if isinstance(arg, str) else arg
        return attribute(logical_id, attr)
    if fn == "Fn::If":
        return value(arg[1])
    if fn == "Fn::Join":
        return arg[0].join(value(arg[1]))
    if fn == "Fn::Sub":
        return sub(arg)
    raise SystemExit(f"render: unsupported {fn}")


def value(node):
    if isinstance(node, list):
        return [v for v in map(value, node) if v is not NO_VALUE]
    if isinstance(node, dict):
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref" or key.startswith("Fn::"):
                return intrinsic(key, arg)
        return {k: v for k, v in ((k, value(v)) for k, v in node.items()) if v is not NO_VALUE}
    return node


count = 0
for logical_id, resource in resources.items():
    if resource.get("Type") != "AWS::IAM::Role":
        continue
    for policy in resource.get("Properties", {}).get("Policies", []):
        document = value(policy["PolicyDocument"])
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except json.JSONDecodeError as e:
                raise SystemExit(f"render: {logical_id} policy {policy.get('PolicyName')}: not JSON: {e}\n{document}")
        policy["PolicyDocument"] = document
        count += 1
if count == 0:
    raise SystemExit("render: no IAM role policy found")
with open(dst, "w", encoding="utf-8") as f:
    json.dump(template, f, indent=2)
print(f"rendered {count} role policies")
PY
echo "== cfn-lint (rendered)"
# W8001: a condition only used inside a policy is unused once the policy is resolved.
"$cfn_lint" --ignore-checks W8001 -- "$rendered"
echo "== checkov (rendered)"
"$checkov" -f "$rendered" "${checkov_args[@]}"

echo "template checks passed"
