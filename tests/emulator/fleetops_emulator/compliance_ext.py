"""Patch Manager states and SSM compliance (moto lacks both).

Operations: DescribeInstancePatchStates, DescribeInstancePatchStatesForPatchGroup,
DescribePatchGroups, GetPatchBaselineForPatchGroup (moto's, with the API's default
OperatingSystem), PutComplianceItems, ListComplianceItems, ListComplianceSummaries,
ListResourceComplianceSummaries.

Patch states come from ``POST /_fleetops/ssm/patch-state`` or from
``AWS-RunPatchBaseline`` invocations ending (see commands_ext). Every patch-state
change also rewrites the instance's ``Patch`` compliance items, as Patch Manager does.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.ssm.models import ssm_backends
from moto.ssm.responses import SimpleSystemManagerResponse

from . import state, util
from .control import ControlError, route
from .ssm_ext import AGENTS, SSMError

COUNT_FIELDS = (
    "InstalledCount", "InstalledOtherCount", "InstalledPendingRebootCount", "InstalledRejectedCount",
    "MissingCount", "FailedCount", "UnreportedNotApplicableCount", "NotApplicableCount",
    "AvailableSecurityUpdateCount", "CriticalNonCompliantCount", "SecurityNonCompliantCount",
    "OtherNonCompliantCount",
)
TIME_FIELDS = ("OperationStartTime", "OperationEndTime", "LastNoRebootInstallOperationTime")
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNSPECIFIED")
_SEVERITY_KEYS = {
    "CRITICAL": "CriticalCount", "HIGH": "HighCount", "MEDIUM": "MediumCount",
    "LOW": "LowCount", "INFORMATIONAL": "InformationalCount", "UNSPECIFIED": "UnspecifiedCount",
}
_TYPE_RE = re.compile(r"^([A-Za-z0-9_\-]\w+|Custom:[a-zA-Z0-9_\-]\w+)$")

# (region, instance id) -> InstancePatchState with float timestamps
PATCH_STATES: dict[tuple[str, str], dict[str, Any]] = {}
# (region, resource id, compliance type) -> {"ResourceType", "ExecutionSummary", "Items": {id: item}}
COMPLIANCE: dict[tuple[str, str, str], dict[str, Any]] = {}


def _reset() -> None:
    PATCH_STATES.clear()
    COMPLIANCE.clear()


state.on_reset(_reset)


# ------------------------------------------------------------------ helpers

def _os_for(instance_id: str) -> str:
    agent = AGENTS.get(instance_id)
    if agent is None:
        return "AMAZON_LINUX_2023"
    name, version = agent.platform_name.lower(), str(agent.platform_version)
    if "windows" in name:
        return "WINDOWS"
    if "ubuntu" in name:
        return "UBUNTU"
    if "red hat" in name or "rhel" in name:
        return "REDHAT_ENTERPRISE_LINUX"
    if "suse" in name:
        return "SUSE"
    if "debian" in name:
        return "DEBIAN"
    if "amazon linux" in name:
        if version.startswith("2023"):
            return "AMAZON_LINUX_2023"
        if version.startswith("2"):
            return "AMAZON_LINUX_2"
        return "AMAZON_LINUX_2023"
    return "AMAZON_LINUX_2023"


def _patch_group_of(region: str, instance_id: str) -> str:
    _, inst = util.try_find_instance(instance_id, region)
    if inst is None:
        return ""
    tags = util.instance_tags(inst)
    return tags.get("Patch Group") or tags.get("PatchGroup") or ""


def _baseline_for(region: str, patch_group: str, os_name: str) -> str:
    backend = ssm_backends[state.DEFAULT_ACCOUNT][region]
    try:
        baseline_id, _, _ = backend.get_patch_baseline_for_patch_group(patch_group or "Fake", os_name)
    except KeyError:
        baseline_id, _, _ = backend.get_patch_baseline_for_patch_group("Fake", "AMAZON_LINUX_2023")
    return str(baseline_id).rsplit("/", 1)[-1]


def _to_ts(value: Any, field: str) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            d = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ControlError(400, f"{field}: '{value}' is not an RFC 3339 time or epoch seconds") from exc
        if d.tzinfo is None:
            d = d.replace(tzinfo=dt.timezone.utc)
        return d.timestamp()
    raise ControlError(400, f"{field} must be an RFC 3339 string or epoch seconds")


def _new_state(region: str, instance_id: str) -> dict[str, Any]:
    group = _patch_group_of(region, instance_id)
    now = state.now_ts()
    st: dict[str, Any] = {
        "InstanceId": instance_id,
        "PatchGroup": group,
        "BaselineId": _baseline_for(region, group, _os_for(instance_id)),
        "OperationStartTime": now,
        "OperationEndTime": now,
        "Operation": "Scan",
        "RebootOption": "RebootIfNeeded",
    }
    for f in COUNT_FIELDS:
        st[f] = 0
    return st


def set_patch_state(region: str, body: dict[str, Any], sync: bool = True) -> dict[str, Any]:
    instance_id = body.get("InstanceId")
    if not instance_id:
        raise ControlError(400, "missing required field 'InstanceId'")
    current = dict(PATCH_STATES.get((region, instance_id)) or _new_state(region, instance_id))
    for key, value in body.items():
        if key in ("region", "compliance"):
            continue
        if key in COUNT_FIELDS:
            try:
                current[key] = int(value)
            except (TypeError, ValueError) as exc:
                raise ControlError(400, f"{key} must be an integer") from exc
            if current[key] < 0:
                raise ControlError(400, f"{key} must be >= 0")
        elif key in TIME_FIELDS:
            current[key] = None if value is None else _to_ts(value, key)
        elif key == "Operation":
            if value not in ("Scan", "Install"):
                raise ControlError(400, "Operation must be Scan or Install")
            current[key] = value
        elif key == "RebootOption":
            if value not in ("RebootIfNeeded", "NoReboot"):
                raise ControlError(400, "RebootOption must be RebootIfNeeded or NoReboot")
            current[key] = value
        elif key in ("PatchGroup", "BaselineId", "SnapshotId", "InstallOverrideList", "OwnerInformation", "InstanceId"):
            current[key] = value
        else:
            raise ControlError(400, f"unknown InstancePatchState field '{key}'")
    PATCH_STATES[(region, instance_id)] = current
    if sync:
        _sync_patch_compliance(region, current)
    return current


def record_patch_run(*, region: str, instance_id: str, operation: str, succeeded: bool, start_ts: float,
                     end_ts: float, snapshot_id: str, reboot_option: str, command_id: str,
                     overrides: dict[str, Any] | None = None) -> None:
    """Called when an AWS-RunPatchBaseline invocation ends."""
    if not succeeded and operation == "Scan":
        return  # a failed scan reports nothing
    cur = dict(PATCH_STATES.get((region, instance_id)) or _new_state(region, instance_id))
    op_start = max(start_ts + 0.01, start_ts)
    cur.update({
        "Operation": operation,
        "OperationStartTime": op_start,
        "OperationEndTime": max(end_ts, op_start + 0.01),
        "RebootOption": reboot_option,
    })
    if snapshot_id:
        cur["SnapshotId"] = snapshot_id
    if operation == "Install":
        if succeeded:
            fixed = cur["MissingCount"] + cur["FailedCount"]
            if reboot_option == "NoReboot":
                cur["InstalledPendingRebootCount"] += fixed
                cur["LastNoRebootInstallOperationTime"] = cur["OperationEndTime"]
            else:
                cur["InstalledCount"] += fixed + cur["InstalledPendingRebootCount"]
                cur["InstalledPendingRebootCount"] = 0
            cur.update({"MissingCount": 0, "FailedCount": 0, "CriticalNonCompliantCount": 0,
                        "SecurityNonCompliantCount": 0, "OtherNonCompliantCount": 0})
        else:
            cur["FailedCount"] = max(1, cur["FailedCount"], cur["MissingCount"])
            cur["MissingCount"] = max(0, cur["MissingCount"] - cur["FailedCount"])
            cur["OtherNonCompliantCount"] = max(cur["OtherNonCompliantCount"],
                                                cur["FailedCount"] - cur["CriticalNonCompliantCount"]
                                                - cur["SecurityNonCompliantCount"])
    PATCH_STATES[(region, instance_id)] = cur
    if overrides:
        set_patch_state(region, dict(overrides, InstanceId=instance_id), sync=False)
    _sync_patch_compliance(region, PATCH_STATES[(region, instance_id)], execution_id=command_id)


def _sync_patch_compliance(region: str, st: dict[str, Any], execution_id: str | None = None) -> None:
    """Rewrite the instance's Patch compliance from its patch state (items are generated lazily)."""
    crit, sec, other = st["CriticalNonCompliantCount"], st["SecurityNonCompliantCount"], st["OtherNonCompliantCount"]
    noncompliant = max(st["MissingCount"] + st["FailedCount"] + st["InstalledRejectedCount"], crit + sec + other)
    COMPLIANCE[(region, st["InstanceId"], "Patch")] = {
        "ResourceType": "ManagedInstance",
        "ExecutionSummary": {
            "ExecutionTime": st["OperationEndTime"],
            "ExecutionId": execution_id or "",
            "ExecutionType": "Command",
        },
        "Items": None,
        "Patch": {
            # (id prefix, status, severity, PatchState, classification) -> count
            "critical": (crit, "NON_COMPLIANT", "CRITICAL", "Missing", "SecurityUpdates"),
            "security": (sec, "NON_COMPLIANT", "HIGH", "Missing", "SecurityUpdates"),
            "other": (noncompliant - crit - sec, "NON_COMPLIANT", "MEDIUM", "Missing", "Bugfix"),
            "pending-reboot": (st["InstalledPendingRebootCount"], "NON_COMPLIANT", "MEDIUM",
                               "InstalledPendingReboot", "Bugfix"),
            "installed": (st["InstalledCount"] + st["InstalledOtherCount"], "COMPLIANT", "UNSPECIFIED",
                          "Installed", "Bugfix"),
        },
    }


def _entry_items(entry: dict[str, Any]) -> list[dict[str, Any]]:
    if entry.get("Items") is not None:
        return list(entry["Items"].values())
    items = []
    for prefix, (n, status, severity, patch_state, classification) in entry["Patch"].items():
        for i in range(n):
            items.append({
                "Id": f"{prefix}-{i + 1}", "Title": f"{classification} patch {i + 1} ({patch_state})",
                "Status": status, "Severity": severity,
                "Details": {"Classification": classification, "PatchState": patch_state,
                            "PatchSeverity": severity.capitalize()},
            })
    return items


def _entry_counts(entry: dict[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    """(compliant, non-compliant) item counts by severity."""
    comp = {s: 0 for s in SEVERITIES}
    non = {s: 0 for s in SEVERITIES}
    if entry.get("Items") is not None:
        for it in entry["Items"].values():
            (comp if it["Status"] == "COMPLIANT" else non)[it["Severity"]] += 1
    else:
        for n, status, severity, _, _ in entry["Patch"].values():
            (comp if status == "COMPLIANT" else non)[severity] += n
    return comp, non


def _state_out(st: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in st.items():
        if v is None:
            continue
        out[k] = state.ts_to_dt(v) if k in TIME_FIELDS else v
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


def _paged(self: SimpleSystemManagerResponse, kind: str, items: list[Any], limit: int, key: str) -> ActionResult:
    chunk, nxt = util.page(items, _offset(kind, self._get_param("NextToken")), limit, kind)
    result: dict[str, Any] = {key: chunk}
    if nxt:
        result["NextToken"] = nxt
    return ActionResult(result)


# ------------------------------------------------------------------ patch states

def describe_instance_patch_states(self: SimpleSystemManagerResponse) -> ActionResult:
    ids = self._get_param("InstanceIds")
    if not ids or len(ids) > 50:
        raise SSMError(
            "ValidationException",
            "1 validation error detected: Value at 'instanceIds' failed to satisfy constraint: "
            "Member must have length between 1 and 50",
        )
    limit = _max_results(self, 10, 10, 100)
    states = [_state_out(PATCH_STATES[(self.region, i)]) for i in ids if (self.region, i) in PATCH_STATES]
    return _paged(self, "DescribeInstancePatchStates", states, limit, "InstancePatchStates")


_PATCH_FILTER_KEYS = {
    "InstalledCount", "InstalledOtherCount", "InstalledPendingRebootCount", "InstalledRejectedCount",
    "MissingCount", "FailedCount", "UnreportedNotApplicableCount", "NotApplicableCount",
}


def describe_instance_patch_states_for_patch_group(self: SimpleSystemManagerResponse) -> ActionResult:
    group = self._get_param("PatchGroup")
    if not group:
        raise SSMError("ValidationException", "1 validation error detected: Value null at 'patchGroup' failed to satisfy constraint: Member must not be null")
    filters = self._get_param("Filters") or []
    if len(filters) > 4:
        raise SSMError("ValidationException", "1 validation error detected: Value at 'filters' failed to satisfy constraint: Member must have length less than or equal to 4")
    conds = []
    for f in filters:
        key, values, op = f.get("Key"), f.get("Values") or [], f.get("Type")
        if key not in _PATCH_FILTER_KEYS:
            raise SSMError("InvalidFilter", f"The filter key {key} is not valid.")
        if op not in ("Equal", "NotEqual", "LessThan", "GreaterThan"):
            raise SSMError("InvalidFilter", f"The filter type {op} is not valid.")
        if len(values) != 1 or not str(values[0]).isdigit():
            raise SSMError("InvalidFilter", f"The filter {key} needs exactly one integer value.")
        conds.append((key, int(values[0]), op))
    limit = _max_results(self, 10, 10, 100)

    def ok(st: dict[str, Any]) -> bool:
        for key, value, op in conds:
            v = st[key]
            if not {"Equal": v == value, "NotEqual": v != value, "LessThan": v < value,
                    "GreaterThan": v > value}[op]:
                return False
        return True

    states = [_state_out(st) for (reg, _), st in PATCH_STATES.items()
              if reg == self.region and st["PatchGroup"] == group and ok(st)]
    return _paged(self, "DescribeInstancePatchStatesForPatchGroup", states, limit, "InstancePatchStates")


def describe_patch_groups(self: SimpleSystemManagerResponse) -> ActionResult:
    limit = _max_results(self, 10, 1, 100)
    filters = self._get_param("Filters") or []
    backend = self.ssm_backend
    mappings = []
    for name, group in backend.patch_groups.items():
        for os_name, baseline_id in group.associations.items():
            baseline = backend.baselines.get(baseline_id)
            if baseline is None:
                continue
            mappings.append({
                "PatchGroup": name,
                "BaselineIdentity": {
                    "BaselineId": baseline.id, "BaselineName": baseline.name,
                    "OperatingSystem": baseline.operating_system,
                    "BaselineDescription": baseline.description or "",
                    "DefaultBaseline": bool(baseline.default_baseline),
                },
            })
    for f in filters:
        key, values = f.get("Key"), f.get("Values") or []
        if key == "NAME_PREFIX":
            mappings = [m for m in mappings if any(m["PatchGroup"].startswith(v) for v in values)]
        elif key == "OPERATING_SYSTEM":
            mappings = [m for m in mappings if m["BaselineIdentity"]["OperatingSystem"] in values]
        else:
            raise SSMError("ValidationException", f"Invalid filter key {key}; valid keys are NAME_PREFIX and OPERATING_SYSTEM.")
    return _paged(self, "DescribePatchGroups", mappings, limit, "Mappings")


def get_patch_baseline_for_patch_group(self: SimpleSystemManagerResponse) -> ActionResult:
    group = self._get_param("PatchGroup")
    os_name = self._get_param("OperatingSystem") or "WINDOWS"
    baseline_id, group, os_name = self.ssm_backend.get_patch_baseline_for_patch_group(
        patch_group=group, operating_system=os_name)
    return ActionResult({"BaselineId": baseline_id, "PatchGroup": group, "OperatingSystem": os_name})


# ------------------------------------------------------------------ compliance

def _resource_known(region: str, resource_id: str) -> bool:
    agent = AGENTS.get(resource_id)
    if agent is not None and agent.region == region:
        return True
    reg, inst = util.try_find_instance(resource_id, region)
    return inst is not None


def put_compliance_items(self: SimpleSystemManagerResponse) -> ActionResult:
    resource_id = self._get_param("ResourceId")
    resource_type = self._get_param("ResourceType")
    ctype = self._get_param("ComplianceType")
    summary = self._get_param("ExecutionSummary") or {}
    items = self._get_param("Items")
    upload = self._get_param("UploadType") or "COMPLETE"
    if resource_type != "ManagedInstance":
        raise SSMError("InvalidResourceType", f"Resource type {resource_type} is not supported; use ManagedInstance.")
    if not resource_id or not _resource_known(self.region, resource_id):
        raise SSMError("InvalidResourceId", f"Resource {resource_id} is not a managed instance.")
    if not ctype or not _TYPE_RE.match(ctype):
        raise SSMError("ValidationException", f"1 validation error detected: Value '{ctype}' at 'complianceType' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([A-Za-z0-9_\\-]\\w+|Custom:[a-zA-Z0-9_\\-]\\w+)$")
    if items is None:
        raise SSMError("ValidationException", "1 validation error detected: Value null at 'items' failed to satisfy constraint: Member must not be null")
    if upload not in ("COMPLETE", "PARTIAL"):
        raise SSMError("ValidationException", f"Invalid UploadType {upload}.")
    if "ExecutionTime" not in summary:
        raise SSMError("ValidationException", "1 validation error detected: Value null at 'executionSummary.executionTime' failed to satisfy constraint: Member must not be null")
    parsed = {}
    for i, item in enumerate(items):
        if item.get("Status") not in ("COMPLIANT", "NON_COMPLIANT"):
            raise SSMError("InvalidItemContentException", f"Item {i}: Status must be COMPLIANT or NON_COMPLIANT.")
        if item.get("Severity") not in SEVERITIES:
            raise SSMError("InvalidItemContentException", f"Item {i}: Severity must be one of {', '.join(SEVERITIES)}.")
        iid = item.get("Id") or f"item-{i + 1}"
        parsed[iid] = {"Id": iid, "Title": item.get("Title") or "", "Status": item["Status"],
                       "Severity": item["Severity"], "Details": item.get("Details") or {}}
    exec_time = summary["ExecutionTime"]
    exec_ts = float(exec_time) if isinstance(exec_time, (int, float)) else _parse_iso(exec_time)
    key = (self.region, resource_id, ctype)
    entry = COMPLIANCE.get(key)
    if entry is None or upload == "COMPLETE" or entry.get("Items") is None:
        entry = {"ResourceType": resource_type, "Items": {}}
    entry["Items"].update(parsed)
    entry["ExecutionSummary"] = {
        "ExecutionTime": exec_ts,
        "ExecutionId": summary.get("ExecutionId") or "",
        "ExecutionType": summary.get("ExecutionType") or "Command",
    }
    COMPLIANCE[key] = entry
    return EmptyResult()


def _parse_iso(value: str) -> float:
    try:
        return _to_ts(value, "ExecutionTime")
    except ControlError as exc:
        raise SSMError("ValidationException", exc.message) from exc


def _exec_out(summary: dict[str, Any]) -> dict[str, Any]:
    out = dict(summary)
    out["ExecutionTime"] = state.ts_to_dt(summary["ExecutionTime"])
    return {k: v for k, v in out.items() if v != ""}


_OPS = {"EQUAL", "NOT_EQUAL", "BEGIN_WITH", "LESS_THAN", "GREATER_THAN"}


def _parse_filters(raw: list[dict[str, Any]], allowed: set[str]) -> list[tuple[str, list[str], str]]:
    out = []
    for f in raw or []:
        key, values, op = f.get("Key"), f.get("Values") or [], f.get("Type") or "EQUAL"
        if key not in allowed:
            raise SSMError("InvalidFilter", f"The filter key {key} is not valid. Valid keys: {', '.join(sorted(allowed))}.")
        if op not in _OPS:
            raise SSMError("InvalidFilter", f"The filter type {op} is not valid.")
        if not values:
            raise SSMError("InvalidFilter", f"The filter {key} needs at least one value.")
        out.append((key, [str(v) for v in values], op))
    return out


def _match(value: Any, values: list[str], op: str) -> bool:
    v = "" if value is None else str(value)
    if op == "EQUAL":
        return v in values
    if op == "NOT_EQUAL":
        return v not in values
    if op == "BEGIN_WITH":
        return any(v.startswith(x) for x in values)
    if op == "LESS_THAN":
        return any(v < x for x in values)
    return any(v > x for x in values)


def _entries(region: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(rid, ctype, e) for (reg, rid, ctype), e in COMPLIANCE.items() if reg == region]


def _severity_summary(counts: dict[str, int]) -> dict[str, int]:
    return {_SEVERITY_KEYS[sev]: counts.get(sev, 0) for sev in SEVERITIES}


def _overall_severity(comp: dict[str, int], non: dict[str, int]) -> str:
    pool = non if sum(non.values()) else comp
    for sev in SEVERITIES:
        if pool.get(sev):
            return sev
    return "UNSPECIFIED"


def list_compliance_items(self: SimpleSystemManagerResponse) -> ActionResult:
    resource_ids = self._get_param("ResourceIds") or []
    resource_types = self._get_param("ResourceTypes") or []
    for t in resource_types:
        if t != "ManagedInstance":
            raise SSMError("InvalidResourceType", f"Resource type {t} is not supported; use ManagedInstance.")
    for rid in resource_ids:
        if not _resource_known(self.region, rid):
            raise SSMError("InvalidResourceId", f"Resource {rid} is not a managed instance.")
    filters = _parse_filters(self._get_param("Filters"), {"ComplianceType", "Status", "Severity", "Id", "Title", "ExecutionId", "ExecutionType"})
    limit = _max_results(self, 10, 1, 50)
    out = []
    for rid, ctype, entry in _entries(self.region):
        if resource_ids and rid not in resource_ids:
            continue
        ex = entry["ExecutionSummary"]
        for item in _entry_items(entry):
            fields = {"ComplianceType": ctype, "Status": item["Status"], "Severity": item["Severity"],
                      "Id": item["Id"], "Title": item["Title"], "ExecutionId": ex.get("ExecutionId"),
                      "ExecutionType": ex.get("ExecutionType")}
            if all(_match(fields[k], vals, op) for k, vals, op in filters):
                out.append({"ComplianceType": ctype, "ResourceType": entry["ResourceType"], "ResourceId": rid,
                            **item, "ExecutionSummary": _exec_out(ex)})
    return _paged(self, "ListComplianceItems", out, limit, "ComplianceItems")


def _resource_summary(rid: str, ctype: str, entry: dict[str, Any]) -> dict[str, Any]:
    comp, non = _entry_counts(entry)
    return {
        "ComplianceType": ctype,
        "ResourceType": entry["ResourceType"],
        "ResourceId": rid,
        "Status": "NON_COMPLIANT" if sum(non.values()) else "COMPLIANT",
        "OverallSeverity": _overall_severity(comp, non),
        "ExecutionSummary": _exec_out(entry["ExecutionSummary"]),
        "CompliantSummary": {"CompliantCount": sum(comp.values()), "SeveritySummary": _severity_summary(comp)},
        "NonCompliantSummary": {"NonCompliantCount": sum(non.values()), "SeveritySummary": _severity_summary(non)},
    }


_SUMMARY_KEYS = {"ComplianceType", "Status", "OverallSeverity", "ResourceId", "ResourceType", "ExecutionType"}


def _summaries(self: SimpleSystemManagerResponse) -> list[dict[str, Any]]:
    filters = _parse_filters(self._get_param("Filters"), _SUMMARY_KEYS)
    out = []
    for rid, ctype, entry in _entries(self.region):
        s = _resource_summary(rid, ctype, entry)
        fields = {"ComplianceType": ctype, "Status": s["Status"], "OverallSeverity": s["OverallSeverity"],
                  "ResourceId": rid, "ResourceType": s["ResourceType"],
                  "ExecutionType": entry["ExecutionSummary"].get("ExecutionType")}
        if all(_match(fields[k], vals, op) for k, vals, op in filters):
            out.append(s)
    return out


def list_resource_compliance_summaries(self: SimpleSystemManagerResponse) -> ActionResult:
    limit = _max_results(self, 10, 1, 50)
    return _paged(self, "ListResourceComplianceSummaries", _summaries(self), limit,
                  "ResourceComplianceSummaryItems")


def list_compliance_summaries(self: SimpleSystemManagerResponse) -> ActionResult:
    limit = _max_results(self, 10, 1, 50)
    by_type: dict[str, dict[str, Any]] = {}
    for s in _summaries(self):
        t = by_type.setdefault(s["ComplianceType"], {
            "ComplianceType": s["ComplianceType"],
            "CompliantSummary": {"CompliantCount": 0, "SeveritySummary": {v: 0 for v in _SEVERITY_KEYS.values()}},
            "NonCompliantSummary": {"NonCompliantCount": 0, "SeveritySummary": {v: 0 for v in _SEVERITY_KEYS.values()}},
        })
        part = "CompliantSummary" if s["Status"] == "COMPLIANT" else "NonCompliantSummary"
        count_key = "CompliantCount" if part == "CompliantSummary" else "NonCompliantCount"
        t[part][count_key] += 1
        t[part]["SeveritySummary"][_SEVERITY_KEYS[s["OverallSeverity"]]] += 1
    return _paged(self, "ListComplianceSummaries", list(by_type.values()), limit, "ComplianceSummaryItems")


def install() -> None:
    R = SimpleSystemManagerResponse
    R.describe_instance_patch_states = describe_instance_patch_states  # type: ignore[attr-defined]
    R.describe_instance_patch_states_for_patch_group = describe_instance_patch_states_for_patch_group  # type: ignore[attr-defined]
    R.describe_patch_groups = describe_patch_groups  # type: ignore[attr-defined]
    R.get_patch_baseline_for_patch_group = get_patch_baseline_for_patch_group  # type: ignore[method-assign]
    R.put_compliance_items = put_compliance_items  # type: ignore[attr-defined]
    R.list_compliance_items = list_compliance_items  # type: ignore[attr-defined]
    R.list_compliance_summaries = list_compliance_summaries  # type: ignore[attr-defined]
    R.list_resource_compliance_summaries = list_resource_compliance_summaries  # type: ignore[attr-defined]


# ------------------------------------------------------------------ control plane

def _json_state(st: dict[str, Any]) -> dict[str, Any]:
    return {k: (state.iso(v, millis=True) if k in TIME_FIELDS and v is not None else v) for k, v in st.items()}


@route("POST", "/_fleetops/ssm/patch-state")
def _patch_state(body: dict[str, Any], query: dict[str, str]) -> Any:
    bodies = body.get("states") if isinstance(body.get("states"), list) else [body]
    out = []
    for b in bodies:
        iid = b.get("InstanceId")
        if not iid:
            raise ControlError(400, "missing required field 'InstanceId'")
        region = b.get("region") or body.get("region")
        if not region:
            found, _ = util.try_find_instance(iid)
            region = found or (AGENTS[iid].region if iid in AGENTS else "us-east-1")
        out.append(_json_state(set_patch_state(region, b, sync=b.get("compliance", True) is not False)))
    return {"states": out} if "states" in body else out[0]


@route("GET", "/_fleetops/ssm/patch-states")
def _patch_states(body: dict[str, Any], query: dict[str, str]) -> Any:
    return {"states": [dict(_json_state(st), region=reg) for (reg, _), st in PATCH_STATES.items()]}
