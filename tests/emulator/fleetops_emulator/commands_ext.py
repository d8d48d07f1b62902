"""SSM Run Command: SendCommand, ListCommands, ListCommandInvocations,
GetCommandInvocation and CancelCommand, with per-instance outcomes chosen by tests.

Each command's timeline is computed when it is sent (MaxConcurrency slots, the
outcome chosen for each instance) and observed lazily on the emulated clock, so
statuses move Pending -> InProgress -> Success/Failed/TimedOut as time passes.
When an invocation ends, the EventBridge event ``EC2 Command Invocation
Status-change Notification`` is recorded and, for ``AWS-RunPatchBaseline``, the
instance's patch state is updated. When the command as a whole reaches its final
status, ``EC2 Command Status-change Notification`` is recorded once.
"""

from __future__ import annotations

import heapq
import math
import re
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.ssm.responses import SimpleSystemManagerResponse

from . import events, state, util
from .control import ControlError, require, route
from .ssm_ext import SSMError, registered_agent, registered_agents, AGENTS

TERMINAL = {"Success", "Failed", "TimedOut", "Cancelled"}
OUTCOME_STATUSES = ("Success", "Failed", "TimedOut")
PATCH_DOC = "AWS-RunPatchBaseline"
_CONCURRENCY_RE = re.compile(r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$")
_ERRORS_RE = re.compile(r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$")

# "instance id|document name" ("" = any document) -> {"status", "after_seconds",
#   "status_details", "visible_after_seconds", "not_found_polls", "output", "patch_state", "remaining"}
OUTCOMES: dict[str, dict[str, Any]] = {}


class Invocation:
    def __init__(self, command: "Command", instance_id: str, start: float, end: float,
                 final_status: str, final_details: str, outcome: dict[str, Any]) -> None:
        self.command = command
        self.instance_id = instance_id
        self.start_ts = start
        self.end_ts = end
        self.final_status = final_status
        self.final_details = final_details
        self.visible_ts = command.requested_ts + float(outcome.get("visible_after_seconds") or 0)
        self.not_found_polls = int(outcome.get("not_found_polls") or 0)
        self.output = outcome.get("output")
        self.patch_state = outcome.get("patch_state")
        self.cancelled_ts: float | None = None
        self.finished = False  # end side effects (event, patch state) applied
        # The outcome to run once the agent comes online, while undelivered.
        self.awaiting: dict[str, Any] | None = None

    def _deliver(self) -> None:
        """Deliver an undelivered invocation whose agent is online now."""
        if self.awaiting is None or self.cancelled_ts is not None:
            return
        now = state.now_ts()
        if now >= self.end_ts:  # the delivery timeout passed first
            self.awaiting = None
            return
        agent = AGENTS.get(self.instance_id)
        if agent is None or not agent.is_online():
            return
        outcome, self.awaiting = self.awaiting, None
        self.final_status = outcome.get("status") or "Success"
        self.final_details = outcome.get("status_details") or {
            "Success": "Success", "Failed": "Failed", "TimedOut": "ExecutionTimedOut"}[self.final_status]
        self.start_ts = now
        self.end_ts = now + float(outcome.get("after_seconds") or 0)

    def status(self, at: float | None = None) -> tuple[str, str]:
        self._deliver()
        t = state.now_ts() if at is None else at
        if self.cancelled_ts is not None and self.cancelled_ts <= t and not (self.end_ts <= self.cancelled_ts):
            return "Cancelled", "Cancelled"
        if t >= self.end_ts:
            return self.final_status, self.final_details
        if t >= self.start_ts:
            return "InProgress", "InProgress"
        return "Pending", "Pending"

    def end_time(self) -> float | None:
        status, _ = self.status()
        if status == "Cancelled":
            return self.cancelled_ts
        return self.end_ts if status in TERMINAL else None

    def visible(self) -> bool:
        return state.now_ts() >= self.visible_ts

    @property
    def plugin_name(self) -> str:
        doc = self.command.document_name
        if doc == PATCH_DOC:
            agent = AGENTS.get(self.instance_id)
            return "PatchWindows" if agent and agent.platform_type == "Windows" else "PatchLinux"
        if doc == "AWS-RunPowerShellScript":
            return "aws:runPowerShellScript"
        return "aws:runShellScript"

    def response_code(self) -> int:
        status, _ = self.status()
        return {"Success": 0, "Failed": 1}.get(status, -1)

    def stdout(self) -> str:
        status, _ = self.status()
        if status not in TERMINAL:
            return ""
        if self.output is not None:
            return str(self.output)
        if self.command.document_name == PATCH_DOC:
            op = self.command.operation()
            return f"Patch {op} {'completed' if status == 'Success' else 'failed'} on {self.instance_id}"
        return ""

    def plugin(self) -> dict[str, Any]:
        status, details = self.status()
        out: dict[str, Any] = {
            "Name": self.plugin_name,
            "Status": status,
            "StatusDetails": details,
            "ResponseCode": self.response_code(),
            "Output": self.stdout(),
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "OutputS3Region": self.command.region,
            "OutputS3BucketName": self.command.output_s3_bucket_name,
            "OutputS3KeyPrefix": self.command.output_s3_key_prefix,
        }
        if status != "Pending":
            out["ResponseStartDateTime"] = state.ts_to_dt(self.start_ts)
        end = self.end_time()
        if end is not None:
            out["ResponseFinishDateTime"] = state.ts_to_dt(end)
        return out

    def list_item(self, details: bool) -> dict[str, Any]:
        status, status_details = self.status()
        c = self.command
        item: dict[str, Any] = {
            "CommandId": c.command_id,
            "InstanceId": self.instance_id,
            "InstanceName": (AGENTS[self.instance_id].computer_name if self.instance_id in AGENTS else "") or "",
            "Comment": c.comment,
            "DocumentName": c.document_name,
            "DocumentVersion": c.document_version,
            "RequestedDateTime": state.ts_to_dt(c.requested_ts),
            "Status": status,
            "StatusDetails": status_details,
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "CommandPlugins": [self.plugin()] if details else [],
            "ServiceRole": c.service_role,
            "NotificationConfig": c.notification_config,
            "CloudWatchOutputConfig": c.cloudwatch_output_config,
        }
        return item


class Command:
    def __init__(self, region: str, params: dict[str, Any], instance_ids: list[str],
                 requested_instance_ids: list[str]) -> None:
        self.command_id = state.new_uuid()
        self.region = region
        self.document_name: str = params["DocumentName"]
        self.document_version: str = params.get("DocumentVersion") or "$DEFAULT"
        self.comment: str = params.get("Comment") or ""
        self.parameters: dict[str, list[str]] = params.get("Parameters") or {}
        self.targets: list[dict[str, Any]] = params.get("Targets") or []
        self.requested_instance_ids = requested_instance_ids
        self.instance_ids = instance_ids
        self.max_concurrency: str = params.get("MaxConcurrency") or "50"
        self.max_errors: str = params.get("MaxErrors") or "0"
        self.timeout_seconds = int(params.get("TimeoutSeconds") or 3600)
        self.service_role: str = params.get("ServiceRoleArn") or ""
        self.notification_config = params.get("NotificationConfig") or {
            "NotificationArn": "", "NotificationEvents": [], "NotificationType": ""}
        self.cloudwatch_output_config = params.get("CloudWatchOutputConfig") or {
            "CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False}
        self.output_s3_bucket_name: str = params.get("OutputS3BucketName") or ""
        self.output_s3_key_prefix: str = params.get("OutputS3KeyPrefix") or ""
        self.output_s3_region: str = params.get("OutputS3Region") or region
        self.requested_ts = state.now_ts()
        self.invocations: dict[str, Invocation] = {}
        self.final_event_recorded = False
        self._schedule()

    def operation(self) -> str:
        return (self.parameters.get("Operation") or ["Scan"])[0]

    def _schedule(self) -> None:
        n = len(self.instance_ids)
        slots = max(1, _rate(self.max_concurrency, n, minimum=1))
        free = [self.requested_ts] * min(slots, max(n, 1))
        heapq.heapify(free)
        for iid in self.instance_ids:
            start = heapq.heappop(free)
            outcome = _take_outcome(iid, self.document_name)
            agent = AGENTS.get(iid)
            online = agent is not None and agent.is_online()
            if outcome.get("explicit") or online:
                final = outcome.get("status") or "Success"
                after = float(outcome.get("after_seconds") or 0)
                details = outcome.get("status_details") or {
                    "Success": "Success", "Failed": "Failed", "TimedOut": "ExecutionTimedOut"}[final]
            else:
                # Agent not reachable (ConnectionLost, e.g. the instance is
                # stopped): Pending, and delivered if the agent comes online
                # before the delivery timeout, else Delivery Timed Out. AWS:
                # "Delayed: ... the node was stopped ... The system will try
                # to send the command again"; "Pending: ... If the agent
                # doesn't receive the command before [the timeout], the status
                # changes to Delivery Timed Out" (Understanding command
                # statuses, Systems Manager User Guide).
                final, details, after = "TimedOut", "DeliveryTimedOut", float(self.timeout_seconds)
            end = start + after
            awaiting = details == "DeliveryTimedOut" and not outcome.get("explicit")
            if details == "DeliveryTimedOut":
                start = end  # not delivered yet: Pending until delivered or timed out
            inv = Invocation(self, iid, start, end, final, details, outcome)
            if awaiting:
                inv.awaiting = outcome
            self.invocations[iid] = inv
            UNFINISHED.append(inv)
            heapq.heappush(free, start if awaiting else end)

    def counts(self) -> dict[str, int]:
        completed = errors = delivery = 0
        for inv in self.invocations.values():
            status, details = inv.status()
            if status in TERMINAL:
                completed += 1
            if status == "TimedOut" and details == "DeliveryTimedOut":
                delivery += 1
            elif status in ("Failed", "TimedOut"):
                errors += 1
        return {"CompletedCount": completed, "ErrorCount": errors, "DeliveryTimedOutCount": delivery}

    def status(self) -> tuple[str, str]:
        statuses = [inv.status()[0] for inv in self.invocations.values()]
        if statuses and any(s not in TERMINAL for s in statuses):
            if all(s == "Pending" for s in statuses):
                return "Pending", "Pending"
            return "InProgress", "InProgress"
        c = self.counts()
        allowed = _rate(self.max_errors, len(statuses), minimum=0)
        failures = c["ErrorCount"] + c["DeliveryTimedOutCount"]
        if failures > allowed:
            if any(s == "Failed" for s in statuses):
                return "Failed", "Failed"
            return "TimedOut", "TimedOut"
        # "Cancelled: The command was terminated before it was completed. This is a terminal
        # state." (API reference, Command.StatusDetails): a command with cancelled
        # invocations is Cancelled even if others had already finished.
        if any(s == "Cancelled" for s in statuses):
            return "Cancelled", "Cancelled"
        return "Success", "Success"

    def end_time(self) -> float | None:
        """When the command reached its final status (None while it has not)."""
        ends = [inv.end_time() for inv in self.invocations.values()]
        if any(e is None for e in ends):
            return None
        return max([e for e in ends if e is not None], default=self.requested_ts)

    def describe(self, fresh: bool = False) -> dict[str, Any]:
        status, details = ("Pending", "Pending") if fresh else self.status()
        counts = {"CompletedCount": 0, "ErrorCount": 0, "DeliveryTimedOutCount": 0} if fresh else self.counts()
        return {
            "CommandId": self.command_id,
            "DocumentName": self.document_name,
            "DocumentVersion": self.document_version,
            "Comment": self.comment,
            "ExpiresAfter": state.ts_to_dt(self.requested_ts + self.timeout_seconds),
            "Parameters": self.parameters,
            "InstanceIds": self.requested_instance_ids,
            "Targets": self.targets,
            "RequestedDateTime": state.ts_to_dt(self.requested_ts),
            "Status": status,
            "StatusDetails": details,
            "OutputS3Region": self.output_s3_region,
            "OutputS3BucketName": self.output_s3_bucket_name,
            "OutputS3KeyPrefix": self.output_s3_key_prefix,
            "MaxConcurrency": self.max_concurrency,
            "MaxErrors": self.max_errors,
            "TargetCount": len(self.instance_ids),
            "ServiceRole": self.service_role,
            "NotificationConfig": self.notification_config,
            "CloudWatchOutputConfig": self.cloudwatch_output_config,
            "TimeoutSeconds": self.timeout_seconds,
            **counts,
        }

    def control_json(self) -> dict[str, Any]:
        status, _ = self.status()
        return {
            "command_id": self.command_id,
            "region": self.region,
            "document_name": self.document_name,
            "document_version": self.document_version,
            "parameters": self.parameters,
            "targets": self.targets,
            "requested_instance_ids": self.requested_instance_ids,
            "instance_ids": self.instance_ids,
            "max_concurrency": self.max_concurrency,
            "max_errors": self.max_errors,
            "timeout_seconds": self.timeout_seconds,
            "comment": self.comment,
            "requested_time": state.iso(self.requested_ts, millis=True),
            "status": status,
            "invocations": [
                {
                    "instance_id": inv.instance_id,
                    "status": inv.status()[0],
                    "status_details": inv.status()[1],
                    "start": state.iso(inv.start_ts, millis=True),
                    "end": state.iso(inv.end_ts, millis=True),
                }
                for inv in self.invocations.values()
            ],
        }


COMMANDS: dict[str, Command] = {}
UNFINISHED: list[Invocation] = []  # invocations whose end side effects are still due


def _reset() -> None:
    COMMANDS.clear()
    OUTCOMES.clear()
    UNFINISHED.clear()


state.on_reset(_reset)


def _rate(value: str, total: int, minimum: int) -> int:
    value = str(value).strip()
    if value.endswith("%"):
        pct = int(value[:-1])
        n = math.floor(total * pct / 100)
        if pct > 0 and minimum > 0:
            n = max(n, 1)
        return max(n, minimum)
    return max(int(value), minimum)


def _take_outcome(instance_id: str, document: str) -> dict[str, Any]:
    key = f"{instance_id}|{document}"
    if key not in OUTCOMES:
        key = f"{instance_id}|"
    outcome = OUTCOMES.get(key)
    if outcome is None:
        return {}
    result = dict(outcome, explicit=True)
    if outcome.get("remaining") is not None:
        outcome["remaining"] -= 1
        if outcome["remaining"] <= 0:
            OUTCOMES.pop(key, None)
    return result


def _iso8601_duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S".replace(".000S", "S")


# --------------------------------------------------------------------- ticking

def _record_command_event(cmd: Command) -> None:
    """``aws.ssm`` / ``EC2 Command Status-change Notification``, once, at the final status.

    Detail fields as in AWS's sample "Run Command status change" ("Amazon EventBridge event
    examples for Systems Manager",
    https://docs.aws.amazon.com/systems-manager/latest/userguide/monitoring-systems-manager-event-examples.html):
    command-id, document-name, expire-after, parameters, requested-date-time, status;
    resources = the ARNs of the instances the command ran on. `expire-after` is the
    command's ExpiresAfter (as ListCommands returns it), `status` the command-level Status.
    """
    cmd.final_event_recorded = True
    status, _ = cmd.status()
    events.emit(
        "aws.ssm",
        "EC2 Command Status-change Notification",
        {
            "command-id": cmd.command_id,
            "document-name": cmd.document_name,
            "expire-after": state.iso(cmd.requested_ts + cmd.timeout_seconds, millis=True),
            "parameters": cmd.parameters,
            "requested-date-time": state.iso(cmd.requested_ts, millis=True),
            "status": status,
        },
        region=cmd.region,
        resources=[f"arn:aws:ec2:{cmd.region}:{state.DEFAULT_ACCOUNT}:instance/{iid}" for iid in cmd.instance_ids],
        ts=cmd.end_time(),
    )


@state.on_tick
def _settle() -> None:
    """Apply the side effects of invocations that have ended (in end-time order)."""
    now = state.now_ts()
    done: list[Invocation] = []
    remaining: list[Invocation] = []
    for inv in UNFINISHED:
        end = inv.end_time()
        (done if end is not None and end <= now else remaining).append(inv)
    if not done:
        return
    UNFINISHED[:] = remaining
    done.sort(key=lambda i: i.end_time() or 0)
    for inv in done:
        inv.finished = True
        status, details = inv.status()
        cmd = inv.command
        events.emit(
            "aws.ssm",
            "EC2 Command Invocation Status-change Notification",
            {
                "command-id": cmd.command_id,
                "document-name": cmd.document_name,
                "instance-id": inv.instance_id,
                "requested-date-time": state.iso(cmd.requested_ts, millis=True),
                "status": status,
                "status-details": details,
            },
            region=cmd.region,
            resources=[f"arn:aws:ec2:{cmd.region}:{state.DEFAULT_ACCOUNT}:instance/{inv.instance_id}"],
            ts=inv.end_time(),
        )
        if cmd.document_name == PATCH_DOC and status in ("Success", "Failed"):
            from . import compliance_ext

            compliance_ext.record_patch_run(
                region=cmd.region,
                instance_id=inv.instance_id,
                operation=cmd.operation(),
                succeeded=status == "Success",
                start_ts=inv.start_ts,
                end_ts=inv.end_time() or inv.end_ts,
                snapshot_id=(cmd.parameters.get("SnapshotId") or [""])[0],
                reboot_option=(cmd.parameters.get("RebootOption") or ["RebootIfNeeded"])[0],
                command_id=cmd.command_id,
                overrides=inv.patch_state,
            )
        # After the invocation's own event: the command's, once its last invocation ended.
        if not cmd.final_event_recorded and all(i.finished for i in cmd.invocations.values()):
            _record_command_event(cmd)


# ---------------------------------------------------------------- SendCommand

def _resolve_targets(region: str, targets: list[dict[str, Any]]) -> list[str]:
    agents = registered_agents(region)
    out = []
    for agent in agents:
        tags = agent.tags()
        ok = True
        for t in targets:
            key, values = t.get("Key") or "", t.get("Values") or []
            if key == "InstanceIds":
                ok = agent.instance_id in values
            elif key == "tag-key":
                ok = any(v in tags for v in values)
            elif key.startswith("tag:"):
                ok = tags.get(key[4:]) in values
            else:  # resource-groups:* and others are not emulated
                ok = False
            if not ok:
                break
        if ok:
            out.append(agent.instance_id)
    return out


def _validate_patch_parameters(params: dict[str, list[str]]) -> None:
    allowed = {
        "Operation": {"Scan", "Install"},
        "RebootOption": {"RebootIfNeeded", "NoReboot"},
    }
    known = {"Operation", "RebootOption", "SnapshotId", "InstallOverrideList", "BaselineOverride", "AssociationId"}
    for key, values in params.items():
        if key not in known:
            raise SSMError("InvalidParameters", f'Parameter "{key}" is not defined in the document {PATCH_DOC}.')
        if not isinstance(values, list):
            raise SSMError("InvalidParameters", f'Parameter "{key}" must be a list of strings.')
        if key in allowed:
            for v in values:
                if v not in allowed[key]:
                    raise SSMError(
                        "InvalidParameters",
                        f'Parameter "{key}" has value "{v}" not in {{{", ".join(sorted(allowed[key]))}}}.',
                    )
    if "Operation" not in params:
        raise SSMError("InvalidParameters", 'Parameter "Operation" is required.')


def send_command(self: SimpleSystemManagerResponse) -> ActionResult:
    body = {k: self._get_param(k) for k in (
        "DocumentName", "DocumentVersion", "Comment", "Parameters", "Targets", "InstanceIds",
        "MaxConcurrency", "MaxErrors", "TimeoutSeconds", "ServiceRoleArn", "NotificationConfig",
        "CloudWatchOutputConfig", "OutputS3BucketName", "OutputS3KeyPrefix", "OutputS3Region")}
    doc = body["DocumentName"]
    if not doc:
        raise SSMError("ValidationException", "1 validation error detected: Value null at 'documentName' failed to satisfy constraint: Member must not be null")
    if not doc.startswith("AWS-") and not doc.startswith("arn:"):
        if doc not in self.ssm_backend._documents:
            raise SSMError("InvalidDocument", f"Document with name {doc} does not exist.")
    if doc == PATCH_DOC:
        _validate_patch_parameters(body["Parameters"] or {})
    instance_ids = body["InstanceIds"] or []
    targets = body["Targets"] or []
    if instance_ids and targets:
        raise SSMError("InvalidParameters", "Specify either InstanceIds or Targets, not both.")
    if not instance_ids and not targets:
        raise SSMError("ValidationException", "Either InstanceIds or Targets must be specified.")
    if len(instance_ids) > 50:
        raise SSMError("ValidationException", "1 validation error detected: Value at 'instanceIds' failed to satisfy constraint: Member must have length less than or equal to 50")
    if len(targets) > 5:
        raise SSMError("ValidationException", "1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length less than or equal to 5")
    if body["MaxConcurrency"] is not None and not _CONCURRENCY_RE.match(str(body["MaxConcurrency"])):
        raise SSMError("ValidationException", f"1 validation error detected: Value '{body['MaxConcurrency']}' at 'maxConcurrency' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$")
    if body["MaxErrors"] is not None and not _ERRORS_RE.match(str(body["MaxErrors"])):
        raise SSMError("ValidationException", f"1 validation error detected: Value '{body['MaxErrors']}' at 'maxErrors' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$")
    if len(set(instance_ids)) != len(instance_ids):
        raise SSMError("DuplicateInstanceId", "Instance IDs must be unique.")
    if instance_ids:
        bad = [i for i in instance_ids if registered_agent(i, self.region) is None
               or AGENTS[i].ping_status == "Inactive"]
        if bad:
            raise SSMError(
                "InvalidInstanceId",
                f"Instances [[{', '.join(bad)}]] not in a valid state for account {state.DEFAULT_ACCOUNT}",
            )
        resolved = list(instance_ids)
    else:
        resolved = _resolve_targets(self.region, targets)
    cmd = Command(self.region, body, resolved, list(instance_ids))
    COMMANDS[cmd.command_id] = cmd
    if not cmd.invocations:
        # Targets that match no managed node: nothing to run, the command is final at once.
        _record_command_event(cmd)
    _settle()
    return ActionResult({"Command": cmd.describe(fresh=True)})


# ---------------------------------------------------------------- list/get

_FILTER_KEYS = {"InvokedAfter", "InvokedBefore", "Status", "ExecutionStage", "DocumentName"}


def _parse_time(value: str) -> float:
    import datetime as dt

    v = value.strip().replace("Z", "+00:00")
    try:
        d = dt.datetime.fromisoformat(v)
    except ValueError as exc:
        raise SSMError("InvalidFilterValue", f"{value} is not a valid timestamp.") from exc
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    return d.timestamp()


def _filter_ok(key: str, value: str, requested_ts: float, status: str, document: str,
               details: str = "") -> bool:
    # Values as documented for CommandFilter
    # (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CommandFilter.html):
    # InvokedAfter "2021-07-07T00:00:00Z ... July 7, 2021, and later", InvokedBefore "from
    # before July 7, 2021", Status a status ("TimedOut (this includes both Delivery and
    # Execution time outs)") or a detailed one (DeliveryTimedOut, ExecutionTimedOut, ...,
    # which are StatusDetails values), DocumentName the document's name.
    if key == "InvokedAfter":
        return requested_ts >= _parse_time(value)
    if key == "InvokedBefore":
        return requested_ts < _parse_time(value)
    if key == "Status":
        return value in (status, details)
    if key == "DocumentName":
        return document == value
    if key == "ExecutionStage":
        return (status in TERMINAL) == (value == "Complete")
    return True


_INSTANCE_ID_RE = re.compile(r"(^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)")


def _validate_instance_id(instance_id: str | None) -> None:
    # Pattern of the InstanceId request parameter (ListCommands, ListCommandInvocations).
    if instance_id is not None and not _INSTANCE_ID_RE.match(instance_id):
        raise SSMError(
            "ValidationException",
            f"1 validation error detected: Value '{instance_id}' at 'instanceId' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: (^i-(\\w{8}|\\w{17})$)|(^mi-\\w{17}$)",
        )


def _validate_filters(filters: list[dict[str, Any]], allow_stage: bool) -> list[tuple[str, str]]:
    out = []
    # "Filters ... Array Members: Minimum number of 1 item. Maximum number of 5 items."
    # (API_ListCommands / API_ListCommandInvocations, request parameters)
    if len(filters or []) > 5:
        raise SSMError(
            "ValidationException",
            "1 validation error detected: Value at 'filters' failed to satisfy constraint: "
            "Member must have length less than or equal to 5",
        )
    for f in filters or []:
        key, value = f.get("key"), f.get("value")
        if key not in _FILTER_KEYS or (key == "ExecutionStage" and not allow_stage):
            raise SSMError("InvalidFilterKey", f"The filter key {key} is not valid.")
        if key == "ExecutionStage" and value not in ("Executing", "Complete"):
            raise SSMError("InvalidFilterValue", f"{value} is not a valid ExecutionStage value.")
        out.append((key, value))
    return out


def _max_results(self: SimpleSystemManagerResponse, default: int, low: int, high: int) -> int:
    value = self._get_param("MaxResults")
    if value is None:
        return default
    value = int(value)
    if not low <= value <= high:
        raise SSMError(
            "ValidationException",
            f"1 validation error detected: Value '{value}' at 'maxResults' failed to satisfy constraint: "
            f"Member must have value between {low} and {high}",
        )
    return value


def _offset(kind: str, token: str | None) -> int:
    offset = util.decode_token(kind, token)
    if offset is None:
        raise SSMError("InvalidNextToken", "The specified token isn't valid.")
    return offset


def _command_for(command_id: str | None, region: str) -> Command | None:
    if command_id is None:
        return None
    cmd = COMMANDS.get(command_id)
    if cmd is None or cmd.region != region:
        if not re.match(r"^[0-9a-f-]{36}$", command_id):
            raise SSMError("ValidationException", f"1 validation error detected: Value '{command_id}' at 'commandId' failed to satisfy constraint: Member must have length equal to 36")
        raise SSMError("InvalidCommandId", f"Command {command_id} does not exist.")
    return cmd


def list_commands(self: SimpleSystemManagerResponse) -> ActionResult:
    command_id = self._get_param("CommandId")
    instance_id = self._get_param("InstanceId")
    _validate_instance_id(instance_id)
    filters = _validate_filters(self._get_param("Filters") or [], allow_stage=True)
    limit = _max_results(self, 50, 1, 50)
    cmd = _command_for(command_id, self.region)
    cmds = [cmd] if cmd else [c for c in COMMANDS.values() if c.region == self.region]
    cmds = sorted(cmds, key=lambda c: c.requested_ts, reverse=True)
    out = []
    for c in cmds:
        if instance_id and instance_id not in c.invocations:
            continue
        status, details = c.status()
        if all(_filter_ok(k, v, c.requested_ts, status, c.document_name, details) for k, v in filters):
            out.append(c)
    chunk, nxt = util.page(out, _offset("ListCommands", self._get_param("NextToken")), limit, "ListCommands")
    result: dict[str, Any] = {"Commands": [c.describe() for c in chunk]}
    if nxt:
        result["NextToken"] = nxt
    return ActionResult(result)


def list_command_invocations(self: SimpleSystemManagerResponse) -> ActionResult:
    command_id = self._get_param("CommandId")
    instance_id = self._get_param("InstanceId")
    details = str(self._get_param("Details")).lower() == "true"
    _validate_instance_id(instance_id)
    filters = _validate_filters(self._get_param("Filters") or [], allow_stage=False)
    limit = _max_results(self, 50, 1, 50)
    cmd = _command_for(command_id, self.region)
    cmds = [cmd] if cmd else [c for c in COMMANDS.values() if c.region == self.region]
    cmds = sorted(cmds, key=lambda c: c.requested_ts, reverse=True)
    out = []
    for c in cmds:
        for inv in c.invocations.values():
            if instance_id and inv.instance_id != instance_id:
                continue
            if not inv.visible():
                continue
            status, status_details = inv.status()
            if all(_filter_ok(k, v, c.requested_ts, status, c.document_name, status_details) for k, v in filters):
                out.append(inv)
    chunk, nxt = util.page(out, _offset("ListCommandInvocations", self._get_param("NextToken")), limit,
                           "ListCommandInvocations")
    result: dict[str, Any] = {"CommandInvocations": [i.list_item(details) for i in chunk]}
    if nxt:
        result["NextToken"] = nxt
    return ActionResult(result)


def get_command_invocation(self: SimpleSystemManagerResponse) -> ActionResult:
    command_id = self._get_param("CommandId")
    instance_id = self._get_param("InstanceId")
    plugin_name = self._get_param("PluginName")
    not_found = SSMError("InvocationDoesNotExist", "")
    cmd = COMMANDS.get(command_id or "")
    if cmd is None or cmd.region != self.region:
        if command_id and not re.match(r"^[0-9a-f-]{36}$", command_id):
            raise SSMError("InvalidCommandId", f"Command {command_id} is not valid.")
        raise not_found
    inv = cmd.invocations.get(instance_id or "")
    if inv is None or not inv.visible():
        raise not_found
    if inv.not_found_polls > 0:
        inv.not_found_polls -= 1
        raise not_found
    if plugin_name and plugin_name != inv.plugin_name:
        raise SSMError("InvalidPluginName", f"Plugin {plugin_name} is not part of the document {cmd.document_name}.")
    status, details = inv.status()
    end = inv.end_time()
    started = status != "Pending"
    result = {
        "CommandId": cmd.command_id,
        "InstanceId": inv.instance_id,
        "Comment": cmd.comment,
        "DocumentName": cmd.document_name,
        "DocumentVersion": cmd.document_version,
        "PluginName": inv.plugin_name,
        "ResponseCode": inv.response_code(),
        "ExecutionStartDateTime": state.iso(inv.start_ts, millis=True) if started else "",
        "ExecutionElapsedTime": _iso8601_duration(((end or state.now_ts()) - inv.start_ts) if started else 0),
        "ExecutionEndDateTime": state.iso(end, millis=True) if end is not None else "",
        "Status": status,
        "StatusDetails": details,
        "StandardOutputContent": inv.stdout(),
        "StandardOutputUrl": "",
        "StandardErrorContent": "" if status != "Failed" else "Patch operation failed",
        "StandardErrorUrl": "",
        "CloudWatchOutputConfig": cmd.cloudwatch_output_config,
    }
    return ActionResult(result)


def cancel_command(self: SimpleSystemManagerResponse) -> ActionResult:
    command_id = self._get_param("CommandId")
    instance_ids = self._get_param("InstanceIds") or []
    cmd = _command_for(command_id, self.region)
    now = state.now_ts()
    for inv in cmd.invocations.values():
        if instance_ids and inv.instance_id not in instance_ids:
            continue
        if inv.status()[0] not in TERMINAL:
            inv.cancelled_ts = now
    _settle()
    return EmptyResult()


def install() -> None:
    R = SimpleSystemManagerResponse
    R.send_command = send_command  # type: ignore[method-assign]
    R.list_commands = list_commands  # type: ignore[method-assign]
    R.get_command_invocation = get_command_invocation  # type: ignore[method-assign]
    R.list_command_invocations = list_command_invocations  # type: ignore[attr-defined]
    R.cancel_command = cancel_command  # type: ignore[attr-defined]


# ------------------------------------------------------------------ control plane

@route("POST", "/_fleetops/ssm/command-outcome")
def _command_outcome(body: dict[str, Any], query: dict[str, str]) -> Any:
    instance_id = require(body, "instance_id")
    status = body.get("status") or "Success"
    if status not in OUTCOME_STATUSES:
        raise ControlError(400, f"status must be one of {list(OUTCOME_STATUSES)}")
    count = body.get("count")
    document = body.get("document_name") or ""
    key = f"{instance_id}|{document}"
    OUTCOMES[key] = {
        "document_name": document or None,
        "status": status,
        "after_seconds": float(body.get("after_seconds") or 0),
        "status_details": body.get("status_details"),
        "visible_after_seconds": float(body.get("visible_after_seconds") or 0),
        "not_found_polls": int(body.get("not_found_polls") or 0),
        "output": body.get("output"),
        "patch_state": body.get("patch_state"),
        "remaining": None if count is None else int(count),
    }
    return {"instance_id": instance_id, **OUTCOMES[key]}


@route("GET", "/_fleetops/ssm/commands")
def _commands(body: dict[str, Any], query: dict[str, str]) -> Any:
    cmds = sorted(COMMANDS.values(), key=lambda c: c.requested_ts)
    if query.get("document_name"):
        cmds = [c for c in cmds if c.document_name == query["document_name"]]
    if query.get("instance_id"):
        cmds = [c for c in cmds if query["instance_id"] in c.invocations]
    return {"commands": [c.control_json() for c in cmds]}
