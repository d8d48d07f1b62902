#!/usr/bin/env python3
"""ec2sim: a small simulated AWS endpoint (EC2, SSM, STS) for scale benchmarks only.

moto cannot serve 100,000 instances in reasonable time. This serves a synthetic fleet
over the real wire formats (EC2 and STS: query protocol, XML answers; SSM: JSON 1.1),
so the real AWS SDKs talk to it through `AWS_ENDPOINT_URL=http://127.0.0.1:<port>`.
The service is read from the SigV4 credential scope (`.../<region>/<service>/aws4_request`);
signatures are ignored. It models per-call latency and EC2's token-bucket throttling.

    python3 bench/ec2sim.py --port 0

prints `EC2SIM_READY http://127.0.0.1:<port>` as its first stdout line and exits when
stdin closes. Control plane (JSON; never counted as calls):
  POST /_sim/seed {"schedules": {name: {"count", "state", "spot", "hibernation"}},
                   "instances": total (the rest get no schedule tag), "extra_tags": {..},
                   "tag_key": "Schedule", "region": "us-east-1"} -> {"ids": {name: [..]}}
  POST /_sim/tag {"ids", "tags": {k: v or null}}    POST /_sim/state {"ids", "state"}
  POST /_sim/config {"latency", "throttling", "indent", "bucket_scope", "buckets"}
  POST /_sim/parameter {"name", "value"}   POST /_sim/calls/reset   POST /_sim/reset
  GET /_sim/calls   GET /_sim/instances[?fields=state]   GET /_sim/health
/_sim/calls, per "service:Operation": calls (every request, throttled ones too), throttled,
errors (per code), bytes (response bodies), instances_returned (DescribeTags: tags),
ids_per_call (Stop/Start/CreateTags/DeleteTags, every call), filter_values, timeline (first
and last call, seconds since the reset); and max_in_flight, overrun (the sim slower than
its latency model: should stay near zero).
Standard library only; every request is served on its own thread, state under one lock.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import datetime as dt
import json
import os
import random
import re
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

ACCOUNT = "123456789012"
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"

# --- Latency model: assumptions of the fleetops scale benchmark, not published AWS figures.
# The target is the time from request to answer: the sim's own work is subtracted from the
# sleep (and counted as "overrun" when it took longer than the target).
DESCRIBE_INSTANCES_BASE_S = 0.150
DESCRIBE_INSTANCES_PER_INSTANCE_S = 0.001
DESCRIBE_TAGS_BASE_S = 0.150
# Assumed: cost proportional to bytes, and a tag item is about 1/20 of an instance item.
DESCRIBE_TAGS_PER_TAG_S = DESCRIBE_INSTANCES_PER_INSTANCE_S / 20
STATE_CHANGE_S = 0.200  # StopInstances, StartInstances
TAG_CHANGE_S = 0.100  # CreateTags, DeleteTags
SSM_STS_S = 0.020  # every SSM and STS call
THROTTLED_S = 0.020  # assumed: a refused call does no work, one small round trip

# --- Throttling: "Request throttling for the Amazon EC2 API" (EC2 API Reference / EC2
# Developer Guide), token buckets per account and Region. That page evaluates each API on
# its own bucket ("requests for other API are not affected"), so buckets are per action
# by default; config {"bucket_scope": "category"} shares one bucket per category instead.
NON_MUTATING_BUCKET, NON_MUTATING_REFILL_PER_S = 100, 20  # Describe*
MUTATING_BUCKET, MUTATING_REFILL_PER_S = 200, 5  # CreateTags, DeleteTags, Stop/StartInstances
# Resource token buckets (same page, "resource token limits"), counted in instances:
STOP_RESOURCE_BUCKET, STOP_RESOURCE_REFILL_PER_S = 1000, 20
START_RESOURCE_BUCKET, START_RESOURCE_REFILL_PER_S = 1000, 2
# Assumed: every admitted call takes a request token; only a call that succeeds takes
# resource tokens (a refused or invalid call changes no instance).

# --- API limits.
MAX_FILTER_VALUES = 200  # EC2 error FilterLimitExceeded ("... on a single call is 200")
MIN_RESULTS, MAX_RESULTS = 5, 1000  # DescribeInstances / DescribeTags MaxResults: 5 to 1000
# CreateTags documents "Up to 1000 resource IDs", TerminateInstances "Up to 1000 instance
# IDs"; StopInstances / StartInstances document none: we assume the same 1000.
MAX_IDS_PER_CALL = 1000
MAX_TAGS_PER_RESOURCE = 50  # EC2 User Guide, tag restrictions: 50 tags per resource
RESERVATION_SIZE = 100  # instances per reservation (RunInstances launches of up to 100)
# Real EC2 pretty-prints its XML with 4 spaces per level (see e.g. the response quoted in
# boto/boto#1483); config {"indent": n} changes it (sizes at INSTANCE_OUTLINE).
DEFAULT_INDENT = 4
STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
ID_RE = re.compile(r"i-[0-9a-f]{8}([0-9a-f]{9})?")
SCOPE_RE = re.compile(r"Credential=[^/,]+/\d{8}/([^/,]+)/([^/,]+)/aws4_request")
MUTATING = {"CreateTags", "DeleteTags", "StopInstances", "StartInstances"}
INSTANCE_FILTERS = ("tag:", "tag-key", "tag-value", "instance-state-name", "instance-state-code", "instance-type",
                    "instance-id", "instance-lifecycle")
TAG_FILTERS = ("resource-id", "resource-type")  # and "key", "value", matched per tag item

# One instance item as DescribeInstances returns it, compact; `pretty` lays it out as EC2 does.
# Per item with 8 tags (Name, Schedule and 6 more, as bench/scale.py seeds), running:
# 9.0 KB with EC2's 4-space indentation, 5.8 KB with indent 1, 4.7 KB with indent 0;
# with Name and Schedule only: 8.4 / 5.4 / 4.4 KB.
INSTANCE_ITEM = """<item><instanceId>%(id)s</instanceId><imageId>ami-0%(ami)s</imageId>
<instanceState><code>%(code)d</code><name>%(state)s</name></instanceState>
<privateDnsName>ip-%(dashed)s.%(dns_zone)s</privateDnsName><dnsName/><reason>%(reason)s</reason>
<keyName>fleet-ops-default</keyName><amiLaunchIndex>%(launch_index)d</amiLaunchIndex><productCodes/>
<instanceType>%(type)s</instanceType><launchTime>%(launch)s</launchTime>
<placement><availabilityZone>%(az)s</availabilityZone><groupName/><tenancy>default</tenancy></placement>
<platformDetails>Linux/UNIX</platformDetails><usageOperation>RunInstances</usageOperation>
<usageOperationUpdateTime>%(launch)s</usageOperationUpdateTime><monitoring><state>disabled</state></monitoring>
<subnetId>subnet-0%(subnet)s</subnetId><vpcId>vpc-0%(vpc)s</vpcId><privateIpAddress>%(ip)s</privateIpAddress>
<sourceDestCheck>true</sourceDestCheck>
<groupSet><item><groupId>sg-0%(sg)s</groupId><groupName>fleet-app-instances</groupName></item></groupSet>
{optional}<architecture>x86_64</architecture><rootDeviceType>ebs</rootDeviceType>
<rootDeviceName>/dev/xvda</rootDeviceName><blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs>
<volumeId>vol-0%(vol)s</volumeId><status>attached</status>
<attachTime>%(launch)s</attachTime><deleteOnTermination>true</deleteOnTermination></ebs></item></blockDeviceMapping>
<virtualizationType>hvm</virtualizationType><clientToken>%(token)s</clientToken><tagSet>{tags}</tagSet>
<hypervisor>xen</hypervisor><networkInterfaceSet><item><networkInterfaceId>eni-0%(eni)s</networkInterfaceId>
<subnetId>subnet-0%(subnet)s</subnetId><vpcId>vpc-0%(vpc)s</vpcId><description/><ownerId>%(account)s</ownerId>
<status>in-use</status><macAddress>%(mac)s</macAddress><privateIpAddress>%(ip)s</privateIpAddress>
<privateDnsName>ip-%(dashed)s.%(dns_zone)s</privateDnsName><sourceDestCheck>true</sourceDestCheck>
<groupSet><item><groupId>sg-0%(sg)s</groupId><groupName>fleet-app-instances</groupName></item></groupSet>
<attachment><attachmentId>eni-attach-0%(attach)s</attachmentId><deviceIndex>0</deviceIndex><status>attached</status>
<attachTime>%(launch)s</attachTime><deleteOnTermination>true</deleteOnTermination><networkCardIndex>0</networkCardIndex>
</attachment><privateIpAddressesSet><item><privateIpAddress>%(ip)s</privateIpAddress>
<privateDnsName>ip-%(dashed)s.%(dns_zone)s</privateDnsName><primary>true</primary></item></privateIpAddressesSet>
<ipv6AddressesSet/><interfaceType>interface</interfaceType><operator><managed>false</managed></operator></item>
</networkInterfaceSet><iamInstanceProfile>
<arn>arn:aws:iam::%(account)s:instance-profile/fleet-app-instance-profile</arn><id>AIPA%(profile)s</id>
</iamInstanceProfile><ebsOptimized>true</ebsOptimized><enaSupport>true</enaSupport>
<cpuOptions><coreCount>1</coreCount><threadsPerCore>2</threadsPerCore></cpuOptions><capacityReservationSpecification>
<capacityReservationPreference>open</capacityReservationPreference></capacityReservationSpecification>
<hibernationOptions><configured>%(hibernation)s</configured></hibernationOptions>
<enclaveOptions><enabled>false</enabled></enclaveOptions><bootMode>uefi-preferred</bootMode>
<metadataOptions><state>applied</state><httpTokens>required</httpTokens>
<httpPutResponseHopLimit>2</httpPutResponseHopLimit>
<httpEndpoint>enabled</httpEndpoint><httpProtocolIpv6>disabled</httpProtocolIpv6>
<instanceMetadataTags>disabled</instanceMetadataTags></metadataOptions>
<maintenanceOptions><autoRecovery>default</autoRecovery><rebootMigration>default</rebootMigration></maintenanceOptions>
<currentInstanceBootMode>legacy-bios</currentInstanceBootMode>
<privateDnsNameOptions><hostnameType>ip-name</hostnameType>
<enableResourceNameDnsARecord>false</enableResourceNameDnsARecord>
<enableResourceNameDnsAAAARecord>false</enableResourceNameDnsAAAARecord></privateDnsNameOptions>
<networkPerformanceOptions><bandwidthWeighting>default</bandwidthWeighting></networkPerformanceOptions>
<operator><managed>false</managed></operator></item>"""
TOKEN_RE = re.compile(r"<(\w+)>[^<{]*</\1>|<\w+/>|</\w+>|<\w+>|\{\w*\}")


def pretty(xml: str, level: int, step: int) -> str:
    """Compact XML -> one element per line, `step` spaces per level from `level` (EC2's
    layout with step 4). `{name}` (content of an element: more elements) becomes `%(name)s`,
    `{}` becomes `%s`."""
    out = []
    for m in TOKEN_RE.finditer(xml.replace("\n", "")):
        tok = m[0]
        level -= tok.startswith("</")
        if tok[0] == "{":
            out.append("%%(%s)s" % tok[1:-1] if len(tok) > 2 else "%s")
        else:
            out.append("\n" + " " * (step * level) + tok)
        level += m[1] is None and tok[0] == "<" and tok[1] != "/" and not tok.endswith("/>")
    return "".join(out)


def templates(step: int) -> dict[str, str]:
    res = f"<item><reservationId>r-0%s</reservationId><ownerId>{ACCOUNT}</ownerId><groupSet/><instancesSet>"
    head = '<?xml version="1.0" encoding="UTF-8"?>\n<%sResponse xmlns="' + EC2_NS + '">'
    return {
        "instance": pretty(INSTANCE_ITEM, 4, step),
        "tag": pretty("<item><key>%s</key><value>%s</value></item>", 6, step),
        "stopped": pretty("<stateReason><code>Client.UserInitiatedShutdown</code><message>"
                          "Client.UserInitiatedShutdown: User initiated shutdown</message></stateReason>", 5, step),
        "spot": pretty("<instanceLifecycle>spot</instanceLifecycle>"
                       "<spotInstanceRequestId>sir-%s</spotInstanceRequestId>", 5, step),
        "res_open": pretty(res, 2, step), "res_close": pretty("</instancesSet></item>", 4, step),
        "instances": head % "DescribeInstances"
        + pretty("<requestId>%s</requestId><reservationSet>{}</reservationSet>{}", 1, step)
        + "\n</DescribeInstancesResponse>",
        "tag_item": pretty("<item><resourceId>%s</resourceId><resourceType>instance</resourceType><key>%s</key>"
                           "<value>%s</value></item>", 2, step),
        "tags": head % "DescribeTags" + pretty("<requestId>%s</requestId><tagSet>{}</tagSet>{}", 1, step)
        + "\n</DescribeTagsResponse>",
        "token": pretty("<nextToken>%s</nextToken>", 1, step),
    }


TEMPLATES = {step: templates(step) for step in range(5)}
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
SIMPLE_XML = XML_HEAD + '<%sResponse xmlns="' + EC2_NS + '">\n    <requestId>%s</requestId>%s\n</%sResponse>'
EC2_ERROR = (XML_HEAD + "<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors>"
             "<RequestID>%s</RequestID></Response>")
QUERY_ERROR = (f'<ErrorResponse xmlns="{STS_NS}">'
               + pretty("<Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
                        "<RequestId>%s</RequestId>", 1, 2) + "\n</ErrorResponse>")
STS_IDENTITY = (f'<GetCallerIdentityResponse xmlns="{STS_NS}">' + pretty(
    f"<GetCallerIdentityResult><Arn>arn:aws:sts::{ACCOUNT}:assumed-role/fleetops-instance-scheduler/fleetops</Arn>"
    f"<UserId>AROAEXAMPLEROLEID0001:fleetops</UserId><Account>{ACCOUNT}</Account></GetCallerIdentityResult>"
    "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>", 1, 2) + "\n</GetCallerIdentityResponse>")
INSTANCES_SET = pretty("<instancesSet>{}</instancesSet>", 1, 4)
STATE_ITEM = pretty("<item><instanceId>%s</instanceId><currentState><code>%d</code><name>%s</name></currentState>"
                    "<previousState><code>%d</code><name>%s</name></previousState></item>", 2, 4)


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def mix(x: int, k: int) -> str:
    """16 hex digits derived from (x, k): stable fake ids of volumes, ENIs, ..."""
    v = (x * 0x9E3779B97F4A7C15 + k * 0xC2B2AE3D27D4EB4F) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % (((v ^ (v >> 29)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF)


class Inst:
    __slots__ = ("id", "n", "region", "state", "tags", "spot", "hibernation", "type", "launch", "reason", "tag_xml")

    def __init__(self, iid, n, region, state, tags, spot, hibernation, itype, launch):
        self.id, self.n, self.region, self.state, self.tags = iid, n, region, "", tags
        self.spot, self.hibernation, self.type, self.launch = spot, hibernation, itype, launch
        self.tag_xml: tuple[int, str] | None = None  # (indent, rendered tag items)
        self.set_state(state)

    def set_state(self, state: str) -> None:
        if state != self.state:
            stopped = state in ("stopped", "stopping")
            self.reason = time.strftime("User initiated (%Y-%m-%d %H:%M:%S GMT)", time.gmtime()) if stopped else ""
        self.state = state

    def xml(self, step: int) -> str:
        t = TEMPLATES[step]
        if self.tag_xml is None or self.tag_xml[0] != step:
            self.tag_xml = (step, "".join(t["tag"] % (escape(k), escape(v)) for k, v in self.tags.items()))
        h, n = int(self.id[2:], 16), self.n
        a, b, c = (n >> 16) & 255, (n >> 8) & 255, n & 255
        optional = [t["stopped"]] if self.state == "stopped" else []
        if self.spot:
            optional.append(t["spot"] % mix(h, 9)[:8])
        return t["instance"] % {
            "id": self.id, "ami": mix(n // 5000, 1), "code": STATE_CODES[self.state], "state": self.state,
            "dashed": f"10-{a}-{b}-{c}", "reason": self.reason, "launch_index": n % RESERVATION_SIZE,
            "dns_zone": "ec2.internal" if self.region == "us-east-1" else f"{self.region}.compute.internal",
            "type": self.type, "launch": self.launch, "az": self.region + "abc"[n % 3], "subnet": mix(n % 3, 2),
            "vpc": mix(0, 3), "ip": f"10.{a}.{b}.{c}", "sg": mix(0, 4), "vol": mix(h, 5), "eni": mix(h, 6),
            "attach": mix(h, 7), "mac": "02:" + ":".join(mix(h, 8)[i:i + 2] for i in range(0, 10, 2)),
            "token": str(uuid.UUID(int=h << 64 | h)), "tags": self.tag_xml[1], "account": ACCOUNT,
            "profile": mix(0, 10)[:13].upper(), "hibernation": "true" if self.hibernation else "false",
            "optional": "".join(optional),
        }


def matcher(values: list[str]):
    """A test of EC2 filter values: exact, or with `*` (any run), `?` (one character) and
    backslash escapes (`\\*`, `\\?`, `\\\\`)."""
    exact, patterns = set(), []
    for v in values:
        if not any(c in v for c in "*?\\"):
            exact.add(v)
            continue
        rx, i = [], 0
        while i < len(v):
            if v[i] == "\\" and i + 1 < len(v) and v[i + 1] in "*?\\":
                rx.append(re.escape(v[i + 1]))
                i += 2
                continue
            rx.append({"*": ".*", "?": "."}.get(v[i]) or re.escape(v[i]))
            i += 1
        patterns.append(re.compile("".join(rx), re.S))
    if not patterns:
        return lambda s: s is not None and s in exact
    return lambda s: s is not None and (s in exact or any(p.fullmatch(s) for p in patterns))


def indexed(params: dict, prefix: str) -> list[str]:
    """The values of `Prefix.N` in N order."""
    n = len(prefix) + 1
    found = ((int(k[n:]), v) for k, v in params.items() if k.startswith(prefix + ".") and k[n:].isdigit())
    return [v for _, v in sorted(found)]


def parse_filters(params: dict) -> list[tuple[str, list[str]]]:
    names, values = {}, {}
    for k, v in params.items():
        if m := re.fullmatch(r"Filter\.(\d+)\.(?:Name|Value\.(\d+))", k):
            if m[2] is None:
                names[int(m[1])] = v
            else:
                values.setdefault(int(m[1]), []).append((int(m[2]), v))
    if sum(len(v) for v in values.values()) > MAX_FILTER_VALUES:
        raise ApiError("FilterLimitExceeded",
                       f"The maximum number of filter values specified on a single call is {MAX_FILTER_VALUES}")
    return [(names.get(n, ""), [v for _, v in sorted(values.get(n, []))]) for n in sorted(set(names) | set(values))]


def predicates(filters, allowed: tuple[str, ...]):
    """Per-instance tests of `filters`: filters AND, the values of one filter OR."""
    tests = {
        "tag-key": lambda m: lambda i: any(m(k) for k in i.tags),
        "tag-value": lambda m: lambda i: any(m(v) for v in i.tags.values()),
        "instance-state-name": lambda m: lambda i: m(i.state),
        "instance-state-code": lambda m: lambda i: m(str(STATE_CODES[i.state])),
        "instance-type": lambda m: lambda i: m(i.type),
        "instance-id": lambda m: lambda i: m(i.id),
        "resource-id": lambda m: lambda i: m(i.id),
        "instance-lifecycle": lambda m: lambda i: i.spot and m("spot"),
        "resource-type": lambda m: lambda i: m("instance"),
    }
    out = []
    for name, values in filters:
        if name.startswith("tag:") and "tag:" in allowed:
            out.append(lambda i, m=matcher(values), k=name[4:]: m(i.tags.get(k)))
        elif name in allowed:
            out.append(tests[name](matcher(values)))
        else:
            raise ApiError("InvalidParameterValue", f"The filter '{name}' is invalid")
    return out


def max_results(params: dict) -> int | None:
    if "MaxResults" not in params:
        return None
    value = int(params["MaxResults"]) if params["MaxResults"].isdigit() else -1
    if not MIN_RESULTS <= value <= MAX_RESULTS:
        raise ApiError("InvalidParameterValue", f"Value ( {params['MaxResults']} ) for parameter maxResults is "
                       f"invalid. Expecting a value between {MIN_RESULTS} and {MAX_RESULTS}.")
    return value


def encode_token(kind: str, *pos: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([kind, *pos]).encode()).decode().rstrip("=")


def decode_token(token: str, kind: str) -> list[int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data[0] == kind and all(isinstance(p, int) and p >= 0 for p in data[1:]):
            return data[1:]
    except (ValueError, IndexError, TypeError):
        pass
    raise ApiError("InvalidParameterValue", f"The token '{token}' is invalid.")


class Bucket:
    def __init__(self, size: float, refill: float):
        self.size, self.refill, self.tokens, self.t = size, refill, float(size), time.monotonic()

    def take(self, n: float = 1) -> bool:
        now = time.monotonic()
        self.tokens, self.t = min(self.size, self.tokens + (now - self.t) * self.refill), now
        if self.tokens < n:
            return False
        self.tokens -= n
        return True


class Sim:
    """The simulated account: fleet, parameters, counters, buckets; one lock for all."""

    def __init__(self):
        self.lock = threading.RLock()
        self.config = {"latency": True, "throttling": True, "indent": DEFAULT_INDENT, "bucket_scope": "action",
                       "buckets": {"non-mutating": [NON_MUTATING_BUCKET, NON_MUTATING_REFILL_PER_S],
                                   "mutating": [MUTATING_BUCKET, MUTATING_REFILL_PER_S],
                                   "StopInstances": [STOP_RESOURCE_BUCKET, STOP_RESOURCE_REFILL_PER_S],
                                   "StartInstances": [START_RESOURCE_BUCKET, START_RESOURCE_REFILL_PER_S]}}
        self.rng = random.Random(20240601)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.by_id: dict[str, Inst] = {}
            self.tag_index: dict[str, dict[str, set[str]]] = {}  # key -> value -> ids, built when asked
            self.spot_ids: set[str] | None = None
            # (region, last digits) -> instances in launch order, for resource-id i-*<digit>
            self.suffix_pools: dict[tuple[str, frozenset[str]], list[Inst]] = {}
            self.order: dict[str, list[Inst]] = {}  # region -> its instances in launch order
            self.parameters: dict[str, dict] = {}
            self.buckets: dict[str, Bucket] = {}
            self.reset_calls()

    def reset_calls(self) -> None:
        with self.lock:
            self.stats = {"calls": {}, "throttled": {}, "errors": {}, "bytes": {}, "instances_returned": {},
                          "ids_per_call": {}, "filter_values": {}, "max_in_flight": 0, "timeline": {},
                          "overrun": {"count": 0, "total_s": 0.0, "max_s": 0.0}}
            self.in_flight, self.since = 0, time.monotonic()

    def count(self, section: str, key: str, n: int = 1) -> None:
        with self.lock:
            self.stats[section][key] = self.stats[section].get(key, 0) + n
            if section == "calls":  # seconds since the reset of the first and the last call
                at = round(time.monotonic() - self.since, 3)
                self.stats["timeline"][key] = [self.stats["timeline"].get(key, [at])[0], at]

    def take(self, name: str, n: int = 1) -> bool:
        """Takes n tokens of bucket `name` (`<category>[/<action>]` or a resource bucket)."""
        with self.lock:
            if not self.config["throttling"]:
                return True
            if name not in self.buckets:
                self.buckets[name] = Bucket(*self.config["buckets"][name.split("/")[0]])
            return self.buckets[name].take(n)

    def admit(self, action: str) -> bool:
        category = "mutating" if action in MUTATING else "non-mutating"
        return self.take(category if self.config["bucket_scope"] == "category" else f"{category}/{action}")

    def seed(self, body: dict) -> dict:
        region, tag_key = body.get("region", "us-east-1"), body.get("tag_key", "Schedule")
        extra, schedules = body.get("extra_tags", {}), body.get("schedules", {})
        groups = [(name, int(s["count"]), s.get("state", "running"), int(s.get("spot", 0)),
                   int(s.get("hibernation", 0))) for name, s in schedules.items()]
        rest = body.get("instances", sum(g[1] for g in groups)) - sum(g[1] for g in groups)
        if rest < 0:
            raise ValueError("the schedules' counts exceed 'instances'")
        groups.append(("", rest, body.get("state", "running"), 0, 0))
        out: dict[str, list[str]] = {}
        with self.lock:
            self.tag_index, self.spot_ids, self.suffix_pools = {}, None, {}
            order, base = self.order.setdefault(region, []), time.time() - 86400 * 30
            for name, count, state, spot, hibernation in groups:
                if state not in STATE_CODES:
                    raise ValueError(f"unknown state {state!r}")
                ids = out.setdefault(name, [])
                for k in range(count):
                    iid = f"i-0{self.rng.getrandbits(64):016x}"
                    while iid in self.by_id:
                        iid = f"i-0{self.rng.getrandbits(64):016x}"
                    tags = {"Name": name or f"unscheduled-{len(order)}", **({tag_key: name} if name else {}), **extra}
                    inst = Inst(iid, len(order), region, state, tags, k < spot, k < hibernation,
                                body.get("instance_type", "t3.medium"), iso(base + len(order) * 7))
                    self.by_id[iid] = inst
                    order.append(inst)
                    ids.append(iid)
        return {"ids": out, "total": len(self.by_id)}

    def lookup(self, ids: list[str], region: str) -> list[Inst]:
        if bad := [i for i in ids if not ID_RE.fullmatch(i)]:
            raise ApiError("InvalidInstanceID.Malformed", f'Invalid id: "{bad[0]}"')
        ids = list(dict.fromkeys(ids))
        missing = [i for i in ids if i not in self.by_id or self.by_id[i].region != region]
        if len(missing) == 1:
            raise ApiError("InvalidInstanceID.NotFound", f"The instance ID '{missing[0]}' does not exist")
        if missing:
            raise ApiError("InvalidInstanceID.NotFound", f"The instance IDs '{', '.join(missing)}' do not exist")
        return [self.by_id[i] for i in ids]

    def candidates(self, filters, region: str) -> list[Inst]:
        """The instances that can match, in launch order: from indexes for the filters with exact
        values (instance-id, tag:<key>, instance-lifecycle), else all. Keeps the sim faster than
        its latency model; the filters are applied to these as well."""
        sets = []
        for name, values in filters:
            if any(c in v for v in values for c in "*?\\"):
                continue
            if name == "instance-id":
                sets.append({i for i in values if i in self.by_id})
            elif name.startswith("tag:"):
                if (index := self.tag_index.get(name[4:])) is None:
                    index = self.tag_index[name[4:]] = {}
                    for inst in self.by_id.values():
                        if (value := inst.tags.get(name[4:])) is not None:
                            index.setdefault(value, set()).add(inst.id)
                sets.append(set().union(*(index.get(v, ()) for v in values)))
            elif name == "instance-lifecycle":
                if self.spot_ids is None:
                    self.spot_ids = {i.id for i in self.by_id.values() if i.spot}
                sets.append(self.spot_ids if "spot" in values else set())
        if not sets:
            return self.order.get(region, [])  # pool[k].n == k
        found = (self.by_id[i] for i in set.intersection(*sets))
        return sorted((i for i in found if i.region == region), key=lambda i: i.n)

    # --- EC2 actions: each returns (XML, items returned)
    def describe_instances(self, p: dict, region: str, rid: str):
        filters, limit, ids = parse_filters(p), max_results(p), indexed(p, "InstanceId")
        self.count("filter_values", "ec2:DescribeInstances", sum(len(v) for _, v in filters))
        if ids and limit is not None:
            raise ApiError("InvalidParameterCombination",
                           "The parameter instancesSet cannot be used with the parameter maxResults")
        tests, t, step = predicates(filters, INSTANCE_FILTERS), TEMPLATES[self.config["indent"]], self.config["indent"]
        with self.lock:
            if ids:
                pool = sorted(self.lookup(ids, region), key=lambda i: i.n)
            else:
                pool = self.candidates(filters, region)
            start = decode_token(p["NextToken"], "i")[0] if p.get("NextToken") else 0  # launch index n
            page, nxt = [], None
            for inst in pool[bisect.bisect_left(pool, start, key=lambda i: i.n):]:
                if all(f(inst) for f in tests):
                    if len(page) == limit:
                        nxt = inst.n
                        break
                    page.append(inst)
            parts, reservation = [], None
            for inst in page:
                if inst.n // RESERVATION_SIZE != reservation:
                    if reservation is not None:
                        parts.append(t["res_close"])
                    reservation = inst.n // RESERVATION_SIZE
                    parts.append(t["res_open"] % mix(reservation, 11))
                parts.append(inst.xml(step))
            parts.append(t["res_close"] if page else "")
        token = t["token"] % encode_token("i", nxt) if nxt is not None else ""
        return t["instances"] % (rid, "".join(parts), token), len(page)

    def tag_pool(self, filters, region: str) -> list[Inst]:
        """The instances a DescribeTags call walks, in launch order: for a resource-id filter
        of `i-*<digit>` patterns only those ids (an index, so the sim keeps up with its latency
        model; the filter is still applied to them), else all."""
        pool = self.order.get(region, [])
        for name, values in filters:
            if name == "resource-id" and all(re.fullmatch(r"i-\*[0-9a-f]", v) for v in values):
                key = (region, frozenset(v[-1] for v in values))
                if key not in self.suffix_pools:
                    self.suffix_pools[key] = [i for i in pool if i.id[-1] in key[1]]
                return self.suffix_pools[key]
        return pool

    def describe_tags(self, p: dict, region: str, rid: str):
        filters, limit, t = parse_filters(p), max_results(p), TEMPLATES[self.config["indent"]]
        self.count("filter_values", "ec2:DescribeTags", sum(len(v) for _, v in filters))
        per_item = [(n == "key", matcher(v)) for n, v in filters if n in ("key", "value")]
        tests = predicates([(n, v) for n, v in filters if n not in ("key", "value")], TAG_FILTERS)
        items, nxt = [], None
        with self.lock:
            pool = self.tag_pool(filters, region)
            pos, first = decode_token(p["NextToken"], "t") if p.get("NextToken") else (0, 0)
            while pos < len(pool) and nxt is None:
                if all(f(pool[pos]) for f in tests):
                    for j, (k, v) in enumerate(list(pool[pos].tags.items())[first:], first):
                        if all(m(k if is_key else v) for is_key, m in per_item):
                            if len(items) == limit:
                                nxt = (pos, j)
                                break
                            items.append(t["tag_item"] % (pool[pos].id, escape(k), escape(v)))
                pos, first = pos + 1, 0
        token = t["token"] % encode_token("t", *nxt) if nxt else ""
        return t["tags"] % (rid, "".join(items), token), len(items)

    def change_state(self, p: dict, region: str, rid: str, action: str):
        ids, stop = indexed(p, "InstanceId"), action == "StopInstances"
        if not ids:
            raise ApiError("MissingParameter", "The request must contain the parameter InstanceId")
        if len(ids) > MAX_IDS_PER_CALL:
            raise ApiError("InvalidParameterValue", f"At most {MAX_IDS_PER_CALL} instance IDs per call")
        allowed = ("pending", "running", "stopping", "stopped") if stop else ("pending", "running", "stopped")
        with self.lock:
            insts = self.lookup(ids, region)
            for i in insts:
                if i.state not in allowed:
                    raise ApiError("IncorrectInstanceState", f"The instance '{i.id}' is not in a state from which it "
                                   f"can be {'stopped' if stop else 'started'}.")
                if stop and i.spot:
                    raise ApiError("UnsupportedOperation", f"You can't stop the Spot Instance '{i.id}' because it is "
                                   "associated with a one-time Spot Instance request. You can only stop Spot Instances "
                                   "associated with persistent Spot Instance requests.")
                if stop and p.get("Hibernate", "").lower() == "true" and not i.hibernation:
                    raise ApiError("UnsupportedHibernationConfiguration",
                                   f"The instance '{i.id}' does not have hibernation configured.")
            if not self.take(action, len(insts)):
                raise ApiError("RequestLimitExceeded", "Request limit exceeded.", 503)
            items = []
            for i in insts:
                before = i.state
                shown = ("stopping" if before in ("pending", "running") else before) if stop else (
                    "pending" if before == "stopped" else before)
                i.set_state("stopped" if stop else "running")
                items.append(STATE_ITEM % (i.id, STATE_CODES[shown], shown, STATE_CODES[before], before))
        return SIMPLE_XML % (action, rid, INSTANCES_SET % "".join(items), action), len(items)

    def change_tags(self, p: dict, region: str, rid: str, action: str):
        ids = indexed(p, "ResourceId")
        if not ids:
            raise ApiError("MissingParameter", "The request must contain the parameter resourceIdSet")
        if len(ids) > MAX_IDS_PER_CALL:
            raise ApiError("InvalidParameterValue", f"At most {MAX_IDS_PER_CALL} resource IDs per call")
        numbers = sorted({int(k.split(".")[1]) for k in p if re.fullmatch(r"Tag\.\d+\.(Key|Value)", k)})
        tags = [(p.get(f"Tag.{n}.Key", ""), p.get(f"Tag.{n}.Value")) for n in numbers]
        if action == "CreateTags" and not tags:
            raise ApiError("MissingParameter", "The request must contain the parameter tagSet")
        with self.lock:
            insts = self.lookup(ids, region)
            for i in insts if action == "CreateTags" else []:
                if len(set(i.tags) | {k for k, _ in tags}) > MAX_TAGS_PER_RESOURCE:
                    raise ApiError("TagLimitExceeded", f"The maximum number of tags for '{i.id}' has been reached.")
            for i in insts:
                for key, value in tags or [(k, None) for k in list(i.tags)]:  # DeleteTags without tags: all of them
                    if action == "CreateTags":
                        i.tags[key] = value or ""
                    elif key in i.tags and (value is None or i.tags[key] == value):
                        del i.tags[key]
                i.tag_xml = None
            for key in {k for k, _ in tags} if tags else list(self.tag_index):
                self.tag_index.pop(key, None)
        return SIMPLE_XML % (action, rid, pretty("<return>true</return>", 1, 4), action), 0

    def ssm(self, op: str, body: dict, region: str) -> dict:
        if op == "GetParameter":
            with self.lock:
                par = self.parameters.get(body.get("Name", ""))
            if par is None:
                raise ApiError("ParameterNotFound", f"Parameter {body.get('Name')} not found.")
            return {"Parameter": dict(par, ARN=f"arn:aws:ssm:{region}:{ACCOUNT}:parameter/{par['Name'].lstrip('/')}")}
        if op == "PutParameter":
            with self.lock:
                if body["Name"] in self.parameters and not body.get("Overwrite"):
                    raise ApiError("ParameterAlreadyExists", "The parameter already exists.")
                return {"Version": self.put_parameter(body["Name"], body["Value"], body.get("Type", "String")),
                        "Tier": "Standard"}
        if op == "ListCommands":
            return {"Commands": []}  # no patch command in progress
        if op == "ListCommandInvocations":
            return {"CommandInvocations": []}
        raise ApiError("InvalidAction", f"The action {op} is not valid for this web service.")

    def put_parameter(self, name: str, value: str, ptype: str = "String") -> int:
        with self.lock:
            version = self.parameters.get(name, {}).get("Version", 0) + 1
            self.parameters[name] = {"Name": name, "Type": ptype, "Value": value, "Version": version,
                                     "LastModifiedDate": time.time(), "DataType": "text"}
        return version

    def control(self, method: str, path: str, query: str, req: dict) -> dict | None:
        region = req.get("region", "us-east-1") if isinstance(req, dict) else "us-east-1"
        with self.lock:
            if (method, path) == ("GET", "/_sim/health"):
                return {"ok": True, "instances": len(self.by_id)}
            if (method, path) == ("POST", "/_sim/seed"):
                return self.seed(req)
            if (method, path) == ("POST", "/_sim/tag"):
                for i in self.lookup(req["ids"], region):
                    for k, v in req["tags"].items():
                        i.tags.pop(k, None) if v is None else i.tags.__setitem__(k, v)
                        self.tag_index.pop(k, None)
                    i.tag_xml = None
                return {"ok": True}
            if (method, path) == ("POST", "/_sim/state"):
                if req["state"] not in STATE_CODES:
                    raise ValueError(f"unknown state {req['state']!r}")
                for i in self.lookup(req["ids"], region):
                    i.set_state(req["state"])
                return {"ok": True}
            if (method, path) == ("POST", "/_sim/config"):
                if req.get("indent", self.config["indent"]) not in TEMPLATES:
                    raise ValueError(f"indent must be one of {sorted(TEMPLATES)}")
                self.config.update({k: req[k] for k in ("latency", "throttling", "indent", "bucket_scope") if k in req})
                self.config["buckets"].update(req.get("buckets", {}))
                self.buckets = {}  # every bucket starts full again
                return self.config
            if (method, path) == ("POST", "/_sim/parameter"):
                return {"Version": self.put_parameter(req["name"], req["value"], req.get("type", "String"))}
            if (method, path) == ("GET", "/_sim/calls"):
                return json.loads(json.dumps(self.stats))
            if (method, path) == ("POST", "/_sim/calls/reset"):
                self.reset_calls()
                return {"ok": True}
            if (method, path) == ("POST", "/_sim/reset"):
                self.reset()
                return {"ok": True}
            if (method, path) == ("GET", "/_sim/instances"):
                if "fields=state" in query:
                    return {i.id: i.state for i in self.by_id.values()}
                return {i.id: {"state": i.state, "tags": dict(i.tags), "spot": i.spot} for i in self.by_id.values()}
        return None


EC2_LATENCY = {  # action -> (base seconds, seconds per item returned)
    "DescribeInstances": (DESCRIBE_INSTANCES_BASE_S, DESCRIBE_INSTANCES_PER_INSTANCE_S),
    "DescribeTags": (DESCRIBE_TAGS_BASE_S, DESCRIBE_TAGS_PER_TAG_S),
    "StopInstances": (STATE_CHANGE_S, 0), "StartInstances": (STATE_CHANGE_S, 0),
    "CreateTags": (TAG_CHANGE_S, 0), "DeleteTags": (TAG_CHANGE_S, 0),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        out = b""
        while (size := int(self.rfile.readline().split(b";")[0], 16)) != 0:
            out += self.rfile.read(size)
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        return out

    def _send(self, status: int, body: bytes, ctype: str, rid: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if rid:
            self.send_header("x-amzn-RequestId", rid)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._control(b"")

    def do_POST(self) -> None:
        start, body = time.monotonic(), self._body()
        if self.path.startswith("/_sim/"):
            return self._control(body)
        sim = self.server.sim
        with sim.lock:
            sim.in_flight += 1
            sim.stats["max_in_flight"] = max(sim.stats["max_in_flight"], sim.in_flight)
        try:
            try:
                status, payload, ctype, rid, target = self._api(sim, body)
            except Exception:  # noqa: BLE001 - a bug here: answer, and say so
                traceback.print_exc()
                rid, ctype, target = str(uuid.uuid4()), "text/xml;charset=UTF-8", 0.0
                status, payload = 500, (EC2_ERROR % ("InternalError", "ec2sim failed", rid)).encode()
            late = time.monotonic() - start - target
            if sim.config["latency"] and late < 0:
                time.sleep(-late)
            elif sim.config["latency"]:
                with sim.lock:
                    o = sim.stats["overrun"]
                    o.update(count=o["count"] + 1, total_s=o["total_s"] + late, max_s=max(o["max_s"], late))
            self._send(status, payload, ctype, rid)
        finally:
            with sim.lock:
                sim.in_flight -= 1

    def _api(self, sim: Sim, body: bytes):
        rid = str(uuid.uuid4())
        scope = SCOPE_RE.search(self.headers.get("Authorization", ""))
        region, service = scope.groups() if scope else ("us-east-1", "")
        target = self.headers.get("X-Amz-Target", "")
        service = service or ("ssm" if target.startswith("AmazonSSM.") else "ec2")
        if service == "ssm":
            key = f"ssm:{target.split('.', 1)[-1]}"
            sim.count("calls", key)
            try:
                out, status = sim.ssm(key[4:], json.loads(body or b"{}"), region), 200
            except ApiError as e:
                out, status = {"__type": e.code, "message": e.message}, e.status
                sim.count("errors", f"{key}:{e.code}")
                if e.code == "InvalidAction":
                    print(f"[ec2sim] unsupported operation {key}", file=sys.stderr, flush=True)
            payload = json.dumps(out).encode()
            sim.count("bytes", key, len(payload))
            return status, payload, "application/x-amz-json-1.1", rid, SSM_STS_S
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
        action = params.get("Action", "")
        key = f"{service}:{action}"
        sim.count("calls", key)
        target_s, per_item = EC2_LATENCY.get(action, (SSM_STS_S, 0)) if service == "ec2" else (SSM_STS_S, 0)
        if service == "ec2" and action in MUTATING:  # every call, throttled ones too
            ids = len(indexed(params, "InstanceId" if action.endswith("Instances") else "ResourceId"))
            with sim.lock:
                sim.stats["ids_per_call"].setdefault(key, []).append(ids)
        try:
            if key == "sts:GetCallerIdentity":
                xml, n = STS_IDENTITY % rid, 0
            elif service != "ec2" or action not in EC2_LATENCY:
                print(f"[ec2sim] unsupported operation {key}", file=sys.stderr, flush=True)
                raise ApiError("InvalidAction", f"The action {action} is not valid for this web service.")
            elif not sim.admit(action):
                raise ApiError("RequestLimitExceeded", "Request limit exceeded.", 503)
            elif action in ("DescribeInstances", "DescribeTags"):
                describe = sim.describe_instances if action == "DescribeInstances" else sim.describe_tags
                xml, n = describe(params, region, rid)
                sim.count("instances_returned", key, n)
            elif action in ("StopInstances", "StartInstances"):
                xml, n = sim.change_state(params, region, rid, action)
            else:
                xml, n = sim.change_tags(params, region, rid, action)
            status, target_s = 200, target_s + per_item * n
        except ApiError as e:
            status = e.status
            if e.code == "RequestLimitExceeded":
                sim.count("throttled", key)
                target_s = THROTTLED_S
            else:
                sim.count("errors", f"{key}:{e.code}")
            xml = (EC2_ERROR if service == "ec2" else QUERY_ERROR) % (e.code, escape(e.message), rid)
        payload = xml.encode()
        sim.count("bytes", key, len(payload))
        return status, payload, "text/xml;charset=UTF-8", rid, target_s

    def _control(self, body: bytes) -> None:
        url = urlsplit(self.path)
        try:
            out = self.server.sim.control(self.command, url.path, url.query or "", json.loads(body or b"{}"))
            if out is None:
                return self._send(404, b'{"error":"unknown control path"}', "application/json")
            self._send(200, json.dumps(out).encode(), "application/json")
        except (ApiError, ValueError, KeyError, TypeError) as e:
            self._send(400, json.dumps({"error": str(e)}).encode(), "application/json")
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            self._send(500, b'{"error":"internal"}', "application/json")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256

    def __init__(self, address, sim: Sim):
        super().__init__(address, Handler)
        self.sim = sim


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = p.parse_args(argv)
    server = Server((args.host, args.port), Sim())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    print(f"EC2SIM_READY http://{args.host}:{server.server_port}", flush=True)
    try:
        while sys.stdin.buffer.read(65536):
            pass
    except (OSError, KeyboardInterrupt):
        pass
    sys.stderr.flush()
    os._exit(0)  # never wait for idle keep-alive connections


if __name__ == "__main__":
    sys.exit(main())
