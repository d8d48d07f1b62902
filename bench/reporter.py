"""The compliance-reporter's fleet: N instances, most of them managed by SSM, with
patch states and some association compliance, seeded through the emulator's
control plane; and the fewest API calls the APIs allow for reading it.

Mix (by instance number n, deterministic):
* every 20th instance stopped (reported as stopped, its patch state not read);
* every 20th (offset 1) without an SSM agent (unmanaged), every 20th (offset 2)
  agent ConnectionLost, the rest Online;
* patch states cycle through compliant, missing critical/security, failed,
  installed pending reboot, and a scan 30 days old (stale);
* 20 patch groups (tag `Patch Group`), 2 of them with a registered baseline;
* association compliance on every 100th instance (every other one non-compliant).
"""

from __future__ import annotations

import datetime as dt
import math

from fleet import IMAGE_ID, RUN_BATCH

GROUPS = [f"pg-{n:02d}" for n in range(20)]
TOPIC = "fleetops-compliance-report"
PATCH_KINDS = [
    {"InstalledCount": 40},
    {"InstalledCount": 30, "MissingCount": 3, "CriticalNonCompliantCount": 2, "SecurityNonCompliantCount": 1},
    {"InstalledCount": 38, "FailedCount": 1},
    {"InstalledCount": 35, "InstalledPendingRebootCount": 2},
    "stale",
    {"InstalledCount": 20, "NotApplicableCount": 25},
]


def seed(emulator, size: int, now: dt.datetime) -> dict:
    """Seeds the fleet and the report topic; returns what the minimum is computed from."""
    ec2, ssm, sns = (emulator.client(s) for s in ("ec2", "ssm", "sns"))
    for group in GROUPS[:2]:
        baseline = ssm.create_patch_baseline(Name=f"bench-{group}", OperatingSystem="AMAZON_LINUX_2")["BaselineId"]
        ssm.register_patch_baseline_for_patch_group(BaselineId=baseline, PatchGroup=group)
    ids: list[str] = []
    per_group = [size // len(GROUPS) + (1 if g < size % len(GROUPS) else 0) for g in range(len(GROUPS))]
    for group, count in zip(GROUPS, per_group):
        while count > 0:
            batch = min(count, RUN_BATCH)
            tags = [{"Key": "Name", "Value": f"bench-{group}"}, {"Key": "Patch Group", "Value": group}]
            reply = ec2.run_instances(
                ImageId=IMAGE_ID, InstanceType="t3.micro", MinCount=batch, MaxCount=batch,
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
            )
            ids += [i["InstanceId"] for i in sorted(reply["Instances"], key=lambda i: i["AmiLaunchIndex"])]
            count -= batch
    stopped = [i for n, i in enumerate(ids) if n % 20 == 0]
    for n in range(0, len(stopped), 1000):
        ec2.stop_instances(InstanceIds=stopped[n : n + 1000])
    managed, running_managed, states = 0, 0, []
    month_ago = int(now.timestamp()) - 30 * 86400
    for n, instance_id in enumerate(ids):
        if n % 20 == 1:
            continue  # unmanaged
        ping = "ConnectionLost" if n % 20 == 2 else "Online"
        emulator.control("POST", "/_fleetops/ssm/agent", {"instance_id": instance_id, "ping_status": ping})
        managed += 1
        running_managed += n % 20 != 0
        kind = PATCH_KINDS[n % len(PATCH_KINDS)]
        if kind == "stale":
            kind = {"InstalledCount": 40, "OperationStartTime": month_ago - 60, "OperationEndTime": month_ago}
        states.append(dict(kind, InstanceId=instance_id))
        if len(states) == 500:
            emulator.control("POST", "/_fleetops/ssm/patch-state", {"states": states})
            states = []
    if states:
        emulator.control("POST", "/_fleetops/ssm/patch-state", {"states": states})
    associations = 0
    for n in range(3, len(ids), 100):
        ssm.put_compliance_items(
            ResourceId=ids[n], ResourceType="ManagedInstance", ComplianceType="Association",
            ExecutionSummary={"ExecutionTime": now},
            Items=[{"Id": "cloudwatch-agent", "Title": "AWS-ConfigureAWSPackage", "Severity": "HIGH",
                    "Status": "NON_COMPLIANT" if n % 200 == 3 else "COMPLIANT"}],
        )
        associations += 1
    topic = sns.create_topic(Name=TOPIC)["TopicArn"]
    return {
        "topic_arn": topic,
        "instances": len(ids),
        "managed": managed,
        "running_managed": running_managed,
        "patch_groups_registered": 2,
        "association_resources": associations,
    }


def minimum_calls(facts: dict) -> dict[str, int]:
    """Pages and id batches the APIs force, for one report without REPORT_BUCKET:
    DescribeInstances 1000/page, DescribeInstanceInformation 50/page,
    DescribeInstancePatchStates 50 ids/call (running managed instances only),
    DescribePatchGroups 100/page, ListResourceComplianceSummaries 50/page, the
    previous summary read and written once, one Publish."""
    pages = lambda n, per: max(1, math.ceil(n / per))  # noqa: E731 - a list call answers at least once
    return {
        "ec2:DescribeInstances": pages(facts["instances"], 1000),
        "ssm:DescribeInstanceInformation": pages(facts["managed"], 50),
        "ssm:DescribeInstancePatchStates": math.ceil(facts["running_managed"] / 50),
        "ssm:DescribePatchGroups": pages(facts["patch_groups_registered"], 100),
        "ssm:ListResourceComplianceSummaries": pages(facts["association_resources"], 50),
        "ssm:GetParameter": 1,
        "ssm:PutParameter": 1,
        "sns:Publish": 1,
    }
