"""server.py process contract: one READY line, stops on SIGTERM (stdin EOF: see conftest teardown)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def _start(*extra: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "server.py"), "--host", "127.0.0.1", "--port", "0", *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        cwd=tempfile.gettempdir(),  # must not depend on the working directory
    )
    line = proc.stdout.readline()
    assert re.fullmatch(r"FLEETOPS_EMULATOR_READY http://127\.0\.0\.1:\d+\n", line), line
    url = line.split()[1]
    with urllib.request.urlopen(url + "/_fleetops/health", timeout=10) as resp:
        assert resp.status == 200
    return proc, url


def test_stops_on_sigterm():
    proc, _ = _start()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    proc.stdin.close()
