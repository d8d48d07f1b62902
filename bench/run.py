#!/usr/bin/env python3
"""fleetops benchmark (issue 5): the instance scheduler against Cloud Custodian on the
same emulated fleet, and optionally the compliance reporter. Writes markdown.

    .venv/bin/python bench/run.py --sizes 1000,10000 \\
        --scheduler-binary target/release/instance-scheduler \\
        --custodian .venv-bench/bin/custodian --out BENCHMARKS.md

Run it with the project venv's Python (it needs boto3 and starts the emulator
with the same interpreter). See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import custodian  # noqa: E402
import fleet  # noqa: E402
import report  # noqa: E402
import reporter  # noqa: E402
from emulator import ROOT, Emulator  # noqa: E402
from lambda_rt import run_function  # noqa: E402


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduler_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SCHEDULES_PARAMETER": fleet.SCHEDULES_PARAMETER,
    }


def wait_for_hour_room(needed_s: float) -> None:
    """c7n compares the current hour: start only if the hour will not turn before
    it is done (every zone used turns its hour at the same instant)."""
    now = time.time()
    left = 3600 - now % 3600
    if left < needed_s:
        log(f"only {left:.0f} s left in this hour, c7n needs about {needed_s:.0f} s: waiting for the next hour")
        time.sleep(left + 2)


def measure_tool(tool: str, size: int, args: argparse.Namespace, workdir: Path) -> dict:
    """One measured run: fresh emulator, seed, arm at the current hour, run, observe."""
    for attempt in (1, 2):
        with Emulator(workdir / "emulator", args.stock_moto) as emu:
            ec2, ssm = emu.client("ec2"), emu.client("ssm")
            t = time.perf_counter()
            the_fleet = fleet.seed(ec2, size)
            log(f"{tool} n={size}: seeded in {time.perf_counter() - t:.1f} s")
            if tool == "c7n":
                wait_for_hour_room(args.hour_margin or 60 + 0.03 * size)
            moment = utc_now()
            fleet.arm(ec2, ssm, the_fleet, moment)
            marks = fleet.log_marks(emu)
            emu.reset_calls()
            emu_cpu = emu.cpu_seconds()
            result: dict = {"tool": tool, "size": size, "moment": rfc3339(moment)}
            if tool == "fleetops":
                event = {"time": rfc3339(moment), "dry_run": False}
                run = run_function(args.scheduler_binary, "fleetops-instance-scheduler", scheduler_env(emu.url),
                                   [event], workdir / "function.log", args.timeout)
                result.update(function_metrics(run))
            else:
                run = custodian.run_custodian(args.custodian, emu.url, workdir / "c7n", args.timeout)
                result.update(wall_s=run.wall_s, cpu_s=run.cpu_s, cpu_user_s=run.cpu_user_s,
                              cpu_sys_s=run.cpu_sys_s, max_rss_kb=run.max_rss_kb, ok=run.exit_status == 0,
                              exit_status=run.exit_status)
            result["emulator_cpu_s"] = emu.cpu_seconds() - emu_cpu
            result["calls"] = emu.calls()
            result["bytes"] = emu.response_bytes()
            if tool == "fleetops" and result.get("ok"):
                result["steady"] = steady_tick(args, emu, moment, workdir)
            end = utc_now()
            obs = fleet.observe(emu, the_fleet, marks)
        result["problems"] = fleet.check(the_fleet, obs)
        result["observation"] = {"state": obs.state, "stopped": sorted(obs.stopped), "started": sorted(obs.started)}
        result["expected"] = {k: len(v) for k, v in zip(("stop", "start"), the_fleet.expected_actions())}
        if tool == "c7n" and not fleet.hours_unchanged(moment, end):
            log(f"c7n n={size}: the hour turned during the run; {'retrying' if attempt == 1 else 'giving up'}")
            result["problems"].insert(0, "the hour turned during the c7n run: not comparable")
            continue
        if not result.get("ok", True):
            detail = result.get("init_error") or (result.get("result") if tool == "fleetops" else None)
            result["problems"].insert(0, f"{tool} did not finish cleanly ({detail or 'exit status ' + str(result.get('exit_status'))}; "
                                         "its log is in --workdir)")
        return result
    return result


def steady_tick(args: argparse.Namespace, emu: Emulator, moment: dt.datetime, workdir: Path) -> dict:
    """The next tick, five minutes later, on the fleet the first one settled:
    nothing must change (issue 14: its cost must follow the changes, not the
    fleet). A fresh process, so its handler CPU compares with the first's."""
    emu.reset_calls()
    event = {"time": rfc3339(moment + dt.timedelta(minutes=5)), "dry_run": False}
    run = run_function(args.scheduler_binary, "fleetops-instance-scheduler", scheduler_env(emu.url),
                       [event], workdir / "function-steady.log", args.timeout)
    return dict(function_metrics(run), calls=emu.calls(), bytes=emu.response_bytes())


def function_metrics(run) -> dict:
    invocation = run.invocations[-1]
    return {
        "cold_start_s": run.cold_start_s,
        "handler_s": invocation.wall_s,
        "handler_cpu_s": invocation.cpu_s,
        "wall_s": run.start_to_done_s,
        "cpu_s": run.cpu_s,
        "cpu_user_s": run.cpu_user_s,
        "cpu_sys_s": run.cpu_sys_s,
        "max_rss_kb": run.max_rss_kb,
        "ok": run.ok,
        "outcome": invocation.outcome,
        "result": summarize_output(invocation.result()),
        "init_error": run.init_error,
    }


def summarize_output(output: object) -> object:
    """The scheduler's JSON output with its id lists replaced by their lengths."""
    if isinstance(output, dict):
        return {k: len(v) if isinstance(v, list) else v for k, v in output.items()}
    return output


def cold_starts(args: argparse.Namespace, workdir: Path) -> dict:
    """Process start to first poll, on an empty fleet, several times; c7n's fixed
    cost (a whole run on an empty fleet) alongside."""
    out: dict = {"fleetops": [], "c7n": []}
    with Emulator(workdir / "emulator", args.stock_moto) as emu:
        emu.client("ssm").put_parameter(Name=fleet.SCHEDULES_PARAMETER, Type="String", Overwrite=True,
                                        Value=json.dumps(fleet.schedules_document(utc_now())))
        for n in range(args.cold_starts):
            if "fleetops" in args.tools:
                emu.reset_calls()
                run = run_function(args.scheduler_binary, "fleetops-instance-scheduler", scheduler_env(emu.url),
                                   [{"time": rfc3339(utc_now()), "dry_run": False}], workdir / "cold.log", args.timeout)
                out["fleetops"].append(dict(function_metrics(run), calls=emu.calls()))
            if "c7n" in args.tools:
                emu.reset_calls()
                run = custodian.run_custodian(args.custodian, emu.url, workdir / f"c7n-empty-{n}", args.timeout)
                out["c7n"].append({"wall_s": run.wall_s, "cpu_s": run.cpu_s, "max_rss_kb": run.max_rss_kb,
                                   "ok": run.exit_status == 0, "calls": emu.calls()})
    return out


def measure_reporter(size: int, args: argparse.Namespace, workdir: Path) -> dict:
    with Emulator(workdir / "emulator", args.stock_moto) as emu:
        now = utc_now()
        t = time.perf_counter()
        facts = reporter.seed(emu, size, now)
        log(f"reporter n={size}: seeded in {time.perf_counter() - t:.1f} s")
        sample = ROOT / "events" / "compliance-reporter-nightly.json"
        event = json.loads(sample.read_text()) if sample.exists() else {
            "version": "0", "id": "bench", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "region": "us-east-1", "resources": [], "detail": {}}
        event["time"] = rfc3339(now)
        emu.reset_calls()
        emu_cpu = emu.cpu_seconds()
        env = dict(scheduler_env(emu.url), REPORT_TOPIC_ARN=facts["topic_arn"])
        env.pop("SCHEDULES_PARAMETER")
        run = run_function(args.reporter_binary, "fleetops-compliance-reporter", env, [event],
                           workdir / "reporter.log", args.timeout)
        result = dict(function_metrics(run), tool="reporter", size=size, facts=facts,
                      emulator_cpu_s=emu.cpu_seconds() - emu_cpu, calls=emu.calls(),
                      minimum=reporter.minimum_calls(facts))
        result["published"] = len(emu.control("GET", "/_fleetops/sns/messages")["messages"])
    result["problems"] = [] if result["ok"] and result["published"] == 1 else [
        f"reporter outcome {result['outcome']} ({result['result'] or result['init_error']}), "
        f"{result['published']} messages published"]
    return result


def median_of(runs: list[dict]) -> dict:
    """Median of every numeric metric over repeated runs; the rest from the first run."""
    merged = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
            merged[key] = statistics.median(values)
            merged[f"{key}_all"] = values
    merged["runs"] = len(runs)
    merged["problems"] = sorted({p for r in runs for p in r["problems"]})
    merged["calls_vary"] = any(r["calls"] != runs[0]["calls"] for r in runs)
    return merged


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000", help="comma list of fleet sizes (default 1000,10000)")
    p.add_argument("--scheduler-binary", default="target/release/instance-scheduler")
    p.add_argument("--custodian", default=".venv-bench/bin/custodian", help="the c7n `custodian` command")
    p.add_argument("--reporter-binary", help="compliance-reporter binary; measured when given")
    p.add_argument("--reporter-sizes", help="fleet sizes for the reporter (default: --sizes)")
    p.add_argument("--tools", default="fleetops,c7n", help="scheduler comparison: fleetops,c7n (default), one of them, or '' for none")
    p.add_argument("--out", default="BENCHMARKS.md", help="markdown report (overwritten)")
    p.add_argument("--json", help="also write every raw measurement to this JSON file")
    p.add_argument("--repeats", type=int, help="measured runs per size and tool (default 3 up to 1000 instances, else 1)")
    p.add_argument("--cold-starts", type=int, default=5, help="cold starts on an empty fleet (default 5)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds one tool run may take")
    p.add_argument("--hour-margin", type=float, help="seconds c7n needs before the hour turns (default 60 + 0.03 per instance)")
    p.add_argument("--stock-moto", action="store_true",
                   help="run the emulator without bench/emulator_server.py's indexed tag lookup (quadratic in the fleet)")
    p.add_argument("--workdir", help="keep logs and c7n output here (default: a temporary directory, removed)")
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    args.reporter_sizes = [int(s) for s in args.reporter_sizes.split(",")] if args.reporter_sizes else args.sizes
    if unknown := set(args.tools) - {"fleetops", "c7n"}:
        p.error(f"unknown tools {sorted(unknown)}")
    for flag, path in (("--scheduler-binary", args.scheduler_binary if "fleetops" in args.tools else None),
                       ("--custodian", args.custodian if "c7n" in args.tools else None),
                       ("--reporter-binary", args.reporter_binary)):
        if path is not None and not os.access(path, os.X_OK):
            p.error(f"{flag} {path}: not an executable file")
    for attr in ("scheduler_binary", "custodian", "reporter_binary"):
        if getattr(args, attr):
            setattr(args, attr, os.path.abspath(getattr(args, attr)))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(args.workdir).resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="fleetops-bench-"))
    results: dict = {"started": rfc3339(utc_now()), "args": {k: v for k, v in vars(args).items()},
                     "sizes": {}, "reporter": {}, "facts": report.machine_facts(args)}
    try:
        if args.cold_starts and args.tools:
            log(f"cold starts x{args.cold_starts} on an empty fleet")
            results["cold"] = cold_starts(args, workdir / "cold")
        for size in args.sizes if args.tools else []:
            repeats = args.repeats or (3 if size <= 1000 else 1)
            per_tool: dict = {}
            for tool in args.tools:
                runs = []
                for rep in range(repeats):
                    log(f"{tool} n={size}: run {rep + 1}/{repeats}")
                    runs.append(measure_tool(tool, size, args, workdir / f"{tool}-{size}-{rep}"))
                    r = runs[-1]
                    log(f"{tool} n={size}: wall {r.get('wall_s') or 0:.2f} s, cpu {r['cpu_s']:.2f} s, "
                        f"rss {r['max_rss_kb'] / 1024:.1f} MiB, problems {r['problems'] or 'none'}")
                per_tool[tool] = median_of(runs)
            if len(per_tool) == 2:
                per_tool["agreement"] = report.agreement(per_tool["fleetops"], per_tool["c7n"])
            for tool in args.tools:
                per_tool[tool].pop("observation")
            results["sizes"][size] = per_tool
        if args.reporter_binary:
            for size in args.reporter_sizes:
                log(f"reporter n={size}")
                results["reporter"][size] = measure_reporter(size, args, workdir / f"reporter-{size}")
        results["finished"] = rfc3339(utc_now())
        Path(args.out).write_text(report.render(results))
        log(f"wrote {args.out}")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    checked = [r for per_tool in results["sizes"].values() for r in per_tool.values()]
    checked += list(results["reporter"].values())
    return 1 if any(r.get("problems") for r in checked) else 0


if __name__ == "__main__":
    sys.exit(main())
