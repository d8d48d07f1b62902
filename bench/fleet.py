"""The benchmark fleet: N instances in 24 groups (4 kinds x 6 time zones), seeded
once, then "armed" just before a tool runs so that its schedules change state at
the current hour.

Both tools see the same fleet and must take the same actions:

| kind  | fleetops period (local) | Cloud Custodian tag `maid_offhours`    | seeded  | expected |
|-------|-------------------------|----------------------------------------|---------|----------|
| stop  | h-9 .. h                | off=(m-u,h);on=(m-u,h-9);tz=<zone>     | running | stopped  |
| start | h .. h+9                | on=(m-u,h);off=(m-u,h+9);tz=<zone>     | stopped | running  |
| up    | h-3 .. h+6              | on=(m-u,h-3);off=(m-u,h+6);tz=<zone>   | running | running  |
| down  | h+3 .. h+12             | on=(m-u,h+3);off=(m-u,h+12);tz=<zone>  | stopped | stopped  |

h is the zone's local hour at the benchmark moment, hours wrap mod 24 (overnight
periods), every day of the week. So half of the fleet (stop + start) must change
now; the other half is already right. fleetops (`enforced: false`) applies each
instance's latest transition (instances seen for the first time are brought to
it, those already there are only marked); c7n acts when the current local hour
equals an on/off hour. Zones have whole-hour UTC offsets, so every zone's hour
turns at the same instant.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

ZONES = ["UTC", "America/New_York", "America/Los_Angeles", "Europe/Berlin", "Asia/Seoul", "Australia/Sydney"]
# kind -> (begin offset, end offset in hours from now's local hour, seeded state, expected state)
KINDS = {
    "stop": (-9, 0, "running", "stopped"),
    "start": (0, 9, "stopped", "running"),
    "up": (-3, 6, "running", "running"),
    "down": (3, 12, "stopped", "stopped"),
}
SCHEDULES_PARAMETER = "/fleetops/schedules"
CUSTODIAN_TAG = "maid_offhours"
IMAGE_ID = "ami-760aaa0f"
RUN_BATCH = 1000  # instances per RunInstances call
ID_BATCH = 1000  # ids per StopInstances / CreateTags call while seeding and arming


def group_name(kind: str, zone: str) -> str:
    return f"bench-{kind}-{zone.split('/')[-1].lower().replace('_', '-')}"


@dataclass
class Group:
    name: str
    kind: str
    zone: str
    ids: list[str] = field(default_factory=list)


@dataclass
class Fleet:
    size: int
    groups: dict[str, Group]
    key_of: dict[str, str]  # instance id -> stable key "<group>/<n>", the same in every seeding

    def expected_state(self) -> dict[str, str]:
        return {self.key_of[i]: KINDS[g.kind][3] for g in self.groups.values() for i in g.ids}

    def expected_actions(self) -> tuple[set[str], set[str]]:
        stops = {self.key_of[i] for g in self.groups.values() if g.kind == "stop" for i in g.ids}
        starts = {self.key_of[i] for g in self.groups.values() if g.kind == "start" for i in g.ids}
        return stops, starts


def plan(size: int) -> dict[str, int]:
    """How many instances each group gets: round-robin over kinds, then zones."""
    counts: dict[str, int] = {}
    kinds = list(KINDS)
    for n in range(size):
        name = group_name(kinds[n % len(kinds)], ZONES[(n // len(kinds)) % len(ZONES)])
        counts[name] = counts.get(name, 0) + 1
    return counts


def seed(ec2, size: int) -> Fleet:
    """Launches the fleet with its final Schedule tags and a placeholder c7n tag."""
    groups = {group_name(k, z): Group(group_name(k, z), k, z) for k in KINDS for z in ZONES}
    counts = plan(size)
    key_of: dict[str, str] = {}
    for name, group in groups.items():
        remaining = counts.get(name, 0)
        while remaining > 0:
            batch = min(remaining, RUN_BATCH)
            tags = [
                {"Key": "Name", "Value": name},
                {"Key": "Schedule", "Value": name},
                {"Key": CUSTODIAN_TAG, "Value": "off"},  # "off" = opted out until armed
            ]
            reply = ec2.run_instances(
                ImageId=IMAGE_ID,
                InstanceType="t3.micro",
                MinCount=batch,
                MaxCount=batch,
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
            )
            for inst in sorted(reply["Instances"], key=lambda i: i["AmiLaunchIndex"]):
                key_of[inst["InstanceId"]] = f"{name}/{len(group.ids)}"
                group.ids.append(inst["InstanceId"])
            remaining -= batch
    to_stop = [i for g in groups.values() if KINDS[g.kind][2] == "stopped" for i in g.ids]
    for n in range(0, len(to_stop), ID_BATCH):
        ec2.stop_instances(InstanceIds=to_stop[n : n + ID_BATCH])
    return Fleet(size, groups, key_of)


def local_hour(moment: dt.datetime, zone: str) -> int:
    return moment.astimezone(ZoneInfo(zone)).hour


def schedules_document(moment: dt.datetime) -> dict:
    schedules = {}
    for kind, (begin, end, _, _) in KINDS.items():
        for zone in ZONES:
            h = local_hour(moment, zone)
            schedules[group_name(kind, zone)] = {
                "timezone": zone,
                "periods": [{"begin": f"{(h + begin) % 24:02d}:00", "end": f"{(h + end) % 24:02d}:00"}],
            }
    return {"schedules": schedules}


def custodian_tag(kind: str, zone: str, moment: dt.datetime) -> str:
    begin, end, _, _ = KINDS[kind]
    h = local_hour(moment, zone)
    return f"off=(m-u,{(h + end) % 24});on=(m-u,{(h + begin) % 24});tz={zone}"


def arm(ec2, ssm, fleet: Fleet, moment: dt.datetime) -> None:
    """Writes the hour-dependent parts: the schedules parameter and the c7n tags."""
    document = json.dumps(schedules_document(moment), separators=(",", ":"))
    if len(document) > 4096:
        raise ValueError(f"schedules document is {len(document)} bytes, over the 4 KB standard tier")
    ssm.put_parameter(Name=SCHEDULES_PARAMETER, Value=document, Type="String", Overwrite=True)
    for group in fleet.groups.values():
        value = custodian_tag(group.kind, group.zone, moment)
        for n in range(0, len(group.ids), ID_BATCH):
            ec2.create_tags(Resources=group.ids[n : n + ID_BATCH], Tags=[{"Key": CUSTODIAN_TAG, "Value": value}])


def hours_unchanged(start: dt.datetime, end: dt.datetime) -> bool:
    """True when no zone's local hour turned between the two moments."""
    return all(
        start.astimezone(ZoneInfo(z)).replace(minute=0, second=0, microsecond=0)
        == end.astimezone(ZoneInfo(z)).replace(minute=0, second=0, microsecond=0)
        for z in ZONES
    )


@dataclass
class Observation:
    """What the emulator says after a tool's run, keyed by the stable instance keys."""

    state: dict[str, str]
    stopped: list[str]  # one entry per accepted stop of an instance (duplicates kept)
    started: list[str]


def log_marks(emulator) -> tuple[int, int]:
    """Lengths of the emulator's stop and start logs (seeding stops are in them too)."""
    return (
        len(emulator.control("GET", "/_fleetops/ec2/stop-log")["stops"]),
        len(emulator.control("GET", "/_fleetops/ec2/start-log")["starts"]),
    )


def observe(emulator, fleet: Fleet, marks: tuple[int, int]) -> Observation:
    """Reads EC2 states (DescribeInstanceStatus, far cheaper in moto than
    DescribeInstances) and the stop and start log entries made after `marks`."""
    ec2 = emulator.client("ec2")
    state: dict[str, str] = {}
    for page in ec2.get_paginator("describe_instance_status").paginate(
        IncludeAllInstances=True, PaginationConfig={"PageSize": 1000}
    ):
        for status in page["InstanceStatuses"]:
            if status["InstanceId"] in fleet.key_of:
                state[fleet.key_of[status["InstanceId"]]] = status["InstanceState"]["Name"]
    stops = emulator.control("GET", "/_fleetops/ec2/stop-log")["stops"][marks[0] :]
    starts = emulator.control("GET", "/_fleetops/ec2/start-log")["starts"][marks[1] :]
    return Observation(
        state,
        [fleet.key_of.get(s["instance_id"], s["instance_id"]) for s in stops],
        [fleet.key_of.get(s["instance_id"], s["instance_id"]) for s in starts],
    )


def check(fleet: Fleet, obs: Observation) -> list[str]:
    """Differences from the intended outcome; empty when the tool did exactly it."""
    problems = []
    expected = fleet.expected_state()
    wrong = sorted(k for k, want in expected.items() if obs.state.get(k) != want)
    if wrong:
        problems.append(f"{len(wrong)} instances not in their scheduled state, e.g. {wrong[:3]}")
    stops, starts = fleet.expected_actions()
    for verb, done, want in (("stop", obs.stopped, stops), ("start", obs.started, starts)):
        extra, missing = sorted(set(done) - want), sorted(want - set(done))
        repeats = len(done) - len(set(done))
        if extra:
            problems.append(f"{verb}: acted on {len(extra)} instances that needed no change, e.g. {extra[:3]}")
        if missing:
            problems.append(f"{verb}: missed {len(missing)} instances, e.g. {missing[:3]}")
        if repeats:
            problems.append(f"{verb}: {repeats} instances acted on more than once")
    return problems
