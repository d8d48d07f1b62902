"""Auto Scaling launch lifecycle hooks: Pending:Wait, CompleteLifecycleAction,
RecordLifecycleActionHeartbeat, lifecycle EventBridge events and warm pools.

moto launches group instances straight to InService and has no lifecycle
actions; here every instance launched for a group with an
``autoscaling:EC2_INSTANCE_LAUNCHING`` hook waits in ``Pending:Wait`` (or
``Warmed:Pending:Wait``) with one action per hook until each is completed,
heartbeats extend it, and the hook's DefaultResult applies at its timeout.
"""

from __future__ import annotations

from typing import Any

from moto.autoscaling import models as asg_models
from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.models import FakeAutoScalingGroup, LifecycleHook, autoscaling_backends
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, EmptyResult

from . import events, state, util
from .control import ControlError, require, route

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
ACTIVE_STATES = {"InService", "Pending", "Pending:Wait", "Pending:Proceed"}


class LifecycleAction:
    def __init__(self, group: FakeAutoScalingGroup, hook: LifecycleHook, instance_id: str,
                 origin: str, destination: str) -> None:
        self.token = state.new_uuid()
        self.region = group.region
        self.group_name = group.name
        self.hook_name = hook.name
        self.instance_id = instance_id
        self.transition = hook.lifecycle_transition
        self.origin = origin
        self.destination = destination
        self.metadata = getattr(hook, "notification_metadata", None)
        self.heartbeat_timeout = int(hook.heartbeat_timeout or 3600)
        self.default_result = hook.default_result or "ABANDON"
        self.start_ts = state.now_ts()
        self.deadline_ts = self.start_ts + self.heartbeat_timeout
        self.global_deadline_ts = self.start_ts + min(100 * self.heartbeat_timeout, 172800)
        self.result: str | None = None
        self.active = True

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "group": self.group_name,
            "hook": self.hook_name,
            "instance_id": self.instance_id,
            "region": self.region,
            "origin": self.origin,
            "destination": self.destination,
            "active": self.active,
            "result": self.result,
            "started": state.iso(self.start_ts, millis=True),
            "timeout_at": state.iso(self.deadline_ts, millis=True),
        }


ACTIONS: dict[str, LifecycleAction] = {}
LOG: list[dict[str, Any]] = []
_LAUNCH_CONTEXT: dict[str, Any] = {}


def _reset() -> None:
    ACTIONS.clear()
    LOG.clear()
    _LAUNCH_CONTEXT.clear()


state.on_reset(_reset)


def _backend(region: str) -> Any:
    return autoscaling_backends[state.DEFAULT_ACCOUNT][region]


def _launch_hooks(group: FakeAutoScalingGroup) -> list[LifecycleHook]:
    return [
        h for h in group.autoscaling_backend.lifecycle_hooks.values()
        if h.auto_scaling_group_name == group.name and h.lifecycle_transition == LAUNCHING
    ]


def _pool_state(group: FakeAutoScalingGroup) -> str:
    pool = getattr(group, "warm_pool", None)
    return (pool.pool_state if pool is not None else None) or "Stopped"


def _instance_state(group: FakeAutoScalingGroup, instance_id: str) -> Any:
    for s in group.instance_states:
        if s.instance.id == instance_id:
            return s
    return None


def on_launch(group: FakeAutoScalingGroup, inst_state: Any, origin: str, destination: str) -> None:
    hooks = _launch_hooks(group)
    warm = destination == "WarmPool"
    if not hooks:
        _proceed(group, inst_state, destination)
        return
    inst_state.lifecycle_state = "Warmed:Pending:Wait" if warm else "Pending:Wait"
    for hook in hooks:
        action = LifecycleAction(group, hook, inst_state.instance.id, origin, destination)
        ACTIONS[action.token] = action
        detail: dict[str, Any] = {
            "LifecycleActionToken": action.token,
            "AutoScalingGroupName": group.name,
            "LifecycleHookName": hook.name,
            "EC2InstanceId": action.instance_id,
            "LifecycleTransition": LAUNCHING,
        }
        if action.metadata is not None:
            detail["NotificationMetadata"] = action.metadata
        detail["Origin"] = origin
        detail["Destination"] = destination
        events.emit(
            "aws.autoscaling",
            "EC2 Instance-launch Lifecycle Action",
            detail,
            region=group.region,
            resources=[group.arn],
        )


def _proceed(group: FakeAutoScalingGroup, inst_state: Any, destination: str) -> None:
    if destination == "WarmPool":
        pool_state = _pool_state(group)
        inst_state.lifecycle_state = f"Warmed:{pool_state}"
        if pool_state in ("Stopped", "Hibernated") and inst_state.instance.state == "running":
            inst_state.instance.stop()
    else:
        inst_state.lifecycle_state = "InService"


def _abandon(group: FakeAutoScalingGroup, inst_state: Any) -> None:
    instance_id = inst_state.instance.id
    backend = group.autoscaling_backend
    backend.ec2_backend.terminate_instances([instance_id])
    # Removes it from the group and, for an in-service launch, launches a replacement.
    backend.notify_terminate_instances([instance_id])


def _finish(action: LifecycleAction, result: str, kind: str, by: str | None) -> None:
    action.active = False
    action.result = result
    LOG.append({
        "kind": kind, "token": action.token, "instance_id": action.instance_id,
        "group": action.group_name, "hook": action.hook_name, "result": result, "by": by,
        "region": action.region, "time": state.iso(state.now_ts(), millis=True),
    })
    backend = _backend(action.region)
    group = backend.autoscaling_groups.get(action.group_name)
    if group is None:
        return
    inst_state = _instance_state(group, action.instance_id)
    if inst_state is None:
        return
    siblings = [a for a in ACTIONS.values()
                if a.instance_id == action.instance_id and a.group_name == action.group_name and a.active]
    if result == "ABANDON":
        for a in siblings:
            a.active = False
            a.result = "ABANDON"
        _abandon(group, inst_state)
    elif not siblings:
        _proceed(group, inst_state, action.destination)


@state.on_tick
def _timeouts() -> None:
    now = state.now_ts()
    for action in ACTIONS.values():
        # Actions of instances that left their group (scale-in, termination, deleted group) end silently.
        if action.active:
            group = _backend(action.region).autoscaling_groups.get(action.group_name)
            if group is None or _instance_state(group, action.instance_id) is None:
                action.active = False
    for action in sorted(ACTIONS.values(), key=lambda a: a.deadline_ts):
        if action.active and now >= action.deadline_ts:
            _finish(action, action.default_result, "timeout", None)


# ------------------------------------------------------------------ moto patches

_orig_replace = FakeAutoScalingGroup.replace_autoscaling_group_instances


def _replace_instances(self: FakeAutoScalingGroup, count_needed: int, propagated_tags: dict[str, str]) -> None:
    before = {id(s) for s in self.instance_states}
    _orig_replace(self, count_needed, propagated_tags)
    destination = _LAUNCH_CONTEXT.get("destination", "AutoScalingGroup")
    for s in self.instance_states:
        if id(s) not in before:
            on_launch(self, s, "EC2", destination)


def _active_instances(self: FakeAutoScalingGroup) -> list[Any]:
    return [s for s in self.instance_states if s.lifecycle_state in ACTIVE_STATES]


def _group_instances(self: FakeAutoScalingGroup) -> list[Any]:
    return [s for s in self.instance_states if not str(s.lifecycle_state).startswith("Warmed:")]


def _find_action(self: AutoScalingResponse, kind: str) -> tuple[LifecycleAction, str]:
    group_name = self._get_param("AutoScalingGroupName")
    hook_name = self._get_param("LifecycleHookName")
    token = self._get_param("LifecycleActionToken")
    instance_id = self._get_param("InstanceId")
    backend = self.autoscaling_backend
    if group_name not in backend.autoscaling_groups:
        raise ValidationError(f"Group {group_name} not found")
    if f"{group_name}_{hook_name}" not in backend.lifecycle_hooks:
        raise ValidationError(f"No Lifecycle Hook found with name {hook_name} for group {group_name}")
    if not token and not instance_id:
        raise ValidationError("Either LifecycleActionToken or InstanceId must be specified.")
    for a in ACTIONS.values():
        if not a.active or a.region != self.region or a.group_name != group_name or a.hook_name != hook_name:
            continue
        if token and a.token == token and (not instance_id or a.instance_id == instance_id):
            return a, "token"
        if not token and a.instance_id == instance_id:
            return a, "instance_id"
    if token:
        raise ValidationError(f"No active Lifecycle Action found with token {token}")
    raise ValidationError(f"No active Lifecycle Action found with instance ID {instance_id}")


def complete_lifecycle_action(self: AutoScalingResponse) -> ActionResult:
    result = self._get_param("LifecycleActionResult")
    if result not in ("CONTINUE", "ABANDON"):
        raise ValidationError(
            f"Invalid value '{result}' for LifecycleActionResult. Valid values are CONTINUE and ABANDON."
        )
    action, by = _find_action(self, "complete")
    _finish(action, result, "complete", by)
    return EmptyResult()


def record_lifecycle_action_heartbeat(self: AutoScalingResponse) -> ActionResult:
    action, by = _find_action(self, "heartbeat")
    now = state.now_ts()
    action.deadline_ts = min(now + action.heartbeat_timeout, action.global_deadline_ts)
    LOG.append({
        "kind": "heartbeat", "token": action.token, "instance_id": action.instance_id,
        "group": action.group_name, "hook": action.hook_name, "result": None, "by": by,
        "region": action.region, "time": state.iso(now, millis=True),
    })
    return EmptyResult()


_orig_put_hook = AutoScalingResponse.put_lifecycle_hook
_orig_create_group = AutoScalingResponse.create_auto_scaling_group
_orig_describe_warm_pool = AutoScalingResponse.describe_warm_pool


def _decorate_hook(backend: Any, group: str, spec: dict[str, Any]) -> None:
    hook = backend.lifecycle_hooks.get(f"{group}_{spec.get('LifecycleHookName')}")
    if hook is None:
        return
    hook.notification_metadata = spec.get("NotificationMetadata")
    if spec.get("RoleARN"):
        hook.role_arn = spec["RoleARN"]
    if spec.get("NotificationTargetARN"):
        hook.notification_target_arn = spec["NotificationTargetARN"]
    hook.global_timeout = min(100 * int(hook.heartbeat_timeout or 3600), 172800)


def put_lifecycle_hook(self: AutoScalingResponse) -> ActionResult:
    transition = self._get_param("LifecycleTransition")
    if transition not in (LAUNCHING, TERMINATING):
        raise ValidationError(f"Invalid Lifecycle Transition: {transition}")
    group = self._get_param("AutoScalingGroupName")
    if group not in self.autoscaling_backend.autoscaling_groups:
        raise ValidationError(f"Group {group} not found")
    out = _orig_put_hook(self)
    _decorate_hook(self.autoscaling_backend, group, {
        k: self._get_param(k) for k in ("LifecycleHookName", "NotificationMetadata", "RoleARN", "NotificationTargetARN")
    })
    return out


def create_auto_scaling_group(self: AutoScalingResponse) -> ActionResult:
    group = self._get_param("AutoScalingGroupName")
    specs = self._get_param("LifecycleHookSpecificationList") or []
    backend = self.autoscaling_backend
    for spec in specs:
        backend.create_lifecycle_hook(
            name=spec.get("LifecycleHookName"), as_name=group,
            transition=spec.get("LifecycleTransition"),
            timeout=int(spec["HeartbeatTimeout"]) if spec.get("HeartbeatTimeout") else None,
            result=spec.get("DefaultResult"),
        )
        _decorate_hook(backend, group, spec)
    try:
        return _orig_create_group(self)
    except Exception:
        for spec in specs:
            backend.lifecycle_hooks.pop(f"{group}_{spec.get('LifecycleHookName')}", None)
        raise


def _warm_instance(group: FakeAutoScalingGroup, s: Any) -> dict[str, Any]:
    """One member of DescribeWarmPool's Instances: the API reference's Instance type
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Instance.html)."""
    item: dict[str, Any] = {
        "InstanceId": s.instance.id,
        "InstanceType": s.instance.instance_type,
        "AvailabilityZone": s.instance.placement.zone,
        "LifecycleState": s.lifecycle_state,
        "HealthStatus": s.health_status or "Healthy",
        "ProtectedFromScaleIn": bool(s.protected_from_scale_in),
    }
    if s.launch_template:
        item["LaunchTemplate"] = {k: str(v) if k == "Version" else v for k, v in s.launch_template.items()}
    elif s.launch_configuration_name:
        item["LaunchConfigurationName"] = s.launch_configuration_name
    return item


def _warm_pool_configuration(pool: Any) -> dict[str, Any] | None:
    # API_WarmPoolConfiguration: MaxGroupPreparedCapacity, MinSize, PoolState, Status,
    # InstanceReusePolicy (members without a value are left out).
    if pool is None:
        return None
    conf: dict[str, Any] = {"MinSize": int(pool.min_size or 0), "PoolState": pool.pool_state or "Stopped"}
    if pool.max_group_prepared_capacity is not None:
        conf["MaxGroupPreparedCapacity"] = int(pool.max_group_prepared_capacity)
    if getattr(pool, "status", None):
        conf["Status"] = pool.status
    if pool.instance_reuse_policy:
        reuse = pool.instance_reuse_policy
        conf["InstanceReusePolicy"] = {
            "ReuseOnScaleIn": str(reuse.get("ReuseOnScaleIn")).lower() == "true"
        } if "ReuseOnScaleIn" in reuse else {}
    return conf


def describe_warm_pool(self: AutoScalingResponse) -> ActionResult:
    """DescribeWarmPool as in the API reference
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeWarmPool.html):
    "Instances: The instances that are currently in the warm pool", "MaxRecords: The maximum
    number of instances to return with this call. The maximum value is 50.", NextToken, and
    the InvalidNextToken error."""
    group_name = self._get_param("AutoScalingGroupName")
    group = self.autoscaling_backend.autoscaling_groups.get(group_name)
    if group is None:
        raise ValidationError(f"AutoScalingGroup name not found - {group_name}")
    raw = self._get_param("MaxRecords")
    limit = 50
    if raw is not None:
        limit = int(raw)
        if not 1 <= limit <= 50:
            raise ValidationError(
                f"1 validation error detected: Value '{limit}' at 'maxRecords' failed to satisfy "
                "constraint: Member must have value between 1 and 50"
            )
    offset = util.decode_token(f"DescribeWarmPool:{group.name}", self._get_param("NextToken"))
    if offset is None:
        raise AutoscalingClientError("InvalidNextToken", "The token provided is not valid.")
    warm = [s for s in group.instance_states if str(s.lifecycle_state).startswith("Warmed:")]
    chunk, nxt = util.page(warm, offset, limit, f"DescribeWarmPool:{group.name}")
    result: dict[str, Any] = {"Instances": [_warm_instance(group, s) for s in chunk]}
    conf = _warm_pool_configuration(getattr(group, "warm_pool", None))
    if conf is not None:
        result["WarmPoolConfiguration"] = conf
    if nxt:
        result["NextToken"] = nxt
    return ActionResult(result)


def install() -> None:
    FakeAutoScalingGroup.replace_autoscaling_group_instances = _replace_instances  # type: ignore[method-assign]
    FakeAutoScalingGroup.active_instances = _active_instances  # type: ignore[method-assign]
    # DescribeAutoScalingGroups' Instances are the group's own: the warm pool "sits alongside"
    # the group ("Warm pools for Amazon EC2 Auto Scaling", Core concepts), so Warmed:* instances
    # are left out there and listed by DescribeWarmPool. DescribeAutoScalingInstances (moto's,
    # over instance_states) keeps listing them: its AutoScalingInstanceDetails.LifecycleState
    # documents the values "Warmed:Pending | Warmed:Pending:Wait | Warmed:Pending:Proceed |
    # Warmed:Terminating | ... | Warmed:Stopped | Warmed:Running"
    # (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_AutoScalingInstanceDetails.html).
    FakeAutoScalingGroup.instances = property(_group_instances)  # type: ignore[assignment,method-assign]
    LifecycleHook.notification_metadata = None  # type: ignore[attr-defined]
    R = AutoScalingResponse
    R.complete_lifecycle_action = complete_lifecycle_action  # type: ignore[attr-defined]
    R.record_lifecycle_action_heartbeat = record_lifecycle_action_heartbeat  # type: ignore[attr-defined]
    R.put_lifecycle_hook = put_lifecycle_hook  # type: ignore[method-assign]
    R.create_auto_scaling_group = create_auto_scaling_group  # type: ignore[method-assign]
    R.describe_warm_pool = describe_warm_pool  # type: ignore[method-assign]
    assert asg_models  # keep the module import explicit


# ------------------------------------------------------------------ control plane

def _find_group(name: str, region: str | None) -> FakeAutoScalingGroup:
    regions = [region] if region else [r for r, _ in util.account_regions(autoscaling_backends)]
    for r in regions:
        group = _backend(r).autoscaling_groups.get(name)
        if group is not None:
            return group
    raise ControlError(404, f"auto scaling group {name} not found")


@route("POST", "/_fleetops/autoscaling/launch")
def _launch(body: dict[str, Any], query: dict[str, str]) -> Any:
    group = _find_group(require(body, "group"), body.get("region"))
    count = int(body.get("count") or 1)
    if count < 1:
        raise ControlError(400, "'count' must be >= 1")
    before = {s.instance.id for s in group.instance_states}
    if body.get("from_warm_pool"):
        warm = [s for s in group.instance_states
                if str(s.lifecycle_state).startswith("Warmed:") and "Pending" not in s.lifecycle_state]
        if len(warm) < count:
            raise ControlError(409, f"only {len(warm)} warmed instance(s) available in {group.name}")
        group.desired_capacity = (group.desired_capacity or 0) + count
        if group.max_size is not None and group.desired_capacity > group.max_size:
            group.max_size = group.desired_capacity
        moved = []
        for s in warm[:count]:
            if s.instance.state == "stopped":
                s.instance.start()
            on_launch(group, s, "WarmPool", "AutoScalingGroup")
            moved.append(s.instance.id)
        return {"group": group.name, "instance_ids": moved, "desired_capacity": group.desired_capacity}
    if body.get("warm_pool"):
        _LAUNCH_CONTEXT["destination"] = "WarmPool"
        try:
            group.replace_autoscaling_group_instances(count, group.get_propagated_tags())
        finally:
            _LAUNCH_CONTEXT.clear()
    else:
        desired = (group.desired_capacity or 0) + count
        if group.max_size is not None and desired > group.max_size:
            group.max_size = desired
        group.set_desired_capacity(desired)
    new = [s.instance.id for s in group.instance_states if s.instance.id not in before]
    return {"group": group.name, "instance_ids": new, "desired_capacity": group.desired_capacity}


@route("GET", "/_fleetops/autoscaling/lifecycle-actions")
def _lifecycle_actions(body: dict[str, Any], query: dict[str, str]) -> Any:
    log = LOG
    if query.get("instance_id"):
        log = [r for r in log if r["instance_id"] == query["instance_id"]]
    return {
        "actions": list(log),
        "pending": [a.to_json() for a in ACTIONS.values() if a.active],
    }
