"""A minimal AWS Lambda Runtime API server, and a function binary run under it.

The binary is spawned the way Lambda's provided.al2023 runtime starts a
`bootstrap`: with `AWS_LAMBDA_RUNTIME_API=127.0.0.1:<port>` and the usual
`AWS_LAMBDA_*` variables. It then polls `GET /2018-06-01/runtime/invocation/next`
and posts each result to `.../invocation/<id>/response` (or `/error`).

Measured per process (`run_function`):
* cold start: spawn until its first `GET .../invocation/next`;
* per invocation: wall time from the event being handed out until its response
  (or error) has been received, and the CPU the process used meanwhile (each
  thread's nanoseconds on a CPU, `emulator.thread_cpu_ns`; /proc ticks, 10 ms
  resolution, where the kernel keeps no per-thread counts);
* whole process (init + invocations): user and sys CPU and peak RSS from the
  kernel's rusage (os.wait4) after the process is ended.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from emulator import cpu_seconds_between, proc_cpu_seconds, thread_cpu_ns

PREFIX = "/2018-06-01/runtime"
ACCOUNT = "123456789012"
DEADLINE_S = 900  # Lambda's maximum timeout; the runtime only passes it on


@dataclass
class Invocation:
    payload: dict
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    handed_out: float | None = None  # time.perf_counter()
    finished: float | None = None
    cpu_at_handout: float | None = None
    cpu_at_finish: float | None = None
    # Per thread, in nanoseconds (`emulator.thread_cpu_ns`): what cpu_s uses when present.
    threads_at_handout: dict[int, int] | None = None
    threads_at_finish: dict[int, int] | None = None
    outcome: str | None = None  # "response" | "error"
    body: bytes = b""
    error_type: str | None = None

    @property
    def wall_s(self) -> float | None:
        return None if self.finished is None or self.handed_out is None else self.finished - self.handed_out

    @property
    def cpu_s(self) -> float | None:
        precise = cpu_seconds_between(self.threads_at_handout, self.threads_at_finish)
        if precise is not None:
            return precise
        if self.cpu_at_finish is None or self.cpu_at_handout is None:
            return None
        return self.cpu_at_finish - self.cpu_at_handout

    def result(self) -> object:
        try:
            return json.loads(self.body)
        except ValueError:
            return self.body.decode("utf-8", "replace")


class RuntimeApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, function_name: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.function_name = function_name
        self.cond = threading.Condition()
        self.pending: list[Invocation] = []
        self.by_id: dict[str, Invocation] = {}
        self.first_next: float | None = None
        self.next_calls = 0
        self.init_error: bytes | None = None
        self.pid: int | None = None
        self.closing = False
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def submit(self, payload: dict) -> Invocation:
        invocation = Invocation(payload)
        with self.cond:
            self.by_id[invocation.request_id] = invocation
            self.pending.append(invocation)
            self.cond.notify_all()
        return invocation

    def wait_done(self, invocation: Invocation, timeout: float, alive) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while invocation.outcome is None and self.init_error is None:
                if time.monotonic() > deadline or not alive():
                    return False
                self.cond.wait(0.1)
        return invocation.outcome is not None

    def close(self) -> None:
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RuntimeApi

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        api = self.server
        if self.path != f"{PREFIX}/invocation/next":
            return self._send(404, b'{"errorMessage":"unknown path"}')
        now = time.perf_counter()
        with api.cond:
            if api.first_next is None:
                api.first_next = now
            api.next_calls += 1
            while not api.pending:
                if api.closing:
                    self.close_connection = True
                    return
                api.cond.wait(0.1)
            invocation = api.pending.pop(0)
        body = json.dumps(invocation.payload).encode()
        arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{api.function_name}"
        headers = {
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(int((time.time() + DEADLINE_S) * 1000)),
            "Lambda-Runtime-Invoked-Function-Arn": arn,
            "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
        }
        invocation.cpu_at_handout = proc_cpu_seconds(api.pid) if api.pid else None
        invocation.threads_at_handout = thread_cpu_ns(api.pid) if api.pid else None
        invocation.handed_out = time.perf_counter()
        self._send(200, body, headers)

    def do_POST(self) -> None:
        api = self.server
        body = self._body()
        now = time.perf_counter()
        parts = self.path[len(PREFIX) :].strip("/").split("/")
        if parts == ["init", "error"]:
            with api.cond:
                api.init_error = body
                api.cond.notify_all()
            return self._send(202, b'{"status":"OK"}')
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            invocation = api.by_id.get(parts[1])
            if invocation is None:
                return self._send(400, b'{"errorMessage":"unknown request id"}')
            invocation.cpu_at_finish = proc_cpu_seconds(api.pid) if api.pid else None
            invocation.threads_at_finish = thread_cpu_ns(api.pid) if api.pid else None
            with api.cond:
                invocation.finished = now
                invocation.body = body
                invocation.outcome = parts[2]
                invocation.error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
                api.cond.notify_all()
            return self._send(202, b'{"status":"OK"}')
        self._send(404, b'{"errorMessage":"unknown path"}')


@dataclass
class FunctionRun:
    cold_start_s: float | None
    invocations: list[Invocation]
    cpu_user_s: float
    cpu_sys_s: float
    max_rss_kb: int
    exit_status: int
    init_error: str | None
    log: Path
    spawned: float  # time.perf_counter() just before the spawn

    @property
    def start_to_done_s(self) -> float | None:
        """Spawn until the last invocation's response or error was received."""
        last = self.invocations[-1].finished if self.invocations else None
        return None if last is None else last - self.spawned

    @property
    def cpu_s(self) -> float:
        return self.cpu_user_s + self.cpu_sys_s

    @property
    def ok(self) -> bool:
        return self.init_error is None and all(i.outcome == "response" for i in self.invocations)


def function_env(name: str, runtime_api: str, extra: dict[str, str]) -> dict[str, str]:
    """Lambda's variables for a provided.al2023 function; nothing inherited from the
    caller (no HOME, so no ~/.aws profile can leak in)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"2026/01/01/[$LATEST]{uuid.uuid4().hex}",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env.update(extra)
    return env


def run_function(binary: str, name: str, env: dict[str, str], events: list[dict], log: Path, timeout: float,
                 between=None) -> FunctionRun:
    """Spawns `binary`, hands it `events` one after another, then ends it. `between`, if
    given, is called before each event after the first, once the one before it is done
    (the events are then handed out one at a time)."""
    api = RuntimeApi(name)
    proc: subprocess.Popen | None = None
    try:
        with open(log, "ab") as out:
            start = time.perf_counter()
            proc = subprocess.Popen([binary], env=function_env(name, api.address, env), stdout=out, stderr=out)
        api.pid = proc.pid
        if between is None:
            invocations = [api.submit(e) for e in events]
            for invocation in invocations:
                if not api.wait_done(invocation, timeout, lambda: _alive(proc.pid)):
                    break
        else:
            invocations = []
            for k, event in enumerate(events):
                if k:
                    between()
                invocations.append(api.submit(event))
                if not api.wait_done(invocations[-1], timeout, lambda: _alive(proc.pid)):
                    break
        # Let the runtime come back for the next event (it is then idle), then end it.
        settle = time.monotonic() + 2
        while _alive(proc.pid) and time.monotonic() < settle and api.next_calls <= len(invocations):
            time.sleep(0.005)
        # Peak RSS from the kernel's high-water mark of this program (VmHWM starts
        # afresh at exec). rusage's ru_maxrss would not do: for a child forked
        # from this Python harness it starts at the harness's own RSS.
        peak_kb = vm_hwm_kb(proc.pid)
        _end(proc)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = status  # reaped here; keep Popen from waiting again
        return FunctionRun(
            cold_start_s=None if api.first_next is None else api.first_next - start,
            invocations=invocations,
            cpu_user_s=usage.ru_utime,
            cpu_sys_s=usage.ru_stime,
            max_rss_kb=peak_kb if peak_kb is not None else usage.ru_maxrss,
            exit_status=status,
            init_error=None if api.init_error is None else api.init_error.decode("utf-8", "replace"),
            log=log,
            spawned=start,
        )
    finally:
        if proc is not None and proc.returncode is None:  # interrupted (Ctrl-C, an error)
            proc.kill()
            proc.wait()
        api.close()


def _end(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it still runs after grace_s; leaves it unreaped for
    os.wait4 (os.kill, not Popen.send_signal: that polls, which would reap it). Until
    it is reaped its PID cannot be reused, so the signals reach nothing else."""
    if not _alive(proc.pid):
        return
    os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _alive(proc.pid):
        if time.monotonic() > deadline:
            os.kill(proc.pid, signal.SIGKILL)
            return
        time.sleep(0.01)


def vm_hwm_kb(pid: int) -> int | None:
    """The process's peak resident set (VmHWM, kB) while it is still alive."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _alive(pid: int) -> bool:
    """Whether the child still runs, without reaping it (its rusage is read by os.wait4)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
