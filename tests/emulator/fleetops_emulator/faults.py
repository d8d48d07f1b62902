"""Fault injection rules and protocol-faithful error bodies.

A rule matches a call by service (the SigV4 signing name: ``ec2``, ``ssm``,
``autoscaling``, ``sns``, ...) and operation (``StopInstances`` or ``*``). When a
matching rule fires (probability ``rate``, at most ``max_count`` times) the call
is delayed by ``latency_ms`` and, if the rule names an ``error``, answered with
that error in the wire format of the service's protocol instead of reaching moto.
Decisions come from one ``random.Random(seed)``, so a given sequence of calls
always sees the same faults.
"""

from __future__ import annotations

import json
import random
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from . import state

THROTTLE_CODES = {
    "RequestLimitExceeded",
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "Throttle",
}

# DynamoDB's own throttling codes, kept as they are. "Error handling with DynamoDB"
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html)
# lists them under HTTP 400, "OK to retry? Yes".
DYNAMODB_THROTTLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
}
# DynamoDB errors carry the service's shape namespace in `__type` (same page, "Error components":
# {"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":...}).
DYNAMODB_TYPE_PREFIX = "com.amazonaws.dynamodb.v20120810#"
# Messages of the same page ("Error messages and codes").
DYNAMODB_MESSAGES = {
    "ProvisionedThroughputExceededException": (
        "You exceeded your maximum allowed provisioned throughput for a table or for one or more "
        "global secondary indexes."
    ),
    "ThrottlingException": "Rate of requests exceeds the allowed throughput.",
    "RequestLimitExceeded": "Throughput exceeds the current throughput limit for your account.",
    "ConditionalCheckFailedException": "The conditional request failed",
    "InternalServerError": "DynamoDB could not process your request.",
    "ServiceUnavailable": "DynamoDB is currently unavailable. (This should be a temporary state.)",
}

QUERY_NAMESPACES = {
    "autoscaling": "http://autoscaling.amazonaws.com/doc/2011-01-01/",
    "sns": "http://sns.amazonaws.com/doc/2010-03-31/",
    "sqs": "http://queue.amazonaws.com/doc/2012-11-05/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
}


class FaultRuleError(ValueError):
    pass


@dataclass
class Rule:
    service: str = "*"
    operation: str = "*"
    error: str | None = None
    rate: float = 1.0
    latency_ms: int = 0
    max_count: int | None = None
    message: str | None = None
    status: int | None = None
    region: str | None = None
    # "before": the delay comes first and the call then reaches moto (a write lands when the
    # delay ends, even if the client has gone away by then); "after": moto handles the call
    # at once and only the answer is delayed (the write is done, the client may never see it).
    latency_phase: str = "before"
    fired: int = field(default=0)

    def matches(self, service: str, operation: str, region: str | None) -> bool:
        if self.service not in ("*", service):
            return False
        if self.operation not in ("*", operation):
            return False
        if self.region and region and self.region != region:
            return False
        if self.max_count is not None and self.fired >= self.max_count:
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "operation": self.operation,
            "error": self.error,
            "rate": self.rate,
            "latency_ms": self.latency_ms,
            "max_count": self.max_count,
            "message": self.message,
            "status": self.status,
            "region": self.region,
            "latency_phase": self.latency_phase,
            "fired": self.fired,
        }


class FaultStore:
    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.seed: int | None = None
        self.rng = random.Random()

    def reset(self) -> None:
        self.rules = []
        self.seed = None
        self.rng = random.Random()

    def configure(self, body: dict[str, Any]) -> dict[str, Any]:
        raw = body.get("rules")
        if raw is None or not isinstance(raw, list):
            raise FaultRuleError("'rules' must be a list (use [] to clear)")
        rules = []
        for i, r in enumerate(raw):
            if not isinstance(r, dict):
                raise FaultRuleError(f"rules[{i}] must be an object")
            try:
                rate = float(r.get("rate", 1.0) if r.get("rate") is not None else 1.0)
                latency = int(r.get("latency_ms") or 0)
                max_count = r.get("max_count")
                max_count = None if max_count is None else int(max_count)
                status = r.get("status")
                status = None if status is None else int(status)
            except (TypeError, ValueError) as exc:
                raise FaultRuleError(f"rules[{i}]: {exc}") from exc
            if not 0.0 <= rate <= 1.0:
                raise FaultRuleError(f"rules[{i}].rate must be within 0..1")
            if r.get("error") is None and latency <= 0:
                raise FaultRuleError(f"rules[{i}] needs an 'error' or a 'latency_ms'")
            phase = r.get("latency_phase") or "before"
            if phase not in ("before", "after"):
                raise FaultRuleError(f"rules[{i}].latency_phase must be 'before' or 'after'")
            if phase == "after" and r.get("error") is not None:
                raise FaultRuleError(f"rules[{i}]: latency_phase 'after' cannot be combined with an 'error'")
            rules.append(
                Rule(
                    service=str(r.get("service") or "*").lower(),
                    operation=str(r.get("operation") or "*"),
                    error=r.get("error"),
                    rate=rate,
                    latency_ms=latency,
                    max_count=max_count,
                    message=r.get("message"),
                    status=status,
                    region=r.get("region"),
                    latency_phase=phase,
                )
            )
        self.rules = rules
        self.seed = body.get("seed")
        self.rng = random.Random(self.seed)
        return self.describe()

    def describe(self) -> dict[str, Any]:
        return {"rules": [r.to_json() for r in self.rules], "seed": self.seed}

    def decide(self, service: str, operation: str, region: str | None) -> list[Rule]:
        """Return the rules that fire for this call (latency ones and at most one error)."""
        fired: list[Rule] = []
        error_fired = False
        for rule in self.rules:
            if not rule.matches(service, operation, region):
                continue
            roll = self.rng.random()
            if roll >= rule.rate:
                continue
            if rule.error and error_fired:
                continue
            rule.fired += 1
            fired.append(rule)
            if rule.error:
                error_fired = True
        return fired


FAULTS = FaultStore()
state.on_reset(FAULTS.reset)


def protocol_for(service: str, environ: dict[str, Any], body: bytes) -> str:
    if service == "ec2":
        return "ec2"
    if environ.get("HTTP_X_AMZ_TARGET"):
        return "json"
    ctype = environ.get("CONTENT_TYPE", "")
    if ctype.startswith("application/x-www-form-urlencoded") or b"Action=" in body[:200]:
        return "query"
    if service == "s3":
        return "rest-xml"
    return "rest-json"


def native_code(code: str, protocol: str, service: str) -> str:
    if service == "dynamodb":
        if code in DYNAMODB_THROTTLE_CODES:
            return code
        if code in THROTTLE_CODES:
            return "ThrottlingException"
        if code in ("InternalError", "InternalFailure", "InternalServerError", "InternalServiceError"):
            # DynamoDB's 500 is InternalServerError (API reference, every operation's Errors).
            return "InternalServerError"
        if code in ("ServiceUnavailable", "Unavailable", "ServiceUnavailableException"):
            return "ServiceUnavailable"
        return code
    if code in THROTTLE_CODES:
        return {
            "ec2": "RequestLimitExceeded",
            "json": "ThrottlingException",
            "query": "Throttling",
            "rest-xml": "SlowDown",
            "rest-json": "TooManyRequestsException",
        }[protocol]
    if code == "InternalError" and protocol == "json" and service == "ssm":
        return "InternalServerError"
    return code


def default_status(code: str, service: str = "") -> int:
    if service == "dynamodb" and code in DYNAMODB_THROTTLE_CODES:
        return 400  # all three are HTTP 400 in DynamoDB (see DYNAMODB_THROTTLE_CODES)
    if code in ("RequestLimitExceeded", "SlowDown"):
        return 503
    if code in ("InternalError", "InternalFailure", "InternalServerError", "InternalServiceError"):
        return 500
    if code in ("ServiceUnavailable", "Unavailable", "ServiceUnavailableException"):
        return 503
    if code == "TooManyRequestsException":
        return 429
    return 400


def default_message(code: str, service: str = "") -> str:
    if service == "dynamodb" and code in DYNAMODB_MESSAGES:
        return DYNAMODB_MESSAGES[code]
    return {
        "RequestLimitExceeded": "Request limit exceeded.",
        "ThrottlingException": "Rate exceeded",
        "Throttling": "Rate exceeded",
        "SlowDown": "Please reduce your request rate.",
        "TooManyRequestsException": "Rate exceeded",
        "InternalError": "An internal error has occurred",
        "InternalServerError": "An internal error has occurred",
        "ServiceUnavailable": "The service is unavailable. Please try again shortly.",
    }.get(code, f"Injected fault: {code}")


def render_error(
    rule: Rule, service: str, protocol: str
) -> tuple[int, list[tuple[str, str]], bytes]:
    code = native_code(str(rule.error), protocol, service)
    status = rule.status or default_status(code, service)
    message = rule.message or default_message(code, service)
    request_id = str(uuid.uuid4())
    if service == "dynamodb" and protocol == "json":
        # JSON 1.0, as in the low-level example of "Error handling with DynamoDB": only
        # x-amzn-RequestId and Content-Type, no x-amzn-ErrorType; SDKs take the code from
        # `__type` after the '#'. DynamoDB also sends x-amz-crc32 (the CRC32 of the body),
        # which some SDKs check, so it is set like moto sets it on its own answers.
        data = json.dumps({"__type": DYNAMODB_TYPE_PREFIX + code, "message": message}).encode("utf-8")
        headers = [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-RequestId", request_id),
            ("x-amz-crc32", str(zlib.crc32(data) & 0xFFFFFFFF)),
        ]
        return status, headers, data
    if protocol == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
        headers = [("Content-Type", "text/xml;charset=UTF-8")]
    elif protocol == "query":
        ns = QUERY_NAMESPACES.get(service, f"http://{service}.amazonaws.com/doc/")
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            f'<ErrorResponse xmlns="{ns}"><Error><Type>{kind}</Type>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        headers = [("Content-Type", "text/xml")]
    elif protocol == "rest-xml":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
        headers = [("Content-Type", "application/xml")]
    else:
        body = json.dumps({"__type": code, "message": message})
        ctype = "application/x-amz-json-1.1" if protocol == "json" else "application/json"
        headers = [("Content-Type", ctype), ("x-amzn-ErrorType", code)]
    headers.append(("x-amzn-RequestId", request_id))
    return status, headers, body.encode("utf-8")
