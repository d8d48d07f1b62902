"""The fleetops emulator (moto + our extension) as a child process, and its control plane.

One Emulator per measured run: a fresh process means no state, counters or
memory left over from the run before (see tests/emulator/README.md).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "tests" / "emulator" / "server.py"
# The same server with moto's tag lookup indexed (see emulator_server.py).
INDEXED_SERVER = Path(__file__).resolve().parent / "emulator_server.py"
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float | None:
    """user+sys CPU of a live process (all threads), from /proc; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_cpu_ns(pid: int) -> dict[int, int] | None:
    """Each live thread's time on a CPU, in nanoseconds (`task/*/schedstat`);
    None when the kernel does not keep them. `stat` counts in clock ticks
    (10 ms), too coarse for a quiet tick of a few tens of milliseconds."""
    found: dict[int, int] = {}
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found[int(task.name)] = int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return found


def cpu_seconds_between(before: dict[int, int] | None, after: dict[int, int] | None) -> float | None:
    """CPU time spent between two `thread_cpu_ns` readings: per thread, so a
    thread that ended in between (tokio's idle blocking threads do, after 10 s)
    takes away nothing; a thread that both ran and ended in between is missed."""
    if before is None or after is None:
        return None
    return sum(ns - before.get(tid, 0) for tid, ns in after.items()) / 1e9


class Emulator:
    """Starts `tests/emulator/server.py --port 0` (by default through
    emulator_server.py); stops it when its stdin closes."""

    def __init__(self, workdir: Path, stock_moto: bool = False, python: str = sys.executable):
        self.workdir = workdir
        self.script = SERVER if stock_moto else INDEXED_SERVER
        self.python = python
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self._conn: http.client.HTTPConnection | None = None

    def __enter__(self) -> "Emulator":
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "emulator.log", "a")
        self.proc = subprocess.Popen(
            [self.python, str(self.script), "--port", "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=ROOT,
        )
        log.close()
        try:
            line = self.proc.stdout.readline() if self.proc.stdout else ""
            if not line.startswith("FLEETOPS_EMULATOR_READY "):
                raise RuntimeError(f"emulator did not start (see {self.workdir / 'emulator.log'}): {line!r}")
        except BaseException:  # Ctrl-C included: `with` calls __exit__ only once __enter__ returned
            self.__exit__()
            raise
        self.url = line.split()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()
        if self.proc is None:
            return
        if self.proc.stdin:
            self.proc.stdin.close()  # the server stops at EOF on stdin
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()

    # --- control plane (JSON in, JSON out; not counted as AWS calls) ---

    def control(self, method: str, path: str, body: object | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        for attempt in (1, 2):  # one reconnect if the kept-alive connection was dropped
            if self._conn is None:
                self._conn = http.client.HTTPConnection(urlsplit(self.url).netloc, timeout=600)
            try:
                self._conn.request(method, path, body=data, headers=headers)
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

    def calls(self) -> dict[str, int]:
        """AWS calls counted by the emulator since the last reset, by "service:Operation"."""
        return dict(self.control("GET", "/_fleetops/calls")["calls"])

    def response_bytes(self) -> dict[str, int]:
        """Response body bytes since the last reset, by "service:Operation"."""
        return dict(self.control("GET", "/_fleetops/calls").get("bytes", {}))

    def reset_calls(self) -> None:
        self.control("POST", "/_fleetops/calls/reset")

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        return proc_cpu_seconds(self.proc.pid) or 0.0

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            config=Config(retries={"mode": "standard", "max_attempts": 3}, read_timeout=900),
            **CREDENTIALS,
        )

    def wait_healthy(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.control("GET", "/_fleetops/health")
                return
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
