"""Shared extension state: one lock, an adjustable clock and a reset registry.

Everything the extension remembers (agents, commands, events, fault rules, call
counts, ...) lives in module-level stores that register a reset function here, so
``POST /_fleetops/reset`` can wipe it together with moto's own backends.
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
import uuid
from typing import Callable

# One re-entrant lock serialises every AWS request and every control-plane call,
# so moto's backends and the extension's stores are never mutated concurrently.
LOCK = threading.RLock()

_resetters: list[Callable[[], None]] = []
_clock_offset = 0.0

DEFAULT_ACCOUNT = "123456789012"


def on_reset(fn: Callable[[], None]) -> Callable[[], None]:
    _resetters.append(fn)
    return fn


def reset_all() -> None:
    global _clock_offset
    with LOCK:
        for fn in _resetters:
            fn()
        _clock_offset = 0.0


def now_ts() -> float:
    """Emulated wall clock (seconds since epoch); real time plus any advance."""
    return time.time() + _clock_offset


def now() -> _dt.datetime:
    return ts_to_dt(now_ts())


def advance(seconds: float) -> float:
    global _clock_offset
    with LOCK:
        _clock_offset += float(seconds)
        return _clock_offset


def clock_offset() -> float:
    return _clock_offset


def ts_to_dt(ts: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc)


def iso(ts: float, millis: bool = False) -> str:
    d = ts_to_dt(ts)
    if millis:
        return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uuid() -> str:
    return str(uuid.uuid4())


# Time-driven transitions (agents coming online, invocations finishing, ...) are
# settled lazily: every request first runs the registered tickers under LOCK.
_tickers: list[Callable[[], None]] = []


def on_tick(fn: Callable[[], None]) -> Callable[[], None]:
    _tickers.append(fn)
    return fn


def tick_all() -> None:
    with LOCK:
        for fn in _tickers:
            fn()
