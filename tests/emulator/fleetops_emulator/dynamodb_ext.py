"""DynamoDB: what moto serves, plus the Time to Live rules moto misses.

moto stores tables and items and evaluates condition/update expressions itself
(ConditionalCheckFailedException, ReturnValuesOnConditionCheckFailure, ...). Added here:

* UpdateTimeToLive follows the API reference
  (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateTimeToLive.html):
  "It can take up to one hour for the change to fully process. Any additional
  UpdateTimeToLive calls for the same table during this one hour duration result in a
  ValidationException." (emulated clock). The call is not idempotent either: enabling an
  enabled TTL fails with "TimeToLive is already enabled", enabling it on another attribute
  with "TimeToLive is active on a different AttributeName", and "Time to live has been
  modified multiple times within a fixed interval" is the message of the one-hour rule (the
  messages AWS answers with). An unknown table is ResourceNotFoundException in both TTL
  operations (moto said "ResourceNotFound").
* Expired items are never deleted on their own: the same page says "DynamoDB typically
  deletes expired items within two days of expiration ... Items that have expired and not
  been deleted will still show up in reads, queries, and scans." Tests trigger the TTL
  process with ``POST /_fleetops/dynamodb/ttl-sweep``, which deletes the items whose TTL
  attribute is a Number (epoch seconds) less than the emulated "now" ("If the epoch time
  value stored in the attribute is less than the current time, the item is marked as
  expired and subsequently deleted.").
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.responses import DynamoHandler

from . import state, util
from .control import ControlError, route

ONE_HOUR = 3600.0

# (region, table name, table creation time) -> emulated time of the last accepted change
TTL_CHANGES: dict[tuple[str, str, Any], float] = {}
state.on_reset(TTL_CHANGES.clear)


def _table_key(region: str, table: Any) -> tuple[str, str, Any]:
    return (region, table.name, table.created_at)


def update_time_to_live(self: DynamoHandler) -> ActionResult:
    name = self.body.get("TableName")
    spec = self.body.get("TimeToLiveSpecification") or {}
    table = self.dynamodb_backend.get_table(name)  # ResourceNotFoundException when unknown
    attr = spec.get("AttributeName")
    enabled = spec.get("Enabled")
    if enabled is None or not attr:
        raise MockValidationException(
            "1 validation error detected: Value null at 'timeToLiveSpecification' failed to satisfy "
            "constraint: Member must not be null"
        )
    if not 1 <= len(attr) <= 255:
        raise MockValidationException(
            f"1 validation error detected: Value '{attr}' at 'timeToLiveSpecification.attributeName' "
            "failed to satisfy constraint: Member must have length less than or equal to 255"
        )
    current = table.ttl.get("TimeToLiveStatus", "DISABLED")
    if enabled and current in ("ENABLED", "ENABLING"):
        if table.ttl.get("AttributeName") == attr:
            raise MockValidationException("TimeToLive is already enabled")
        raise MockValidationException("TimeToLive is active on a different AttributeName")
    if not enabled and current in ("DISABLED", "DISABLING"):
        raise MockValidationException("TimeToLive is already disabled")
    key = _table_key(self.region, table)
    now = state.now_ts()
    last = TTL_CHANGES.get(key)
    if last is not None and now - last < ONE_HOUR:
        raise MockValidationException("Time to live has been modified multiple times within a fixed interval")
    table.ttl = {"TimeToLiveStatus": "ENABLED" if enabled else "DISABLED", "AttributeName": attr}
    TTL_CHANGES[key] = now
    return ActionResult({"TimeToLiveSpecification": {"AttributeName": attr, "Enabled": bool(enabled)}})


def describe_time_to_live(self: DynamoHandler) -> ActionResult:
    # Unknown table: ResourceNotFoundException (API_DescribeTimeToLive, Errors).
    table = self.dynamodb_backend.get_table(self.body.get("TableName"))
    return ActionResult({"TimeToLiveDescription": dict(table.ttl)})


def install() -> None:
    DynamoHandler.update_time_to_live = update_time_to_live  # type: ignore[method-assign]
    DynamoHandler.describe_time_to_live = describe_time_to_live  # type: ignore[method-assign]


# ------------------------------------------------------------------ control plane

def _tables(body: dict[str, Any], query: dict[str, str]) -> list[tuple[str, Any]]:
    from moto.dynamodb.models import dynamodb_backends

    region = body.get("region") or query.get("region")
    name = body.get("table") or query.get("table")
    regions = [region] if region else [r for r, _ in util.account_regions(dynamodb_backends)]
    out = []
    for r in regions:
        backend = dynamodb_backends[state.DEFAULT_ACCOUNT][r]
        for table in list(backend.tables.values()):
            if name is None or table.name == name:
                out.append((r, table))
    if name is not None and not out:
        raise ControlError(404, f"table {name} not found")
    return out


def _all_items(table: Any) -> list[Any]:
    items = []
    for value in table.items.values():
        if table.has_range_key:
            items.extend(value.values())
        else:
            items.append(value)
    return items


def _key_of(table: Any, item: Any) -> dict[str, Any]:
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.has_range_key else [])
    return {n: item.attrs[n].to_json() for n in names}


@route("POST", "/_fleetops/dynamodb/ttl-sweep")
def _ttl_sweep(body: dict[str, Any], query: dict[str, str]) -> Any:
    """Run the TTL process once: delete the expired items of every table with TTL enabled."""
    now = state.now_ts()
    deleted = []
    for region, table in _tables(body, query):
        if table.ttl.get("TimeToLiveStatus") != "ENABLED":
            continue
        attr = table.ttl.get("AttributeName")
        for item in _all_items(table):
            value = item.attrs.get(attr)
            if value is None or value.type != "N":
                continue  # only a Number in epoch seconds is a TTL value
            try:
                expires = float(value.value)
            except (TypeError, ValueError):
                continue
            if expires < now:
                hash_value = item.attrs[table.hash_key_attr]
                range_value = item.attrs[table.range_key_attr] if table.has_range_key else None
                table.delete_item(hash_value, range_value)
                deleted.append({"region": region, "table": table.name, "key": _key_of(table, item)})
    return {"deleted": deleted, "now": state.iso(now, millis=True)}


@route("GET", "/_fleetops/dynamodb/items")
def _items(body: dict[str, Any], query: dict[str, str]) -> Any:
    """Every item of a table in DynamoDB JSON, without an (counted) AWS call."""
    if not query.get("table"):
        raise ControlError(400, "missing required query parameter 'table'")
    out = []
    for region, table in _tables(body, query):
        for item in _all_items(table):
            out.append({"region": region, "table": table.name, "item": item.to_json()["Attributes"]})
    return {"items": out}
