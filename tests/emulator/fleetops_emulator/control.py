"""Control plane under ``/_fleetops/``: JSON in, JSON out, never counted."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Callable
from urllib.parse import parse_qs

from . import state
from .faults import FAULTS, FaultRuleError

PREFIX = "/_fleetops/"

Handler = Callable[[dict[str, Any], dict[str, str]], Any]
ROUTES: dict[tuple[str, str], Handler] = {}


class ControlError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def route(method: str, path: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        ROUTES[(method.upper(), path.rstrip("/"))] = fn
        return fn

    return deco


def require(body: dict[str, Any], key: str, kind: type | tuple[type, ...] = str) -> Any:
    if key not in body or body[key] is None:
        raise ControlError(400, f"missing required field '{key}'")
    if not isinstance(body[key], kind):
        raise ControlError(400, f"field '{key}' has the wrong type")
    return body[key]


def handle(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    method = environ.get("REQUEST_METHOD", "GET").upper()
    path = environ.get("PATH_INFO", "").rstrip("/")
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    status, payload = 200, None
    try:
        raw = b""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length:
            raw = environ["wsgi.input"].read(length)
        body: dict[str, Any] = {}
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise ControlError(400, f"request body is not valid JSON: {exc}") from exc
            if not isinstance(body, dict):
                raise ControlError(400, "request body must be a JSON object")
        handler = ROUTES.get((method, path))
        if handler is None:
            if any(p == path for (_, p) in ROUTES):
                raise ControlError(405, f"method {method} not allowed on {path}")
            raise ControlError(404, f"no control endpoint {method} {path}")
        with state.LOCK:
            state.tick_all()
            payload = handler(body, query)
        if payload is None:
            payload = {"ok": True}
    except ControlError as exc:
        status, payload = exc.status, {"error": exc.message}
    except FaultRuleError as exc:
        status, payload = 400, {"error": str(exc)}
    data = json.dumps(payload, default=str).encode("utf-8")
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict"}
    start_response(
        f"{status} {reason.get(status, 'Error')}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


# ---------------------------------------------------------------- call counting

class CallCounter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.by_region: Counter[str] = Counter()
        # Response body bytes per operation: what a caller had to read and parse.
        self.bytes: Counter[str] = Counter()

    def reset(self) -> None:
        self.bytes.clear()
        self.calls.clear()
        self.faults.clear()
        self.by_region.clear()

    def count(self, key: str, region: str | None) -> None:
        self.calls[key] += 1
        self.by_region[f"{region or '-'}/{key}"] += 1


CALLS = CallCounter()
state.on_reset(CALLS.reset)


@route("POST", "/_fleetops/reset")
def _reset(body: dict[str, Any], query: dict[str, str]) -> Any:
    from moto.moto_api._internal import moto_api_backend

    moto_api_backend.reset()
    state.reset_all()
    return {"ok": True}


@route("GET", "/_fleetops/calls")
def _calls(body: dict[str, Any], query: dict[str, str]) -> Any:
    return {
        "calls": dict(sorted(CALLS.calls.items())),
        "faults": dict(sorted(CALLS.faults.items())),
        "by_region": dict(sorted(CALLS.by_region.items())),
        "bytes": dict(sorted(CALLS.bytes.items())),
    }


@route("POST", "/_fleetops/calls/reset")
def _calls_reset(body: dict[str, Any], query: dict[str, str]) -> Any:
    CALLS.reset()
    return {"ok": True}


@route("POST", "/_fleetops/faults")
def _faults_set(body: dict[str, Any], query: dict[str, str]) -> Any:
    return FAULTS.configure(body)


@route("GET", "/_fleetops/faults")
def _faults_get(body: dict[str, Any], query: dict[str, str]) -> Any:
    return FAULTS.describe()


@route("GET", "/_fleetops/health")
def _health(body: dict[str, Any], query: dict[str, str]) -> Any:
    return {"ok": True, "now": state.iso(state.now_ts(), millis=True)}


@route("GET", "/_fleetops/clock")
def _clock_get(body: dict[str, Any], query: dict[str, str]) -> Any:
    return {"now": state.iso(state.now_ts(), millis=True), "offset_seconds": state.clock_offset()}


@route("POST", "/_fleetops/clock/advance")
def _clock_advance(body: dict[str, Any], query: dict[str, str]) -> Any:
    seconds = require(body, "seconds", (int, float))
    if seconds < 0:
        raise ControlError(400, "'seconds' must be >= 0")
    state.advance(seconds)
    state.tick_all()
    return {"now": state.iso(state.now_ts(), millis=True), "offset_seconds": state.clock_offset()}
