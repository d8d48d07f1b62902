"""Cloud Custodian (PyPI `c7n`) on the same fleet: the off-hours policy pair the c7n
docs give for EC2 (offhour + stop, onhour + start), reading each instance's
schedule from its `maid_offhours` tag.

Each policy has a server-side `instance-state-name` query (as in c7n's own
stop/start examples), so the stop policy lists only running instances and the
start policy only stopped ones: c7n's cheapest documented form, which is the
fair comparison (without it each policy lists the whole fleet).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from fleet import CUSTODIAN_TAG

from lambda_rt import vm_hwm_kb

POLICY = f"""\
policies:
  - name: fleetops-bench-offhours-stop
    resource: ec2
    query:
      - instance-state-name: running
    filters:
      - type: offhour
        tag: {CUSTODIAN_TAG}
        default_tz: utc
        offhour: 19
    actions:
      - stop
  - name: fleetops-bench-onhours-start
    resource: ec2
    query:
      - instance-state-name: stopped
    filters:
      - type: onhour
        tag: {CUSTODIAN_TAG}
        default_tz: utc
        onhour: 7
    actions:
      - start
"""
# The policy's default hours and zone never apply: every instance's tag gives on,
# off and tz explicitly. Without a server-side query: set FLEETOPS_BENCH_C7N_QUERY=none.


def policy_text() -> str:
    if os.environ.get("FLEETOPS_BENCH_C7N_QUERY") == "none":
        return "\n".join(line for line in POLICY.splitlines() if "query:" not in line and "instance-state-name" not in line) + "\n"
    return POLICY


@dataclass
class CustodianRun:
    wall_s: float
    cpu_user_s: float
    cpu_sys_s: float
    max_rss_kb: int
    exit_status: int
    log: Path

    @property
    def cpu_s(self) -> float:
        return self.cpu_user_s + self.cpu_sys_s


def version(custodian: str) -> str:
    out = subprocess.run([custodian, "version"], capture_output=True, text=True, timeout=120)
    return out.stdout.strip() or out.stderr.strip()


def run_custodian(custodian: str, endpoint: str, workdir: Path, timeout: float) -> CustodianRun:
    """`custodian run` with local output only (-s dir: no CloudWatch metrics or
    logs), no resource cache, region us-east-1, every AWS call to the emulator."""
    workdir.mkdir(parents=True, exist_ok=True)
    policy = workdir / "policy.yml"
    policy.write_text(policy_text())
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),  # no ~/.aws profile, no cache dir of the user's
        "LANG": "C.UTF-8",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    command = [custodian, "run", "--cache-period", "0", "-s", str(workdir / "output"), "--region", "us-east-1", str(policy)]
    log = workdir / "custodian.log"
    with open(log, "ab") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=out, cwd=workdir)
        timer = threading.Timer(timeout, proc.kill)
        # Peak RSS: the kernel's high-water mark (VmHWM) of the custodian program,
        # sampled until it exits; ru_maxrss of a child forked from this harness
        # would start at the harness's own RSS.
        peak = {"kb": 0}
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                kb = vm_hwm_kb(proc.pid)
                if kb is not None:
                    peak["kb"] = max(peak["kb"], kb)
                done.wait(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        try:
            timer.start()
            sampler.start()
            # wait4 after the process has exited but before it is reaped would lose
            # /proc; WNOWAIT keeps it readable for one last sample.
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            done.set()
            sampler.join()
            last = vm_hwm_kb(proc.pid)
            # wait4: CPU of the process and of every descendant it waited for.
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            proc.returncode = status
        finally:
            timer.cancel()
            done.set()
            if proc.returncode is None:  # interrupted (Ctrl-C, an error): never leave it running
                proc.kill()
                proc.wait()
    peak_kb = max(peak["kb"], last or 0) or usage.ru_maxrss
    return CustodianRun(wall, usage.ru_utime, usage.ru_stime, peak_kb, status, log)
