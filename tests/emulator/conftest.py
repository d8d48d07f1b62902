"""Session fixture: one emulator process (server.py on a free port) for the suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))


class Emulator:
    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def post(self, path: str, body: Any = None) -> Any:
        status, payload = self.call("POST", path, body if body is not None else {})
        assert status == 200, (path, status, payload)
        return payload

    def get(self, path: str) -> Any:
        status, payload = self.call("GET", path)
        assert status == 200, (path, status, payload)
        return payload

    def client(self, service: str, region: str = "us-east-1", retries: bool = False, validate: bool = True) -> Any:
        cfg = Config(
            retries={"total_max_attempts": 3 if retries else 1, "mode": "standard"},
            parameter_validation=validate,
        )
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=cfg,
        )


@pytest.fixture(scope="session")
def emulator() -> Any:
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "server.py"), "--port", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
    )
    line = proc.stdout.readline().strip()
    assert line.startswith("FLEETOPS_EMULATOR_READY "), line
    yield Emulator(line.split(" ", 1)[1])
    # Closing stdin must stop the server, and it must never print a second line.
    proc.stdin.close()
    try:
        assert proc.wait(timeout=15) == 0
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("emulator did not exit after stdin EOF")
    assert proc.stdout.read() == ""


@pytest.fixture()
def emu(emulator: Emulator) -> Emulator:
    """The emulator, reset to an empty state before the test."""
    emulator.post("/_fleetops/reset")
    return emulator


@pytest.fixture()
def ec2(emu: Emulator) -> Any:
    return emu.client("ec2")


@pytest.fixture()
def ssm(emu: Emulator) -> Any:
    return emu.client("ssm")


@pytest.fixture()
def asg(emu: Emulator) -> Any:
    return emu.client("autoscaling")


AMI = "ami-760aaa0f"  # amzn-ami-hvm, one of the base AMIs the emulator loads


def run(ec2: Any, count: int = 1, tags: dict[str, str] | None = None, **kwargs: Any) -> list[str]:
    params: dict[str, Any] = {"ImageId": AMI, "MinCount": count, "MaxCount": count, "InstanceType": "t3.micro"}
    if tags:
        params["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    params.update(kwargs)
    return [i["InstanceId"] for i in ec2.run_instances(**params)["Instances"]]


def describe(ec2: Any, instance_id: str) -> dict[str, Any]:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
