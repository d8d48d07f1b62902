"""Patch states, patch groups and compliance APIs."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError
from conftest import run


def _seed(emu, iid, **fields):
    return emu.post("/_fleetops/ssm/patch-state", {"InstanceId": iid, **fields})


FULL = {
    "PatchGroup": "web", "BaselineId": "pb-0123456789abcdef0", "SnapshotId": "snap-web-2024-06-01",
    "OperationStartTime": "2024-06-01T02:00:00Z", "OperationEndTime": "2024-06-01T02:05:00Z",
    "Operation": "Scan", "InstalledCount": 40, "InstalledOtherCount": 3, "InstalledPendingRebootCount": 1,
    "InstalledRejectedCount": 0, "MissingCount": 4, "FailedCount": 1, "NotApplicableCount": 200,
    "UnreportedNotApplicableCount": 0, "CriticalNonCompliantCount": 2, "SecurityNonCompliantCount": 1,
    "OtherNonCompliantCount": 2, "RebootOption": "NoReboot", "OwnerInformation": "team-a",
}


def test_seed_full_shape_round_trips(emu, ec2, ssm):
    iid = run(ec2, 1)[0]
    _seed(emu, iid, **FULL)
    st = ssm.describe_instance_patch_states(InstanceIds=[iid])["InstancePatchStates"][0]
    for k, v in FULL.items():
        if k.endswith("Time"):
            assert st[k] == dt.datetime.fromisoformat(v.replace("Z", "+00:00")).astimezone(st[k].tzinfo)
        else:
            assert st[k] == v, k
    status, payload = emu.call("POST", "/_fleetops/ssm/patch-state", {"InstanceId": iid, "Bogus": 1})
    assert status == 400
    status, payload = emu.call("POST", "/_fleetops/ssm/patch-state", {"InstanceId": iid, "MissingCount": -1})
    assert status == 400


def test_defaults_come_from_tags_and_baselines(emu, ec2, ssm):
    iid = run(ec2, 1, {"Patch Group": "db"})[0]
    out = _seed(emu, iid, MissingCount=2)
    assert out["PatchGroup"] == "db" and out["BaselineId"].startswith("pb-") and out["Operation"] == "Scan"
    fallback = run(ec2, 1, {"PatchGroup": "legacy"})[0]
    assert _seed(emu, fallback)["PatchGroup"] == "legacy"


def test_describe_instance_patch_states_limits_and_paging(emu, ec2, ssm):
    ids = run(ec2, 25)
    emu.post("/_fleetops/ssm/patch-state", {"states": [{"InstanceId": i, "MissingCount": n} for n, i in enumerate(ids)]})
    unknown = "i-0123456789abcdef0"
    first = ssm.describe_instance_patch_states(InstanceIds=ids + [unknown])
    assert len(first["InstancePatchStates"]) == 10 and first["NextToken"]
    seen, token = [], None
    while True:
        kw = {"InstanceIds": ids, "MaxResults": 10}
        if token:
            kw["NextToken"] = token
        page = ssm.describe_instance_patch_states(**kw)
        seen += [s["InstanceId"] for s in page["InstancePatchStates"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == ids
    raw = emu.client("ssm", validate=False)
    for bad in ([], ["i-%017x" % n for n in range(51)]):
        with pytest.raises(ClientError) as err:
            raw.describe_instance_patch_states(InstanceIds=bad)
        assert err.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as err:
        raw.describe_instance_patch_states(InstanceIds=ids[:1], MaxResults=5)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as err:
        ssm.describe_instance_patch_states(InstanceIds=ids[:1], NextToken="bad")
    assert err.value.response["Error"]["Code"] == "InvalidNextToken"


def test_patch_states_for_patch_group_with_filters(emu, ec2, ssm):
    web = run(ec2, 12, {"Patch Group": "web"})
    db = run(ec2, 2, {"Patch Group": "db"})
    for n, i in enumerate(web + db):
        _seed(emu, i, MissingCount=n % 3, FailedCount=1 if n == 0 else 0)
    pages = list(ssm.get_paginator("describe_instance_patch_states_for_patch_group").paginate(PatchGroup="web"))
    assert sum(len(p["InstancePatchStates"]) for p in pages) == 12 and len(pages) == 2
    missing = ssm.describe_instance_patch_states_for_patch_group(
        PatchGroup="web", Filters=[{"Key": "MissingCount", "Values": ["0"], "Type": "GreaterThan"}])["InstancePatchStates"]
    assert len(missing) == 8
    failed = ssm.describe_instance_patch_states_for_patch_group(
        PatchGroup="web", Filters=[{"Key": "FailedCount", "Values": ["1"], "Type": "Equal"}])["InstancePatchStates"]
    assert [s["InstanceId"] for s in failed] == [web[0]]
    with pytest.raises(ClientError) as err:
        ssm.describe_instance_patch_states_for_patch_group(
            PatchGroup="web", Filters=[{"Key": "Nope", "Values": ["1"], "Type": "Equal"}])
    assert err.value.response["Error"]["Code"] == "InvalidFilter"
    assert ssm.describe_instance_patch_states_for_patch_group(PatchGroup="none")["InstancePatchStates"] == []


def test_patch_groups_and_baselines(emu, ssm):
    default = ssm.get_patch_baseline_for_patch_group(PatchGroup="web", OperatingSystem="AMAZON_LINUX_2023")
    assert "pb-" in default["BaselineId"] and default["OperatingSystem"] == "AMAZON_LINUX_2023"
    assert ssm.get_patch_baseline_for_patch_group(PatchGroup="web")["OperatingSystem"] == "WINDOWS"
    bid = ssm.create_patch_baseline(Name="web-baseline", OperatingSystem="AMAZON_LINUX_2023",
                                    ApprovalRules={"PatchRules": [{"PatchFilterGroup": {"PatchFilters": [
                                        {"Key": "CLASSIFICATION", "Values": ["Security"]}]}, "ApproveAfterDays": 7}]})["BaselineId"]
    ssm.register_patch_baseline_for_patch_group(BaselineId=bid, PatchGroup="web")
    assert ssm.get_patch_baseline_for_patch_group(PatchGroup="web", OperatingSystem="AMAZON_LINUX_2023")["BaselineId"] == bid
    groups = ssm.describe_patch_groups()["Mappings"]
    assert groups == [{"PatchGroup": "web", "BaselineIdentity": {
        "BaselineId": bid, "BaselineName": "web-baseline", "OperatingSystem": "AMAZON_LINUX_2023",
        "BaselineDescription": "", "DefaultBaseline": False}}]
    assert ssm.describe_patch_groups(Filters=[{"Key": "NAME_PREFIX", "Values": ["db"]}])["Mappings"] == []


def _put(ssm, iid, ctype, items, upload="COMPLETE"):
    ssm.put_compliance_items(
        ResourceId=iid, ResourceType="ManagedInstance", ComplianceType=ctype,
        ExecutionSummary={"ExecutionTime": dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc), "ExecutionId": "exec-1", "ExecutionType": "Command"},
        Items=items, UploadType=upload,
    )


def test_put_and_list_compliance_items(emu, ec2, ssm):
    a, b = run(ec2, 2)
    emu.post("/_fleetops/ssm/agent", {"instance_id": a})
    _put(ssm, a, "Association", [
        {"Id": "assoc-1", "Title": "baseline", "Severity": "HIGH", "Status": "NON_COMPLIANT", "Details": {"DocumentName": "AWS-RunPatchBaseline"}},
        {"Id": "assoc-2", "Title": "agent", "Severity": "LOW", "Status": "COMPLIANT"},
    ])
    _put(ssm, b, "Custom:Antivirus", [{"Id": "av", "Title": "av", "Severity": "CRITICAL", "Status": "COMPLIANT"}])
    items = ssm.list_compliance_items(ResourceIds=[a], ResourceTypes=["ManagedInstance"])["ComplianceItems"]
    assert {i["Id"] for i in items} == {"assoc-1", "assoc-2"}
    item = next(i for i in items if i["Id"] == "assoc-1")
    assert item["ComplianceType"] == "Association" and item["ResourceId"] == a and item["Details"] == {"DocumentName": "AWS-RunPatchBaseline"}
    assert item["ExecutionSummary"]["ExecutionId"] == "exec-1"
    nc = ssm.list_compliance_items(Filters=[{"Key": "Status", "Values": ["NON_COMPLIANT"], "Type": "EQUAL"}])["ComplianceItems"]
    assert [i["Id"] for i in nc] == ["assoc-1"]
    custom = ssm.list_compliance_items(Filters=[{"Key": "ComplianceType", "Values": ["Custom:"], "Type": "BEGIN_WITH"}])["ComplianceItems"]
    assert [i["ResourceId"] for i in custom] == [b]
    _put(ssm, a, "Association", [{"Id": "assoc-3", "Title": "x", "Severity": "LOW", "Status": "COMPLIANT"}], upload="PARTIAL")
    assert len(ssm.list_compliance_items(ResourceIds=[a])["ComplianceItems"]) == 3
    _put(ssm, a, "Association", [{"Id": "assoc-3", "Title": "x", "Severity": "LOW", "Status": "COMPLIANT"}])
    assert len(ssm.list_compliance_items(ResourceIds=[a])["ComplianceItems"]) == 1


def test_put_compliance_errors(emu, ec2, ssm):
    iid = run(ec2, 1)[0]
    summary = {"ExecutionTime": dt.datetime(2024, 6, 1)}
    item = [{"Id": "x", "Severity": "LOW", "Status": "COMPLIANT"}]
    with pytest.raises(ClientError) as err:
        ssm.put_compliance_items(ResourceId=iid, ResourceType="Server", ComplianceType="Custom:AV", ExecutionSummary=summary, Items=item)
    assert err.value.response["Error"]["Code"] == "InvalidResourceType"
    with pytest.raises(ClientError) as err:
        ssm.put_compliance_items(ResourceId="i-0123456789abcdef0", ResourceType="ManagedInstance", ComplianceType="Custom:AV", ExecutionSummary=summary, Items=item)
    assert err.value.response["Error"]["Code"] == "InvalidResourceId"
    raw = emu.client("ssm", validate=False)
    with pytest.raises(ClientError) as err:
        raw.put_compliance_items(ResourceId=iid, ResourceType="ManagedInstance", ComplianceType="Custom:AV", ExecutionSummary=summary,
                                 Items=[{"Id": "x", "Severity": "SEVERE", "Status": "COMPLIANT"}])
    assert err.value.response["Error"]["Code"] == "InvalidItemContentException"
    with pytest.raises(ClientError) as err:
        ssm.list_compliance_items(Filters=[{"Key": "Color", "Values": ["red"]}])
    assert err.value.response["Error"]["Code"] == "InvalidFilter"


def test_patch_state_feeds_patch_compliance_and_summaries(emu, ec2, ssm):
    ok, bad, worse = run(ec2, 3)
    _seed(emu, ok, InstalledCount=5)
    _seed(emu, bad, MissingCount=2, SecurityNonCompliantCount=2, InstalledCount=1)
    _seed(emu, worse, MissingCount=3, CriticalNonCompliantCount=1, OtherNonCompliantCount=2)
    res = {s["ResourceId"]: s for s in ssm.list_resource_compliance_summaries(
        Filters=[{"Key": "ComplianceType", "Values": ["Patch"]}])["ResourceComplianceSummaryItems"]}
    assert res[ok]["Status"] == "COMPLIANT" and res[ok]["CompliantSummary"]["CompliantCount"] == 5
    assert res[bad]["Status"] == "NON_COMPLIANT" and res[bad]["OverallSeverity"] == "HIGH"
    assert res[bad]["NonCompliantSummary"]["NonCompliantCount"] == 2
    assert res[worse]["OverallSeverity"] == "CRITICAL"
    assert res[worse]["NonCompliantSummary"]["SeveritySummary"]["CriticalCount"] == 1
    items = ssm.list_compliance_items(ResourceIds=[worse], Filters=[{"Key": "ComplianceType", "Values": ["Patch"]}])["ComplianceItems"]
    assert len(items) == 3 and all(i["Status"] == "NON_COMPLIANT" for i in items)
    summary = ssm.list_compliance_summaries()["ComplianceSummaryItems"]
    patch = next(s for s in summary if s["ComplianceType"] == "Patch")
    assert patch["CompliantSummary"]["CompliantCount"] == 1
    assert patch["NonCompliantSummary"]["NonCompliantCount"] == 2
    assert patch["NonCompliantSummary"]["SeveritySummary"]["CriticalCount"] == 1
    assert patch["NonCompliantSummary"]["SeveritySummary"]["HighCount"] == 1
    crit = ssm.list_resource_compliance_summaries(Filters=[{"Key": "OverallSeverity", "Values": ["CRITICAL"]}])
    assert [s["ResourceId"] for s in crit["ResourceComplianceSummaryItems"]] == [worse]


def test_compliance_paging(emu, ec2, ssm):
    ids = run(ec2, 12)
    for i in ids:
        _seed(emu, i, InstalledCount=1)
    first = ssm.list_resource_compliance_summaries()
    assert len(first["ResourceComplianceSummaryItems"]) == 10 and first["NextToken"]
    second = ssm.list_resource_compliance_summaries(NextToken=first["NextToken"])
    assert len(second["ResourceComplianceSummaryItems"]) == 2 and "NextToken" not in second
    paged = ssm.get_paginator("list_compliance_items").paginate(PaginationConfig={"PageSize": 5})
    assert sum(len(p["ComplianceItems"]) for p in paged) == 12
    raw = emu.client("ssm", validate=False)
    with pytest.raises(ClientError) as err:
        raw.list_compliance_summaries(MaxResults=51)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as err:
        ssm.list_compliance_summaries(NextToken="junk")
    assert err.value.response["Error"]["Code"] == "InvalidNextToken"
