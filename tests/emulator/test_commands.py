"""SSM Run Command: SendCommand validation, outcomes, invocations, events, patch state."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from conftest import run

PATCH = "AWS-RunPatchBaseline"
INVOCATION_EVENT = "EC2 Command Invocation Status-change Notification"
COMMAND_EVENT = "EC2 Command Status-change Notification"


def _fleet(emu, ec2, n=3, group="web", **agent):
    ids = run(ec2, n, {"Patch Group": group})
    for i in ids:
        emu.post("/_fleetops/ssm/agent", {"instance_id": i, **agent})
    return ids


def test_send_to_unregistered_instance_is_invalid_instance_id(emu, ec2, ssm):
    iid = run(ec2, 1)[0]
    emu.post("/_fleetops/ssm/agent", {"instance_id": iid, "online_after_seconds": 120})
    with pytest.raises(ClientError) as err:
        ssm.send_command(DocumentName=PATCH, InstanceIds=[iid], Parameters={"Operation": ["Install"]})
    assert err.value.response["Error"]["Code"] == "InvalidInstanceId"
    assert iid in err.value.response["Error"]["Message"]
    emu.post("/_fleetops/clock/advance", {"seconds": 121})
    cmd = ssm.send_command(DocumentName=PATCH, InstanceIds=[iid], Parameters={"Operation": ["Install"]})["Command"]
    assert cmd["Status"] == "Pending" and cmd["InstanceIds"] == [iid]


def test_send_by_tag_target_with_space_records_everything(emu, ec2, ssm):
    web = _fleet(emu, ec2, 3, "web")
    _fleet(emu, ec2, 2, "db")
    run(ec2, 1, {"Patch Group": "web"})  # no agent: not targeted
    cmd = ssm.send_command(
        DocumentName=PATCH,
        Targets=[{"Key": "tag:Patch Group", "Values": ["web"]}],
        Parameters={"Operation": ["Install"], "RebootOption": ["RebootIfNeeded"], "SnapshotId": ["snap-1"]},
        MaxConcurrency="10%",
        MaxErrors="1",
        Comment="scale-out",
    )["Command"]
    assert cmd["MaxConcurrency"] == "10%" and cmd["MaxErrors"] == "1"
    assert cmd["Targets"] == [{"Key": "tag:Patch Group", "Values": ["web"]}]
    recorded = emu.get("/_fleetops/ssm/commands")["commands"]
    assert len(recorded) == 1
    rec = recorded[0]
    assert rec["command_id"] == cmd["CommandId"] and rec["document_name"] == PATCH
    assert sorted(rec["instance_ids"]) == sorted(web)
    assert rec["parameters"]["Operation"] == ["Install"] and rec["max_concurrency"] == "10%"
    assert rec["targets"] == [{"Key": "tag:Patch Group", "Values": ["web"]}]
    assert rec["requested_time"].endswith("Z")
    listed = ssm.list_commands(CommandId=cmd["CommandId"])["Commands"][0]
    assert listed["TargetCount"] == 3 and listed["Status"] == "Success" and listed["CompletedCount"] == 3


def test_send_command_validation(emu, ec2, ssm):
    iid = _fleet(emu, ec2, 1)[0]
    cases = [
        (dict(DocumentName=PATCH, InstanceIds=[iid], Parameters={"Operation": ["Reinstall"]}), "InvalidParameters"),
        (dict(DocumentName=PATCH, InstanceIds=[iid], Parameters={"Operation": ["Scan"], "Bogus": ["x"]}), "InvalidParameters"),
        (dict(DocumentName="NoSuchDoc", InstanceIds=[iid]), "InvalidDocument"),
        (dict(DocumentName=PATCH, InstanceIds=[iid, iid], Parameters={"Operation": ["Scan"]}), "DuplicateInstanceId"),
        (dict(DocumentName=PATCH, InstanceIds=[iid], Parameters={"Operation": ["Scan"]}, MaxConcurrency="0"), "ValidationException"),
        (dict(DocumentName=PATCH, InstanceIds=[iid], Parameters={"Operation": ["Scan"]}, MaxErrors="-1"), "ValidationException"),
        (dict(DocumentName=PATCH, Parameters={"Operation": ["Scan"]}), "ValidationException"),
    ]
    raw = emu.client("ssm", validate=False)
    for kwargs, code in cases:
        with pytest.raises(ClientError) as err:
            raw.send_command(**kwargs)
        assert err.value.response["Error"]["Code"] == code, kwargs


def test_outcomes_statuses_and_invocation_timing(emu, ec2, ssm):
    ok, bad, slow = _fleet(emu, ec2, 3)
    emu.post("/_fleetops/ssm/command-outcome", {"instance_id": bad, "status": "Failed"})
    emu.post("/_fleetops/ssm/command-outcome", {"instance_id": slow, "status": "TimedOut", "after_seconds": 600})
    cmd = ssm.send_command(DocumentName=PATCH, InstanceIds=[ok, bad, slow], Parameters={"Operation": ["Install"]},
                           MaxErrors="0")["Command"]
    cid = cmd["CommandId"]
    assert ssm.get_command_invocation(CommandId=cid, InstanceId=ok)["Status"] == "Success"
    failed = ssm.get_command_invocation(CommandId=cid, InstanceId=bad)
    assert failed["Status"] == "Failed" and failed["ResponseCode"] == 1 and failed["PluginName"] == "PatchLinux"
    running = ssm.get_command_invocation(CommandId=cid, InstanceId=slow)
    assert running["Status"] == "InProgress" and running["ExecutionEndDateTime"] == ""
    assert ssm.list_commands(CommandId=cid)["Commands"][0]["Status"] == "InProgress"
    emu.post("/_fleetops/clock/advance", {"seconds": 601})
    timed = ssm.get_command_invocation(CommandId=cid, InstanceId=slow)
    assert timed["Status"] == "TimedOut" and timed["StatusDetails"] == "ExecutionTimedOut"
    c = ssm.list_commands(CommandId=cid)["Commands"][0]
    assert c["Status"] == "Failed" and c["ErrorCount"] == 2 and c["CompletedCount"] == 3
    with pytest.raises(ClientError) as err:
        ssm.get_command_invocation(CommandId=cid, InstanceId=ok, PluginName="aws:runShellScript")
    assert err.value.response["Error"]["Code"] == "InvalidPluginName"


def test_max_errors_allows_failures(emu, ec2, ssm):
    a, b = _fleet(emu, ec2, 2)
    emu.post("/_fleetops/ssm/command-outcome", {"instance_id": b, "status": "Failed"})
    cid = ssm.send_command(DocumentName=PATCH, InstanceIds=[a, b], Parameters={"Operation": ["Scan"]},
                           MaxErrors="1")["Command"]["CommandId"]
    assert ssm.list_commands(CommandId=cid)["Commands"][0]["Status"] == "Success"


def test_max_concurrency_serialises_invocations(emu, ec2, ssm):
    ids = _fleet(emu, ec2, 3)
    for i in ids:
        emu.post("/_fleetops/ssm/command-outcome", {"instance_id": i, "status": "Success", "after_seconds": 100})
    cid = ssm.send_command(DocumentName=PATCH, InstanceIds=ids, Parameters={"Operation": ["Scan"]},
                           MaxConcurrency="1")["Command"]["CommandId"]
    statuses = lambda: sorted(i["Status"] for i in ssm.list_command_invocations(CommandId=cid)["CommandInvocations"])
    assert statuses() == ["InProgress", "Pending", "Pending"]
    emu.post("/_fleetops/clock/advance", {"seconds": 150})
    assert statuses() == ["InProgress", "Pending", "Success"]
    emu.post("/_fleetops/clock/advance", {"seconds": 200})
    assert statuses() == ["Success", "Success", "Success"]


def test_invocation_does_not_exist_right_after_send(emu, ec2, ssm):
    a, b = _fleet(emu, ec2, 2)
    emu.post("/_fleetops/ssm/command-outcome", {"instance_id": a, "not_found_polls": 2})
    emu.post("/_fleetops/ssm/command-outcome", {"instance_id": b, "visible_after_seconds": 5})
    cid = ssm.send_command(DocumentName=PATCH, InstanceIds=[a, b], Parameters={"Operation": ["Scan"]})["Command"]["CommandId"]
    for _ in range(2):
        with pytest.raises(ClientError) as err:
            ssm.get_command_invocation(CommandId=cid, InstanceId=a)
        assert err.value.response["Error"]["Code"] == "InvocationDoesNotExist"
    assert ssm.get_command_invocation(CommandId=cid, InstanceId=a)["Status"] == "Success"
    with pytest.raises(ClientError):
        ssm.get_command_invocation(CommandId=cid, InstanceId=b)
    assert [i["InstanceId"] for i in ssm.list_command_invocations(CommandId=cid)["CommandInvocations"]] == [a]
    emu.post("/_fleetops/clock/advance", {"seconds": 5})
    assert ssm.get_command_invocation(CommandId=cid, InstanceId=b)["Status"] == "Success"
    with pytest.raises(ClientError) as err:
        ssm.get_command_invocation(CommandId="00000000-0000-0000-0000-000000000000", InstanceId=a)
    assert err.value.response["Error"]["Code"] == "InvocationDoesNotExist"


def test_connection_lost_agent_delivery_times_out(emu, ec2, ssm):
    iid = _fleet(emu, ec2, 1, ping_status="ConnectionLost")[0]
    cid = ssm.send_command(DocumentName=PATCH, InstanceIds=[iid], Parameters={"Operation": ["Scan"]},
                           TimeoutSeconds=60)["Command"]["CommandId"]
    assert ssm.get_command_invocation(CommandId=cid, InstanceId=iid)["Status"] == "Pending"
    emu.post("/_fleetops/clock/advance", {"seconds": 61})
    inv = ssm.get_command_invocation(CommandId=cid, InstanceId=iid)
    assert inv["Status"] == "TimedOut" and inv["StatusDetails"] == "DeliveryTimedOut"
    c = ssm.list_commands(CommandId=cid)["Commands"][0]
    assert c["DeliveryTimedOutCount"] == 1 and c["Status"] == "TimedOut"


def test_a_stopped_instance_started_before_the_timeout_gets_the_command(emu, ec2, ssm):
    # AWS keeps an undelivered invocation Pending/Delayed and delivers it when
    # the node is reachable again, until the delivery timeout.
    woken, asleep = _fleet(emu, ec2, 2)
    ec2.stop_instances(InstanceIds=[woken, asleep])
    cid = ssm.send_command(DocumentName=PATCH, Targets=[{"Key": "tag:Patch Group", "Values": ["web"]}],
                           Parameters={"Operation": ["Install"]}, TimeoutSeconds=600)["Command"]["CommandId"]
    assert ssm.get_command_invocation(CommandId=cid, InstanceId=woken)["Status"] == "Pending"
    ec2.start_instances(InstanceIds=[woken])
    emu.post("/_fleetops/clock/advance", {"seconds": 30})
    assert ssm.get_command_invocation(CommandId=cid, InstanceId=woken)["Status"] == "Success"
    assert ssm.get_command_invocation(CommandId=cid, InstanceId=asleep)["Status"] == "Pending"
    emu.post("/_fleetops/clock/advance", {"seconds": 600})
    late = ssm.get_command_invocation(CommandId=cid, InstanceId=asleep)
    assert (late["Status"], late["StatusDetails"]) == ("TimedOut", "DeliveryTimedOut")
    ec2.start_instances(InstanceIds=[asleep])
    assert ssm.get_command_invocation(CommandId=cid, InstanceId=asleep)["Status"] == "TimedOut"


def test_list_command_invocations_filters_details_paging(emu, ec2, ssm):
    ids = _fleet(emu, ec2, 7)
    emu.post("/_fleetops/ssm/command-outcome", {"instance_id": ids[0], "status": "Failed", "document_name": PATCH})
    c1 = ssm.send_command(DocumentName=PATCH, InstanceIds=ids, Parameters={"Operation": ["Scan"]}, MaxErrors="7")["Command"]["CommandId"]
    c2 = ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=ids[:2], Parameters={"commands": ["uptime"]})["Command"]["CommandId"]
    all_invs = ssm.list_command_invocations()["CommandInvocations"]
    assert len(all_invs) == 9 and all_invs[0]["CommandId"] == c2  # newest first
    assert all_invs[0]["CommandPlugins"] == []
    detailed = ssm.list_command_invocations(CommandId=c1, InstanceId=ids[0], Details=True)["CommandInvocations"]
    plugin = detailed[0]["CommandPlugins"][0]
    assert plugin["Name"] == "PatchLinux" and plugin["Status"] == "Failed" and plugin["ResponseCode"] == 1
    failed = ssm.list_command_invocations(Filters=[{"key": "Status", "value": "Failed"}])["CommandInvocations"]
    assert [(i["CommandId"], i["InstanceId"]) for i in failed] == [(c1, ids[0])]
    shell = ssm.list_command_invocations(Filters=[{"key": "DocumentName", "value": "AWS-RunShellScript"}])
    assert len(shell["CommandInvocations"]) == 2
    seen, token = [], None
    while True:
        kw = {"CommandId": c1, "MaxResults": 3}
        if token:
            kw["NextToken"] = token
        page = ssm.list_command_invocations(**kw)
        seen += [i["InstanceId"] for i in page["CommandInvocations"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == sorted(ids)
    with pytest.raises(ClientError) as err:
        ssm.list_command_invocations(Filters=[{"key": "ExecutionStage", "value": "Complete"}])
    assert err.value.response["Error"]["Code"] == "InvalidFilterKey"
    with pytest.raises(ClientError) as err:
        ssm.list_command_invocations(CommandId="00000000-0000-0000-0000-000000000000")
    assert err.value.response["Error"]["Code"] == "InvalidCommandId"
    done = ssm.list_commands(Filters=[{"key": "ExecutionStage", "value": "Complete"}])["Commands"]
    assert {c["CommandId"] for c in done} == {c1, c2}
    mine = ssm.list_commands(InstanceId=ids[5])["Commands"]
    assert [c["CommandId"] for c in mine] == [c1]
    page1 = ssm.list_commands(MaxResults=1)
    assert page1["Commands"][0]["CommandId"] == c2 and page1["NextToken"]
    assert ssm.list_commands(MaxResults=1, NextToken=page1["NextToken"])["Commands"][0]["CommandId"] == c1


def test_cancel_command(emu, ec2, ssm):
    iid = _fleet(emu, ec2, 1)[0]
    emu.post("/_fleetops/ssm/command-outcome", {"instance_id": iid, "after_seconds": 100})
    cid = ssm.send_command(DocumentName=PATCH, InstanceIds=[iid], Parameters={"Operation": ["Scan"]})["Command"]["CommandId"]
    ssm.cancel_command(CommandId=cid)
    assert ssm.get_command_invocation(CommandId=cid, InstanceId=iid)["Status"] == "Cancelled"
    assert ssm.list_commands(CommandId=cid)["Commands"][0]["Status"] == "Cancelled"


def test_invocation_events_in_eventbridge_envelope(emu, ec2, ssm):
    ok, slow = _fleet(emu, ec2, 2)
    emu.post("/_fleetops/ssm/command-outcome", {"instance_id": slow, "status": "Failed", "after_seconds": 30})
    cid = ssm.send_command(DocumentName=PATCH, InstanceIds=[ok, slow], Parameters={"Operation": ["Install"]})["Command"]["CommandId"]
    evs = emu.get("/_fleetops/events?source=aws.ssm")["events"]
    assert len(evs) == 1
    ev = evs[0]
    assert set(ev) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert ev["detail-type"] == "EC2 Command Invocation Status-change Notification"
    assert ev["region"] == "us-east-1" and ev["account"] == "123456789012"
    assert ev["resources"] == [f"arn:aws:ec2:us-east-1:123456789012:instance/{ok}"]
    d = ev["detail"]
    assert d["command-id"] == cid and d["document-name"] == PATCH and d["instance-id"] == ok
    assert d["status"] == "Success" and d["status-details"] == "Success" and d["requested-date-time"].endswith("Z")
    emu.post("/_fleetops/clock/advance", {"seconds": 31})
    evs = emu.get(f"/_fleetops/events?source=aws.ssm&detail-type={INVOCATION_EVENT.replace(' ', '%20')}")["events"]
    assert [(e["detail"]["instance-id"], e["detail"]["status"]) for e in evs] == [(ok, "Success"), (slow, "Failed")]
    emu.post("/_fleetops/events/reset")
    assert emu.get("/_fleetops/events")["events"] == []


def test_install_updates_patch_state(emu, ec2, ssm):
    good, bad = _fleet(emu, ec2, 2)
    for iid in (good, bad):
        emu.post("/_fleetops/ssm/patch-state", {"InstanceId": iid, "MissingCount": 3, "CriticalNonCompliantCount": 1,
                                                 "InstalledCount": 10, "OperationEndTime": "2024-01-01T00:00:00Z"})
    emu.post("/_fleetops/ssm/command-outcome", {"instance_id": bad, "status": "Failed"})
    cmd = ssm.send_command(DocumentName=PATCH, InstanceIds=[good, bad],
                           Parameters={"Operation": ["Install"], "RebootOption": ["RebootIfNeeded"]}, MaxErrors="1")["Command"]
    states = {s["InstanceId"]: s for s in ssm.describe_instance_patch_states(InstanceIds=[good, bad])["InstancePatchStates"]}
    g, b = states[good], states[bad]
    assert g["Operation"] == "Install" and g["OperationEndTime"] > cmd["RequestedDateTime"]
    assert g["FailedCount"] == 0 and g["MissingCount"] == 0 and g["InstalledCount"] == 13
    assert g["PatchGroup"] == "web" and g["BaselineId"].startswith("pb-")
    assert b["Operation"] == "Install" and b["FailedCount"] > 0
    assert b["OperationEndTime"] > cmd["RequestedDateTime"]


def test_outcome_can_override_resulting_patch_state(emu, ec2, ssm):
    iid = _fleet(emu, ec2, 1)[0]
    emu.post("/_fleetops/ssm/command-outcome", {"instance_id": iid, "patch_state": {"MissingCount": 2}})
    ssm.send_command(DocumentName=PATCH, InstanceIds=[iid], Parameters={"Operation": ["Install"]})
    st = ssm.describe_instance_patch_states(InstanceIds=[iid])["InstancePatchStates"][0]
    assert st["Operation"] == "Install" and st["MissingCount"] == 2


def test_outcome_control_validation(emu):
    status, _ = emu.call("POST", "/_fleetops/ssm/command-outcome", {"instance_id": "i-1", "status": "Maybe"})
    assert status == 400
    status, _ = emu.call("POST", "/_fleetops/ssm/command-outcome", {"status": "Failed"})
    assert status == 400


def _events(emu, detail_type):
    return emu.get(f"/_fleetops/events?source=aws.ssm&detail-type={detail_type.replace(' ', '%20')}")["events"]


def test_command_event_once_at_the_final_status(emu, ec2, ssm):
    a, b, c = _fleet(emu, ec2, 3)
    emu.post("/_fleetops/ssm/command-outcome", {"instance_id": b, "after_seconds": 20})
    emu.post("/_fleetops/ssm/command-outcome", {"instance_id": c, "status": "Failed", "after_seconds": 40})
    cmd = ssm.send_command(DocumentName=PATCH, InstanceIds=[a, b, c], TimeoutSeconds=600,
                           Parameters={"Operation": ["Install"], "RebootOption": ["NoReboot"]},
                           MaxErrors="0")["Command"]
    cid = cmd["CommandId"]
    assert _events(emu, COMMAND_EVENT) == []  # a finished, the command has not
    emu.post("/_fleetops/clock/advance", {"seconds": 25})
    assert _events(emu, COMMAND_EVENT) == []
    emu.post("/_fleetops/clock/advance", {"seconds": 30})
    emu.post("/_fleetops/clock/advance", {"seconds": 30})  # later ticks add nothing
    evs = _events(emu, COMMAND_EVENT)
    assert len(evs) == 1
    ev = evs[0]
    assert set(ev) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert ev["source"] == "aws.ssm" and ev["account"] == "123456789012" and ev["region"] == "us-east-1"
    assert sorted(ev["resources"]) == sorted(f"arn:aws:ec2:us-east-1:123456789012:instance/{i}" for i in (a, b, c))
    d = ev["detail"]
    # The fields of AWS's sample "Run Command status change", nothing else.
    assert set(d) == {"command-id", "document-name", "expire-after", "parameters", "requested-date-time", "status"}
    assert d["command-id"] == cid and d["document-name"] == PATCH
    assert d["parameters"] == {"Operation": ["Install"], "RebootOption": ["NoReboot"]}
    assert d["status"] == "Failed"  # one failure > MaxErrors 0
    listed = ssm.list_commands(CommandId=cid)["Commands"][0]
    assert listed["Status"] == "Failed"
    assert d["requested-date-time"] == listed["RequestedDateTime"].strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{listed['RequestedDateTime'].microsecond // 1000:03d}Z"
    assert d["expire-after"] == listed["ExpiresAfter"].strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{listed['ExpiresAfter'].microsecond // 1000:03d}Z"
    # time = when the last invocation ended (c, 40 s after it was sent), and it comes
    # after every invocation event of the command.
    last_inv = ssm.get_command_invocation(CommandId=cid, InstanceId=c)
    assert ev["time"] == last_inv["ExecutionEndDateTime"][:19] + "Z"
    everything = emu.get("/_fleetops/events?source=aws.ssm")["events"]
    assert [e["detail-type"] for e in everything] == [INVOCATION_EVENT] * 3 + [COMMAND_EVENT]
    assert [e["detail"]["status"] for e in _events(emu, INVOCATION_EVENT)] == ["Success", "Success", "Failed"]


def test_command_event_status_follows_the_command(emu, ec2, ssm):
    ok, lost, slow = _fleet(emu, ec2, 3)
    emu.post("/_fleetops/ssm/agent", {"instance_id": lost, "ping_status": "ConnectionLost"})
    emu.post("/_fleetops/ssm/command-outcome", {"instance_id": slow, "after_seconds": 100})
    # Success within MaxErrors.
    c1 = ssm.send_command(DocumentName=PATCH, InstanceIds=[ok], Parameters={"Operation": ["Scan"]})["Command"]["CommandId"]
    # Only delivery time-outs beyond MaxErrors: TimedOut.
    c2 = ssm.send_command(DocumentName=PATCH, InstanceIds=[lost], Parameters={"Operation": ["Scan"]},
                          TimeoutSeconds=60)["Command"]["CommandId"]
    # Cancelled while one invocation is still running.
    c3 = ssm.send_command(DocumentName=PATCH, InstanceIds=[ok, slow], Parameters={"Operation": ["Scan"]})["Command"]["CommandId"]
    ssm.cancel_command(CommandId=c3)
    # Targets that match nothing: final at once.
    c4 = ssm.send_command(DocumentName=PATCH, Targets=[{"Key": "tag:Patch Group", "Values": ["nobody"]}],
                          Parameters={"Operation": ["Scan"]})["Command"]["CommandId"]
    emu.post("/_fleetops/clock/advance", {"seconds": 61})
    status = {e["detail"]["command-id"]: e["detail"]["status"] for e in _events(emu, COMMAND_EVENT)}
    assert status == {c1: "Success", c2: "TimedOut", c3: "Cancelled", c4: "Success"}
    for cid, expected in status.items():
        assert ssm.list_commands(CommandId=cid)["Commands"][0]["Status"] == expected
    assert [e["resources"] for e in _events(emu, COMMAND_EVENT) if e["detail"]["command-id"] == c4] == [[]]


def test_list_commands_instance_document_and_time_together(emu, ec2, ssm):
    a, b = _fleet(emu, ec2, 2)
    old = ssm.send_command(DocumentName=PATCH, InstanceIds=[a], Parameters={"Operation": ["Scan"]},
                           Comment="before")["Command"]
    emu.post("/_fleetops/clock/advance", {"seconds": 120})
    cutoff = emu.get("/_fleetops/clock")["now"]
    emu.post("/_fleetops/clock/advance", {"seconds": 1})
    mine = ssm.send_command(DocumentName=PATCH, InstanceIds=[a, b], Parameters={"Operation": ["Install"]},
                            Comment="launch i-a")["Command"]
    shell = ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[a], Parameters={"commands": ["uptime"]})["Command"]
    by_tag = ssm.send_command(DocumentName=PATCH, Targets=[{"Key": "InstanceIds", "Values": [b]}],
                              Parameters={"Operation": ["Install"]})["Command"]
    filters = [{"key": "DocumentName", "value": PATCH}, {"key": "InvokedAfter", "value": cutoff}]
    got = ssm.list_commands(InstanceId=a, Filters=filters)["Commands"]
    assert [c["CommandId"] for c in got] == [mine["CommandId"]]
    c = got[0]
    assert c["Comment"] == "launch i-a" and c["InstanceIds"] == [a, b] and c["Targets"] == []
    assert c["Parameters"] == {"Operation": ["Install"]} and c["Status"] == "Success"
    assert c["RequestedDateTime"].timestamp() > old["RequestedDateTime"].timestamp()
    # b: the instance-id command and the Targets one (which lists Targets, no InstanceIds).
    got_b = ssm.list_commands(InstanceId=b, Filters=filters)["Commands"]
    assert [x["CommandId"] for x in got_b] == [by_tag["CommandId"], mine["CommandId"]]
    assert got_b[0]["Targets"] == [{"Key": "InstanceIds", "Values": [b]}] and got_b[0]["InstanceIds"] == []
    # Before the cutoff only the old one; another document only the shell one.
    before = ssm.list_commands(InstanceId=a, Filters=[{"key": "InvokedBefore", "value": cutoff}])["Commands"]
    assert [x["CommandId"] for x in before] == [old["CommandId"]]
    other = ssm.list_commands(InstanceId=a, Filters=[{"key": "DocumentName", "value": "AWS-RunShellScript"}])
    assert [x["CommandId"] for x in other["Commands"]] == [shell["CommandId"]]
    # Limits of the API reference: MaxResults 1..50, at most 5 filters, the InstanceId pattern.
    raw = emu.client("ssm", validate=False)  # the SDK checks the range (and the list's length) itself
    for bad in ({"MaxResults": 0}, {"MaxResults": 51}, {"Filters": filters * 3}, {"InstanceId": "web-1"}):
        with pytest.raises(ClientError) as err:
            raw.list_commands(**bad)
        assert err.value.response["Error"]["Code"] == "ValidationException", bad
    assert len(ssm.list_commands(MaxResults=50)["Commands"]) == 4
