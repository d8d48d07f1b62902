"""EC2 extension: realistic Stop/StartInstances, instance paging, state controls."""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.instances import Reservation, StateReason
from moto.ec2.responses import EC2Response

from . import state, util
from .control import ControlError, require, route

STATE_CODES = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}

# Per instance id: list of pending launch failures {"code", "message", "remaining"}.
START_FAILS: dict[str, dict[str, Any]] = {}
STOP_LOG: list[dict[str, Any]] = []
START_LOG: list[dict[str, Any]] = []


def _reset() -> None:
    START_FAILS.clear()
    STOP_LOG.clear()
    START_LOG.clear()


state.on_reset(_reset)


def set_state(instance: Any, name: str) -> None:
    instance._state.name = name
    instance._state.code = STATE_CODES[name]


def _state_dict(name: str) -> dict[str, Any]:
    return {"Code": STATE_CODES[name], "Name": name}


def _is_hibernation_configured(instance: Any) -> bool:
    opts = getattr(instance, "hibernation_options", None) or {}
    val = opts.get("Configured") if isinstance(opts, dict) else getattr(opts, "configured", False)
    return str(val).lower() == "true"


def _bool(value: Any) -> bool:
    return str(value).lower() == "true" if value is not None else False


class IncorrectInstanceState(EC2ClientError):
    def __init__(self, instance_id: str, verb: str) -> None:
        super().__init__(
            "IncorrectInstanceState",
            f"The instance '{instance_id}' is not in a state from which it can be {verb}.",
        )


# ------------------------------------------------------------------ StopInstances

def stop_instances(self: EC2Response) -> ActionResult:
    instance_ids = self._get_param("InstanceIds", [])
    hibernate = _bool(self._get_param("Hibernate"))
    force = _bool(self._get_param("Force"))
    self.error_on_dryrun()
    instances = self.ec2_backend.get_multi_instances_by_id(instance_ids)
    # Validate the whole call first: real EC2 changes nothing when one id is wrong.
    for inst in instances:
        if inst.state == "pending":
            raise EC2ClientError(
                "IncorrectInstanceState",
                f"Instance '{inst.id}' cannot be stopped as it has never reached the 'running' state.",
            )
        if inst.state not in ("running", "stopping", "stopped"):
            raise IncorrectInstanceState(inst.id, "stopped")
        if getattr(inst, "disable_api_stop", False) is True:
            raise EC2ClientError(
                "OperationNotPermitted",
                f"The instance '{inst.id}' may not be stopped. Modify its 'disableApiStop' "
                "instance attribute and try again.",
            )
        if hibernate and not _is_hibernation_configured(inst):
            raise EC2ClientError(
                "UnsupportedHibernationConfiguration",
                f"The instance '{inst.id}' does not have hibernation configured. "
                "Hibernation must be enabled at launch (HibernationOptions.Configured=true).",
            )
    out = []
    for inst in instances:
        previous = inst.state
        STOP_LOG.append(
            {
                "instance_id": inst.id,
                "hibernate": hibernate,
                "force": force,
                "previous_state": previous,
                "region": self.region,
                "time": state.iso(state.now_ts(), millis=True),
            }
        )
        if previous == "running":
            inst.stop()
            if hibernate:
                inst.state_reason = StateReason(
                    "Client.UserInitiatedHibernate: User initiated hibernate",
                    "Client.UserInitiatedHibernate",
                )
            current = "stopping"
        else:
            current = previous
        out.append(
            {
                "InstanceId": inst.id,
                "CurrentState": _state_dict(current),
                "PreviousState": _state_dict(previous),
            }
        )
    return ActionResult({"StoppingInstances": out})


# ----------------------------------------------------------------- StartInstances

def start_instances(self: EC2Response) -> ActionResult:
    instance_ids = self._get_param("InstanceIds", [])
    self.error_on_dryrun()
    instances = self.ec2_backend.get_multi_instances_by_id(instance_ids)
    for inst in instances:
        if inst.state not in ("stopped", "pending", "running"):
            raise IncorrectInstanceState(inst.id, "started")
    out = []
    for inst in instances:
        previous = inst.state
        START_LOG.append(
            {"instance_id": inst.id, "previous_state": previous, "region": self.region,
             "time": state.iso(state.now_ts(), millis=True)}
        )
        if previous == "stopped":
            inst.start()
            # EC2 API reference, Instance.LaunchTime: "The time that the
            # instance was last launched" (a start is a launch; moto keeps the
            # creation time). On the emulated clock.
            inst.launch_time = state.now()
            fail = START_FAILS.get(inst.id)
            if fail is not None:
                inst.stop()
                inst.state_reason = StateReason(fail["message"], fail["code"])
                inst._reason = fail["message"]
                if fail["remaining"] is not None:
                    fail["remaining"] -= 1
                    if fail["remaining"] <= 0:
                        START_FAILS.pop(inst.id, None)
            current = "pending"
        else:
            current = previous
        out.append(
            {
                "InstanceId": inst.id,
                "CurrentState": _state_dict(current),
                "PreviousState": _state_dict(previous),
            }
        )
    return ActionResult({"StartingInstances": out})


# -------------------------------------------------------------- DescribeInstances

# EC2 refuses a describe call whose filters carry more than 200 values in all
# (the error AWS returns, as reported by its users, e.g. convox/rack#2205 and
# gjbae1212/gossm#31: "FilterLimitExceeded: The maximum number of filter values
# specified on a single call is 200"). moto has no such limit.
MAX_FILTER_VALUES = 200


def _check_filter_values(filter_dict: dict[str, list[str]]) -> None:
    if sum(len(values) for values in filter_dict.values()) > MAX_FILTER_VALUES:
        raise EC2ClientError(
            "FilterLimitExceeded",
            f"The maximum number of filter values specified on a single call is {MAX_FILTER_VALUES}",
        )


def _max_results(value: Any) -> int | None:
    """MaxResults of the describes: "This value can be between 5 and 1000"
    (DescribeInstances and DescribeTags API references)."""
    if value is None:
        return None
    max_results = int(value)
    if max_results < 5 or max_results > 1000:
        raise EC2ClientError(
            "InvalidParameterValue",
            f"Value ( {max_results} ) for parameter maxResults is invalid. "
            "Expecting a value between 5 and 1000.",
        )
    return max_results


def _page(items: list[Any], token: str | None, max_results: int | None, kind: str) -> tuple[list[Any], str | None]:
    """One page of a describe: everything when MaxResults is absent."""
    offset = util.decode_token(kind, token)
    if offset is None:
        raise EC2ClientError(
            "InvalidPaginationToken", f"The pagination token '{token}' is not valid or has expired."
        )
    limit = max_results if max_results is not None else max(len(items), 1)
    return util.page(items, offset, limit, kind)


def describe_instances(self: EC2Response) -> ActionResult:
    self.error_on_dryrun()
    instance_ids = self._get_param("InstanceIds", [])
    max_results = self._get_param("MaxResults")
    token = self._get_param("NextToken")
    if instance_ids and max_results is not None:
        raise EC2ClientError(
            "InvalidParameterCombination",
            "The parameter instancesSet cannot be used with the parameter maxResults",
        )
    max_results = _max_results(max_results)
    filter_dict = self._filters_from_querystring()
    _check_filter_values(filter_dict)
    if instance_ids:
        reservations = self.ec2_backend.get_reservations_by_instance_ids(
            instance_ids, filters=filter_dict
        )
    else:
        reservations = self.ec2_backend.describe_instances(filters=filter_dict)
    pairs = [(r, i) for r in reservations for i in r.instances]
    chunk, next_token = _page(pairs, token, max_results, "DescribeInstances")
    grouped: dict[str, Reservation] = {}
    for res, inst in chunk:
        if res.id not in grouped:
            copy = Reservation(res.id, res.owner_id)
            copy.groups = res.groups
            grouped[res.id] = copy
        grouped[res.id].instances.append(inst)
    return ActionResult({"Reservations": list(grouped.values()), "NextToken": next_token})


# ------------------------------------------------------------------ DescribeTags

def describe_tags(self: EC2Response) -> ActionResult:
    """moto's DescribeTags answers everything in one response; EC2 pages it
    (MaxResults 5-1000, NextToken) and applies the filter-value limit."""
    self.error_on_dryrun()
    filter_dict = self._filters_from_querystring()
    _check_filter_values(filter_dict)
    max_results = _max_results(self._get_param("MaxResults"))
    token = self._get_param("NextToken")
    tags = self.ec2_backend.describe_tags(filters=filter_dict)
    chunk, next_token = _page(tags, token, max_results, "DescribeTags")
    return ActionResult({"Tags": chunk, "NextToken": next_token})


def install() -> None:
    from moto.ec2 import utils as ec2_utils

    # DescribeInstances Filter Name=instance-lifecycle,Values=spot (moto raises NotImplementedError).
    ec2_utils.filter_dict_attribute_mapping.setdefault("instance-lifecycle", "lifecycle")
    EC2Response.stop_instances = stop_instances  # type: ignore[method-assign]
    EC2Response.start_instances = start_instances  # type: ignore[method-assign]
    EC2Response.describe_instances = describe_instances  # type: ignore[method-assign]
    EC2Response.describe_tags = describe_tags  # type: ignore[method-assign]


# ------------------------------------------------------------------ control plane

@route("POST", "/_fleetops/ec2/instance-state")
def _instance_state(body: dict[str, Any], query: dict[str, str]) -> Any:
    instance_id = require(body, "instance_id")
    name = require(body, "state")
    if name not in STATE_CODES:
        raise ControlError(400, f"state must be one of {sorted(STATE_CODES)}")
    region, inst = util.find_instance(instance_id, body.get("region"))
    previous = inst.state
    set_state(inst, name)
    if body.get("reason_code") or body.get("reason_message"):
        inst.state_reason = StateReason(body.get("reason_message", ""), body.get("reason_code", ""))
    elif name in ("pending", "running"):
        inst.state_reason = StateReason()
        inst._reason = ""
    elif name in ("stopping", "stopped") and previous not in ("stopping", "stopped"):
        inst._reason = f"User initiated ({utcnow().strftime('%Y-%m-%d %H:%M:%S UTC')})"
        inst.state_reason = StateReason(
            "Client.UserInitiatedShutdown: User initiated shutdown", "Client.UserInitiatedShutdown"
        )
    return {"instance_id": instance_id, "region": region, "previous_state": previous, "state": name}


@route("POST", "/_fleetops/ec2/start-fails")
def _start_fails(body: dict[str, Any], query: dict[str, str]) -> Any:
    instance_id = require(body, "instance_id")
    util.find_instance(instance_id, body.get("region"))
    count = body.get("count", 1)
    START_FAILS[instance_id] = {
        "code": body.get("code") or "Client.InternalError",
        "message": body.get("message") or "Client.InternalError: Client error on launch",
        "remaining": None if count is None else int(count),
    }
    return {"instance_id": instance_id, **START_FAILS[instance_id]}


@route("GET", "/_fleetops/ec2/stop-log")
def _stop_log(body: dict[str, Any], query: dict[str, str]) -> Any:
    stops = STOP_LOG
    if query.get("instance_id"):
        stops = [s for s in stops if s["instance_id"] == query["instance_id"]]
    return {"stops": list(stops)}


@route("GET", "/_fleetops/ec2/start-log")
def _start_log(body: dict[str, Any], query: dict[str, str]) -> Any:
    starts = START_LOG
    if query.get("instance_id"):
        starts = [s for s in starts if s["instance_id"] == query["instance_id"]]
    return {"starts": list(starts)}
