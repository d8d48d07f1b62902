#!/usr/bin/env python3
"""fleetops at organization scale (issue 13): one scheduler tick over many
account-regions through the work queue, on the emulator (moto's accounts,
selected by assumed-role credentials; moto's SQS).

Measured on the release binary under bench/lambda_rt.py's Runtime API:
* the tick itself: read the schedules, assume nothing, queue one message per
  account-region (SendMessageBatch of 10), return: wall time and CPU;
* the queued work: the queue drained in batches of 10 (as the event source
  mapping delivers them), each batch one invocation: wall time and CPU per
  batch, and per account-region;
* for comparison, the same fleet in-process (no queue): one invocation doing
  every unit itself, 8 at a time.

    .venv/bin/python bench/fanout.py --binary target/release/instance-scheduler \\
        --accounts 250 --regions us-east-1,eu-west-1 --per-unit 2

Prints markdown; nothing is written to BENCHMARKS.md by this script.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emulator import Emulator  # noqa: E402
from lambda_rt import run_function  # noqa: E402

HUB = "123456789012"
ROLE = "fleetops-spoke"
SCHEDULES = {"schedules": {"office": {"periods": [{"begin": "09:00", "end": "18:00"}]}}}
EVENING = "2026-11-26T18:05:00Z"


def client(url: str, service: str, region: str, creds: dict | None = None):
    creds = creds or {"AccessKeyId": "testing", "SecretAccessKey": "testing", "SessionToken": None}
    return boto3.client(service, region_name=region, endpoint_url=url,
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds.get("SessionToken"))


def seed(emu: Emulator, accounts: list[str], regions: list[str], per_unit: int) -> int:
    sts = client(emu.url, "sts", regions[0])
    count = 0
    for account in accounts:
        emu.control("POST", "/_fleetops/iam/role", {"account": account, "name": ROLE})
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ROLE}",
                                RoleSessionName="bench")["Credentials"]
        for region in regions:
            ec2 = client(emu.url, "ec2", region, creds)
            ec2.run_instances(ImageId="ami-760aaa0f", MinCount=per_unit, MaxCount=per_unit,
                              TagSpecifications=[{"ResourceType": "instance",
                                                  "Tags": [{"Key": "Schedule", "Value": "office"}]}])
            count += per_unit
    ssm = client(emu.url, "ssm", regions[0])
    ssm.put_parameter(Name="/fleetops/schedules", Value=json.dumps(SCHEDULES), Type="String", Overwrite=True)
    return count


def env(url: str, accounts: list[str], regions: list[str], queue: str | None) -> dict[str, str]:
    out = {
        "AWS_ENDPOINT_URL": url,
        "AWS_REGION": regions[0],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "ACCOUNTS": ",".join(accounts),
        "REGIONS": ",".join(regions),
        "RUST_LOG": "warn",
    }
    if queue:
        out["WORK_QUEUE_URL"] = queue
    return out


def drain(url: str, queue: str, region: str) -> list[dict]:
    sqs = client(url, "sqs", region)
    events = []
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=900).get("Messages", [])
        if not got:
            return events
        events.append({"Records": [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
             "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": region,
             "eventSourceARN": f"arn:aws:sqs:{region}:{HUB}:fleetops-work"} for m in got]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default="target/release/instance-scheduler")
    parser.add_argument("--accounts", type=int, default=250)
    parser.add_argument("--regions", default="us-east-1,eu-west-1")
    parser.add_argument("--per-unit", type=int, default=2)
    args = parser.parse_args()
    regions = args.regions.split(",")
    accounts = [f"{100000000000 + i:012d}" for i in range(args.accounts)]
    units = len(accounts) * len(regions)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for path in ("queue", "in-process"):
            with Emulator(work / path) as emu:
                t0 = time.perf_counter()
                instances = seed(emu, accounts, regions, args.per_unit)
                seeded = time.perf_counter() - t0
                queue = None
                if path == "queue":
                    queue = client(emu.url, "sqs", regions[0]).create_queue(QueueName="fleetops-work")["QueueUrl"]
                emu.reset_calls()
                tick = run_function(args.binary, "fleetops-instance-scheduler", env(emu.url, accounts, regions, queue),
                                    [{"time": EVENING}], work / f"{path}.log", timeout=900)
                inv = tick.invocations[0]
                out = inv.result()
                tick_calls = emu.calls()
                if path == "queue":
                    assert isinstance(out, dict) and len(out.get("queued", [])) == units, str(out)[:300]
                    batches = drain(emu.url, queue, regions[0])
                    emu.reset_calls()
                    work_run = run_function(args.binary, "fleetops-instance-scheduler",
                                            env(emu.url, accounts, regions, queue), batches,
                                            work / "batches.log", timeout=900)
                    walls = [i.wall_s for i in work_run.invocations if i.wall_s is not None]
                    cpus = [i.cpu_s for i in work_run.invocations if i.cpu_s is not None]
                    stopped = sum(len(i.result().get("stopped", [])) for i in work_run.invocations)
                    failures = sum(len(i.result().get("batchItemFailures", [])) for i in work_run.invocations)
                    rows.append({
                        "path": path, "units": units, "instances": instances, "seed_s": seeded,
                        "tick_wall_s": inv.wall_s, "tick_cpu_s": inv.cpu_s, "tick_calls": tick_calls,
                        "batches": len(batches), "batch_wall_median_s": statistics.median(walls),
                        "batch_wall_max_s": max(walls), "batch_cpu_median_s": statistics.median(cpus),
                        "per_unit_wall_s": sum(walls) / units, "per_unit_cpu_s": sum(cpus) / units,
                        "stopped": stopped, "batch_item_failures": failures, "work_calls": emu.calls(),
                    })
                else:
                    rows.append({
                        "path": path, "units": units, "instances": instances, "seed_s": seeded,
                        "tick_wall_s": inv.wall_s, "tick_cpu_s": inv.cpu_s, "tick_calls": tick_calls,
                        "stopped": len(out.get("stopped", [])) if isinstance(out, dict) else None,
                        "unhandled": len(out.get("unhandled", [])) if isinstance(out, dict) else None,
                    })
    print(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
