"""SNS Publish: the real limits (moto counts characters, not bytes, and lets most
bad subjects through) and a log of every published message for tests."""

from __future__ import annotations

import json
from typing import Any

from moto.core.responses import ActionResult
from moto.sns.exceptions import SNSInvalidParameter
from moto.sns.responses import SNSResponse

from . import state
from .control import route

MAX_MESSAGE_BYTES = 262144
MESSAGES: list[dict[str, Any]] = []
state.on_reset(MESSAGES.clear)

_orig_publish = SNSResponse.publish


def _check_subject(subject: str | None) -> None:
    if subject is None:
        return
    if not subject or len(subject) >= 100:
        raise SNSInvalidParameter("Invalid parameter: Subject")
    if any(ord(c) < 32 or ord(c) == 127 for c in subject) or not subject.isascii():
        raise SNSInvalidParameter("Invalid parameter: Subject")
    if not (subject[0].isalnum() or (subject[0].isascii() and not subject[0].isspace())):
        raise SNSInvalidParameter("Invalid parameter: Subject")


def publish(self: SNSResponse) -> ActionResult:
    message = self._get_param("Message")
    subject = self._get_param("Subject")
    structure = self._get_param("MessageStructure")
    _check_subject(subject)
    if message is None or message == "":
        raise SNSInvalidParameter("Invalid parameter: Empty message")
    size = len(message.encode("utf-8"))
    if size > MAX_MESSAGE_BYTES:
        raise SNSInvalidParameter("Invalid parameter: Message too long")
    if structure == "json":
        try:
            parsed = json.loads(message)
        except ValueError as exc:
            raise SNSInvalidParameter("Invalid parameter: Message Structure - JSON message body failed to parse") from exc
        if not isinstance(parsed, dict) or not isinstance(parsed.get("default"), str):
            raise SNSInvalidParameter("Invalid parameter: Message Structure - No default entry in JSON message body")
    result = _orig_publish(self)
    MESSAGES.append({
        "message_id": result.result["MessageId"],  # type: ignore[index]
        "topic_arn": self._get_param("TopicArn") or self._get_param("TargetArn"),
        "subject": subject,
        "message": message,
        "message_structure": structure,
        "message_attributes": self._get_param("MessageAttributes"),
        "bytes": size,
        "region": self.region,
        "time": state.iso(state.now_ts(), millis=True),
    })
    return result


def install() -> None:
    SNSResponse.publish = publish  # type: ignore[method-assign]


@route("GET", "/_fleetops/sns/messages")
def _messages(body: dict[str, Any], query: dict[str, str]) -> Any:
    msgs = MESSAGES
    if query.get("topic_arn"):
        msgs = [m for m in msgs if m["topic_arn"] == query["topic_arn"]]
    return {"messages": list(msgs)}
