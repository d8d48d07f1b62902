"""Renders the benchmark results as BENCHMARKS.md (markdown tables and the method)."""

from __future__ import annotations

import math
import os
import platform
from importlib import metadata
from pathlib import Path

import custodian
import fleet
from emulator import ROOT

PLACEHOLDER = "_(to be filled in by hand: see bench/README.md)_"


def machine_facts(args) -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        mem_kb = 0
    facts = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "moto": metadata.version("moto"),
        "boto3": metadata.version("boto3"),
        "load_at_start": os.getloadavg(),
        "c7n": custodian.version(args.custodian) if "c7n" in args.tools else None,
    }
    binaries = {"scheduler_binary": args.scheduler_binary if "fleetops" in args.tools else None,
                "reporter_binary": args.reporter_binary}
    for name, path in binaries.items():
        if path:
            shown = os.path.relpath(path, ROOT) if path.startswith(str(ROOT) + os.sep) else os.path.basename(path)
            facts[name] = {"name": shown, "bytes": os.path.getsize(path)}
    facts["bootstraps"] = {
        p.parent.name: p.stat().st_size for p in sorted((ROOT / "target" / "lambda").glob("*/bootstrap"))
    }
    return facts


def agreement(fleetops: dict, c7n: dict) -> dict:
    """Did both tools leave the same instances in the same states, by the same actions?"""
    a, b = fleetops["observation"], c7n["observation"]
    problems = []
    differ = sorted(k for k in set(a["state"]) | set(b["state"]) if a["state"].get(k) != b["state"].get(k))
    if differ:
        problems.append(f"{len(differ)} instances end in different states, e.g. {differ[:3]}")
    for key in ("stopped", "started"):
        if set(a[key]) != set(b[key]):
            only_f, only_c = set(a[key]) - set(b[key]), set(b[key]) - set(a[key])
            problems.append(f"{key}: {len(only_f)} only by fleetops, {len(only_c)} only by c7n")
    return {"same": not problems, "problems": problems,
            "stopped": len(set(a["stopped"])), "started": len(set(a["started"]))}


# The scheduler's read plan (shared/src/scheduler/read_plan.rs): schedules
# share a full-read query up to this many instances.
INSTANCES_PER_QUERY = 2000


def _queries(counts: list[int]) -> list[int]:
    """Instances per full-read query, grouped as read_plan's group_values does."""
    groups, planned = [], 0
    for n in counts:
        if groups and planned + n > INSTANCES_PER_QUERY:
            groups.append(0)
            planned = 0
        if not groups:
            groups.append(0)
        groups[-1] += n
        planned += n
    return groups


def _tag_calls(tags: int) -> int:
    """DescribeTags calls of one big key group read cold (read.rs, id_split.rs): the probe
    `i-*0`, then the other fifteen patterns in groups expected to fit a page; a pattern's
    share taken a quarter above the mean, for chance."""
    per = math.ceil(tags / 16 * 1.25)
    probe = max(1, math.ceil(per / 1000))
    per_group = min(15, max(1, 1000 // max(per, 1)))
    return probe + math.ceil(15 / per_group) * max(1, math.ceil(per_group * per / 1000))


def scheduler_bound(size: int) -> dict[str, int]:
    """Pages and batches of a first tick on a freshly seeded fleet (nothing
    marked yet), in a fresh process: 1 GetParameter; DescribeTags split by
    instance id for the schedule tag (every instance) and the marker (none yet),
    one call for the rare keys; DescribeInstances: with the tags, per wanted
    state up to 8 queries over the 24 schedules (the instances that must change)
    and one for spot; after them, each schedule's instances already in state
    (all unmarked, so read whole), queries grouped up to 2000 instances; pages of
    1000 (a query is at least one page); Stop/Start batches of 1000; CreateTags
    per <= 1000 instances sharing a marker (one per schedule); one ListCommands
    (patching comes first) when something is stopped."""
    counts = fleet.plan(size)
    per_kind = {k: 0 for k in fleet.KINDS}
    for name, count in counts.items():
        per_kind[name.split("-")[1]] += count
    changing = [n for name, n in counts.items() if name.split("-")[1] in ("stop", "start")]
    settled = [n for name, n in counts.items() if name.split("-")[1] not in ("stop", "start")]
    # Early: 24 schedules, 12 wanting each state, 8 queries per state at most.
    early_queries = 2 * min(8, len(counts) // 2) + 1
    late = _queries(settled)
    return {
        "ssm:GetParameter": 1,
        "ssm:ListCommands": 1 if per_kind["stop"] else 0,
        "ec2:DescribeTags": _tag_calls(size) + _tag_calls(0) + 1,
        "ec2:DescribeInstances": early_queries + math.ceil(sum(changing) / 1000)
        + len(late) + math.ceil(sum(settled) / 1000),
        "ec2:StopInstances": math.ceil(per_kind["stop"] / 1000),
        "ec2:StartInstances": math.ceil(per_kind["start"] / 1000),
        "ec2:CreateTags": sum(math.ceil(n / 1000) for n in counts.values()),
    }


def steady_section(size: int, f: dict | None) -> list[str]:
    """The tick after the full one: nothing must change (issue 14)."""
    steady = (f or {}).get("steady")
    if not steady:
        return []
    full_bytes, quiet_bytes = sum(f.get("bytes", {}).values()), sum(steady["bytes"].values())
    rows = [
        ["handler CPU", secs(f.get("handler_cpu_s")), secs(steady.get("handler_cpu_s")),
         pct(steady.get("handler_cpu_s"), f.get("handler_cpu_s"))],
        ["handler wall time", secs(f.get("handler_s")), secs(steady.get("handler_s")),
         pct(steady.get("handler_s"), f.get("handler_s"))],
        ["response bytes read", f"{full_bytes:,}", f"{quiet_bytes:,}", pct(quiet_bytes, full_bytes)],
        ["API calls", sum(f["calls"].values()), sum(steady["calls"].values()),
         pct(sum(steady["calls"].values()), sum(f["calls"].values()))],
    ]
    ops = sorted(set(f["calls"]) | set(steady["calls"]))
    by_op = [[op, f["calls"].get(op, 0), f"{f.get('bytes', {}).get(op, 0):,}", steady["calls"].get(op, 0),
              f"{steady['bytes'].get(op, 0):,}"] for op in ops]
    return [f"### The next tick: nothing to change ({size:,} instances)", "",
            "Five minutes later, on the fleet the tick above settled, in a fresh process "
            f"(output {steady.get('result')}).", "",
            table(["", "full tick", "steady-state tick", "steady / full"], rows), "",
            table(["operation", "full: calls", "full: bytes", "steady: calls", "steady: bytes"], by_op), ""]


def pct(part, whole) -> str:
    if not part or not whole:
        return "–"
    return f"{100 * part / whole:.1f}%"


def secs(v) -> str:
    if v is None:
        return "–"
    return f"{v * 1000:.1f} ms" if v < 1 else f"{v:.2f} s"


def mib(kb) -> str:
    return "–" if kb is None else f"{kb / 1024:.1f} MiB"


def ratio(c7n, ours) -> str:
    if not c7n or not ours:
        return "–"
    return f"{c7n / ours:.1f}×"


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def spread(r: dict, key: str, fmt) -> str:
    """The median, and every run when there were several."""
    values = r.get(f"{key}_all") or []
    text = fmt(r.get(key))
    return text + (f" ({', '.join(fmt(v) for v in values)})" if len(values) > 1 else "")


# --- sections ---

def render(results: dict) -> str:
    args, facts = results["args"], results["facts"]
    out = [
        "# Benchmarks",
        "",
        f"Generated by `bench/run.py` from {results['started']} to {results.get('finished', '?')} "
        f"(sizes {', '.join(f'{s:,}' for s in args['sizes'])}; tools {', '.join(args['tools'])}). "
        "How to run it and what each number means: `bench/README.md`.",
        "",
    ]
    binary = facts.get("scheduler_binary", {}).get("name", "")
    if binary and "release" not in binary:
        out += [f"> **Not a release build** (`{binary}`): the targets below are about the release binary.", ""]
    out += targets(results)
    for size, per_tool in results["sizes"].items():
        out += size_section(int(size), per_tool)
        out += steady_section(int(size), per_tool.get("fleetops"))
    out += cold_section(results.get("cold"))
    out += binaries_section(facts)
    out += reporter_section(results.get("reporter") or {})
    out += method_section(results)
    return "\n".join(out) + "\n"


def targets(results: dict) -> list[str]:
    both = {int(s): p for s, p in results["sizes"].items() if "fleetops" in p and "c7n" in p}
    ours = {int(s): p["fleetops"] for s, p in results["sizes"].items() if "fleetops" in p}
    if not ours:
        return []
    size = max(ours)
    f = ours[size]
    bound = scheduler_bound(size)
    calls = sum(f["calls"].values())
    rows = [["scheduler API calls ≤ pages + batches (+ retries)", f"{size:,}", f"{calls} (bound {sum(bound.values())})",
             "yes" if calls <= sum(bound.values()) else "no"]]
    if both:
        s = max(both)
        f, c = both[s]["fleetops"], both[s]["c7n"]
        cpu_x = c["cpu_s"] / f["cpu_s"] if f.get("cpu_s") else None
        wall_x = c["wall_s"] / f["wall_s"] if f.get("wall_s") else None
        rows.append(["≥ 10× less CPU time than Cloud Custodian", f"{s:,}", ratio(c["cpu_s"], f["cpu_s"]),
                     "yes" if cpu_x and cpu_x >= 10 else "no"])
        outside = ratio(max(c["wall_s"] - c["emulator_cpu_s"], 0), max(f["wall_s"] - f["emulator_cpu_s"], 0))
        rows.append(["≥ 3× less wall time than Cloud Custodian (whole process)", f"{s:,}",
                     f"{ratio(c['wall_s'], f['wall_s'])} ({outside} outside the emulator)",
                     "yes" if wall_x and wall_x >= 3 else "no (emulator-bound: see Method)"])
    rss = ours[size]["max_rss_kb"]
    rows.append(["peak RSS < 64 MB (MiB, as Lambda counts) at 10,000 instances", f"{size:,}", mib(rss),
                 ("yes" if rss < 64 * 1024 else "no") if size >= 10000 else "(not measured at 10,000)"])
    cold = [r["cold_start_s"] for r in (results.get("cold") or {}).get("fleetops", []) if r.get("cold_start_s")]
    if cold:
        med = sorted(cold)[len(cold) // 2]
        rows.append(["cold start < 30 ms", "empty", secs(med), "yes" if med < 0.030 else "no"])
    rows += tick_cost_targets(results)
    return ["## Where we stand (issues 5 and 14)", "", table(["target", "fleet", "measured", "met"], rows), ""]


def tick_cost_targets(results: dict) -> list[list]:
    """Issue 14: stop/start calls against Custodian's; the steady-state tick's share."""
    rows = []
    for size, per_tool in sorted(results["sizes"].items(), key=lambda kv: int(kv[0])):
        f, c = per_tool.get("fleetops"), per_tool.get("c7n")
        if f and c:
            for op in ("ec2:StopInstances", "ec2:StartInstances"):
                ours, theirs = f["calls"].get(op, 0), c["calls"].get(op, 0)
                rows.append([f"{op} calls ≤ Cloud Custodian's", f"{int(size):,}", f"{ours} vs {theirs}",
                             "yes" if ours <= theirs else "no (see below)"])
        steady = (f or {}).get("steady")
        if steady:
            cpu = pct(steady.get("handler_cpu_s"), f.get("handler_cpu_s"))
            quiet, full = sum(steady["bytes"].values()), sum(f.get("bytes", {}).values())
            cpu_ok = steady.get("handler_cpu_s") is not None and steady["handler_cpu_s"] <= 0.1 * f["handler_cpu_s"]
            rows.append(["steady-state tick CPU ≤ 10% of a full tick's", f"{int(size):,}", cpu, "yes" if cpu_ok else "no"])
            rows.append(["steady-state tick bytes read ≤ 10% of a full tick's", f"{int(size):,}", pct(quiet, full),
                         "yes" if full and quiet <= 0.1 * full else "no"])
    return rows


def size_section(size: int, per_tool: dict) -> list[str]:
    f, c = per_tool.get("fleetops"), per_tool.get("c7n")
    out = [f"## instance-scheduler vs Cloud Custodian: {size:,} instances", ""]
    first = f or c
    out += [f"Half of the fleet must change: {first['expected']['stop']:,} to stop, {first['expected']['start']:,} to start. "
            f"Median of {first['runs']} run(s), each on a freshly seeded emulator; every run in brackets.", ""]
    rows = []

    def row(label, key, fmt, ratio_ok=True):
        rows.append([label, spread(f, key, fmt) if f else "–", spread(c, key, fmt) if c else "–",
                     ratio(c.get(key), f.get(key)) if f and c and ratio_ok else "–"])

    row("wall time, process start → done", "wall_s", secs)
    rows.append(["handler wall time (event → response)", spread(f, "handler_s", secs) if f else "–", "–", "–"])
    rows.append(["cold start (spawn → first poll)", spread(f, "cold_start_s", secs) if f else "–", "–", "–"])
    row("CPU time, user + sys, whole process", "cpu_s", secs)
    rows.append(["CPU time during the handler", spread(f, "handler_cpu_s", secs) if f else "–", "–", "–"])
    row("peak RSS", "max_rss_kb", mib)
    rows.append(["API calls", sum(f["calls"].values()) if f else "–", sum(c["calls"].values()) if c else "–",
                 ratio(sum(c["calls"].values()), sum(f["calls"].values())) if f and c else "–"])
    row("emulator CPU while the tool ran", "emulator_cpu_s", secs)
    for r in (f, c):
        if r and r.get("wall_s") is not None:
            r["outside_s"] = max(r["wall_s"] - r["emulator_cpu_s"], 0.0)
    rows.append(["wall time outside the emulator (wall − emulator CPU; an estimate)",
                 secs(f.get("outside_s")) if f else "–", secs(c.get("outside_s")) if c else "–",
                 ratio(c.get("outside_s"), f.get("outside_s")) if f and c else "–"])
    out += [table(["", "fleetops", "Cloud Custodian", "c7n / fleetops"], rows), ""]
    bound = scheduler_bound(size)
    ops = sorted(set(f["calls"] if f else {}) | set(c["calls"] if c else {}) | set(bound))
    out += ["API calls by operation, as counted by the emulator (every attempt, retries included):", "",
            table(["operation", "fleetops", "pages + batches", "Cloud Custodian"],
                  [[op, (f["calls"].get(op, 0) if f else "–"), bound.get(op, "–"), (c["calls"].get(op, 0) if c else "–")]
                   for op in ops]), ""]
    checks = []
    for name, r in (("fleetops", f), ("Cloud Custodian", c)):
        if r:
            extra = f"; output {r['result']}" if name == "fleetops" and r.get("result") else ""
            checks.append(f"* {name}: " + ("did exactly the intended stops and starts" if not r["problems"]
                                            else "**" + "; ".join(r["problems"]) + "**") + extra)
            if r.get("calls_vary"):
                checks.append(f"  (its API call counts differed between runs; the table shows the first run's)")
    if "agreement" in per_tool:
        a = per_tool["agreement"]
        checks.append("* both tools: " + (f"the same {a['stopped']:,} instances stopped, the same {a['started']:,} "
                                          "started, the same final states" if a["same"]
                                          else "**differ: " + "; ".join(a["problems"]) + "**"))
    return out + ["Checked by reading EC2 states and the emulator's stop/start logs after each run:", ""] + checks + [""]


def cold_section(cold: dict | None) -> list[str]:
    if not cold:
        return []
    rows = []
    f, c = cold.get("fleetops") or [], cold.get("c7n") or []

    def med(runs, key):
        values = sorted(r[key] for r in runs if r.get(key) is not None)
        return values[len(values) // 2] if values else None

    def every(runs, key, fmt):
        return ", ".join(fmt(r.get(key)) for r in runs)

    if f:
        rows.append(["fleetops cold start (spawn → first poll)", secs(med(f, "cold_start_s")), every(f, "cold_start_s", secs)])
        rows.append(["fleetops handler on an empty fleet", secs(med(f, "handler_s")), every(f, "handler_s", secs)])
        rows.append(["fleetops process CPU (init + one tick)", secs(med(f, "cpu_s")), every(f, "cpu_s", secs)])
        rows.append(["fleetops peak RSS", mib(med(f, "max_rss_kb")), every(f, "max_rss_kb", mib)])
    if c:
        rows.append(["Cloud Custodian whole run on an empty fleet", secs(med(c, "wall_s")), every(c, "wall_s", secs)])
        rows.append(["Cloud Custodian CPU on an empty fleet", secs(med(c, "cpu_s")), every(c, "cpu_s", secs)])
        rows.append(["Cloud Custodian peak RSS on an empty fleet", mib(med(c, "max_rss_kb")), every(c, "max_rss_kb", mib)])
    calls = []
    for name, runs in (("fleetops", f), ("Cloud Custodian", c)):
        if runs:
            calls.append(f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(runs[0]["calls"].items())))
    return ["## Cold start and fixed cost (empty fleet)", "",
            "Start-up is what a Lambda cold start adds before the handler runs; c7n has no separate start-up, "
            "so its whole run on an empty fleet is shown as its fixed cost.", "",
            table(["", "median", "every run"], rows), "", "API calls per empty run: " + "; ".join(calls) + ".", ""]


def binaries_section(facts: dict) -> list[str]:
    rows = []
    for key in ("scheduler_binary", "reporter_binary"):
        if key in facts:
            rows.append([f"`{facts[key]['name']}` (the binary measured, host build)", f"{facts[key]['bytes'] / 1e6:.1f} MB"])
    for name, size in facts.get("bootstraps", {}).items():
        rows.append([f"`target/lambda/{name}/bootstrap` (arm64, `make package`)", f"{size / 1e6:.1f} MB"])
    out = ["## Release binary sizes", ""]
    if rows:
        out += [table(["binary", "size"], rows), ""]
    out += [f"Sizes of every function's deployable arm64 `bootstrap` (and zipped), and what they imply for Lambda "
            f"cold start and cost at 128 MB arm64: {PLACEHOLDER}", ""]
    return out


def reporter_section(rep: dict) -> list[str]:
    out = ["## compliance-reporter", ""]
    if not rep:
        return out + [f"Not measured in this run (`--reporter-binary` not given). Results on 10,000 managed "
                      f"instances, API calls against the minimum the APIs allow, wall time and peak RSS: {PLACEHOLDER}", ""]
    for size, r in rep.items():
        facts = r["facts"]
        out += [f"### {int(size):,} instances ({facts['managed']:,} managed by SSM, {facts['running_managed']:,} of them running)", ""]
        rows = [["wall time, process start → done", secs(r["wall_s"])], ["handler wall time", secs(r["handler_s"])],
                ["cold start", secs(r["cold_start_s"])], ["CPU time (whole process)", secs(r["cpu_s"])],
                ["peak RSS", mib(r["max_rss_kb"])], ["emulator CPU while it ran", secs(r["emulator_cpu_s"])],
                ["outcome", f"{r['outcome']}; {r['published']} message published" + ("" if not r["problems"] else " **" + "; ".join(r["problems"]) + "**")]]
        out += [table(["", "fleetops compliance-reporter"], rows), ""]
        ops = sorted(set(r["calls"]) | set(r["minimum"]))
        out += [table(["operation", "calls", "minimum the APIs allow"],
                      [[op, r["calls"].get(op, 0), r["minimum"].get(op, "–")] for op in ops]), ""]
    return out + ["Minimum: DescribeInstances 1,000 per page, DescribeInstanceInformation 50 per page, "
                  "DescribeInstancePatchStates 50 ids per call (running managed instances), DescribePatchGroups "
                  "100 per page, ListResourceComplianceSummaries 50 per page, one GetParameter and PutParameter "
                  "(previous summary), one Publish.", ""]


def method_section(results: dict) -> list[str]:
    facts = results["facts"]
    load = ", ".join(f"{x:.2f}" for x in facts["load_at_start"])
    return [
        "## Method",
        "",
        f"* Machine: {facts['cpu']}, {facts['cores']} cores, {facts['memory_gib']} GiB, Linux {facts['kernel']}; "
        f"load average at start {load} (other work on the machine shows up in every number).",
        f"* Emulator: moto {facts['moto']} in server mode with fleetops' extension (`tests/emulator/`), Python "
        f"{facts['python']}, boto3 {facts['boto3']} for seeding; Cloud Custodian {facts.get('c7n') or '–'} "
        "in its own venv (`tools/requirements-bench.txt`).",
        "* Fleet (`bench/fleet.py`): 24 schedules, 4 kinds × 6 time zones (UTC, New York, Los Angeles, Berlin, "
        "Seoul, Sydney), every instance tagged `Schedule=<name>` for fleetops and `maid_offhours=off=(m-u,H);"
        "on=(m-u,H);tz=<zone>` for c7n with the same hours. Hours are set relative to the real current hour just "
        "before each run (c7n only acts while the current local hour equals an on/off hour); fleetops gets the "
        "same moment as its event `time`. Half of the instances must stop or start now, the other half are "
        "already in their scheduled state.",
        ("* moto as shipped (`--stock-moto`): its tag lookup scans every tag of the account for every "
         "instance filtered or rendered, so DescribeInstances is quadratic in the fleet."
         if results["args"].get("stock_moto") else
         "* One benchmark-only change to moto (`bench/emulator_server.py`): a resource's tags are looked up "
         "by id instead of by scanning every tag of the account with a regex, which made each "
         "DescribeInstances call cost instances × tags (minutes per page at 10,000 instances, worst for a "
         "`tag-key` filter). Answers are unchanged; `--stock-moto` runs without it."),
        "* Each measured run has its own freshly started emulator and seeded fleet; API calls are counted by "
        "the emulator (counters reset after seeding), not by the tools.",
        "* fleetops: the binary runs under a minimal Lambda Runtime API server in the harness "
        "(`bench/lambda_rt.py`), with Lambda's environment (128 MB) and `AWS_ENDPOINT_URL` pointing at the "
        "emulator. Cold start = spawn until its first `GET /runtime/invocation/next`; handler = event handed "
        "out until its response was received; CPU (user + sys) of the whole process from the "
        "kernel's rusage (`wait4`) after it is ended; peak RSS = the kernel's high-water mark (`VmHWM` in "
        "/proc, which starts afresh at exec) just before it is ended; handler CPU from /proc, per thread in nanoseconds (`task/*/schedstat`).",
        "* Cloud Custodian: `custodian run --cache-period 0 -s <dir> --region us-east-1 policy.yml` (local "
        "output only: no CloudWatch metrics or logs), two policies (offhour → stop with query "
        "`instance-state-name: running`, onhour → start with `instance-state-name: stopped`), "
        "`AWS_ENDPOINT_URL` pointing at the emulator. Wall and CPU (user + sys, children included, `wait4`) "
        "of the whole `custodian` process; peak RSS = its `VmHWM`, sampled every 10 ms until it exits. "
        "(`ru_maxrss` is not used: for a child forked from the Python harness it starts at the harness's "
        "own RSS, about 70 MiB.) c7n has no start-up/handler split.",
        "* The emulator's time dominates both tools' wall time: moto serialises every DescribeInstances "
        "instance in Python (about 5 ms each) on the same 2 cores, so wall-time ratios here understate "
        "what AWS would show; the `emulator CPU` row shows how much of each run was the emulator's. CPU and "
        "RSS are the tools' own.",
        "* Only fleetops writes tags (`CreateTags`: its `fleetops:schedule-applied` transition marks, which "
        "make missed ticks safe); c7n keeps no state and calls `sts:GetCallerIdentity` once per run.",
    ] + ([
        "* compliance-reporter (`bench/reporter.py`): 20 patch groups, 1 in 20 instances stopped, 1 in 20 "
        "unmanaged, 1 in 20 agent ConnectionLost, patch states of six kinds (compliant, missing critical, "
        "failed, pending reboot, stale, not applicable), association compliance on 1 in 100, seeded through "
        "the emulator's control plane; run under the same Runtime API server with `REPORT_TOPIC_ARN` and "
        "`events/compliance-reporter-nightly.json` (time = now).",
    ] if results.get("reporter") else [])
