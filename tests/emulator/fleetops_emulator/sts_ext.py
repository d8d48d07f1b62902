"""STS AssumeRole as AWS answers it (moto accepts any role ARN, in any account).

AWS refuses ``AssumeRole`` with ``AccessDenied`` ("User: <caller> is not
authorized to perform: sts:AssumeRole on resource: <role arn>") when the role
does not exist or its trust policy does not let the caller in (STS API
reference, AssumeRole, Errors; IAM User Guide, "Troubleshooting IAM roles").
The emulator checks that the role exists in the target account; trust
policies are not evaluated. Roles of other accounts are created through
``POST /_fleetops/iam/role`` (``{"account", "name"}``), as a StackSet would.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from moto.core.exceptions import ServiceException
from moto.iam.models import iam_backends
from moto.sts.responses import TokenResponse

from .control import require, route

_orig_assume_role = TokenResponse.assume_role

# botocore's STS model has no AccessDenied shape (it is a common error, not a
# modelled one); moto still serialises code and message, and warns each time.
warnings.filterwarnings("ignore", message=r"Exception\(AccessDenied\) with code AccessDenied")


class AccessDenied(ServiceException):
    code = "AccessDenied"

    def __init__(self, message: str) -> None:
        super().__init__(message)


def _role_exists(role_arn: str) -> bool:
    # arn:<partition>:iam::<account>:role/<path/><name>
    parts = role_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        return False
    partition, account = parts[1], parts[4]
    try:
        backend = iam_backends[account][partition]
    except KeyError:
        return False
    return any(role.arn == role_arn for role in backend.get_roles())


def assume_role(self: TokenResponse) -> Any:
    role_arn = self._get_param("RoleArn") or ""
    if not _role_exists(role_arn):
        raise AccessDenied(
            f"User: arn:aws:sts::{self.current_account}:assumed-role/caller is not authorized "
            f"to perform: sts:AssumeRole on resource: {role_arn}"
        )
    return _orig_assume_role(self)


@route("POST", "/_fleetops/iam/role")
def _create_role(body: dict[str, Any], query: dict[str, str]) -> Any:
    account = require(body, "account")
    name = require(body, "name")
    trust = body.get("trust") or {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    backend = iam_backends[account]["aws"]
    role = backend.create_role(
        role_name=name,
        assume_role_policy_document=json.dumps(trust),
        path="/",
        permissions_boundary=None,
        description="fleetops spoke role (emulated)",
        tags=[],
        max_session_duration="3600",
    )
    return {"account": account, "arn": role.arn}


def install() -> None:
    TokenResponse.assume_role = assume_role  # type: ignore[method-assign]
