#!/usr/bin/env bash
# Template checks, all offline and without AWS credentials:
#   sam validate --lint, cfn-lint and checkov on template.yaml; then fleetops' own
#   structural rules (no reserved concurrency unless opted in, every rule that
#   dead-letters is allowed to by the queue policy, JSON-text policies are JSON
#   whichever way their conditions go); then cfn-lint and checkov again on a
#   rendered copy in which every IAM role's policy is resolved into plain JSON, so
#   that the policies checkov cannot read in the template as written (JSON text,
#   Fn::If statements) are checked too.
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

# --- 2: fleetops' structural rules ---------------------------------------------
echo "== structure"
"$python" - "$template" <<'PY'
import json
import re
import sys

from samcli.yamlhelper import yaml_parse

with open(sys.argv[1], encoding="utf-8") as f:
    template = yaml_parse(f.read())
parameters = template.get("Parameters", {})
conditions = template.get("Conditions", {})
resources = template["Resources"]
errors = []


def default(name):
    if name not in parameters:
        raise SystemExit(f"structure: {name} is not a parameter")
    return str(parameters[name].get("Default", ""))


def evaluate(node):
    """A condition or condition operand, with every parameter at its default."""
    if isinstance(node, (str, int, float, bool)):
        return str(node).lower() if isinstance(node, bool) else str(node)
    (fn, arg), = node.items()
    if fn == "Ref":
        return default(arg)
    if fn == "Condition":
        return evaluate(conditions[arg])
    if fn == "Fn::Equals":
        return evaluate(arg[0]) == evaluate(arg[1])
    if fn == "Fn::Not":
        return not evaluate(arg[0])
    if fn == "Fn::And":
        return all(evaluate(a) for a in arg)
    if fn == "Fn::Or":
        return any(evaluate(a) for a in arg)
    if fn == "Fn::Join":
        parts = arg[1]
        if isinstance(parts, dict):  # a CommaDelimitedList parameter
            parts = [evaluate(parts)]
        return arg[0].join(evaluate(p) for p in parts)
    raise SystemExit(f"structure: cannot evaluate {fn} in a condition")


# Reserved concurrency is opt-in: a new account (concurrency quota 10) cannot deploy
# a stack that reserves any. Each ReservedConcurrentExecutions, in Globals or on a
# function, is !If [condition, value, !Ref AWS::NoValue], the condition false at
# the parameters' defaults.
places = [("Globals.Function", template.get("Globals", {}).get("Function", {}))]
places += [
    (logical_id, resource.get("Properties", {}))
    for logical_id, resource in resources.items()
    if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function")
]
reserved = 0
for where, properties in places:
    if "ReservedConcurrentExecutions" not in properties:
        continue
    reserved += 1
    setting = properties["ReservedConcurrentExecutions"]
    branches = setting.get("Fn::If") if isinstance(setting, dict) else None
    if not (isinstance(branches, list) and len(branches) == 3 and branches[2] == {"Ref": "AWS::NoValue"}):
        errors.append(f"{where}: ReservedConcurrentExecutions must be !If [<condition>, <value>, !Ref AWS::NoValue]")
    elif evaluate(conditions[branches[0]]):
        errors.append(f"{where}: ReservedConcurrentExecutions is reserved with the default parameters (condition {branches[0]})")

# Every EventBridge rule that dead-letters into DeadLetterQueue is one the queue
# policy lets EventBridge write for (else its dead letters are lost silently).
def is_queue_arn(node):
    return node in ({"Fn::GetAtt": "DeadLetterQueue.Arn"}, {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]})

dead_lettering = set()
for logical_id, resource in resources.items():
    kind = resource.get("Type")
    properties = resource.get("Properties", {})
    if kind == "AWS::Serverless::Function":
        for event_id, event in properties.get("Events", {}).items():
            config = event.get("Properties", {}).get("DeadLetterConfig", {})
            if event.get("Type") in ("Schedule", "EventBridgeRule", "CloudWatchEvent") and is_queue_arn(config.get("Arn")):
                dead_lettering.add(logical_id + event_id)
    elif kind == "AWS::Events::Rule":
        for target in properties.get("Targets", []):
            if is_queue_arn(target.get("DeadLetterConfig", {}).get("Arn")):
                dead_lettering.add(logical_id)
allowed = set()
for statement in resources["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]:
    if statement.get("Effect") != "Allow":
        continue
    for arn in statement.get("Condition", {}).get("ArnEquals", {}).get("aws:SourceArn", []):
        # !If [condition, !GetAtt <rule>.Arn, !Ref AWS::NoValue]: the rule of a
        # resource that exists only in some stacks.
        if isinstance(arn, dict) and "Fn::If" in arn:
            arn = arn["Fn::If"][1]
        target = arn.get("Fn::GetAtt") if isinstance(arn, dict) else None
        if target:
            allowed.add(target.split(".")[0] if isinstance(target, str) else target[0])
for rule in sorted(dead_lettering - allowed):
    errors.append(f"DeadLetterQueuePolicy: rule {rule} dead-letters into DeadLetterQueue but is not in aws:SourceArn")
for rule in sorted(allowed - dead_lettering):
    errors.append(f"DeadLetterQueuePolicy: aws:SourceArn names {rule}, which is no rule dead-lettering there")

# A policy written as JSON text (an Fn::Sub string) must be JSON with every Fn::If
# in it on either branch; pass 3 lints the first branches only. Placeholders are
# replaced by a plain string, which is what every one of them stands for.
def text(node, branch):
    if isinstance(node, str):
        return node
    (fn, arg), = node.items()
    if fn == "Fn::If":
        return text(arg[1 + branch], branch)
    if fn == "Fn::Sub":
        body, variables = (arg, {}) if isinstance(arg, str) else arg
        def one(match):
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            return text(variables[name], branch) if name in variables else "x"
        return re.sub(r"\$\{([^}]+)\}", one, body)
    return "x"  # Ref, Fn::GetAtt, Fn::Join: a string inside the JSON text

for logical_id, resource in resources.items():
    if resource.get("Type") != "AWS::IAM::Role":
        continue
    for policy in resource.get("Properties", {}).get("Policies", []):
        document = policy["PolicyDocument"]
        if not (isinstance(document, dict) and "Fn::Sub" in document):
            continue
        for branch in (0, 1):
            try:
                json.loads(text(document, branch))
            except json.JSONDecodeError as e:
                errors.append(f"{logical_id} policy {policy.get('PolicyName')}: not JSON with the {'first' if branch == 0 else 'second'} branch of its Fn::If: {e}")

# Hub or spoke: with DeploymentRole=spoke (a StackSet over the organization) the
# stack holds the spoke role and nothing else; with hub, everything but it.
def exists(resource, role, dispatcher="false"):
    saved = {name: parameters[name].get("Default") for name in ("DeploymentRole", "SpokePatchDispatcher")}
    parameters["DeploymentRole"]["Default"] = role
    parameters["SpokePatchDispatcher"]["Default"] = dispatcher
    try:
        condition = resource.get("Condition")
        return True if condition is None else evaluate(conditions[condition])
    finally:
        for name, value in saved.items():
            parameters[name]["Default"] = value

spoke = sorted(i for i, r in resources.items() if exists(r, "spoke"))
if spoke != ["SpokeRole"]:
    errors.append(f"a spoke stack must hold only SpokeRole, not {spoke}")
if any(i == "SpokeRole" for i, r in resources.items() if exists(r, "hub")):
    errors.append("a hub stack must not hold SpokeRole")
# A spoke with its own patch dispatcher: the role, the dispatcher and what it
# uses (key, dead-letter queue, alarm topic, table, rules), nothing of the
# scheduler or the reporter, and every reference inside resolves in that stack.
with_dispatcher = {i for i, r in resources.items() if exists(r, "spoke", "true")}
for logical_id in sorted(with_dispatcher):
    if logical_id.startswith(("InstanceScheduler", "ComplianceReporter", "Report", "WorkQueue", "Dashboard")):
        errors.append(f"a spoke stack with its patch dispatcher must not hold {logical_id}")
for needed in ("SpokeRole", "PatchDispatcherFunction", "PatchDispatcherRole", "StateTable", "FleetOpsKey", "DeadLetterQueue"):
    if needed not in with_dispatcher:
        errors.append(f"a spoke stack with its patch dispatcher lacks {needed}")

def references(node, found):
    if isinstance(node, dict):
        if "Fn::If" in node and isinstance(node["Fn::If"], list) and node["Fn::If"][0] == "IsHub":
            return  # only in a hub
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value.split(".")[0] if isinstance(value, str) else value[0])
            elif key == "Fn::Sub":
                body = value if isinstance(value, str) else value[0]
                found.update(n.split(".")[0] for n in re.findall(r"\$\{([^}!]+)\}", body))
                if not isinstance(value, str):
                    references(value[1], found)
            else:
                references(value, found)
    elif isinstance(node, list):
        for item in node:
            references(item, found)

# SAM's generated ids (<function><event>) exist with their function.
generated = {f + e for f, r in resources.items() if r.get("Type") == "AWS::Serverless::Function"
             for e in r.get("Properties", {}).get("Events", {})}
for logical_id in sorted(with_dispatcher):
    found = set()
    references(resources[logical_id], found)
    for name in sorted(found):
        owner = next((f for f in with_dispatcher if name.startswith(f) and name in generated), None)
        if name in resources and name not in with_dispatcher and owner is None:
            errors.append(f"{logical_id} refers to {name}, which a spoke stack with its patch dispatcher does not hold")
for section in ("Outputs",):
    for logical_id, output in template.get(section, {}).items():
        if output.get("Condition") not in ("IsHub", "IsSpoke", "WithDispatcher"):
            errors.append(f"{section}.{logical_id}: needs Condition IsHub, IsSpoke or WithDispatcher")

for error in errors:
    print(f"structure: {error}", file=sys.stderr)
if errors:
    raise SystemExit(1)
print(f"{reserved} reserved concurrency settings, all opt-in; {len(dead_lettering)} dead-lettering rules, all allowed")
print(f"a spoke stack holds {spoke}; with its patch dispatcher {len(with_dispatcher)} resources; a hub stack {len(resources) - len(spoke)}")
PY

# --- 3: rendered copy with every IAM role policy resolved -----------------------
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
