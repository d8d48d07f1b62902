#!/usr/bin/env bash
# `make demo`: a local AWS account (moto + fleetops' extension) on loopback, a
# small realistic fleet, and each Lambda function run by cargo lambda's runtime
# emulator with the sample events from events/. Everything stops at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${FLEETOPS_VENV:-.venv}
PY="$VENV/bin/python"
WORK=.demo
rm -rf "$WORK" && mkdir -p "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
banner() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }

banner "Local AWS account"
# The emulator exits when its stdin closes; a sleeping writer keeps it open.
(sleep 100000 | "$PY" tests/emulator/server.py --host 127.0.0.1 --port 0 >"$WORK/emulator.out" 2>"$WORK/emulator.log") &
PIDS+=($!)
for _ in $(seq 1 200); do
  grep -q FLEETOPS_EMULATOR_READY "$WORK/emulator.out" 2>/dev/null && break
  sleep 0.1
done
ENDPOINT=$(awk '/FLEETOPS_EMULATOR_READY/ {print $2}' "$WORK/emulator.out")
[ -n "$ENDPOINT" ] || { echo "the emulator did not start; see $WORK/emulator.log"; exit 1; }
echo "moto (with tests/emulator) at $ENDPOINT"
export AWS_ENDPOINT_URL="$ENDPOINT" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_EC2_METADATA_DISABLED=true
"$PY" tools/demo_fleet.py seed "$ENDPOINT"

# run_function NAME EVENT_FILE [KEY=VALUE...]: cargo lambda's runtime emulator
# (`cargo lambda watch`, Lambda APIs only) with the function's debug binary
# (built by `make build`, so the demo never waits for a second build) attached,
# invoked once with `cargo lambda invoke --data-file`.
run_function() {
  local name=$1 event=$2; shift 2
  local port; port=$(free_port)
  "$VENV/bin/cargo-lambda" lambda watch --only-lambda-apis --invoke-address 127.0.0.1 \
    --invoke-port "$port" >"$WORK/$name.watch.log" 2>&1 &
  local watch=$!
  PIDS+=("$watch")
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  env "$@" AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt" AWS_LAMBDA_FUNCTION_NAME="$name" \
    AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 RUST_LOG=info \
    "target/debug/$name" >"$WORK/$name.log" 2>&1 &
  local function=$!
  PIDS+=("$function")
  echo "\$ cargo lambda invoke --data-file $event"
  "$VENV/bin/cargo-lambda" lambda invoke --invoke-address 127.0.0.1 --invoke-port "$port" \
    --data-file "$event" --output-format json | "$PY" -m json.tool
  echo "-- what it logged (one JSON line per action):"
  grep -h '"action"' "$WORK/$name.log" | "$PY" -c '
import json, sys
for line in sys.stdin:
    f = json.loads(line).get("fields", {})
    print("  " + " ".join(f"{k}={f[k]}" for k in ("instance_id", "action", "result", "reason", "error") if k in f))
' || true
  kill "$function" "$watch" 2>/dev/null || true
}

banner "instance-scheduler"
echo "Fleet before the tick:"
"$PY" tools/demo_fleet.py states "$ENDPOINT"
run_function instance-scheduler events/instance-scheduler-tick.json
echo "Fleet after the tick (as EC2 now reports it):"
"$PY" tools/demo_fleet.py states "$ENDPOINT"

banner "instance-scheduler, next tick: Friday 09:05 in Seoul (00:05 UTC)"
run_function instance-scheduler events/instance-scheduler-seoul-morning.json
echo "Fleet after the morning tick:"
"$PY" tools/demo_fleet.py states "$ENDPOINT"

banner "patch-dispatcher: a scale-out is patched before it goes in service"
echo "An Auto Scaling group 'web' with the launch hook fleetops-patch-on-launch scales out:"
"$PY" tools/demo_patch.py scale-out "$ENDPOINT" "$WORK/lifecycle-event.json"
echo "1) The lifecycle event (recorded by the emulator, shaped like events/patch-dispatcher-lifecycle-launch.json):"
echo "   the agent is online, so AWS-RunPatchBaseline Install is sent to the new instance."
run_function patch-dispatcher "$WORK/lifecycle-event.json" AGENT_POLL_INTERVAL_SECONDS=1
echo "2) The patch run ends; SSM emits the command status event:"
"$PY" tools/demo_patch.py status-event "$ENDPOINT" "$WORK/status-event.json"
run_function patch-dispatcher "$WORK/status-event.json"
echo "Lifecycle actions Auto Scaling recorded, and the group now:"
"$PY" tools/demo_patch.py actions "$ENDPOINT"

banner "patch-dispatcher: the nightly Install of patch group 'web' (events/patch-dispatcher-scheduled-install.json)"
run_function patch-dispatcher events/patch-dispatcher-scheduled-install.json

banner "compliance-reporter: the nightly report, as an SQS subscriber of the topic receives it"
REPORT_TOPIC=$("$PY" tools/demo_report.py seed "$ENDPOINT")
run_function compliance-reporter events/compliance-reporter-nightly.json "REPORT_TOPIC_ARN=$REPORT_TOPIC"
"$PY" tools/demo_report.py read "$ENDPOINT"
