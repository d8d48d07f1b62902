"""EventBridge events the emulated services would have emitted (in the real envelope)."""

from __future__ import annotations

from typing import Any

from . import state
from .control import route

EVENTS: list[dict[str, Any]] = []
state.on_reset(EVENTS.clear)


def emit(
    source: str,
    detail_type: str,
    detail: dict[str, Any],
    *,
    region: str,
    resources: list[str],
    ts: float | None = None,
    account: str = state.DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    event = {
        "version": "0",
        "id": state.new_uuid(),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": state.iso(state.now_ts() if ts is None else ts),
        "region": region,
        "resources": resources,
        "detail": detail,
    }
    EVENTS.append(event)
    return event


@route("GET", "/_fleetops/events")
def _events(body: dict[str, Any], query: dict[str, str]) -> Any:
    out = EVENTS
    if query.get("source"):
        out = [e for e in out if e["source"] == query["source"]]
    if query.get("detail-type"):
        out = [e for e in out if e["detail-type"] == query["detail-type"]]
    return {"events": list(out)}


@route("POST", "/_fleetops/events/reset")
def _events_reset(body: dict[str, Any], query: dict[str, str]) -> Any:
    EVENTS.clear()
    return {"ok": True}
