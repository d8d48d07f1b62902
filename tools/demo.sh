#!/usr/bin/env bash
# `make demo`: a local AWS account (moto + fleetops' extension) on loopback, a
# small realistic fleet, and each Lambda function run by cargo lambda's runtime
# emulator with the sample events from events/.
#
# Everything it starts stops when it ends, however it ends (success, a failing
# step, Ctrl-C, SIGTERM): every background process is tracked and stopped by
# `cleanup` (SIGTERM, SIGKILL after 5 s, reaped), and the emulator's stdin is a
# FIFO this script holds open itself (fd 9), so even if the script is killed
# outright the emulator sees EOF and exits. tests/tools/test_demo_cleanup.py
# checks all of this.
#
# Environment (all optional):
#   FLEETOPS_VENV            the tool venv (default .venv)
#   FLEETOPS_DEMO_BIN_DIR    the function binaries (default ${CARGO_TARGET_DIR:-target}/debug)
#   FLEETOPS_DEMO_WORK       work directory for logs and events (default .demo, wiped
#                            first; a directory given here is used as it is)
#   FLEETOPS_DEMO_FAIL_AT    test hook: the step named by a `checkpoint` fails there
#   FLEETOPS_DEMO_PAUSE_AT   test hook: the demo waits at that `checkpoint` until signalled
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${FLEETOPS_VENV:-.venv}
PY="$VENV/bin/python"
BIN=${FLEETOPS_DEMO_BIN_DIR:-${CARGO_TARGET_DIR:-target}/debug}
if [ -n "${FLEETOPS_DEMO_WORK:-}" ]; then
  WORK=$FLEETOPS_DEMO_WORK
  mkdir -p "$WORK"
else
  WORK=.demo
  rm -rf "$WORK" && mkdir -p "$WORK"
fi

# --- processes: every background process is tracked, and stopped on the way out ---
PIDS=()          # background processes still running
EMULATOR_PID=
SPAWNED=

# spawn LOG CMD...: runs CMD in the background (stdout and stderr to LOG, stdin
# /dev/null, without the emulator's stdin pipe) and tracks it; its PID is $SPAWNED.
spawn() {
  local log=$1; shift
  "$@" </dev/null >"$log" 2>&1 9>&- &
  SPAWNED=$!
  PIDS+=("$SPAWNED")
}

# stop PID...: SIGTERM, then SIGKILL whatever is left after 5 s; reaps them and
# stops tracking them.
stop() {
  [ $# -gt 0 ] || return 0
  local pid alive tries=50
  kill -TERM "$@" 2>/dev/null || true
  while [ "$tries" -gt 0 ]; do
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
    tries=$((tries - 1))
  done
  kill -KILL "$@" 2>/dev/null || true
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
  untrack "$@"
}

# untrack PID...: forget processes that have ended and been reaped.
untrack() {
  local pid keep=()
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do
    case " $* " in *" $pid "*) ;; *) keep+=("$pid") ;; esac
  done
  PIDS=(${keep[@]+"${keep[@]}"})
}

cleanup() {
  local status=$?
  set +e
  trap '' INT TERM HUP  # a second Ctrl-C must not cut the cleanup short
  exec 9>&-             # EOF on the emulator's stdin: it stops by itself
  stop ${PIDS[@]+"${PIDS[@]}"}
  rm -f "$WORK/emulator.stdin"
  exit "$status"
}
trap cleanup EXIT
# A signal ends the demo through `exit`, so the EXIT trap runs.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# checkpoint NAME: a named step, for the test hooks FLEETOPS_DEMO_FAIL_AT=NAME
# (fails here, as a failing command would under `set -e`) and
# FLEETOPS_DEMO_PAUSE_AT=NAME (waits here, writes $WORK/paused, until a signal
# ends the demo). Steps: emulator, then FUNCTION:running for each run_function.
checkpoint() {
  if [ "${FLEETOPS_DEMO_FAIL_AT:-}" = "$1" ]; then
    echo "demo: step $1 fails (FLEETOPS_DEMO_FAIL_AT)" >&2
    return 1
  fi
  if [ "${FLEETOPS_DEMO_PAUSE_AT:-}" = "$1" ]; then
    echo "demo: paused at step $1 (FLEETOPS_DEMO_PAUSE_AT); Ctrl-C ends it" >&2
    echo "$1" >"$WORK/paused"
    wait "$EMULATOR_PID" || true  # a trapped signal interrupts the wait
    echo "demo: the emulator ended while the demo was paused" >&2
    return 1
  fi
}

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# action_lines LOG: the per-action fields of a function's JSON log lines.
action_lines() {
  grep -h '"action"' "$1" | "$PY" -c '
import json, sys
for line in sys.stdin:
    f = json.loads(line).get("fields", {})
    print("  " + " ".join(f"{k}={f[k]}" for k in ("instance_id", "action", "result", "reason", "error") if k in f))
'
}
banner() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }

banner "Local AWS account"
# The emulator exits when its stdin reaches EOF. Its stdin is a FIFO that this
# script holds open (fd 9, read-write so the open never blocks) and no other
# process inherits: when the script ends, however it ends, the emulator stops.
rm -f "$WORK/emulator.stdin"
mkfifo "$WORK/emulator.stdin"
exec 9<>"$WORK/emulator.stdin"
"$PY" tests/emulator/server.py --host 127.0.0.1 --port 0 \
  <"$WORK/emulator.stdin" >"$WORK/emulator.out" 2>"$WORK/emulator.log" 9>&- &
EMULATOR_PID=$!
PIDS+=("$EMULATOR_PID")
for _ in $(seq 1 600); do
  grep -q FLEETOPS_EMULATOR_READY "$WORK/emulator.out" 2>/dev/null && break
  kill -0 "$EMULATOR_PID" 2>/dev/null || break
  sleep 0.1
done
ENDPOINT=$(awk '/FLEETOPS_EMULATOR_READY/ {print $2}' "$WORK/emulator.out" 2>/dev/null || true)
[ -n "$ENDPOINT" ] || { echo "the emulator did not start; see $WORK/emulator.log" >&2; exit 1; }
rm -f "$WORK/emulator.stdin"  # the emulator has it open (it is ready); the name is not needed
echo "moto (with tests/emulator) at $ENDPOINT"
checkpoint emulator
export AWS_ENDPOINT_URL="$ENDPOINT" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_EC2_METADATA_DISABLED=true
"$PY" tools/demo_fleet.py seed "$ENDPOINT"

banner "fleetops (command line): check, preview, plan before the first tick"
# The command line comes from the build, also when FLEETOPS_DEMO_BIN_DIR points elsewhere.
FLEETOPS=${FLEETOPS_DEMO_CLI:-${CARGO_TARGET_DIR:-target}/debug/fleetops}
[ -x "$FLEETOPS" ] || { echo "$FLEETOPS is not built; run \`make build\` (\`make demo\` does)" >&2; exit 1; }
# A draft with the mistakes people make: "KST", "9:00", "weekday" (for weekdays).
cat >"$WORK/schedules-draft.json" <<'JSON'
{
  "schedules": {
    "office-hours": {
      "timezone": "KST",
      "periods": [{ "weekday": "mon-fri", "begin": "9:00", "end": "18:00" }],
      "enforced": true
    },
    "ny-overnight": {
      "timezone": "America/New_York",
      "periods": [{ "begin": "22:00", "end": "02:30" }]
    }
  }
}
JSON
sed -e 's/"KST"/"Asia\/Seoul"/' -e 's/"weekday"/"weekdays"/' -e 's/"9:00"/"09:00"/' \
  "$WORK/schedules-draft.json" >"$WORK/schedules.json"
echo "\$ fleetops check schedules-draft.json"
"$FLEETOPS" check "$WORK/schedules-draft.json" || echo "(exit $?: every error at once; fix them all, then check again)"
echo "\$ fleetops check schedules.json"
"$FLEETOPS" check "$WORK/schedules.json"
echo "\$ fleetops preview schedules.json --schedule ny-overnight --from 2026-03-07T12:00:00Z --days 2"
echo "  (New York springs forward at 02:00 on 2026-03-08: 02:30 does not exist that night)"
"$FLEETOPS" preview "$WORK/schedules.json" --schedule ny-overnight --from 2026-03-07T12:00:00Z --days 2
echo "\$ fleetops plan --at 2026-11-26T18:05:00Z   # the first tick's instant: what it would do, dry run"
"$FLEETOPS" plan --at 2026-11-26T18:05:00Z

# run_function NAME EVENT_FILE [KEY=VALUE...]: cargo lambda's runtime emulator
# (`cargo lambda watch`, Lambda APIs only) with the function's debug binary
# (built by `make build`, so the demo never waits for a second build) attached,
# invoked once with `cargo lambda invoke --data-file`; both stop afterwards.
run_function() {
  local name=$1 event=$2; shift 2
  local binary="$BIN/$name"
  [ -x "$binary" ] || { echo "$binary is not built; run \`make build\` (\`make demo\` does)" >&2; return 1; }
  local port; port=$(free_port)
  spawn "$WORK/$name.watch.log" "$VENV/bin/cargo-lambda" lambda watch --only-lambda-apis \
    --invoke-address 127.0.0.1 --invoke-port "$port"
  local watch=$SPAWNED
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$watch" 2>/dev/null || { echo "cargo lambda watch ended; see $WORK/$name.watch.log" >&2; return 1; }
    sleep 0.1
  done
  spawn "$WORK/$name.log" env "$@" AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt" \
    AWS_LAMBDA_FUNCTION_NAME="$name" AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 \
    RUST_LOG=info "$binary"
  local function=$SPAWNED
  checkpoint "$name:running"
  echo "\$ cargo lambda invoke --data-file $event"
  # In the background, so that a function that exits without answering (an
  # init error) ends the demo instead of leaving the invocation waiting forever.
  "$VENV/bin/cargo-lambda" lambda invoke --invoke-address 127.0.0.1 --invoke-port "$port" \
    --data-file "$event" --output-format json \
    </dev/null >"$WORK/$name.result.json" 2>"$WORK/$name.invoke.log" 9>&- &
  local invoke=$! invoked=0
  PIDS+=("$invoke")
  while kill -0 "$invoke" 2>/dev/null; do
    if ! kill -0 "$function" 2>/dev/null; then
      sleep 1  # it may have answered just before it ended
      kill -0 "$invoke" 2>/dev/null || break
      echo "$name ended without answering the invocation; its log ($WORK/$name.log):" >&2
      sed 's/^/  /' "$WORK/$name.log" >&2
      return 1
    fi
    sleep 0.1
  done
  wait "$invoke" || invoked=$?
  untrack "$invoke"
  if [ "$invoked" != 0 ]; then
    cat "$WORK/$name.invoke.log" >&2
    return 1
  fi
  "$PY" -m json.tool "$WORK/$name.result.json"
  echo "-- what it logged (one JSON line per action):"
  action_lines "$WORK/$name.log" || true
  stop "$function" "$watch"
}

banner "instance-scheduler"
echo "Fleet before the tick (a ScheduleOverride tag wins over the schedule: running keeps an instance up, skip leaves it alone):"
"$PY" tools/demo_fleet.py states "$ENDPOINT"
run_function instance-scheduler events/instance-scheduler-tick.json
echo "-- its metrics: one CloudWatch Embedded Metric Format line on stdout (namespace fleetops), which Lambda turns into metrics:"
grep -h '"_aws"' "$WORK/instance-scheduler.log" | sed 's/^/  /' || echo "  (none)"
echo "Fleet after the tick (as EC2 now reports it):"
"$PY" tools/demo_fleet.py states "$ENDPOINT"

banner "instance-scheduler, next tick: Friday 09:05 in Seoul (00:05 UTC)"
run_function instance-scheduler events/instance-scheduler-seoul-morning.json
echo "Fleet after the morning tick:"
"$PY" tools/demo_fleet.py states "$ENDPOINT"

banner "patch-dispatcher: a scale-out is patched before it goes in service"
# The dispatcher's claims and records: a DynamoDB table, as the template creates it.
export STATE_TABLE=fleetops-state
"$PY" tools/demo_patch.py create-table "$ENDPOINT" "$STATE_TABLE"
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
echo "The dispatcher's records (DynamoDB $STATE_TABLE; every change a conditional write, TTL on expires_at):"
"$PY" tools/demo_patch.py records "$ENDPOINT" "$STATE_TABLE"

banner "compliance-reporter: the nightly report, as an SQS subscriber of the topic receives it"
REPORT_TOPIC=$("$PY" tools/demo_report.py seed "$ENDPOINT")
run_function compliance-reporter events/compliance-reporter-nightly.json "REPORT_TOPIC_ARN=$REPORT_TOPIC" \
  REPORT_BUCKET=fleetops-demo-reports
"$PY" tools/demo_report.py read "$ENDPOINT"
banner "compliance-reporter: the page people forward (HTML in S3, with the trend of the previous nights)"
PAGE_URI=$("$PY" tools/demo_report.py page "$ENDPOINT" "$WORK/report.html")
echo "Stored at $PAGE_URI; a copy to open in a browser: $WORK/report.html"
CHROMIUM=${FLEETOPS_CHROMIUM:-chromium}
if command -v "$CHROMIUM" >/dev/null 2>&1; then
  profile=$(mktemp -d)
  # Off the network and out of any profile, or it waits for the network.
  timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --screenshot="$WORK/report.png" --window-size=390,844 \
    "$WORK/report.html" </dev/null >/dev/null 2>&1 9>&- || true
  rm -rf "$profile"
  if [ -s "$WORK/report.png" ]; then
    echo "As a phone shows it (headless Chromium, 390x844): $WORK/report.png"
  fi
fi
