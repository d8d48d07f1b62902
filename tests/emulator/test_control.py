"""Control plane: reset, call counting, fault injection, clock."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError
from conftest import run


def test_ready_line_and_health(emu):
    assert emu.url.startswith("http://127.0.0.1:")
    assert emu.get("/_fleetops/health")["ok"] is True


def test_unknown_endpoint_and_bad_json(emu):
    status, payload = emu.call("GET", "/_fleetops/nope")
    assert status == 404 and "error" in payload
    req = urllib.request.Request(emu.url + "/_fleetops/faults", data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 400
    assert "JSON" in json.loads(err.value.read())["error"]
    status, _ = emu.call("GET", "/_fleetops/reset")
    assert status == 405


def test_reset_wipes_moto_and_extension_state(emu, ec2):
    ids = run(ec2, 2)
    emu.post("/_fleetops/ssm/agent", {"instance_id": ids[0]})
    emu.post("/_fleetops/faults", {"rules": [{"service": "sns", "error": "Throttling"}]})
    emu.post("/_fleetops/reset")
    assert ec2.describe_instances()["Reservations"] == []
    assert emu.get("/_fleetops/ssm/agents")["agents"] == []
    assert emu.get("/_fleetops/faults")["rules"] == []
    assert emu.get("/_fleetops/calls")["calls"] == {"ec2:DescribeInstances": 1}


def test_moto_api_reset_also_resets_extension(emu, ec2):
    ids = run(ec2, 1)
    emu.post("/_fleetops/ssm/agent", {"instance_id": ids[0]})
    req = urllib.request.Request(emu.url + "/moto-api/reset", data=b"", method="POST")
    urllib.request.urlopen(req, timeout=10).read()
    assert emu.get("/_fleetops/ssm/agents")["agents"] == []
    assert ec2.describe_instances()["Reservations"] == []


def test_calls_are_counted_by_service_and_operation(emu, ec2, ssm):
    run(ec2, 1)
    ec2.describe_instances()
    ec2.describe_instances()
    ssm.put_parameter(Name="/fleetops/schedules", Value="{}", Type="String")
    ssm.get_parameter(Name="/fleetops/schedules")
    emu.get("/_fleetops/events")  # control plane calls are not counted
    calls = emu.get("/_fleetops/calls")["calls"]
    assert calls == {
        "ec2:RunInstances": 1,
        "ec2:DescribeInstances": 2,
        "ssm:PutParameter": 1,
        "ssm:GetParameter": 1,
    }
    emu.post("/_fleetops/calls/reset")
    assert emu.get("/_fleetops/calls")["calls"] == {}


def test_ec2_fault_is_ec2_xml_with_503(emu, ec2):
    ids = run(ec2, 1)
    emu.post(
        "/_fleetops/faults",
        {"rules": [{"service": "ec2", "operation": "StopInstances", "error": "RequestLimitExceeded", "rate": 1.0}], "seed": 42},
    )
    with pytest.raises(ClientError) as err:
        ec2.stop_instances(InstanceIds=ids)
    assert err.value.response["Error"]["Code"] == "RequestLimitExceeded"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    # other operations are untouched
    ec2.describe_instances()
    assert emu.get("/_fleetops/calls")["faults"] == {"ec2:StopInstances": 1}
    emu.post("/_fleetops/faults", {"rules": []})
    ec2.stop_instances(InstanceIds=ids)


def test_raw_error_bodies_match_each_protocol(emu):
    import urllib.request as ur

    emu.post(
        "/_fleetops/faults",
        {"rules": [
            {"service": "ec2", "error": "RequestLimitExceeded"},
            {"service": "ssm", "error": "ThrottlingException"},
            {"service": "autoscaling", "error": "ThrottlingException"},
        ]},
    )

    def raw(service, body, headers):
        auth = f"AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=x"
        req = ur.Request(emu.url + "/", data=body, method="POST", headers={"Authorization": auth, **headers})
        try:
            ur.urlopen(req, timeout=5)
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        raise AssertionError("expected an error")

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    code, body = raw("ec2", b"Action=DescribeInstances&Version=2016-11-15", form)
    assert code == 503 and "<Response><Errors><Error><Code>RequestLimitExceeded</Code>" in body
    code, body = raw("ssm", b"{}", {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonSSM.GetParameter"})
    assert code == 400 and json.loads(body)["__type"] == "ThrottlingException"
    code, body = raw("autoscaling", b"Action=DescribeAutoScalingGroups&Version=2011-01-01", form)
    assert code == 400 and "<ErrorResponse" in body and "<Code>Throttling</Code>" in body


def test_fault_kinds_per_service(emu):
    ssm, asg, sns = emu.client("ssm"), emu.client("autoscaling"), emu.client("sns")
    emu.post(
        "/_fleetops/faults",
        {"rules": [
            {"service": "ssm", "operation": "GetParameter", "error": "ThrottlingException"},
            {"service": "autoscaling", "operation": "*", "error": "ThrottlingException"},
            {"service": "sns", "operation": "ListTopics", "error": "InternalError"},
            {"service": "sns", "operation": "Publish", "error": "ServiceUnavailable"},
        ]},
    )
    cases = [
        (lambda: ssm.get_parameter(Name="x"), "ThrottlingException", 400),
        (lambda: asg.describe_auto_scaling_groups(), "Throttling", 400),
        (lambda: sns.list_topics(), "InternalError", 500),
        (lambda: sns.publish(TopicArn="arn:aws:sns:us-east-1:123456789012:t", Message="m"), "ServiceUnavailable", 503),
    ]
    for call, code, status in cases:
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == code
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def _pattern(emu, ec2, n=40):
    out = []
    for _ in range(n):
        try:
            ec2.describe_instances()
            out.append(0)
        except ClientError:
            out.append(1)
    return out


def test_fault_rate_is_deterministic_with_seed(emu, ec2):
    rules = {"rules": [{"service": "ec2", "operation": "DescribeInstances", "error": "RequestLimitExceeded", "rate": 0.3}], "seed": 7}
    emu.post("/_fleetops/faults", rules)
    first = _pattern(emu, ec2)
    emu.post("/_fleetops/faults", rules)
    second = _pattern(emu, ec2)
    assert first == second
    assert 0 < sum(first) < len(first)


def test_fault_max_count_and_latency(emu, ec2):
    emu.post(
        "/_fleetops/faults",
        {"rules": [{"service": "ec2", "operation": "*", "error": "InternalError", "max_count": 2}]},
    )
    assert _pattern(emu, ec2, 4) == [1, 1, 0, 0]
    assert emu.get("/_fleetops/faults")["rules"][0]["fired"] == 2
    emu.post("/_fleetops/faults", {"rules": [{"service": "ec2", "operation": "DescribeInstances", "latency_ms": 300}]})
    start = time.monotonic()
    ec2.describe_instances()
    assert time.monotonic() - start >= 0.3


def test_invalid_fault_rules_rejected(emu):
    status, payload = emu.call("POST", "/_fleetops/faults", {"rules": [{"service": "ec2", "rate": 2}]})
    assert status == 400 and "error" in payload
    status, _ = emu.call("POST", "/_fleetops/faults", {})
    assert status == 400


def test_boto_retries_through_a_throttle(emu):
    ec2 = emu.client("ec2", retries=True)
    emu.post("/_fleetops/faults", {"rules": [{"service": "ec2", "error": "RequestLimitExceeded", "max_count": 1}]})
    ec2.describe_instances()
    assert emu.get("/_fleetops/calls")["calls"]["ec2:DescribeInstances"] == 2


def test_clock_advance(emu):
    before = emu.get("/_fleetops/clock")
    after = emu.post("/_fleetops/clock/advance", {"seconds": 3600})
    assert after["offset_seconds"] == 3600
    assert after["now"] > before["now"]
    emu.post("/_fleetops/reset")
    assert emu.get("/_fleetops/clock")["offset_seconds"] == 0
