"""WSGI middleware around moto's app: control plane, call counting, faults."""

from __future__ import annotations

import io
import re
import time
from typing import Any, Callable
from urllib.parse import parse_qs

from . import control, state
from .faults import FAULTS, protocol_for, render_error

_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")

# X-Amz-Target prefixes of unsigned (or oddly signed) JSON requests.
_TARGET_PREFIX = {
    "AmazonSSM": "ssm",
    "AmazonSQS": "sqs",
    "AWSEvents": "events",
    "Logs_20140328": "logs",
    "AWSLambda": "lambda",
    # DynamoDB is JSON 1.0 with X-Amz-Target: DynamoDB_20120810.<Operation>; its SigV4
    # signing name (and so the usual source of `service`) is `dynamodb`.
    "DynamoDB_20120810": "dynamodb",
}


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def identify(environ: dict[str, Any], body: bytes) -> tuple[str, str, str | None]:
    """(service, Operation, region) of an AWS request."""
    service, region = None, None
    m = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if m:
        region, service = m.group(1), m.group(2).lower()
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if not service and target:
        service = _TARGET_PREFIX.get(target.split(".")[0], target.split(".")[0].lower())
    if not service:
        host = environ.get("HTTP_HOST", "")
        hm = re.match(r"([a-z0-9-]+)\.([a-z0-9-]+)\.amazonaws\.com", host)
        service = hm.group(1) if hm else "unknown"
        region = region or (hm.group(2) if hm else None)

    operation = None
    if target:
        operation = target.split(".")[-1]
    if not operation:
        qs = parse_qs(environ.get("QUERY_STRING", ""))
        if "Action" in qs:
            operation = qs["Action"][-1]
    if not operation and body and environ.get("CONTENT_TYPE", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        form = parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            operation = form["Action"][-1]
    if not operation:
        try:
            from moto.core.request import Request
            from moto.core.routing import get_service_router

            op, _ = get_service_router(service).match(Request(dict(environ)))
            operation = op.name
        except Exception:  # noqa: BLE001 - best effort for REST services
            operation = environ.get("REQUEST_METHOD", "GET")
    return service, operation, region


class FleetopsMiddleware:
    def __init__(self, app: Callable[..., Any]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(control.PREFIX) or path == control.PREFIX.rstrip("/"):
            return control.handle(environ, start_response)
        if path.startswith("/moto-api"):
            if path.rstrip("/") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
                with state.LOCK:
                    result = self.app(environ, start_response)
                    state.reset_all()
                return result
            return self.app(environ, start_response)

        body = _read_body(environ)
        service, operation, region = identify(environ, body)
        key = f"{service}:{operation}"
        with state.LOCK:
            control.CALLS.count(key, region)
            fired = FAULTS.decide(service, operation, region)
            error_rule = next((r for r in fired if r.error), None)
            if error_rule is not None:
                control.CALLS.faults[key] += 1
        delay = sum(r.latency_ms for r in fired if r.latency_phase != "after") / 1000.0
        delay_after = sum(r.latency_ms for r in fired if r.latency_phase == "after") / 1000.0
        if delay > 0:
            time.sleep(delay)
        if error_rule is not None:
            status, headers, payload = render_error(
                error_rule, service, protocol_for(service, environ, body)
            )
            headers.append(("Content-Length", str(len(payload))))
            start_response(f"{status} Injected", headers)
            return [payload]
        with state.LOCK:
            state.tick_all()
            # Materialise the whole response while holding the lock.
            chunks: list[bytes] = []
            captured: dict[str, Any] = {}

            def _sr(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                captured["status"], captured["headers"] = status, headers
                return chunks.append

            result = self.app(environ, _sr)
            try:
                for chunk in result:
                    chunks.append(chunk)
            finally:
                if hasattr(result, "close"):
                    result.close()
            control.CALLS.bytes[key] += sum(len(c) for c in chunks)
        if delay_after > 0:
            time.sleep(delay_after)
        start_response(captured["status"], captured["headers"])
        return chunks
