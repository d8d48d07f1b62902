"""SSM agents and DescribeInstanceInformation."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from conftest import run


def _ids(resp):
    return [i["InstanceId"] for i in resp["InstanceInformationList"]]


def test_registered_agents_are_listed_with_real_shape(emu, ec2, ssm):
    iid = run(ec2, 1)[0]
    emu.post("/_fleetops/ssm/agent", {"instance_id": iid, "platform_name": "Ubuntu", "computer_name": "web-1"})
    info = ssm.describe_instance_information()["InstanceInformationList"]
    assert len(info) == 1
    item = info[0]
    assert item["InstanceId"] == iid and item["PingStatus"] == "Online"
    assert item["PlatformType"] == "Linux" and item["PlatformName"] == "Ubuntu"
    assert item["ComputerName"] == "web-1" and item["ResourceType"] == "EC2Instance"
    assert "LastPingDateTime" in item and "AgentVersion" in item


def test_delayed_never_and_connection_lost(emu, ec2, ssm):
    a, b, c, d = run(ec2, 4)
    emu.post("/_fleetops/ssm/agent", {"instance_id": a})
    emu.post("/_fleetops/ssm/agent", {"instance_id": b, "online_after_seconds": 60})
    emu.post("/_fleetops/ssm/agent", {"instance_id": c, "never": True})
    emu.post("/_fleetops/ssm/agent", {"instance_id": d, "ping_status": "ConnectionLost"})
    assert set(_ids(ssm.describe_instance_information())) == {a, d}
    with pytest.raises(ClientError) as err:
        ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [b]}])
    assert err.value.response["Error"]["Code"] == "InvalidInstanceId"
    emu.post("/_fleetops/clock/advance", {"seconds": 61})
    assert set(_ids(ssm.describe_instance_information())) == {a, b, d}
    online = ssm.describe_instance_information(Filters=[{"Key": "PingStatus", "Values": ["Online"]}])
    assert set(_ids(online)) == {a, b}
    lost = ssm.describe_instance_information(
        InstanceInformationFilterList=[{"key": "PingStatus", "valueSet": ["ConnectionLost"]}]
    )
    assert _ids(lost) == [d]


def test_agent_registers_after_real_delay(emu, ec2, ssm):
    import time

    iid = run(ec2, 1)[0]
    emu.post("/_fleetops/ssm/agent", {"instance_id": iid, "online_after_seconds": 0.5})
    assert _ids(ssm.describe_instance_information()) == []
    time.sleep(0.6)
    assert _ids(ssm.describe_instance_information()) == [iid]


def test_stopped_instance_reports_connection_lost(emu, ec2, ssm):
    iid = run(ec2, 1)[0]
    emu.post("/_fleetops/ssm/agent", {"instance_id": iid})
    ec2.stop_instances(InstanceIds=[iid])
    info = ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [iid]}])
    assert info["InstanceInformationList"][0]["PingStatus"] == "ConnectionLost"


def test_filters_by_ids_tags_and_platform(emu, ec2, ssm):
    web = run(ec2, 3, {"Patch Group": "web"})
    db = run(ec2, 2, {"Patch Group": "db"})
    for i in web + db:
        emu.post("/_fleetops/ssm/agent", {"instance_id": i})
    emu.post("/_fleetops/ssm/agent", {"instance_id": db[1], "platform_name": "Microsoft Windows Server 2022 Datacenter"})
    assert set(_ids(ssm.describe_instance_information(Filters=[{"Key": "tag:Patch Group", "Values": ["web"]}]))) == set(web)
    assert len(_ids(ssm.describe_instance_information(Filters=[{"Key": "tag-key", "Values": ["Patch Group"]}]))) == 5
    assert _ids(ssm.describe_instance_information(Filters=[{"Key": "PlatformTypes", "Values": ["Windows"]}])) == [db[1]]
    legacy = ssm.describe_instance_information(InstanceInformationFilterList=[{"key": "InstanceIds", "valueSet": web[:2]}])
    assert set(_ids(legacy)) == set(web[:2])
    with pytest.raises(ClientError) as err:
        ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": ["i-0123456789abcdef0"]}])
    assert err.value.response["Error"]["Code"] == "InvalidInstanceId"
    with pytest.raises(ClientError) as err:
        ssm.describe_instance_information(Filters=[{"Key": "Bogus", "Values": ["x"]}])
    assert err.value.response["Error"]["Code"] == "InvalidFilterKey"
    with pytest.raises(ClientError) as err:
        ssm.describe_instance_information(Filters=[{"Key": "PingStatus", "Values": ["Sleeping"]}])
    assert err.value.response["Error"]["Code"] == "InvalidInstanceInformationFilterValue"
    with pytest.raises(ClientError) as err:
        ssm.describe_instance_information(
            Filters=[{"Key": "PingStatus", "Values": ["Online"]}],
            InstanceInformationFilterList=[{"key": "PingStatus", "valueSet": ["Online"]}],
        )
    assert err.value.response["Error"]["Code"] == "InvalidFilterKey"


def test_paging(emu, ec2, ssm):
    ids = run(ec2, 23)
    for i in ids:
        emu.post("/_fleetops/ssm/agent", {"instance_id": i})
    first = ssm.describe_instance_information()
    assert len(first["InstanceInformationList"]) == 10 and first["NextToken"]
    seen, token = [], None
    while True:
        kwargs = {"MaxResults": 5}
        if token:
            kwargs["NextToken"] = token
        resp = ssm.describe_instance_information(**kwargs)
        seen += _ids(resp)
        token = resp.get("NextToken")
        if not token:
            break
    assert seen == ids
    raw = emu.client("ssm", validate=False)
    for bad in (4, 51):
        with pytest.raises(ClientError) as err:
            raw.describe_instance_information(MaxResults=bad)
        assert err.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as err:
        ssm.describe_instance_information(NextToken="nope")
    assert err.value.response["Error"]["Code"] == "InvalidNextToken"


def test_agent_control_validation(emu, ec2):
    status, payload = emu.call("POST", "/_fleetops/ssm/agent", {"instance_id": "i-0123456789abcdef0"})
    assert status == 404
    iid = run(ec2, 1)[0]
    status, payload = emu.call("POST", "/_fleetops/ssm/agent", {"instance_id": iid, "ping_status": "Asleep"})
    assert status == 400
    agent = emu.post("/_fleetops/ssm/agent", {"instance_id": iid, "online_after_seconds": 5})
    assert agent["registered"] is False and agent["registers_at"]
    assert emu.post("/_fleetops/ssm/agent/remove", {"instance_id": iid})["removed"] is True
