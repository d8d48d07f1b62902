"""Auto Scaling launch lifecycle hooks, lifecycle events, warm pools."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from conftest import AMI, describe

HOOK = "fleetops-patch"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"


def _group(asg, name="web", desired=0, hook=True, timeout=600, default="ABANDON", metadata='{"patch": true}'):
    asg.create_launch_configuration(LaunchConfigurationName=f"{name}-lc", ImageId=AMI, InstanceType="t3.micro")
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchConfigurationName=f"{name}-lc", MinSize=0, MaxSize=5,
        DesiredCapacity=0, AvailabilityZones=["us-east-1a"],
        Tags=[{"Key": "Patch Group", "Value": name, "PropagateAtLaunch": True}],
    )
    if hook:
        kw = {"NotificationMetadata": metadata} if metadata is not None else {}
        asg.put_lifecycle_hook(AutoScalingGroupName=name, LifecycleHookName=HOOK, LifecycleTransition=LAUNCHING,
                               HeartbeatTimeout=timeout, DefaultResult=default, **kw)
    if desired:
        asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=desired)


def _states(asg, name="web"):
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return {i["InstanceId"]: i["LifecycleState"] for i in g["Instances"]}


def _launch_events(emu):
    return emu.get("/_fleetops/events?source=aws.autoscaling")["events"]


def test_scale_out_waits_and_emits_lifecycle_event(emu, asg):
    _group(asg)
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=2)
    states = _states(asg)
    assert list(states.values()) == ["Pending:Wait", "Pending:Wait"]
    per_instance = {i["InstanceId"]: i["LifecycleState"] for i in asg.describe_auto_scaling_instances()["AutoScalingInstances"]}
    assert per_instance == states
    evs = _launch_events(emu)
    assert len(evs) == 2
    ev = evs[0]
    assert ev["detail-type"] == "EC2 Instance-launch Lifecycle Action" and ev["source"] == "aws.autoscaling"
    assert ev["resources"][0].startswith("arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:")
    d = ev["detail"]
    assert d["AutoScalingGroupName"] == "web" and d["LifecycleHookName"] == HOOK
    assert d["LifecycleTransition"] == LAUNCHING and d["NotificationMetadata"] == '{"patch": true}'
    assert d["Origin"] == "EC2" and d["Destination"] == "AutoScalingGroup"
    assert d["EC2InstanceId"] in states and len(d["LifecycleActionToken"]) == 36
    hooks = asg.describe_lifecycle_hooks(AutoScalingGroupName="web")["LifecycleHooks"]
    assert hooks[0]["NotificationMetadata"] == '{"patch": true}' and hooks[0]["HeartbeatTimeout"] == 600


def test_hooks_given_at_group_creation_apply_to_initial_instances(emu, asg):
    asg.create_launch_configuration(LaunchConfigurationName="lc", ImageId=AMI, InstanceType="t3.micro")
    asg.create_auto_scaling_group(
        AutoScalingGroupName="api", LaunchConfigurationName="lc", MinSize=1, MaxSize=3, DesiredCapacity=1,
        AvailabilityZones=["us-east-1a"],
        LifecycleHookSpecificationList=[{"LifecycleHookName": HOOK, "LifecycleTransition": LAUNCHING,
                                         "HeartbeatTimeout": 300, "DefaultResult": "CONTINUE"}],
    )
    assert list(_states(asg, "api").values()) == ["Pending:Wait"]
    assert "NotificationMetadata" not in _launch_events(emu)[0]["detail"]


def test_complete_continue_by_instance_then_second_completion_fails(emu, asg):
    _group(asg, desired=1)
    iid = next(iter(_states(asg)))
    asg.complete_lifecycle_action(AutoScalingGroupName="web", LifecycleHookName=HOOK, InstanceId=iid,
                                  LifecycleActionResult="CONTINUE")
    assert _states(asg) == {iid: "InService"}
    with pytest.raises(ClientError) as err:
        asg.complete_lifecycle_action(AutoScalingGroupName="web", LifecycleHookName=HOOK, InstanceId=iid,
                                      LifecycleActionResult="CONTINUE")
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert err.value.response["Error"]["Message"] == f"No active Lifecycle Action found with instance ID {iid}"
    log = emu.get("/_fleetops/autoscaling/lifecycle-actions")
    assert [(a["kind"], a["instance_id"], a["result"], a["by"]) for a in log["actions"]] == [("complete", iid, "CONTINUE", "instance_id")]
    assert log["pending"] == []


def test_abandon_by_token_terminates_and_replaces(emu, ec2, asg):
    _group(asg, desired=1)
    ev = _launch_events(emu)[0]["detail"]
    token, iid = ev["LifecycleActionToken"], ev["EC2InstanceId"]
    asg.record_lifecycle_action_heartbeat(AutoScalingGroupName="web", LifecycleHookName=HOOK, LifecycleActionToken=token)
    asg.complete_lifecycle_action(AutoScalingGroupName="web", LifecycleHookName=HOOK, LifecycleActionToken=token,
                                  LifecycleActionResult="ABANDON")
    assert describe(ec2, iid)["State"]["Name"] == "terminated"
    states = _states(asg)
    assert iid not in states and list(states.values()) == ["Pending:Wait"]  # the replacement waits too
    with pytest.raises(ClientError) as err:
        asg.complete_lifecycle_action(AutoScalingGroupName="web", LifecycleHookName=HOOK, LifecycleActionToken=token,
                                      LifecycleActionResult="CONTINUE")
    assert err.value.response["Error"]["Message"] == f"No active Lifecycle Action found with token {token}"
    kinds = [(a["kind"], a["token"], a["result"]) for a in emu.get("/_fleetops/autoscaling/lifecycle-actions")["actions"]]
    assert kinds == [("heartbeat", token, None), ("complete", token, "ABANDON")]
    assert len(_launch_events(emu)) == 2


def test_lifecycle_action_errors(emu, asg):
    _group(asg, desired=1)
    iid = next(iter(_states(asg)))
    for kwargs in (
        dict(AutoScalingGroupName="web", LifecycleHookName="nope", InstanceId=iid, LifecycleActionResult="CONTINUE"),
        dict(AutoScalingGroupName="nope", LifecycleHookName=HOOK, InstanceId=iid, LifecycleActionResult="CONTINUE"),
        dict(AutoScalingGroupName="web", LifecycleHookName=HOOK, InstanceId=iid, LifecycleActionResult="MAYBE"),
        dict(AutoScalingGroupName="web", LifecycleHookName=HOOK, LifecycleActionResult="CONTINUE"),
        dict(AutoScalingGroupName="web", LifecycleHookName=HOOK, InstanceId="i-0123456789abcdef0", LifecycleActionResult="CONTINUE"),
    ):
        with pytest.raises(ClientError) as err:
            asg.complete_lifecycle_action(**kwargs)
        assert err.value.response["Error"]["Code"] == "ValidationError"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError):
        asg.record_lifecycle_action_heartbeat(AutoScalingGroupName="web", LifecycleHookName=HOOK, InstanceId="i-0123456789abcdef0")


def test_heartbeat_timeout_applies_default_result(emu, asg):
    _group(asg, desired=1, timeout=30, default="CONTINUE")
    iid = next(iter(_states(asg)))
    emu.post("/_fleetops/clock/advance", {"seconds": 20})
    asg.record_lifecycle_action_heartbeat(AutoScalingGroupName="web", LifecycleHookName=HOOK, InstanceId=iid)
    emu.post("/_fleetops/clock/advance", {"seconds": 20})
    assert _states(asg) == {iid: "Pending:Wait"}  # heartbeat extended it
    emu.post("/_fleetops/clock/advance", {"seconds": 15})
    assert _states(asg) == {iid: "InService"}
    assert emu.get("/_fleetops/autoscaling/lifecycle-actions")["actions"][-1]["kind"] == "timeout"


def test_no_hook_means_in_service(emu, asg):
    _group(asg, desired=2, hook=False)
    assert set(_states(asg).values()) == {"InService"}
    assert _launch_events(emu) == []


def test_update_group_does_not_relaunch_waiting_instances(emu, asg):
    _group(asg, desired=1)
    asg.update_auto_scaling_group(AutoScalingGroupName="web", MaxSize=4)
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=1)
    assert len(_states(asg)) == 1 and len(_launch_events(emu)) == 1


def test_launch_helper_and_warm_pool(emu, ec2, asg):
    _group(asg)
    asg.put_warm_pool(AutoScalingGroupName="web", PoolState="Stopped", MinSize=0)
    out = emu.post("/_fleetops/autoscaling/launch", {"group": "web", "count": 2})
    assert len(out["instance_ids"]) == 2 and out["desired_capacity"] == 2
    warm = emu.post("/_fleetops/autoscaling/launch", {"group": "web", "count": 1, "warm_pool": True})["instance_ids"][0]
    ev = _launch_events(emu)[-1]["detail"]
    assert ev["EC2InstanceId"] == warm and ev["Origin"] == "EC2" and ev["Destination"] == "WarmPool"
    assert warm not in _states(asg)
    pool = asg.describe_warm_pool(AutoScalingGroupName="web")["Instances"]
    assert [(i["InstanceId"], i["LifecycleState"]) for i in pool] == [(warm, "Warmed:Pending:Wait")]
    asg.complete_lifecycle_action(AutoScalingGroupName="web", LifecycleHookName=HOOK, InstanceId=warm,
                                  LifecycleActionResult="CONTINUE")
    assert asg.describe_warm_pool(AutoScalingGroupName="web")["Instances"][0]["LifecycleState"] == "Warmed:Stopped"
    assert describe(ec2, warm)["State"]["Name"] == "stopped"
    moved = emu.post("/_fleetops/autoscaling/launch", {"group": "web", "count": 1, "from_warm_pool": True})
    assert moved["instance_ids"] == [warm]
    ev = _launch_events(emu)[-1]["detail"]
    assert ev["Origin"] == "WarmPool" and ev["Destination"] == "AutoScalingGroup"
    assert _states(asg)[warm] == "Pending:Wait" and describe(ec2, warm)["State"]["Name"] == "running"
    status, _ = emu.call("POST", "/_fleetops/autoscaling/launch", {"group": "web", "from_warm_pool": True})
    assert status == 409
    status, _ = emu.call("POST", "/_fleetops/autoscaling/launch", {"group": "nope"})
    assert status == 404


def test_launch_helper_raises_max_size(emu, asg):
    _group(asg, hook=False)
    out = emu.post("/_fleetops/autoscaling/launch", {"group": "web", "count": 7})
    assert len(out["instance_ids"]) == 7
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    assert g["MaxSize"] == 7 and g["DesiredCapacity"] == 7


def test_scale_in_ends_waiting_actions(emu, asg):
    _group(asg, desired=2)
    assert len(emu.get("/_fleetops/autoscaling/lifecycle-actions")["pending"]) == 2
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=0)
    assert _states(asg) == {}
    assert emu.get("/_fleetops/autoscaling/lifecycle-actions")["pending"] == []


def test_describe_warm_pool_shape_paging_and_errors(emu, asg):
    _group(asg)
    # Without a warm pool: no configuration, no instances.
    empty = asg.describe_warm_pool(AutoScalingGroupName="web")
    assert "WarmPoolConfiguration" not in empty and empty["Instances"] == []
    asg.put_warm_pool(AutoScalingGroupName="web", PoolState="Stopped", MinSize=1, MaxGroupPreparedCapacity=4,
                      InstanceReusePolicy={"ReuseOnScaleIn": True})
    in_service = emu.post("/_fleetops/autoscaling/launch", {"group": "web", "count": 1})["instance_ids"]
    warm = emu.post("/_fleetops/autoscaling/launch", {"group": "web", "count": 3, "warm_pool": True})["instance_ids"]
    out = asg.describe_warm_pool(AutoScalingGroupName="web")
    assert out["WarmPoolConfiguration"] == {
        "MinSize": 1, "PoolState": "Stopped", "MaxGroupPreparedCapacity": 4,
        "InstanceReusePolicy": {"ReuseOnScaleIn": True},
    }
    assert [i["InstanceId"] for i in out["Instances"]] == warm and "NextToken" not in out
    first = out["Instances"][0]
    assert first["LifecycleState"] == "Warmed:Pending:Wait"  # the group has a launch hook
    assert first["HealthStatus"] == "Healthy" and first["AvailabilityZone"] == "us-east-1a"
    assert first["InstanceType"] == "t3.micro" and first["LaunchConfigurationName"] == "web-lc"
    assert first["ProtectedFromScaleIn"] is False
    # Warm-pool instances are not the group's instances, but DescribeAutoScalingInstances lists them.
    assert set(_states(asg)) == set(in_service)
    listed = {i["InstanceId"]: i["LifecycleState"] for i in asg.describe_auto_scaling_instances()["AutoScalingInstances"]}
    assert listed == {in_service[0]: "Pending:Wait", **{w: "Warmed:Pending:Wait" for w in warm}}
    # MaxRecords / NextToken.
    seen, token = [], None
    while True:
        kw = {"AutoScalingGroupName": "web", "MaxRecords": 2}
        if token:
            kw["NextToken"] = token
        page = asg.describe_warm_pool(**kw)
        assert len(page["Instances"]) <= 2
        seen += [i["InstanceId"] for i in page["Instances"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == warm
    for bad, code in (({"MaxRecords": 51}, "ValidationError"), ({"MaxRecords": 0}, "ValidationError"),
                      ({"NextToken": "garbage"}, "InvalidNextToken")):
        with pytest.raises(ClientError) as err:
            asg.describe_warm_pool(AutoScalingGroupName="web", **bad)
        assert err.value.response["Error"]["Code"] == code, bad
    with pytest.raises(ClientError) as err:
        asg.describe_warm_pool(AutoScalingGroupName="nope")
    assert err.value.response["Error"]["Code"] == "ValidationError"


def test_warm_pool_launch_with_hook_waits_then_warms(emu, ec2, asg):
    _group(asg)
    asg.put_warm_pool(AutoScalingGroupName="web", PoolState="Running")
    warm = emu.post("/_fleetops/autoscaling/launch", {"group": "web", "count": 1, "warm_pool": True})["instance_ids"][0]
    pool = asg.describe_warm_pool(AutoScalingGroupName="web")["Instances"]
    assert [(i["InstanceId"], i["LifecycleState"]) for i in pool] == [(warm, "Warmed:Pending:Wait")]
    pending = emu.get("/_fleetops/autoscaling/lifecycle-actions")["pending"]
    assert [(a["instance_id"], a["destination"]) for a in pending] == [(warm, "WarmPool")]
    asg.complete_lifecycle_action(AutoScalingGroupName="web", LifecycleHookName=HOOK, InstanceId=warm,
                                  LifecycleActionResult="CONTINUE")
    pool = asg.describe_warm_pool(AutoScalingGroupName="web")["Instances"]
    assert pool[0]["LifecycleState"] == "Warmed:Running" and describe(ec2, warm)["State"]["Name"] == "running"
