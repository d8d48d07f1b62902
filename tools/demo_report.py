"""The compliance-reporter part of the demo: seeds SSM agents, patch states and
association compliance for the demo fleet, creates the report topic with an SQS
subscriber, and prints what the subscriber received.

    python tools/demo_report.py seed  ENDPOINT       # prints the topic ARN
    python tools/demo_report.py read  ENDPOINT       # prints the e-mail text and the JSON
    python tools/demo_report.py page  ENDPOINT FILE  # copies tonight's HTML page to FILE, prints its URI

The bucket gets 14 earlier nights of (made-up) full reports, so the page's
trend has something to show.
"""
import calendar
import json
import sys
import time
import urllib.request

import boto3

REGION = "us-east-1"
TOPIC = "fleetops-compliance-report"
QUEUE = "fleetops-report-reader"
BUCKET = "fleetops-demo-reports"
PREFIX = "fleetops/reports/"

# Name tag -> (agent ping status or None for unmanaged, patch state fields or None)
PLAN = {
    "seoul-app-1": ("Online", {"InstalledCount": 40}),
    "seoul-app-2": ("Online", {"MissingCount": 4, "CriticalNonCompliantCount": 2, "SecurityNonCompliantCount": 1}),
    "berlin-dev-1": ("Online", {"InstalledPendingRebootCount": 2}),
    "berlin-dev-2": ("ConnectionLost", {"InstalledCount": 12}),
    "ny-batch-1": ("Online", {"FailedCount": 1}),
    "typo-box": ("Online", "stale"),
    "mystery-box": ("Online", None),
    "web-asg-1": ("Online", {"NotApplicableCount": 25}),
    "prod-db-1": (None, None),
}
GROUPS = {"seoul-app-1": "web", "seoul-app-2": "web", "web-asg-1": "web", "ny-batch-1": "batch", "berlin-dev-1": "dev", "berlin-dev-2": "dev", "typo-box": "dev"}


def client(name, endpoint):
    return boto3.client(name, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="demo", aws_secret_access_key="demo")


def control(endpoint, path, body):
    request = urllib.request.Request(endpoint + path, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def seed(endpoint):
    ec2, ssm, sns, sqs = (client(n, endpoint) for n in ("ec2", "ssm", "sns", "sqs"))
    baseline = ssm.create_patch_baseline(Name="fleetops-web", OperatingSystem="AMAZON_LINUX_2")["BaselineId"]
    ssm.register_patch_baseline_for_patch_group(BaselineId=baseline, PatchGroup="web")
    names = {}
    for reservation in ec2.describe_instances()["Reservations"]:
        for i in reservation["Instances"]:
            tags = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
            if i["State"]["Name"] != "terminated" and "Name" in tags:
                names[tags["Name"]] = i["InstanceId"]
    for name, (ping, state) in PLAN.items():
        instance_id = names.get(name)
        if instance_id is None:
            continue
        if name in GROUPS:
            ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "Patch Group", "Value": GROUPS[name]}])
        if ping is None:
            continue
        control(endpoint, "/_fleetops/ssm/agent", {"instance_id": instance_id, "ping_status": ping})
        if state == "stale":
            month_ago = int(time.time()) - 30 * 86400
            state = {"OperationStartTime": month_ago - 60, "OperationEndTime": month_ago}
        if state is not None:
            control(endpoint, "/_fleetops/ssm/patch-state", dict(state, InstanceId=instance_id))
    for name, status in (("seoul-app-1", "COMPLIANT"), ("ny-batch-1", "NON_COMPLIANT")):
        ssm.put_compliance_items(
            ResourceId=names[name], ResourceType="ManagedInstance", ComplianceType="Association",
            ExecutionSummary={"ExecutionTime": time.time()},
            Items=[{"Id": "cloudwatch-agent", "Title": "AWS-ConfigureAWSPackage", "Severity": "HIGH", "Status": status}],
        )
    s3 = client("s3", endpoint)
    s3.create_bucket(Bucket=BUCKET)
    # The nights before the demo's nightly event (its `time` is "now" for the reporter).
    with open("events/compliance-reporter-nightly.json", encoding="utf-8") as f:
        event_time = json.load(f)["time"]
    now = calendar.timegm(time.strptime(event_time, "%Y-%m-%dT%H:%M:%SZ"))
    for back in range(14, 0, -1):
        night = time.strftime("%Y-%m-%d", time.gmtime(now - back * 86400))
        compliant = max(1, 7 - back // 2)
        report = {
            "type": "fleetops.compliance-report", "version": 1, "generated_at": f"{night}T02:00:00Z", "complete": back != 5,
            "totals": {"running": 8, "compliant": compliant, "noncompliant": 8 - compliant, "missing_critical": 1 + back // 7,
                       "unmanaged": 1, "stale": 1, "stopped_stale": 1},
        }
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{night}/compliance-020000Z.json", Body=json.dumps(report).encode())
    topic = sns.create_topic(Name=TOPIC)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    print(topic)


def read(endpoint):
    sqs = client("sqs", endpoint)
    queue_url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    if not messages:
        print("(no message reached the subscriber)")
        return
    with urllib.request.urlopen(endpoint + "/_fleetops/sns/messages") as response:
        published = json.load(response)["messages"][-1]
    structure = json.loads(published["message"])
    notification = json.loads(messages[-1]["Body"])
    print(f"Subject: {notification['Subject']}")
    print(f"({published['bytes']} bytes published)\n")
    print("---- e-mail text ----")
    print(structure["email"])
    print("---- JSON received by the SQS subscriber (abridged) ----")
    report = json.loads(notification["Message"])
    print(json.dumps({k: report[k] for k in ("subject", "totals", "groups", "changes", "gaps", "links")}, indent=2))


def page(endpoint, out):
    s3 = client("s3", endpoint)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents", []) if o["Key"].endswith(".html")]
    if not keys:
        print("(no page was stored)")
        return
    key = max(keys)
    with open(out, "wb") as f:
        f.write(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    print(f"s3://{BUCKET}/{key}")


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "page":
        page(sys.argv[2], sys.argv[3])
    else:
        {"seed": seed, "read": read}[command](sys.argv[2])
