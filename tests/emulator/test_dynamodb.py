"""DynamoDB through the emulator: conditional writes, TTL, call counting, faults."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

TABLE = "fleetops-state"


@pytest.fixture()
def ddb(emu: Any) -> Any:
    client = emu.client("dynamodb")
    # The patch dispatcher's table: partition key pk (S), no sort key, on demand, TTL expires_at.
    client.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        SSESpecification={"Enabled": True},
    )
    return client


def _code(err: ClientError) -> str:
    return err.response["Error"]["Code"]


def test_table_shape(ddb: Any) -> None:
    table = ddb.describe_table(TableName=TABLE)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TableStatus"] == "ACTIVE"


def test_conditional_put_claims_once(ddb: Any) -> None:
    item = {"pk": {"S": "launch#i-0123"}, "state": {"S": "claimed"}}
    ddb.put_item(TableName=TABLE, Item=item, ConditionExpression="attribute_not_exists(pk)")
    with pytest.raises(ClientError) as exc:
        ddb.put_item(
            TableName=TABLE,
            Item={"pk": {"S": "launch#i-0123"}, "state": {"S": "stolen"}},
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert _code(exc.value) == "ConditionalCheckFailedException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # The item that won is returned with the failure when asked for (ALL_OLD).
    assert exc.value.response["Item"]["state"] == {"S": "claimed"}
    got = ddb.get_item(TableName=TABLE, Key={"pk": {"S": "launch#i-0123"}}, ConsistentRead=True)
    assert got["Item"]["state"] == {"S": "claimed"}


def test_update_with_version_condition(ddb: Any) -> None:
    key = {"pk": {"S": "run#web#Install#2024-07-07"}}
    ddb.put_item(TableName=TABLE, Item={**key, "version": {"N": "1"}, "step": {"S": "sent"}})
    out = ddb.update_item(
        TableName=TABLE,
        Key=key,
        UpdateExpression="SET version = :next, step = :step",
        ConditionExpression="version = :expected",
        ExpressionAttributeValues={":next": {"N": "2"}, ":expected": {"N": "1"}, ":step": {"S": "done"}},
        ReturnValues="ALL_NEW",
    )
    assert out["Attributes"]["version"] == {"N": "2"}
    # A writer that still holds version 1 loses.
    with pytest.raises(ClientError) as exc:
        ddb.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="SET version = :next, step = :step",
            ConditionExpression="version = :expected",
            ExpressionAttributeValues={":next": {"N": "2"}, ":expected": {"N": "1"}, ":step": {"S": "stale"}},
        )
    assert _code(exc.value) == "ConditionalCheckFailedException"
    got = ddb.get_item(TableName=TABLE, Key=key, ConsistentRead=True)["Item"]
    assert got["step"] == {"S": "done"} and got["version"] == {"N": "2"}
    # A condition on an item that does not exist fails too (no upsert).
    with pytest.raises(ClientError) as exc:
        ddb.update_item(
            TableName=TABLE,
            Key={"pk": {"S": "missing"}},
            UpdateExpression="SET version = :next",
            ConditionExpression="version = :expected",
            ExpressionAttributeValues={":next": {"N": "2"}, ":expected": {"N": "1"}},
        )
    assert _code(exc.value) == "ConditionalCheckFailedException"


def test_time_to_live(emu: Any, ddb: Any) -> None:
    assert ddb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED"
    out = ddb.update_time_to_live(
        TableName=TABLE, TimeToLiveSpecification={"AttributeName": "expires_at", "Enabled": True}
    )
    assert out["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    desc = ddb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert desc == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}

    # Not idempotent, and one change per hour.
    with pytest.raises(ClientError) as exc:
        ddb.update_time_to_live(TableName=TABLE, TimeToLiveSpecification={"AttributeName": "expires_at", "Enabled": True})
    assert _code(exc.value) == "ValidationException"
    assert "already enabled" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        ddb.update_time_to_live(TableName=TABLE, TimeToLiveSpecification={"AttributeName": "expires_at", "Enabled": False})
    assert _code(exc.value) == "ValidationException"
    assert "multiple times" in exc.value.response["Error"]["Message"]
    emu.post("/_fleetops/clock/advance", {"seconds": 3601})
    ddb.update_time_to_live(TableName=TABLE, TimeToLiveSpecification={"AttributeName": "expires_at", "Enabled": False})
    assert ddb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED"

    with pytest.raises(ClientError) as exc:
        ddb.describe_time_to_live(TableName="no-such-table")
    assert _code(exc.value) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        ddb.update_time_to_live(TableName="no-such-table", TimeToLiveSpecification={"AttributeName": "expires_at", "Enabled": True})
    assert _code(exc.value) == "ResourceNotFoundException"


def test_expired_items_stay_until_the_ttl_process_runs(emu: Any, ddb: Any) -> None:
    ddb.update_time_to_live(TableName=TABLE, TimeToLiveSpecification={"AttributeName": "expires_at", "Enabled": True})
    now = int(time.time())
    ddb.put_item(TableName=TABLE, Item={"pk": {"S": "old"}, "expires_at": {"N": str(now - 60)}})
    ddb.put_item(TableName=TABLE, Item={"pk": {"S": "fresh"}, "expires_at": {"N": str(now + 3600)}})
    ddb.put_item(TableName=TABLE, Item={"pk": {"S": "text"}, "expires_at": {"S": str(now - 60)}})
    ddb.put_item(TableName=TABLE, Item={"pk": {"S": "none"}})
    # Expired but not yet deleted: still read (as AWS documents).
    assert "Item" in ddb.get_item(TableName=TABLE, Key={"pk": {"S": "old"}})
    swept = emu.post("/_fleetops/dynamodb/ttl-sweep", {"table": TABLE})
    assert [d["key"] for d in swept["deleted"]] == [{"pk": {"S": "old"}}]
    assert "Item" not in ddb.get_item(TableName=TABLE, Key={"pk": {"S": "old"}})
    left = {i["item"]["pk"]["S"] for i in emu.get(f"/_fleetops/dynamodb/items?table={TABLE}")["items"]}
    assert left == {"fresh", "text", "none"}
    emu.post("/_fleetops/clock/advance", {"seconds": 7200})
    swept = emu.post("/_fleetops/dynamodb/ttl-sweep", {})
    assert [d["key"] for d in swept["deleted"]] == [{"pk": {"S": "fresh"}}]


def test_calls_are_counted_per_operation(emu: Any, ddb: Any) -> None:
    emu.post("/_fleetops/calls/reset")
    key = {"pk": {"S": "k"}}
    ddb.put_item(TableName=TABLE, Item={**key, "n": {"N": "1"}})
    ddb.update_item(TableName=TABLE, Key=key, UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": "2"}})
    ddb.get_item(TableName=TABLE, Key=key)
    ddb.get_item(TableName=TABLE, Key=key)
    ddb.delete_item(TableName=TABLE, Key=key)
    calls = emu.get("/_fleetops/calls")
    assert calls["calls"] == {
        "dynamodb:DeleteItem": 1,
        "dynamodb:GetItem": 2,
        "dynamodb:PutItem": 1,
        "dynamodb:UpdateItem": 1,
    }
    assert calls["by_region"]["us-east-1/dynamodb:GetItem"] == 2


def test_latency_fault_delays_update_item_only(emu: Any, ddb: Any) -> None:
    key = {"pk": {"S": "slow"}}
    ddb.put_item(TableName=TABLE, Item={**key, "n": {"N": "1"}})
    emu.post("/_fleetops/faults", {"rules": [{"service": "dynamodb", "operation": "UpdateItem", "latency_ms": 1200}]})
    t0 = time.monotonic()
    ddb.get_item(TableName=TABLE, Key=key)
    assert time.monotonic() - t0 < 1.0
    t0 = time.monotonic()
    ddb.update_item(TableName=TABLE, Key=key, UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": "2"}})
    assert time.monotonic() - t0 >= 1.2
    # A delay alone still lets the write through.
    assert ddb.get_item(TableName=TABLE, Key=key)["Item"]["n"] == {"N": "2"}
    assert emu.get("/_fleetops/faults")["rules"][0]["fired"] == 1


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"])
def test_throttling_fault_is_dynamodbs_own_error(emu: Any, ddb: Any, code: str) -> None:
    emu.post("/_fleetops/faults", {"rules": [{"service": "dynamodb", "operation": "UpdateItem", "error": code}]})
    with pytest.raises(ClientError) as exc:
        ddb.update_item(TableName=TABLE, Key={"pk": {"S": "k"}}, UpdateExpression="SET n = :n",
                        ExpressionAttributeValues={":n": {"N": "1"}})
    assert _code(exc.value) == code
    meta = exc.value.response["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 400
    assert meta["HTTPHeaders"]["content-type"] == "application/x-amz-json-1.0"
    assert "x-amzn-errortype" not in meta["HTTPHeaders"]
    assert emu.get("/_fleetops/calls")["faults"] == {"dynamodb:UpdateItem": 1}


def test_throttling_fault_wire_format_and_retry(emu: Any, ddb: Any) -> None:
    emu.post("/_fleetops/faults", {"rules": [
        {"service": "dynamodb", "operation": "UpdateItem", "error": "ProvisionedThroughputExceededException", "max_count": 1},
        {"service": "dynamodb", "operation": "GetItem", "error": "Throttling", "max_count": 1},
        {"service": "dynamodb", "operation": "Scan", "error": "InternalError", "max_count": 1},
    ]})
    # Raw wire format (an unsigned request is identified by its X-Amz-Target).
    req = urllib.request.Request(
        emu.url + "/", data=b"{}", method="POST",
        headers={"X-Amz-Target": "DynamoDB_20120810.UpdateItem", "Content-Type": "application/x-amz-json-1.0"},
    )
    with pytest.raises(urllib.error.HTTPError) as raw:
        urllib.request.urlopen(req, timeout=10)
    assert raw.value.code == 400
    body = json.loads(raw.value.read())
    assert body["__type"] == "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
    assert body["message"].startswith("You exceeded your maximum allowed provisioned throughput")
    assert raw.value.headers["x-amz-crc32"]
    # The SDK's standard retry mode retries throttling and 500s and then succeeds.
    retrying = emu.client("dynamodb", retries=True)
    retrying.update_item(TableName=TABLE, Key={"pk": {"S": "k"}}, UpdateExpression="SET n = :n",
                         ExpressionAttributeValues={":n": {"N": "1"}})
    out = retrying.get_item(TableName=TABLE, Key={"pk": {"S": "k"}})
    assert out["Item"]["n"] == {"N": "1"}
    assert out["ResponseMetadata"]["RetryAttempts"] == 1
    assert retrying.scan(TableName=TABLE)["ResponseMetadata"]["RetryAttempts"] == 1
    calls = emu.get("/_fleetops/calls")
    assert calls["calls"]["dynamodb:GetItem"] == 2 and calls["faults"]["dynamodb:GetItem"] == 1
    assert calls["faults"]["dynamodb:Scan"] == 1


def test_injected_error_codes_for_dynamodb(emu: Any, ddb: Any) -> None:
    emu.post("/_fleetops/faults", {"rules": [
        {"service": "dynamodb", "operation": "GetItem", "error": "TooManyRequestsException"},
        {"service": "dynamodb", "operation": "Query", "error": "InternalError"},
    ]})
    with pytest.raises(ClientError) as exc:
        ddb.get_item(TableName=TABLE, Key={"pk": {"S": "k"}})
    assert _code(exc.value) == "ThrottlingException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as exc:
        ddb.query(TableName=TABLE, KeyConditionExpression="pk = :k", ExpressionAttributeValues={":k": {"S": "k"}})
    assert _code(exc.value) == "InternalServerError"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def _impatient(emu: Any) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb", region_name="us-east-1", endpoint_url=emu.url,
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(read_timeout=0.3, connect_timeout=5, retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def test_client_gone_during_a_delay_before(emu: Any, ddb: Any) -> None:
    """Default phase: the write reaches the table only when the delay ends, client or not."""
    from botocore.exceptions import ReadTimeoutError

    key = {"pk": {"S": "crash"}}
    ddb.put_item(TableName=TABLE, Item={**key, "n": {"N": "1"}})
    emu.post("/_fleetops/faults", {"rules": [{"service": "dynamodb", "operation": "UpdateItem", "latency_ms": 1500}]})
    with pytest.raises(ReadTimeoutError):
        _impatient(emu).update_item(TableName=TABLE, Key=key, UpdateExpression="SET n = :n",
                                    ExpressionAttributeValues={":n": {"N": "2"}})
    assert ddb.get_item(TableName=TABLE, Key=key)["Item"]["n"] == {"N": "1"}
    deadline = time.monotonic() + 5
    while ddb.get_item(TableName=TABLE, Key=key)["Item"]["n"] != {"N": "2"}:
        assert time.monotonic() < deadline, "the delayed write never landed"
        time.sleep(0.1)


def test_client_gone_during_a_delay_after(emu: Any, ddb: Any) -> None:
    """latency_phase "after": the write is done at once, only the answer is late."""
    from botocore.exceptions import ReadTimeoutError

    key = {"pk": {"S": "crash"}}
    ddb.put_item(TableName=TABLE, Item={**key, "n": {"N": "1"}})
    emu.post("/_fleetops/faults", {"rules": [
        {"service": "dynamodb", "operation": "UpdateItem", "latency_ms": 1500, "latency_phase": "after"}]})
    with pytest.raises(ReadTimeoutError):
        _impatient(emu).update_item(TableName=TABLE, Key=key, UpdateExpression="SET n = :n",
                                    ExpressionAttributeValues={":n": {"N": "2"}})
    assert ddb.get_item(TableName=TABLE, Key=key)["Item"]["n"] == {"N": "2"}
    status, payload = emu.call("POST", "/_fleetops/faults", {"rules": [
        {"service": "dynamodb", "error": "ThrottlingException", "latency_ms": 10, "latency_phase": "after"}]})
    assert status == 400 and "latency_phase" in payload["error"]
