"""fleetops extension of moto's server mode.

``build_app()`` returns moto's WSGI application with every extension installed and
wrapped in the fleetops middleware (control plane, call counting, fault injection).
"""

from __future__ import annotations

from typing import Any

_installed = False


def install() -> None:
    """Patch moto's response classes/backends with the fleetops operations (idempotent)."""
    global _installed
    if _installed:
        return
    from . import autoscaling_ext, compliance_ext, dynamodb_ext, ec2_ext, events, sns_ext, ssm_ext, sts_ext  # noqa: F401

    ec2_ext.install()
    ssm_ext.install()
    autoscaling_ext.install()
    compliance_ext.install()
    sns_ext.install()
    dynamodb_ext.install()
    sts_ext.install()
    _installed = True


def build_app() -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from .middleware import FleetopsMiddleware

    install()
    return FleetopsMiddleware(DomainDispatcherApplication(create_backend_app))
