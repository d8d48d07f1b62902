"""bench/ec2sim.py through boto3 (real wire formats), latency off.

    .venv/bin/python -m pytest bench/test_ec2sim.py -q
"""

from __future__ import annotations

import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import SimProcess  # noqa: E402

STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]


@pytest.fixture(scope="module")
def server():
    with SimProcess() as sim:
        yield sim


@pytest.fixture
def sim(server):
    server.control("POST", "/_sim/reset")
    server.control("POST", "/_sim/config", {"latency": False, "throttling": False, "indent": 4,
                                            "bucket_scope": "action",
                                            "buckets": {"non-mutating": [100, 20], "mutating": [200, 5],
                                                        "StopInstances": [1000, 20], "StartInstances": [1000, 2]}})
    return server


def client(sim, service: str):
    return boto3.client(service, endpoint_url=sim.url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))


def seed(sim, **schedules) -> dict[str, list[str]]:
    body = {"schedules": {k: v if isinstance(v, dict) else {"count": v} for k, v in schedules.items()}}
    return sim.control("POST", "/_sim/seed", body)["ids"]


def described(ec2, page_size: int | None = 1000, **kwargs) -> list[dict]:
    out = []
    pages = ec2.get_paginator("describe_instances").paginate(
        **kwargs, PaginationConfig={"PageSize": page_size} if page_size else {})
    for page in pages:
        assert sum(len(r["Instances"]) for r in page["Reservations"]) <= (page_size or 10**9)
        out += [i for r in page["Reservations"] for i in r["Instances"]]
    return out


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_describe_instances_pages_by_instances_in_reservations_of_100(sim):
    ids = seed(sim, a=230, b=17)
    sim.control("POST", "/_sim/seed", {"instances": 5})  # no Schedule tag
    ec2 = client(sim, "ec2")
    found = described(ec2, 7, Filters=[{"Name": "tag-key", "Values": ["Schedule"]}])
    assert [i["InstanceId"] for i in found] == ids["a"] + ids["b"]
    page = ec2.describe_instances(MaxResults=1000)
    assert [len(r["Instances"]) for r in page["Reservations"]] == [100, 100, 52]
    assert "NextToken" not in page
    first = found[0]
    assert first["State"] == {"Code": 16, "Name": "running"} and first["InstanceType"] == "t3.medium"
    assert first["Placement"]["AvailabilityZone"].startswith("us-east-1")
    assert first["BlockDeviceMappings"][0]["Ebs"]["VolumeId"].startswith("vol-")
    assert first["NetworkInterfaces"][0]["PrivateIpAddress"] == first["PrivateIpAddress"]
    assert {"Key": "Schedule", "Value": "a"} in first["Tags"] and first["HibernationOptions"] == {"Configured": False}
    assert "InstanceLifecycle" not in first and "StateReason" not in first
    with pytest.raises(ClientError) as e:
        ec2.describe_instances(InstanceIds=ids["a"][:1], MaxResults=5)
    assert error_code(e) == "InvalidParameterCombination"


def test_max_results_outside_5_to_1000_is_refused(sim):
    seed(sim, a=3)
    ec2 = client(sim, "ec2")
    for bad in (4, 1001):
        with pytest.raises(ClientError) as e:
            ec2.describe_instances(MaxResults=bad)
        assert error_code(e) == "InvalidParameterValue"
    assert len(described(ec2, 5)) == 3


def test_filters(sim):
    ids = seed(sim, a={"count": 6, "spot": 2}, b={"count": 4, "state": "stopped"})
    sim.control("POST", "/_sim/state", {"ids": ids["a"][5:], "state": "terminated"})
    ec2 = client(sim, "ec2")

    def found(*filters, **kw):
        return {i["InstanceId"] for i in described(ec2, Filters=[{"Name": n, "Values": v} for n, v in filters], **kw)}

    assert found(("tag:Schedule", ["b"])) == set(ids["b"])
    assert found(("tag:Schedule", ["a", "b"])) == set(ids["a"] + ids["b"])  # values OR
    assert found(("instance-state-name", ["stopped"])) == set(ids["b"])
    assert found(("instance-state-name", STATES), ("tag:Schedule", ["a"])) == set(ids["a"][:5])  # filters AND
    assert found(("instance-id", ids["a"][1:3])) == set(ids["a"][1:3])
    assert found(("instance-id", ids["a"] + ids["b"]), ("instance-id", ids["b"] + ids["a"][:1]),
                 page_size=5) == set(ids["b"] + ids["a"][:1])  # looked up, paged
    assert found(("instance-id", ["i-0*"]), ("tag:Schedule", ["b"])) == set(ids["b"])
    assert found(("instance-lifecycle", ["spot"])) == set(ids["a"][:2])
    assert found(("tag-key", ["Sched*"])) == set(ids["a"] + ids["b"])
    assert found(("tag:Schedule", ["b"]), page_size=None) == set(ids["b"])  # no MaxResults: all at once
    ec2.create_tags(Resources=ids["a"][:1], Tags=[{"Key": "Schedule", "Value": "b"}])  # the index follows tag changes
    assert found(("tag:Schedule", ["b"])) == set(ids["a"][:1] + ids["b"])
    ec2.delete_tags(Resources=ids["b"][:1], Tags=[{"Key": "Schedule"}])
    sim.control("POST", "/_sim/tag", {"ids": ids["b"][1:2], "tags": {"Schedule": "c"}})
    assert found(("tag:Schedule", ["b"])) == set(ids["a"][:1] + ids["b"][2:])
    stopped = ec2.describe_instances(InstanceIds=ids["b"][:1])["Reservations"][0]["Instances"][0]
    assert stopped["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    spot = ec2.describe_instances(InstanceIds=ids["a"][:1])["Reservations"][0]["Instances"][0]
    assert spot["InstanceLifecycle"] == "spot"
    with pytest.raises(ClientError) as e:
        ec2.describe_instances(Filters=[{"Name": "no-such-filter", "Values": ["x"]}], MaxResults=5)
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"])
    assert error_code(e) == "InvalidInstanceID.NotFound"


def test_wildcard_and_escaped_tag_values(sim):
    ids = seed(sim, **{"bench-stop-utc": 2, "bench-start-utc": 2, "a*b": 1, "aXb": 1, "x?": 1})
    ec2 = client(sim, "ec2")

    def found(*values):
        return {i["InstanceId"] for i in described(ec2, Filters=[{"Name": "tag:Schedule", "Values": list(values)}])}

    assert found("bench-*") == set(ids["bench-stop-utc"] + ids["bench-start-utc"])
    assert found("bench-st??t-utc") == set(ids["bench-start-utc"])
    assert found("a*b") == set(ids["a*b"] + ids["aXb"])
    assert found("a\\*b") == set(ids["a*b"])
    assert found("x\\?") == set(ids["x?"])
    assert found("*-utc", "aXb") == set(ids["bench-stop-utc"] + ids["bench-start-utc"] + ids["aXb"])


def test_at_most_200_filter_values_per_call(sim):
    seed(sim, a=2)
    ec2 = client(sim, "ec2")
    values = [f"v{n}" for n in range(199)]
    assert len(described(ec2, Filters=[{"Name": "tag:Schedule", "Values": values + ["a"]}])) == 2  # 200
    too_many = ((ec2.describe_instances, [{"Name": "tag:Schedule", "Values": values + ["a"]},
                                          {"Name": "instance-state-name", "Values": ["running"]}]),
                (ec2.describe_tags, [{"Name": "value", "Values": values}, {"Name": "key", "Values": ["a", "b"]}]))
    for call, filters in too_many:
        with pytest.raises(ClientError) as e:
            call(Filters=filters, MaxResults=5)
        assert error_code(e) == "FilterLimitExceeded"
        message = "The maximum number of filter values specified on a single call is 200"
        assert e.value.response["Error"]["Message"] == message
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_describe_tags(sim):
    ids = seed(sim, a=9, b=3)
    sim.control("POST", "/_sim/state", {"ids": ids["b"][:1], "state": "terminated"})
    ec2 = client(sim, "ec2")
    tags = []
    for page in ec2.get_paginator("describe_tags").paginate(Filters=[{"Name": "key", "Values": ["Schedule"]}],
                                                            PaginationConfig={"PageSize": 5}):
        assert len(page["Tags"]) <= 5
        tags += page["Tags"]
    assert [t["ResourceId"] for t in tags] == ids["a"] + ids["b"]  # terminated included
    assert {t["ResourceType"] for t in tags} == {"instance"}
    pages = ec2.get_paginator("describe_tags").paginate(PaginationConfig={"PageSize": 5})
    all_tags = [t for page in pages for t in page["Tags"]]
    assert len(all_tags) == 24  # Name and Schedule of each
    picked = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": ids["b"]},
                                        {"Name": "value", "Values": ["b*"]}])
    assert sorted((t["ResourceId"], t["Key"]) for t in picked["Tags"]) == sorted(
        [(i, "Name") for i in ids["b"]] + [(i, "Schedule") for i in ids["b"]])
    assert ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["volume"]}])["Tags"] == []
    with pytest.raises(ClientError) as e:
        ec2.describe_tags(MaxResults=1001)
    assert error_code(e) == "InvalidParameterValue"


def test_describe_tags_by_last_id_digit(sim):
    # The scheduler's split of its tag reads: resource-id i-*0 .. i-*f, a page chain each.
    ids = seed(sim, a=40)
    ec2 = client(sim, "ec2")
    seen = []
    for digit in "0123456789abcdef":
        pages = ec2.get_paginator("describe_tags").paginate(
            Filters=[{"Name": "key", "Values": ["Schedule"]}, {"Name": "resource-id", "Values": [f"i-*{digit}"]}],
            PaginationConfig={"PageSize": 5})
        found = [t["ResourceId"] for page in pages for t in page["Tags"]]
        assert all(i.endswith(digit) for i in found)
        seen += found
    assert sorted(seen) == sorted(ids["a"])


def test_stop_and_start(sim):
    ids = seed(sim, a=3, b={"count": 2, "state": "stopped"})
    ec2 = client(sim, "ec2")
    out = ec2.stop_instances(InstanceIds=ids["a"][:2] + ids["b"][:1])["StoppingInstances"]
    assert [(i["PreviousState"]["Name"], i["CurrentState"]["Name"]) for i in out] == [
        ("running", "stopping"), ("running", "stopping"), ("stopped", "stopped")]
    out = ec2.start_instances(InstanceIds=ids["a"][:1] + ids["a"][2:])["StartingInstances"]
    assert [(i["PreviousState"]["Name"], i["CurrentState"]["Name"]) for i in out] == [
        ("stopped", "pending"), ("running", "running")]
    states = sim.control("GET", "/_sim/instances?fields=state")
    assert [states[i] for i in ids["a"]] == ["running", "stopped", "running"]
    sim.control("POST", "/_sim/state", {"ids": ids["b"][1:], "state": "terminated"})
    for call in (ec2.stop_instances, ec2.start_instances):
        with pytest.raises(ClientError) as e:
            call(InstanceIds=ids["a"][:1] + ids["b"][1:])
        assert error_code(e) == "IncorrectInstanceState" and ids["b"][1] in e.value.response["Error"]["Message"]
    assert sim.control("GET", "/_sim/instances?fields=state")[ids["a"][0]] == "running"  # nothing changed
    calls = sim.control("GET", "/_sim/calls")
    assert calls["ids_per_call"]["ec2:StopInstances"] == [3, 2]


def test_stop_with_an_unknown_id_fails_whole(sim):
    ids = seed(sim, a=2)
    ec2 = client(sim, "ec2")
    with pytest.raises(ClientError) as e:
        ec2.stop_instances(InstanceIds=ids["a"] + ["i-0123456789abcdef0"])
    assert error_code(e) == "InvalidInstanceID.NotFound"
    assert "i-0123456789abcdef0" in e.value.response["Error"]["Message"]
    assert set(sim.control("GET", "/_sim/instances?fields=state").values()) == {"running"}


def test_more_than_1000_ids_are_refused(sim):
    ids = seed(sim, a=1001)["a"]
    ec2 = client(sim, "ec2")
    for call, kwargs in ((ec2.stop_instances, {"InstanceIds": ids}), (ec2.start_instances, {"InstanceIds": ids}),
                         (ec2.create_tags, {"Resources": ids, "Tags": [{"Key": "k", "Value": "v"}]})):
        with pytest.raises(ClientError) as e:
            call(**kwargs)
        assert error_code(e) == "InvalidParameterValue"
    ec2.stop_instances(InstanceIds=ids[:1000])
    assert list(sim.control("GET", "/_sim/instances?fields=state").values()).count("stopped") == 1000


def test_create_and_delete_tags(sim):
    ids = seed(sim, a=2)["a"]
    ec2 = client(sim, "ec2")
    ec2.create_tags(Resources=ids, Tags=[{"Key": "fleetops:schedule-applied", "Value": "stop@x"},
                                         {"Key": "E", "Value": ""}])
    ec2.delete_tags(Resources=ids[:1], Tags=[{"Key": "E"}])
    ec2.delete_tags(Resources=ids, Tags=[{"Key": "fleetops:schedule-applied", "Value": "other"}])  # value differs
    tags = {i: v["tags"] for i, v in sim.control("GET", "/_sim/instances").items()}
    assert tags[ids[0]] == {"Name": "a", "Schedule": "a", "fleetops:schedule-applied": "stop@x"}
    assert tags[ids[1]]["E"] == ""
    ec2.delete_tags(Resources=ids[1:], Tags=[{"Key": "fleetops:schedule-applied"}])
    assert "fleetops:schedule-applied" not in sim.control("GET", "/_sim/instances")[ids[1]]["tags"]
    with pytest.raises(ClientError) as e:
        ec2.create_tags(Resources=["i-0123456789abcdef0"], Tags=[{"Key": "k", "Value": "v"}])
    assert error_code(e) == "InvalidInstanceID.NotFound"


def test_tag_limit_is_50_per_resource(sim):
    ids = seed(sim, a=1)["a"]  # Name, Schedule
    ec2 = client(sim, "ec2")
    ec2.create_tags(Resources=ids, Tags=[{"Key": f"k{n}", "Value": "v"} for n in range(48)])  # 50
    ec2.create_tags(Resources=ids, Tags=[{"Key": "k0", "Value": "changed"}])  # overwriting adds none
    with pytest.raises(ClientError) as e:
        ec2.create_tags(Resources=ids, Tags=[{"Key": "one-more", "Value": "v"}])
    assert error_code(e) == "TagLimitExceeded"
    assert len(sim.control("GET", "/_sim/instances")[ids[0]]["tags"]) == 50


def test_throttling_when_a_bucket_is_drained(sim):
    ids = seed(sim, a=5)["a"]
    sim.control("POST", "/_sim/config", {"throttling": True, "buckets": {
        "non-mutating": [2, 0.001], "StopInstances": [3, 0.001]}})
    ec2 = client(sim, "ec2")
    ec2.describe_instances(MaxResults=5)
    ec2.describe_instances(MaxResults=5)
    with pytest.raises(ClientError) as e:
        ec2.describe_instances(MaxResults=5)
    assert error_code(e) == "RequestLimitExceeded"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    ec2.describe_tags(MaxResults=5)  # another action: its own bucket
    with pytest.raises(ClientError) as e:
        ec2.stop_instances(InstanceIds=ids[:4])  # 4 instances, 3 resource tokens
    assert error_code(e) == "RequestLimitExceeded"
    assert set(sim.control("GET", "/_sim/instances?fields=state").values()) == {"running"}
    ec2.stop_instances(InstanceIds=ids[:3])  # the refused call took no resource token
    with pytest.raises(ClientError):
        ec2.stop_instances(InstanceIds=ids[3:4])
    calls = sim.control("GET", "/_sim/calls")
    assert calls["throttled"] == {"ec2:DescribeInstances": 1, "ec2:StopInstances": 2}
    assert calls["calls"]["ec2:DescribeInstances"] == 3
    sim.control("POST", "/_sim/config", {"bucket_scope": "category"})  # one Describe* bucket, full again
    ec2.describe_tags(MaxResults=5)
    ec2.describe_instances(MaxResults=5)
    with pytest.raises(ClientError):
        ec2.describe_tags(MaxResults=5)


def test_ssm_and_sts(sim):
    ssm = client(sim, "ssm")
    ssm.put_parameter(Name="/fleetops/schedules", Value='{"schedules":{}}', Type="String")
    parameter = ssm.get_parameter(Name="/fleetops/schedules", WithDecryption=True)["Parameter"]
    assert parameter["Value"] == '{"schedules":{}}' and parameter["Version"] == 1 and parameter["Type"] == "String"
    assert parameter["ARN"] == "arn:aws:ssm:us-east-1:123456789012:parameter/fleetops/schedules"
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name="/missing")
    commands = ssm.list_commands(Filters=[{"key": "DocumentName", "value": "AWS-RunPatchBaseline"},
                                          {"key": "ExecutionStage", "value": "Executing"}], MaxResults=50)
    assert commands["Commands"] == []
    assert client(sim, "sts").get_caller_identity()["Account"] == "123456789012"
    calls = sim.control("GET", "/_sim/calls")["calls"]
    assert calls == {"ssm:PutParameter": 1, "ssm:GetParameter": 2, "ssm:ListCommands": 1, "sts:GetCallerIdentity": 1}


def test_other_operations_are_invalid_actions(sim):
    with pytest.raises(ClientError) as e:
        client(sim, "ec2").describe_vpcs()
    assert error_code(e) == "InvalidAction"
    with pytest.raises(ClientError) as e:
        client(sim, "ssm").describe_instance_information()
    assert error_code(e) == "InvalidAction"
