#!/usr/bin/env python3
"""fleetops at fleet scale: the instance scheduler against bench/ec2sim.py.

    .venv/bin/python bench/scale.py --binary target/release/instance-scheduler \\
        --sizes 2000,100000 --out scale.json

Per size: a fresh simulator, `size` instances in bench/fleet.py's 24 schedules (4 kinds x
6 zones; half of the fleet must change now), the schedules document in the SSM parameter
`/fleetops/schedules`, latency and throttling on. Then one "full tick" (the scheduler
binary under bench/lambda_rt.py, one invocation) and `--steady-ticks` more on the settled
fleet (nothing to change), each a fresh process. Recorded per tick: handler wall time
against the `--budget` (60 s), CPU, peak RSS, the simulator's call counts, bytes and
throttled calls, and the lengths of the binary's result lists; after the full tick the
simulator's instance states are checked against the expected ones. The runtime passes a
deadline of --deadline seconds (default 3600, so the binary does not cut its work short);
a tick still running after --timeout (default 900 s, Lambda's maximum) is ended and what it
did so far is recorded. If the full tick left work undone (ended, failures, instances not in
their expected states), the rest of the fleet is put into its
expected states through the control plane and one unmeasured "settling" tick (latency and
throttling off) lets the scheduler write its markers, so the steady-state ticks see a
settled fleet. The binary is copied first, so a rebuild during the run changes nothing.

Run it with the project venv's Python (bench/lambda_rt.py imports bench/emulator.py,
which needs boto3). JSON to stdout and to --out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fleet  # noqa: E402
import lambda_rt  # noqa: E402
from emulator import proc_cpu_seconds  # noqa: E402
from run import rfc3339, scheduler_env  # noqa: E402  (the same function environment)

FUNCTION_NAME = "fleetops-instance-scheduler"
BUDGET_S = 60.0  # the tick's time budget the report compares against
RAISED_RESOURCE_BUCKET = 100_000  # --raised-resource-limits: instances, refilled a tenth a second
# Tags beyond Name and Schedule on every instance, as a real fleet carries (cost
# allocation, ownership, IaC): with them an instance item is about 9 KB of EC2 XML.
EXTRA_TAGS = {
    "Environment": "production",
    "Owner": "team-platform@example.com",
    "CostCenter": "CC-1042",
    "Application": "orders-api",
    "aws:cloudformation:stack-name": "orders-api-prod",
    "Backup": "daily",
}


def log(message: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class SimProcess:
    """`bench/ec2sim.py --port 0` as a child process (it ends when its stdin closes)."""

    def __init__(self, log_path: Path | None = None, python: str = sys.executable):
        self.log_path, self.python = log_path, python
        self.url = ""
        self.proc: subprocess.Popen | None = None
        self._conn: http.client.HTTPConnection | None = None

    def __enter__(self) -> "SimProcess":
        err = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen([self.python, str(HERE / "ec2sim.py"), "--port", "0"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=err)
        if self.log_path:
            err.close()
        line = self.proc.stdout.readline().decode()
        if not line.startswith("EC2SIM_READY "):
            self.__exit__()
            raise RuntimeError(f"ec2sim did not start: {line!r}")
        self.url = line.split()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()

    def control(self, method: str, path: str, body: object | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):  # one reconnect if the kept-alive connection was dropped
            if self._conn is None:
                self._conn = http.client.HTTPConnection(urlsplit(self.url).netloc, timeout=600)
            try:
                self._conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
                response = self._conn.getresponse()
                payload = response.read()
            except (http.client.HTTPException, OSError):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
                continue
            if response.status >= 300:
                raise RuntimeError(f"{method} {path}: {response.status} {payload[:300]!r}")
            return json.loads(payload or b"{}")
        raise AssertionError("unreachable")

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.proc.pid) or 0.0


def seed_fleet(sim: SimProcess, size: int, extra_tags: dict[str, str]) -> dict[str, tuple[str, list[str]]]:
    """bench/fleet.py's 24 groups in the simulator: group name -> (kind, instance ids)."""
    kind_of = {fleet.group_name(k, z): k for k in fleet.KINDS for z in fleet.ZONES}
    counts = fleet.plan(size)
    schedules = {name: {"count": counts[name], "state": fleet.KINDS[kind][2]}
                 for name, kind in kind_of.items() if name in counts}
    ids = sim.control("POST", "/_sim/seed", {"schedules": schedules, "extra_tags": extra_tags})["ids"]
    return {name: (kind_of[name], ids[name]) for name in schedules}


def write_schedules(sim: SimProcess, moment: dt.datetime) -> None:
    document = json.dumps(fleet.schedules_document(moment), separators=(",", ":"))
    sim.control("POST", "/_sim/parameter", {"name": fleet.SCHEDULES_PARAMETER, "value": document})


def output_counts(output: object) -> object:
    """The scheduler's JSON output with its lists replaced by their lengths (and the
    first few failures kept, to see why)."""
    if not isinstance(output, dict):
        return output
    counts = {k: len(v) if isinstance(v, list) else v for k, v in output.items()}
    if output.get("failed"):
        counts["failed_sample"] = output["failed"][:3]
    return counts


def summarize_calls(stats: dict) -> dict:
    out = dict(stats)
    out["ids_per_call"] = {k: {"calls": len(v), "ids": sum(v), "min": min(v), "max": max(v)}
                           for k, v in stats["ids_per_call"].items() if v}
    out["total_calls"] = sum(stats["calls"].values())
    out["total_throttled"] = sum(stats["throttled"].values())
    out["total_bytes"] = sum(stats["bytes"].values())
    if stats["instances_returned"].get("ec2:DescribeInstances"):
        out["describe_instances_bytes_per_instance"] = round(
            stats["bytes"]["ec2:DescribeInstances"] / stats["instances_returned"]["ec2:DescribeInstances"])
    return out


def run_tick(sim: SimProcess, args: argparse.Namespace, moment: dt.datetime, log_path: Path,
             model: bool = True, warm: bool = False) -> dict:
    """One invocation in a fresh process; `model`: latency and throttling as the flags say
    (else both off). `warm`: the same tick twice in one process, the second measured (calls
    counted from its start; process CPU and RSS are the pair's). A tick still running after
    --timeout is ended, and what it did so far is recorded."""
    sim.control("POST", "/_sim/config", {"latency": model and not args.no_latency,
                                         "throttling": model and not args.no_throttling})
    sim.control("POST", "/_sim/calls/reset")  # the config call refilled every token bucket
    sim_cpu = [sim.cpu_seconds()]
    event = {"time": rfc3339(moment), "dry_run": False}

    def measure_from_here():
        time.sleep(1.0)  # the request buckets refill a little, as in five minutes they would wholly
        sim.control("POST", "/_sim/calls/reset")
        sim_cpu[0] = sim.cpu_seconds()

    run = lambda_rt.run_function(args.binary, FUNCTION_NAME, scheduler_env(sim.url), [event] * (2 if warm else 1),
                                 log_path, args.timeout, between=measure_from_here if warm else None)
    inv = run.invocations[-1]
    handler_s = inv.wall_s
    return {
        "event": event,
        "completed": inv.outcome is not None,
        "ok": run.ok,
        "outcome": inv.outcome,
        "error_type": inv.error_type,
        "init_error": run.init_error,
        "cold_start_s": run.cold_start_s,
        "handler_s": handler_s,
        "within_budget": handler_s is not None and handler_s <= args.budget,
        "handler_cpu_s": inv.cpu_s,
        "process_cpu_s": run.cpu_s,
        "process_cpu_user_s": run.cpu_user_s,
        "process_cpu_sys_s": run.cpu_sys_s,
        "max_rss_kb": run.max_rss_kb,
        "timeout_s": args.timeout,
        "result": output_counts(inv.result()),
        "warm": warm,
        "sim_cpu_s": sim.cpu_seconds() - sim_cpu[0],
        "sim": summarize_calls(sim.control("GET", "/_sim/calls")),
    }


def check_states(sim: SimProcess, groups: dict[str, tuple[str, list[str]]]) -> list[str]:
    states = sim.control("GET", "/_sim/instances?fields=state")
    problems = []
    for name, (kind, ids) in groups.items():
        want = fleet.KINDS[kind][3]
        wrong = [i for i in ids if states.get(i) != want]
        if wrong:
            problems.append(f"{name}: {len(wrong)} of {len(ids)} instances not {want}, e.g. {wrong[:2]}")
    return problems


def check_result(tick: dict, stops: int, starts: int, name: str) -> list[str]:
    result = tick["result"]
    if not tick["completed"]:
        return [f"{name}: not done after {tick['timeout_s']:.0f} s (--timeout), ended"]
    if not tick["ok"] or not isinstance(result, dict):
        return [f"{name}: the invocation did not succeed ({tick['outcome']}, {tick['init_error'] or result})"]
    problems = [f"{name}: {key} {result.get(key)}, expected {want}"
                for key, want in (("stopped", stops), ("started", starts)) if result.get(key) != want]
    if result.get("failed"):
        problems.append(f"{name}: {result['failed']} failed, e.g. {result.get('failed_sample')}")
    return problems


def measure(size: int, args: argparse.Namespace, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    with SimProcess(workdir / "ec2sim.log") as sim:
        config = {"latency": False, "throttling": False, "indent": args.indent}
        if args.raised_resource_limits:
            # As after a limit increase: request buckets unchanged, resource buckets large.
            config["buckets"] = {"StopInstances": [RAISED_RESOURCE_BUCKET, RAISED_RESOURCE_BUCKET / 10],
                                 "StartInstances": [RAISED_RESOURCE_BUCKET, RAISED_RESOURCE_BUCKET / 10]}
        sim.control("POST", "/_sim/config", config)
        t = time.perf_counter()
        groups = seed_fleet(sim, size, EXTRA_TAGS if args.extra_tags else {})
        seed_s = time.perf_counter() - t
        moment = dt.datetime.now(dt.timezone.utc)
        write_schedules(sim, moment)
        log(f"n={size}: seeded in {seed_s:.1f} s; full tick")
        stops = sum(len(ids) for kind, ids in groups.values() if kind == "stop")
        starts = sum(len(ids) for kind, ids in groups.values() if kind == "start")
        full = run_tick(sim, args, moment, workdir / "full-tick.log")
        log(f"n={size}: full tick {full['handler_s'] or 0:.1f} s, {full['sim']['total_calls']} calls "
            f"({full['sim']['total_throttled']} throttled), result {full['result']}")
        unsettled = check_states(sim, groups)
        problems = check_result(full, stops, starts, "full tick") + unsettled
        settling = None
        failed = isinstance(full["result"], dict) and full["result"].get("failed")
        if args.steady_ticks and (unsettled or not full["completed"] or failed):
            # Settle the rest by hand, then let the scheduler mark it, latency and throttling off.
            for name, (kind, ids) in groups.items():
                sim.control("POST", "/_sim/state", {"ids": ids, "state": fleet.KINDS[kind][3]})
            settling = run_tick(sim, args, moment, workdir / "settling-tick.log", model=False)
            settling = {k: settling[k] for k in ("completed", "ok", "handler_s", "result")}
            log(f"n={size}: the full tick left work undone: states set, one settling tick {settling}")
        steady = []
        for n in range(args.steady_ticks):
            tick = run_tick(sim, args, dt.datetime.now(dt.timezone.utc), workdir / f"steady-tick-{n}.log",
                            warm=args.warm)
            log(f"n={size}: steady tick {n + 1}: {tick['handler_s'] or 0:.1f} s, {tick['sim']['total_calls']} calls "
                f"({tick['sim']['total_throttled']} throttled), result {tick['result']}")
            problems += check_result(tick, 0, 0, f"steady tick {n + 1}")
            steady.append(tick)
        problems += check_states(sim, groups) if steady else []
    return {"size": size, "seed_s": seed_s, "expected": {"stop": stops, "start": starts}, "full_tick": full,
            "settling_tick": settling, "steady_ticks": steady, "problems": problems}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", default="target/release/instance-scheduler", help="the host build of the scheduler")
    p.add_argument("--sizes", default="100000", help="comma list of fleet sizes (default 100000)")
    p.add_argument("--out", help="write the JSON here too")
    p.add_argument("--steady-ticks", type=int, default=1, help="ticks on the settled fleet after the full tick")
    p.add_argument("--budget", type=float, default=BUDGET_S, help="seconds a tick should take at most (default 60)")
    p.add_argument("--deadline", type=float, default=3600,
                   help="seconds until the deadline the runtime passes (default 3600: long enough to measure)")
    p.add_argument("--timeout", type=float, default=900,
                   help="seconds a tick may run before it is ended (default 900, Lambda's maximum timeout)")
    p.add_argument("--indent", type=int, default=4, help="ec2sim XML indentation (4: as EC2 sends it)")
    p.add_argument("--no-extra-tags", dest="extra_tags", action="store_false", help="only Name and Schedule tags")
    p.add_argument("--no-latency", action="store_true", help="answer at once (no latency model)")
    p.add_argument("--no-throttling", action="store_true", help="no token buckets")
    p.add_argument("--warm", action="store_true",
                   help="steady ticks in a warm process: each tick twice in one process, the second measured")
    p.add_argument("--raised-resource-limits", action="store_true",
                   help=f"start and stop resource buckets of {RAISED_RESOURCE_BUCKET:,} instances (a limit increase)")
    p.add_argument("--workdir", help="keep the logs here (default: a temporary directory, removed)")
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not os.access(args.binary, os.X_OK):
        p.error(f"--binary {args.binary}: not an executable file")
    args.binary = os.path.abspath(args.binary)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lambda_rt.DEADLINE_S = args.deadline  # read by the runtime server at every hand-out
    workdir = Path(args.workdir).resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="fleetops-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # A copy: a rebuild during the run must not swap the binary between ticks.
    snapshot = workdir / os.path.basename(args.binary)
    shutil.copy2(args.binary, snapshot)
    digest = hashlib.sha256(snapshot.read_bytes()).hexdigest()
    binary_mtime = rfc3339(dt.datetime.fromtimestamp(snapshot.stat().st_mtime, dt.timezone.utc))
    args.binary = str(snapshot)
    results: dict = {"binary_sha256": digest, "binary_mtime": binary_mtime,
                     "started": rfc3339(dt.datetime.now(dt.timezone.utc)), "budget_s": args.budget,
                     "deadline_s": args.deadline, "latency": not args.no_latency,
                     "throttling": not args.no_throttling, "raised_resource_limits": args.raised_resource_limits,
                     "warm_steady_ticks": args.warm,
                     "binary": os.path.basename(args.binary),
                     "timeout_s": args.timeout, "sizes": {}}
    try:
        for size in args.sizes:
            results["sizes"][str(size)] = measure(size, args, workdir / str(size))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    results["finished"] = rfc3339(dt.datetime.now(dt.timezone.utc))
    text = json.dumps(results, indent=1, default=str)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 1 if any(r["problems"] for r in results["sizes"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
