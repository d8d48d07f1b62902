"""Seeds the demo's local AWS account and prints what the functions left behind.

    python tools/demo_fleet.py seed   ENDPOINT
    python tools/demo_fleet.py states ENDPOINT
"""
import json
import sys

import boto3

REGION = "us-east-1"

SCHEDULES = {
    "schedules": {
        "office-hours": {
            "timezone": "Asia/Seoul",
            "periods": [{"weekdays": "mon-fri", "begin": "09:00", "end": "18:00"}],
            "enforced": True,
        },
        "berlin-dev": {
            "timezone": "Europe/Berlin",
            "periods": [{"weekdays": "mon-fri", "begin": "08:00", "end": "19:00"}],
            "skip_dates": ["12-24", "12-25", "2026-12-31"],
        },
        "night-batch": {
            "timezone": "America/New_York",
            "periods": [{"weekdays": "mon-fri", "begin": "22:00", "end": "04:00"}],
            "hibernate": True,
        },
        "typo": {"timezone": "KST", "periods": [{"begin": "9:00", "end": "18:00"}]},
    }
}

FLEET = [
    ("seoul-app-1", {"Schedule": "office-hours"}),
    ("seoul-app-2", {"Schedule": "office-hours", "ScheduleOverride": "running"}),
    ("berlin-dev-1", {"Schedule": "berlin-dev"}),
    ("berlin-dev-2", {"Schedule": "berlin-dev", "ScheduleOverride": "skip"}),
    ("ny-batch-1", {"Schedule": "night-batch"}),
    ("typo-box", {"Schedule": "typo"}),
    ("mystery-box", {"Schedule": "no-such-schedule"}),
    ("web-asg-1", {"Schedule": "office-hours", "aws:autoscaling:groupName": "web"}),
    ("prod-db-1", {}),
]


def clients(endpoint):
    kwargs = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="demo", aws_secret_access_key="demo")
    return boto3.client("ec2", **kwargs), boto3.client("ssm", **kwargs)


def seed(endpoint):
    ec2, ssm = clients(endpoint)
    ssm.put_parameter(Name="/fleetops/schedules", Value=json.dumps(SCHEDULES, indent=2), Type="String", Overwrite=True)
    for name, tags in FLEET:
        all_tags = [{"Key": "Name", "Value": name}] + [{"Key": k, "Value": v} for k, v in tags.items()]
        ec2.run_instances(
            ImageId="ami-760aaa0f",
            InstanceType="t3.micro",
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": all_tags}],
        )
    print(f"seeded {len(FLEET)} instances and /fleetops/schedules with {len(SCHEDULES['schedules'])} schedules")


def states(endpoint):
    ec2, _ = clients(endpoint)
    rows = []
    for reservation in ec2.describe_instances()["Reservations"]:
        for i in reservation["Instances"]:
            tags = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
            rows.append((tags.get("Name", "?"), i["InstanceId"], i["State"]["Name"], tags.get("Schedule", "-"),
                         tags.get("ScheduleOverride", "-")))
    # ScheduleOverride wins over the schedule (running: kept up, stopped: kept
    # down, skip: left alone), so it is shown: an overridden instance that stays
    # up outside its hours is doing what it was told.
    print(f"  {'Name':<14} {'InstanceId':<21} {'State':<9} {'Schedule':<17} ScheduleOverride")
    for row in sorted(rows):
        print(f"  {row[0]:<14} {row[1]:<21} {row[2]:<9} {row[3]:<17} {row[4]}")


if __name__ == "__main__":
    {"seed": seed, "states": states}[sys.argv[1]](sys.argv[2])
