"""SSM managed-instance agents and DescribeInstanceInformation (moto lacks both)."""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ssm.exceptions import SSMException
from moto.ssm.responses import SimpleSystemManagerResponse

from . import state, util
from .control import ControlError, require, route

PING_STATUSES = ("Online", "ConnectionLost", "Inactive")
AGENT_VERSION = "3.3.987.0"


class SSMError(SSMException):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


class Agent:
    def __init__(self, body: dict[str, Any], region: str, instance: Any | None) -> None:
        self.instance_id: str = body["instance_id"]
        self.region = region
        self.registered_at = state.now_ts() + float(body.get("online_after_seconds") or 0)
        self.never = bool(body.get("never", False))
        self.ping_status: str = body.get("ping_status") or "Online"
        self.platform_name: str = body.get("platform_name") or "Amazon Linux"
        self.platform_version: str = body.get("platform_version") or "2023"
        pn = self.platform_name.lower()
        self.platform_type: str = body.get("platform_type") or (
            "Windows" if "windows" in pn else "MacOS" if "mac" in pn else "Linux"
        )
        self.agent_version: str = body.get("agent_version") or AGENT_VERSION
        self.association_status: str | None = body.get("association_status")
        ip = None
        computer = None
        if instance is not None:
            try:
                ip = instance.private_ip_address
                computer = instance.private_dns_name
            except Exception:  # noqa: BLE001
                pass
        self.ip_address: str | None = body.get("ip_address") or ip
        self.computer_name: str | None = body.get("computer_name") or computer
        self.iam_role: str | None = body.get("iam_role")
        # moto's Instance object lives until the next reset, which also clears AGENTS.
        self.instance = instance

    def is_registered(self, at: float | None = None) -> bool:
        return not self.never and (state.now_ts() if at is None else at) >= self.registered_at

    def effective_ping_status(self) -> str:
        inst = self.instance
        if inst is not None and inst.state in ("stopped", "stopping", "shutting-down", "terminated"):
            return "ConnectionLost" if self.ping_status == "Online" else self.ping_status
        return self.ping_status

    def terminated(self) -> bool:
        return self.instance is not None and self.instance.state == "terminated"

    def is_online(self) -> bool:
        return self.is_registered() and self.effective_ping_status() == "Online"

    @property
    def resource_type(self) -> str:
        return "ManagedInstance" if self.instance_id.startswith("mi-") else "EC2Instance"

    def tags(self) -> dict[str, str]:
        return util.instance_tags(self.instance) if self.instance is not None else {}

    def describe(self) -> dict[str, Any]:
        ping = self.effective_ping_status()
        last_ping = state.now_ts() if ping == "Online" else self.registered_at
        out: dict[str, Any] = {
            "InstanceId": self.instance_id,
            "PingStatus": ping,
            "LastPingDateTime": state.ts_to_dt(last_ping),
            "AgentVersion": self.agent_version,
            "IsLatestVersion": True,
            "PlatformType": self.platform_type,
            "PlatformName": self.platform_name,
            "PlatformVersion": self.platform_version,
            "ResourceType": self.resource_type,
            "IPAddress": self.ip_address,
            "ComputerName": self.computer_name,
            "RegistrationDate": state.ts_to_dt(self.registered_at),
            "SourceId": self.instance_id,
            "SourceType": "AWS::SSM::ManagedInstance" if self.resource_type == "ManagedInstance" else "AWS::EC2::Instance",
        }
        if self.iam_role:
            out["IamRole"] = self.iam_role
        if self.association_status:
            out["AssociationStatus"] = self.association_status
        return {k: v for k, v in out.items() if v is not None}


AGENTS: dict[str, Agent] = {}
state.on_reset(AGENTS.clear)


def registered_agent(instance_id: str, region: str | None = None) -> Agent | None:
    agent = AGENTS.get(instance_id)
    if agent is None or not agent.is_registered() or agent.terminated():
        return None
    if region and agent.region != region:
        return None
    return agent


def registered_agents(region: str) -> list[Agent]:
    return [a for a in AGENTS.values() if a.region == region and a.is_registered() and not a.terminated()]


# ------------------------------------------------------- DescribeInstanceInformation

_LEGACY_KEYS = {
    "InstanceIds", "AgentVersion", "PingStatus", "PlatformTypes", "ActivationIds",
    "IamRole", "ResourceType", "AssociationStatus",
}
_STRING_KEYS = _LEGACY_KEYS | {"SourceIds", "SourceTypes"}


def _agent_value(agent: Agent, key: str) -> list[str]:
    return {
        "InstanceIds": [agent.instance_id],
        "AgentVersion": [agent.agent_version],
        "PingStatus": [agent.effective_ping_status()],
        "PlatformTypes": [agent.platform_type],
        "ActivationIds": [],
        "IamRole": [agent.iam_role or ""],
        "ResourceType": [agent.resource_type],
        "AssociationStatus": [agent.association_status or ""],
        "SourceIds": [agent.instance_id],
        "SourceTypes": [agent.describe()["SourceType"]],
    }[key]


def describe_instance_information(self: SimpleSystemManagerResponse) -> ActionResult:
    legacy = self._get_param("InstanceInformationFilterList") or []
    filters = self._get_param("Filters") or []
    max_results = self._get_param("MaxResults")
    token = self._get_param("NextToken")
    if legacy and filters:
        raise SSMError(
            "InvalidFilterKey",
            "InstanceInformationFilterList and Filters cannot be used in the same request.",
        )
    if max_results is not None:
        max_results = int(max_results)
        if not 5 <= max_results <= 50:
            raise SSMError(
                "ValidationException",
                f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to "
                "satisfy constraint: Member must have value between 5 and 50",
            )
    conds: list[tuple[str, list[str]]] = []
    for f in legacy:
        key, values = f.get("key"), f.get("valueSet") or []
        if key not in _LEGACY_KEYS:
            raise SSMError("InvalidFilterKey", f"The filter key {key} is not valid.")
        conds.append((key, values))
    for f in filters:
        key, values = f.get("Key"), f.get("Values") or []
        if not key or not (key in _STRING_KEYS or key == "tag-key" or key.startswith("tag:")):
            raise SSMError("InvalidFilterKey", f"The filter key {key} is not valid.")
        conds.append((key, values))
    for key, values in conds:
        if not values:
            raise SSMError("InvalidInstanceInformationFilterValue", f"The filter {key} needs at least one value.")
        if key == "PingStatus":
            bad = [v for v in values if v not in PING_STATUSES]
            if bad:
                raise SSMError("InvalidInstanceInformationFilterValue", f"{bad[0]} is not a valid PingStatus value.")
        if key == "InstanceIds":
            unknown = [i for i in values if registered_agent(i, self.region) is None]
            if unknown:
                raise SSMError(
                    "InvalidInstanceId",
                    f"Instance ids {unknown} are not valid managed instances in {self.region}.",
                )

    agents = registered_agents(self.region)
    selected = []
    for agent in agents:
        ok = True
        for key, values in conds:
            if key == "tag-key":
                ok = any(v in agent.tags() for v in values)
            elif key.startswith("tag:"):
                ok = agent.tags().get(key[4:]) in values
            else:
                ok = bool(set(_agent_value(agent, key)) & set(values))
            if not ok:
                break
        if ok:
            selected.append(agent)
    offset = util.decode_token("DescribeInstanceInformation", token)
    if offset is None:
        raise SSMError("InvalidNextToken", "The specified token isn't valid.")
    chunk, nxt = util.page(selected, offset, max_results or 10, "DescribeInstanceInformation")
    result: dict[str, Any] = {"InstanceInformationList": [a.describe() for a in chunk]}
    if nxt:
        result["NextToken"] = nxt
    return ActionResult(result)


def install() -> None:
    SimpleSystemManagerResponse.describe_instance_information = describe_instance_information  # type: ignore[attr-defined]
    from . import commands_ext

    commands_ext.install()


# ------------------------------------------------------------------ control plane

@route("POST", "/_fleetops/ssm/agent")
def _agent(body: dict[str, Any], query: dict[str, str]) -> Any:
    instance_id = require(body, "instance_id")
    ping = body.get("ping_status") or "Online"
    if ping not in PING_STATUSES:
        raise ControlError(400, f"ping_status must be one of {list(PING_STATUSES)}")
    region, inst = util.try_find_instance(instance_id, body.get("region"))
    if inst is None and not instance_id.startswith("mi-") and not body.get("region"):
        raise ControlError(404, f"instance {instance_id} not found (give 'region' for an instance outside EC2)")
    agent = Agent(body, region or body.get("region") or "us-east-1", inst)
    AGENTS[instance_id] = agent
    return _agent_json(agent)


def _agent_json(agent: Agent) -> dict[str, Any]:
    return {
        "instance_id": agent.instance_id,
        "region": agent.region,
        "registered": agent.is_registered(),
        "registers_at": None if agent.never else state.iso(agent.registered_at, millis=True),
        "never": agent.never,
        "ping_status": agent.ping_status,
        "effective_ping_status": agent.effective_ping_status(),
        "platform_name": agent.platform_name,
        "platform_type": agent.platform_type,
        "computer_name": agent.computer_name,
    }


@route("GET", "/_fleetops/ssm/agents")
def _agents(body: dict[str, Any], query: dict[str, str]) -> Any:
    return {"agents": [_agent_json(a) for a in AGENTS.values()]}


@route("POST", "/_fleetops/ssm/agent/remove")
def _agent_remove(body: dict[str, Any], query: dict[str, str]) -> Any:
    instance_id = require(body, "instance_id")
    return {"removed": AGENTS.pop(instance_id, None) is not None}
