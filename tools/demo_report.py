"""The compliance-reporter part of the demo: seeds SSM agents, patch states and
association compliance for the demo fleet, creates the report topic with an SQS
subscriber, and prints what the subscriber received.

    python tools/demo_report.py seed  ENDPOINT   # prints the topic ARN
    python tools/demo_report.py read  ENDPOINT   # prints the e-mail text and the JSON
"""
import json
import sys
import time
import urllib.request

import boto3

REGION = "us-east-1"
TOPIC = "fleetops-compliance-report"
QUEUE = "fleetops-report-reader"

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


if __name__ == "__main__":
    {"seed": seed, "read": read}[sys.argv[1]](sys.argv[2])
