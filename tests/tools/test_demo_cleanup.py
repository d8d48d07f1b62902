"""`make demo` (tools/demo.sh) leaves no process behind, however it ends.

Every run gets a unique FLEETOPS_DEMO_RUN_ID in its environment. Each process
the demo starts inherits it, so once the demo has ended no process in /proc may
still carry it, and the emulator's port must refuse connections. The demo runs
in its own process group (as under a terminal), so "Ctrl-C" is SIGINT to that
group.

The failure and signal cases need no function binaries: FLEETOPS_DEMO_FAIL_AT /
FLEETOPS_DEMO_PAUSE_AT make the demo fail or wait at a named step, and a
stand-in binary plays instance-scheduler (an invocation that fails, in a
process that ignores SIGINT and SIGTERM: the worst case). The whole demo runs
when the debug binaries exist (`make test` builds them first; skipped otherwise).

    .venv/bin/python -m pytest -q -p no:cacheprovider tests/tools   # make test-tools

FLEETOPS_DEMO_SCRIPT runs another copy of the script instead (e.g. an older one).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = Path(os.environ.get("FLEETOPS_DEMO_SCRIPT") or ROOT / "tools" / "demo.sh")
BIN_DIR = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "debug"
FUNCTIONS = ("instance-scheduler", "patch-dispatcher", "compliance-reporter")
MARKER = "FLEETOPS_DEMO_RUN_ID"
# Starting the emulator (moto's imports) and cargo lambda watch on a busy 2-core machine.
START_TIMEOUT_S = 180
# The demo stops what it started before it exits; this only absorbs /proc lag.
GRACE_S = 2.0

# Stands in for a function binary: a Lambda runtime client whose every invocation
# fails, which ignores SIGINT and SIGTERM (so only the demo's SIGKILL fallback
# ends it) and writes `ready` next to itself once it does.
STAND_IN_FUNCTION = f"""#!{sys.executable}
import json, os, signal, time, urllib.request
from pathlib import Path
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
Path(__file__).with_name("ready").write_text(str(os.getpid()))
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
api = api if api.startswith("http") else "http://" + api
while True:
    try:
        with urllib.request.urlopen(api + "/2018-06-01/runtime/invocation/next") as response:
            request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
        error = json.dumps({{"errorType": "StandIn", "errorMessage": "this stand-in always fails"}}).encode()
        urllib.request.urlopen(urllib.request.Request(
            api + "/2018-06-01/runtime/invocation/" + request_id + "/error", data=error, method="POST",
            headers={{"Content-Type": "application/json"}})).close()
    except OSError:
        time.sleep(0.2)
"""


def marked_processes(run_id: str) -> dict[int, str]:
    """PID -> command line of every live process whose environment holds the run's marker."""
    needle = f"{MARKER}={run_id}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()  # empty for a zombie
            if needle not in environ.split(b"\0"):
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        found[int(entry.name)] = cmdline
    return found


def _reset_signals() -> None:
    # A demo run from a terminal starts with default signal dispositions, even if
    # this test runs somewhere that ignores SIGINT (a background job of a script).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


class DemoRun:
    def __init__(self, tmp_path: Path, env: dict[str, str]):
        self.run_id = uuid.uuid4().hex
        self.work = tmp_path / "work"
        self.log = tmp_path / "demo.out"
        full_env = dict(os.environ, **env, FLEETOPS_DEMO_WORK=str(self.work))
        full_env[MARKER] = self.run_id
        for hook in ("FLEETOPS_DEMO_FAIL_AT", "FLEETOPS_DEMO_PAUSE_AT", "FLEETOPS_DEMO_BIN_DIR"):
            if hook not in env:
                full_env.pop(hook, None)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                ["bash", str(DEMO)], cwd=ROOT, env=full_env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_reset_signals,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_paused(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (self.work / "paused").exists():
            if self.proc.poll() is not None:
                pytest.fail(f"the demo ended (status {self.proc.returncode}) before it paused:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the demo did not pause within {START_TIMEOUT_S} s:\n{self.output()}")
            time.sleep(0.1)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the demo did not end within {timeout} s:\n{self.output()}")

    def endpoint(self) -> tuple[str, int] | None:
        try:
            text = (self.work / "emulator.out").read_text()
        except OSError:
            return None
        match = re.search(r"FLEETOPS_EMULATOR_READY http://([\d.]+):(\d+)", text)
        return (match.group(1), int(match.group(2))) if match else None

    def assert_nothing_left(self, grace: float = GRACE_S) -> None:
        deadline = time.monotonic() + grace
        left = marked_processes(self.run_id)
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = marked_processes(self.run_id)
        assert not left, (
            f"the demo ended (status {self.proc.returncode}) but left these running:\n"
            + "\n".join(f"  {pid}: {cmd}" for pid, cmd in sorted(left.items()))
            + f"\n--- demo output:\n{self.output()}"
        )
        endpoint = self.endpoint()
        assert endpoint is not None, f"the emulator never reported ready:\n{self.output()}"
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex(endpoint) != 0, f"the emulator still accepts connections on {endpoint}"

    def kill_everything(self) -> None:
        """Teardown: whatever a broken demo left (only processes carrying this run's marker)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        for pid in marked_processes(self.run_id):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def demo(tmp_path):
    runs: list[DemoRun] = []

    def start(**env: str) -> DemoRun:
        run = DemoRun(tmp_path, env)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.kill_everything()


@pytest.fixture
def stand_in(tmp_path) -> Path:
    """A binary directory whose instance-scheduler is STAND_IN_FUNCTION."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    binary = bin_dir / "instance-scheduler"
    binary.write_text(STAND_IN_FUNCTION)
    binary.chmod(0o755)
    return bin_dir


@pytest.fixture
def init_error(tmp_path) -> Path:
    """A binary directory whose instance-scheduler fails at init, as a function
    with a missing setting does: it exits without ever asking for an event."""
    bin_dir = tmp_path / "init-error-bin"
    bin_dir.mkdir()
    binary = bin_dir / "instance-scheduler"
    binary.write_text("#!/bin/sh\necho 'Error: EnvError { name: \"SOME_SETTING\", problem: \"missing\" }' >&2\nexit 1\n")
    binary.chmod(0o755)
    return bin_dir


def wait_ready(run: DemoRun, bin_dir: Path) -> None:
    """Until the stand-in function ignores SIGINT and SIGTERM (it starts after the pause)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (bin_dir / "ready").exists():
        if time.monotonic() > deadline or run.proc.poll() is not None:
            pytest.fail(f"the stand-in function did not start:\n{run.output()}")
        time.sleep(0.05)


def test_a_step_failing_right_after_the_emulator_started_leaves_nothing(demo):
    run = demo(FLEETOPS_DEMO_FAIL_AT="emulator")
    status = run.wait(timeout=START_TIMEOUT_S)
    run.assert_nothing_left()
    assert status == 1, run.output()
    assert "step emulator fails" in run.output()


def test_a_failing_function_leaves_nothing(demo, stand_in):
    # The invocation fails with the emulator, cargo lambda watch and the
    # (stubborn) function running: `set -e` ends the demo there.
    run = demo(FLEETOPS_DEMO_BIN_DIR=str(stand_in))
    status = run.wait(timeout=START_TIMEOUT_S)
    run.assert_nothing_left()
    assert status == 1, run.output()
    assert "this stand-in always fails" in run.output()
    assert (stand_in / "ready").exists()


def test_a_function_that_fails_at_init_ends_the_demo(demo, init_error):
    # cargo lambda invoke would wait forever for a runtime that is gone.
    run = demo(FLEETOPS_DEMO_BIN_DIR=str(init_error))
    status = run.wait(timeout=START_TIMEOUT_S)
    run.assert_nothing_left()
    assert status == 1, run.output()
    assert "instance-scheduler ended without answering the invocation" in run.output()
    assert 'EnvError { name: "SOME_SETTING"' in run.output()


@pytest.mark.parametrize("step", ["emulator", "instance-scheduler:running"])
def test_ctrl_c_leaves_nothing(demo, stand_in, step):
    run = demo(FLEETOPS_DEMO_PAUSE_AT=step, FLEETOPS_DEMO_BIN_DIR=str(stand_in))
    run.wait_paused()
    if step != "emulator":
        wait_ready(run, stand_in)
        running = " ".join(marked_processes(run.run_id).values())
        assert "lambda watch" in running and "instance-scheduler" in running, running
    os.killpg(run.proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    status = run.wait(timeout=60)
    run.assert_nothing_left()
    assert status == 130, run.output()


def test_sigterm_to_the_script_alone_leaves_nothing(demo, stand_in):
    run = demo(FLEETOPS_DEMO_PAUSE_AT="instance-scheduler:running", FLEETOPS_DEMO_BIN_DIR=str(stand_in))
    run.wait_paused()
    wait_ready(run, stand_in)
    run.proc.terminate()
    status = run.wait(timeout=60)
    run.assert_nothing_left()
    assert status == 143, run.output()


def test_the_emulator_stops_even_if_the_script_is_killed(demo):
    # No trap runs on SIGKILL: the emulator stops because the only writer of its
    # stdin (the script) is gone.
    run = demo(FLEETOPS_DEMO_PAUSE_AT="emulator")
    run.wait_paused()
    run.proc.kill()
    run.wait(timeout=10)
    run.assert_nothing_left(grace=10)


def test_the_fleet_table_shows_schedule_overrides(demo):
    run = demo(FLEETOPS_DEMO_FAIL_AT="instance-scheduler:running")
    run.wait(timeout=START_TIMEOUT_S)
    out = run.output()
    assert re.search(r"Name\s+InstanceId\s+State\s+Schedule\s+ScheduleOverride\n", out), out
    assert re.search(r"seoul-app-2\s+i-\w+\s+running\s+office-hours\s+running\n", out), out
    assert re.search(r"berlin-dev-2\s+i-\w+\s+running\s+berlin-dev\s+skip\n", out), out
    assert re.search(r"seoul-app-1\s+i-\w+\s+running\s+office-hours\s+-\n", out), out
    assert re.search(r"prod-db-1\s+i-\w+\s+running\s+-\s+-\n", out), out


def test_the_whole_demo_succeeds_and_leaves_nothing(demo):
    missing = [name for name in FUNCTIONS if not (BIN_DIR / name).exists()]
    if missing:
        pytest.skip(f"{', '.join(str(BIN_DIR / m) for m in missing)} not built: the whole demo needs "
                    "the debug binaries (`make build`; `make test` builds them before this runs)")
    run = demo()
    status = run.wait(timeout=600)
    run.assert_nothing_left()
    assert status == 0, run.output()
    assert "Traceback" not in run.output(), run.output()
