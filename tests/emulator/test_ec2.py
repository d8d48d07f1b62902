"""EC2 extension: stop/start semantics, state controls, stop log, paging, filters."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from conftest import run, describe


def _ids(resp):
    return [i["InstanceId"] for r in resp["Reservations"] for i in r["Instances"]]


def test_spot_lifecycle_and_hibernation_options_round_trip(ec2):
    spot = run(ec2, 1, InstanceMarketOptions={"MarketType": "spot"})[0]
    hib = run(ec2, 1, HibernationOptions={"Configured": True})[0]
    plain = run(ec2, 1)[0]
    assert describe(ec2, spot)["InstanceLifecycle"] == "spot"
    assert "InstanceLifecycle" not in describe(ec2, plain)
    assert describe(ec2, hib)["HibernationOptions"] == {"Configured": True}
    spots = ec2.describe_instances(Filters=[{"Name": "instance-lifecycle", "Values": ["spot"]}])
    assert _ids(spots) == [spot]


def test_hibernate_stop_recorded_in_stop_log(emu, ec2):
    hib = run(ec2, 1, HibernationOptions={"Configured": True})[0]
    plain = run(ec2, 1)[0]
    resp = ec2.stop_instances(InstanceIds=[hib], Hibernate=True)["StoppingInstances"][0]
    assert resp["CurrentState"]["Name"] == "stopping" and resp["PreviousState"]["Name"] == "running"
    d = describe(ec2, hib)
    assert d["State"]["Name"] == "stopped"
    assert d["StateReason"]["Code"] == "Client.UserInitiatedHibernate"
    ec2.stop_instances(InstanceIds=[plain], Force=True)
    stops = emu.get("/_fleetops/ec2/stop-log")["stops"]
    assert [(s["instance_id"], s["hibernate"], s["force"]) for s in stops] == [(hib, True, False), (plain, False, True)]
    assert emu.get(f"/_fleetops/ec2/stop-log?instance_id={plain}")["stops"][0]["instance_id"] == plain


def test_hibernate_without_configuration_fails(ec2):
    plain = run(ec2, 1)[0]
    with pytest.raises(ClientError) as err:
        ec2.stop_instances(InstanceIds=[plain], Hibernate=True)
    assert err.value.response["Error"]["Code"] == "UnsupportedHibernationConfiguration"
    assert describe(ec2, plain)["State"]["Name"] == "running"


@pytest.mark.parametrize(
    "forced,op,ok",
    [
        ("pending", "stop", False),
        ("shutting-down", "stop", False),
        ("terminated", "stop", False),
        ("stopping", "stop", True),
        ("stopped", "stop", True),
        ("stopping", "start", False),
        ("shutting-down", "start", False),
        ("terminated", "start", False),
        ("pending", "start", True),
        ("running", "start", True),
    ],
)
def test_state_rules_fail_whole_call(emu, ec2, forced, op, ok):
    target, other = run(ec2, 2)
    if op == "start":
        ec2.stop_instances(InstanceIds=[other])
    emu.post("/_fleetops/ec2/instance-state", {"instance_id": target, "state": forced})
    call = ec2.stop_instances if op == "stop" else ec2.start_instances
    other_before = describe(ec2, other)["State"]["Name"]
    if ok:
        call(InstanceIds=[other, target])
        assert describe(ec2, target)["State"]["Name"] == forced
    else:
        with pytest.raises(ClientError) as err:
            call(InstanceIds=[other, target])
        assert err.value.response["Error"]["Code"] == "IncorrectInstanceState"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert target in err.value.response["Error"]["Message"]
        assert describe(ec2, other)["State"]["Name"] == other_before


def test_idempotent_stop_and_start_report_current_state(ec2):
    iid = run(ec2, 1)[0]
    ec2.stop_instances(InstanceIds=[iid])
    again = ec2.stop_instances(InstanceIds=[iid])["StoppingInstances"][0]
    assert again["PreviousState"]["Name"] == "stopped" and again["CurrentState"]["Name"] == "stopped"
    started = ec2.start_instances(InstanceIds=[iid])["StartingInstances"][0]
    assert started["CurrentState"]["Name"] == "pending"
    assert describe(ec2, iid)["State"]["Name"] == "running"
    again = ec2.start_instances(InstanceIds=[iid])["StartingInstances"][0]
    assert again["CurrentState"]["Name"] == "running"


def test_start_fails_once_with_state_reason(emu, ec2):
    iid = run(ec2, 1)[0]
    ec2.stop_instances(InstanceIds=[iid])
    emu.post(
        "/_fleetops/ec2/start-fails",
        {"instance_id": iid, "code": "Client.InternalError", "message": "Client.InternalError: Client error on launch"},
    )
    resp = ec2.start_instances(InstanceIds=[iid])["StartingInstances"][0]
    assert resp["CurrentState"]["Name"] == "pending"
    d = describe(ec2, iid)
    assert d["State"]["Name"] == "stopped"
    assert d["StateReason"] == {"Code": "Client.InternalError", "Message": "Client.InternalError: Client error on launch"}
    ec2.start_instances(InstanceIds=[iid])
    assert describe(ec2, iid)["State"]["Name"] == "running"
    assert [s["instance_id"] for s in emu.get("/_fleetops/ec2/start-log")["starts"]] == [iid, iid]


def test_instance_state_control_validation(emu, ec2):
    iid = run(ec2, 1)[0]
    status, payload = emu.call("POST", "/_fleetops/ec2/instance-state", {"instance_id": iid, "state": "sleeping"})
    assert status == 400
    status, payload = emu.call("POST", "/_fleetops/ec2/instance-state", {"instance_id": "i-0123456789abcdef0", "state": "stopped"})
    assert status == 404
    status, payload = emu.call("POST", "/_fleetops/ec2/instance-state", {"state": "stopped"})
    assert status == 400 and "instance_id" in payload["error"]
    out = emu.post("/_fleetops/ec2/instance-state", {"instance_id": iid, "state": "stopping"})
    assert out["previous_state"] == "running"
    assert describe(ec2, iid)["State"] == {"Code": 64, "Name": "stopping"}


def test_instance_state_in_other_region(emu):
    ec2w = emu.client("ec2", region="eu-west-1")
    iid = run(ec2w, 1)[0]
    out = emu.post("/_fleetops/ec2/instance-state", {"instance_id": iid, "state": "stopped"})
    assert out["region"] == "eu-west-1"
    assert describe(ec2w, iid)["State"]["Name"] == "stopped"


def test_tag_filters_and_pagination(emu, ec2):
    scheduled = set(run(ec2, 7, {"Schedule": "office-hours"}) + run(ec2, 4, {"Schedule": "nights"}))
    run(ec2, 3, {"Other": "x"})
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"Filters": [{"Name": "tag-key", "Values": ["Schedule"]}], "MaxResults": 5}
        if token:
            kwargs["NextToken"] = token
        resp = ec2.describe_instances(**kwargs)
        seen += _ids(resp)
        pages += 1
        token = resp.get("NextToken")
        if not token:
            break
    assert pages == 3 and len(seen) == 11 and set(seen) == scheduled
    office = ec2.describe_instances(Filters=[{"Name": "tag:Schedule", "Values": ["office-hours"]}])
    assert len(_ids(office)) == 7
    paged = ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5})
    assert sum(len(_ids(p)) for p in paged) == 14


def test_describe_instances_validation(emu):
    raw = emu.client("ec2", validate=False)
    for bad in (4, 1001):
        with pytest.raises(ClientError) as err:
            raw.describe_instances(MaxResults=bad)
        assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as err:
        raw.describe_instances(MaxResults=5, NextToken="garbage")
    assert err.value.response["Error"]["Code"] == "InvalidPaginationToken"
    with pytest.raises(ClientError) as err:
        raw.describe_instances(InstanceIds=["i-0123456789abcdef0"], MaxResults=5)
    assert err.value.response["Error"]["Code"] == "InvalidParameterCombination"


def test_describe_tags_pages_and_filters(emu, ec2):
    ids = run(ec2, 12, TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Schedule", "Value": "office"}]}])
    ec2.create_tags(Resources=ids[:3], Tags=[{"Key": "ScheduleOverride", "Value": "skip"}])
    filters = [{"Name": "resource-type", "Values": ["instance"]}, {"Name": "key", "Values": ["Schedule"]}]
    first = ec2.describe_tags(Filters=filters, MaxResults=5)
    assert len(first["Tags"]) == 5 and first["NextToken"]
    seen = [t["ResourceId"] for t in first["Tags"]]
    token = first["NextToken"]
    while token:
        page = ec2.describe_tags(Filters=filters, MaxResults=5, NextToken=token)
        seen += [t["ResourceId"] for t in page["Tags"]]
        token = page.get("NextToken")
    assert sorted(seen) == sorted(ids)
    rare = ec2.describe_tags(Filters=[{"Name": "key", "Values": ["ScheduleOverride"]}], MaxResults=1000)["Tags"]
    assert sorted(t["ResourceId"] for t in rare) == sorted(ids[:3]) and "NextToken" not in rare
    with pytest.raises(ClientError) as err:
        ec2.describe_tags(Filters=filters, MaxResults=1001)
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_describe_tags_resource_id_wildcards_split_the_fleet(ec2):
    # EC2 filter values take `*` and `?` wildcards (the SDKs' Filter documentation for
    # DescribeTags); the scheduler splits its tag reads by `resource-id` i-*0 .. i-*f.
    ids = run(ec2, 40, TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Schedule", "Value": "office"}]}])
    seen = []
    for digit in "0123456789abcdef":
        filters = [{"Name": "key", "Values": ["Schedule"]}, {"Name": "resource-id", "Values": [f"i-*{digit}"]}]
        tags = ec2.describe_tags(Filters=filters, MaxResults=1000)["Tags"]
        assert all(t["ResourceId"].endswith(digit) for t in tags)
        seen += [t["ResourceId"] for t in tags]
    assert sorted(seen) == sorted(ids)


def test_more_than_200_filter_values_in_one_call_are_refused(ec2):
    ids = [f"i-{n:017x}" for n in range(196)]
    filters = [
        {"Name": "instance-id", "Values": ids},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped", "shutting-down"]},
    ]
    for call in (ec2.describe_instances, ec2.describe_tags):
        with pytest.raises(ClientError) as err:
            call(Filters=filters, MaxResults=1000)
        assert err.value.response["Error"]["Code"] == "FilterLimitExceeded"
    filters[0]["Values"] = ids[:195]
    assert ec2.describe_instances(Filters=filters, MaxResults=1000)["Reservations"] == []


def test_response_bytes_are_counted_per_operation(emu, ec2):
    run(ec2, 3)
    emu.post("/_fleetops/calls/reset", {})
    ec2.describe_instances(MaxResults=5)
    counted = emu.get("/_fleetops/calls")
    assert counted["calls"]["ec2:DescribeInstances"] == 1
    assert counted["bytes"]["ec2:DescribeInstances"] > 3 * 1000
