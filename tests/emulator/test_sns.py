"""SNS Publish limits and the message log."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError


def test_publish_is_logged_and_limits_hold(emu):
    sns = emu.client("sns")
    arn = sns.create_topic(Name="fleetops-report")["TopicArn"]
    body = json.dumps({"default": "text", "email": "text", "sqs": "{}"})
    mid = sns.publish(TopicArn=arn, Subject="Fleet report 2024-06-01", Message=body, MessageStructure="json")["MessageId"]
    msgs = emu.get("/_fleetops/sns/messages")["messages"]
    assert [(m["message_id"], m["subject"], m["message_structure"], m["topic_arn"]) for m in msgs] == [
        (mid, "Fleet report 2024-06-01", "json", arn)]
    assert msgs[0]["bytes"] == len(body.encode())
    # 262,144 bytes of UTF-8 is the limit, not characters
    sns.publish(TopicArn=arn, Message="x" * 262144)
    bad = [
        dict(Message="é" * 131073),
        dict(Message="x", Subject="s" * 100),
        dict(Message="x", Subject="two\nlines"),
        dict(Message="x", Subject="non-ascii é"),
        dict(Message=json.dumps({"email": "x"}), MessageStructure="json"),
    ]
    for kwargs in bad:
        with pytest.raises(ClientError) as err:
            sns.publish(TopicArn=arn, **kwargs)
        assert err.value.response["Error"]["Code"] == "InvalidParameter", kwargs
    assert len(emu.get("/_fleetops/sns/messages")["messages"]) == 2
