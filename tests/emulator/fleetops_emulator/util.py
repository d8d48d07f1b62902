"""Small helpers shared by the extension modules."""

from __future__ import annotations

import base64
import json
from typing import Any, Iterable

from . import state
from .control import ControlError


def encode_token(kind: str, offset: int) -> str:
    raw = json.dumps({"k": kind, "o": offset}).encode()
    return "fo1" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(kind: str, token: str | None) -> int | None:
    """Offset stored in a token made by encode_token, or None when invalid."""
    if not token:
        return 0
    if not token.startswith("fo1"):
        return None
    data = token[3:]
    try:
        obj = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
        if obj.get("k") != kind:
            return None
        return int(obj["o"])
    except (ValueError, KeyError, TypeError):
        return None


def page(items: list[Any], offset: int, limit: int, kind: str) -> tuple[list[Any], str | None]:
    chunk = items[offset : offset + limit]
    nxt = encode_token(kind, offset + limit) if offset + limit < len(items) else None
    return chunk, nxt


def account_regions(backend_dict: Any, account: str = state.DEFAULT_ACCOUNT) -> Iterable[tuple[str, Any]]:
    """Regions of an account whose backend has already been created."""
    acct = backend_dict[account]
    return list(dict.items(acct))


def find_instance(instance_id: str, region: str | None = None, account: str = state.DEFAULT_ACCOUNT) -> tuple[str, Any]:
    """(region, moto Instance) for an id, searching every region in use unless given."""
    from moto.ec2.models import ec2_backends

    if region:
        backend = ec2_backends[account][region]
        inst = backend.get_instance_by_id(instance_id)
        if inst is None:
            raise ControlError(404, f"instance {instance_id} not found in {region}")
        return region, inst
    for reg, backend in account_regions(ec2_backends, account):
        inst = backend.get_instance_by_id(instance_id)
        if inst is not None:
            return reg, inst
    raise ControlError(404, f"instance {instance_id} not found in any region")


def try_find_instance(instance_id: str, region: str | None = None) -> tuple[str, Any] | tuple[None, None]:
    try:
        return find_instance(instance_id, region)
    except ControlError:
        return None, None


def instance_tags(instance: Any) -> dict[str, str]:
    return dict(instance.ec2_backend.tags.get(instance.id, {}))
