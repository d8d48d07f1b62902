"""The patch-dispatcher part of the demo: an Auto Scaling group with fleetops'
launch hook, a scale-out, and the events the emulator recorded.

    python tools/demo_patch.py scale-out      ENDPOINT OUT_FILE   # writes the lifecycle event
    python tools/demo_patch.py status-event   ENDPOINT OUT_FILE   # writes the command status event
    python tools/demo_patch.py actions        ENDPOINT            # prints completed lifecycle actions
    python tools/demo_patch.py create-table   ENDPOINT TABLE      # the dispatcher's state table
    python tools/demo_patch.py records        ENDPOINT TABLE      # prints the dispatcher's records
"""
import json
import sys
import urllib.request

import boto3

REGION = "us-east-1"
HOOK = "fleetops-patch-on-launch"


def control(endpoint, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(endpoint + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"null")


def scale_out(endpoint, out_file):
    asg = boto3.client("autoscaling", region_name=REGION, endpoint_url=endpoint)
    asg.create_launch_configuration(LaunchConfigurationName="web-lc", ImageId="ami-760aaa0f",
                                    InstanceType="t3.micro")
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web", LaunchConfigurationName="web-lc", MinSize=0, MaxSize=4,
        DesiredCapacity=0, AvailabilityZones=["us-east-1a"],
        Tags=[{"Key": "Patch Group", "Value": "web", "PropagateAtLaunch": True},
              {"Key": "fleetops:patch-on-launch", "Value": "true", "PropagateAtLaunch": False}],
    )
    asg.put_lifecycle_hook(AutoScalingGroupName="web", LifecycleHookName=HOOK,
                           LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
                           HeartbeatTimeout=900, DefaultResult="ABANDON")
    launched = control(endpoint, "POST", "/_fleetops/autoscaling/launch", {"group": "web", "count": 1})
    instance = launched["instance_ids"][0]
    control(endpoint, "POST", "/_fleetops/ssm/agent", {"instance_id": instance, "online_after_seconds": 0})
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    print(f"scaled out group web: {instance} is "
          + ", ".join(i["LifecycleState"] for i in group["Instances"] if i["InstanceId"] == instance))
    events = control(endpoint, "GET", "/_fleetops/events?source=aws.autoscaling")["events"]
    with open(out_file, "w") as f:
        json.dump(events[-1], f, indent=2)


def status_event(endpoint, out_file):
    control(endpoint, "POST", "/_fleetops/clock/advance", {"seconds": 60})
    events = control(endpoint, "GET", "/_fleetops/events?source=aws.ssm")["events"]
    if not events:
        sys.exit("no command status event was recorded")
    with open(out_file, "w") as f:
        json.dump(events[-1], f, indent=2)
    # An invocation's event names its instance; the command-level one (EC2 Command
    # Status-change Notification, the last recorded) lists them in `resources`.
    detail = events[-1]["detail"]
    instances = detail.get("instance-id") or ", ".join(r.rsplit("/", 1)[-1] for r in events[-1].get("resources", []))
    print(f"{events[-1]['detail-type']}: command {detail['command-id']} on {instances}: {detail['status']}")


def actions(endpoint):
    for action in control(endpoint, "GET", "/_fleetops/autoscaling/lifecycle-actions")["actions"]:
        print(f"  {action['kind']:9} {action['instance_id']} {action['group']}/{action['hook']} -> {action['result']}")
    asg = boto3.client("autoscaling", region_name=REGION, endpoint_url=endpoint)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    for i in group["Instances"]:
        print(f"  {i['InstanceId']}: {i['LifecycleState']}")


def create_table(endpoint, table):
    """The state table as template.yaml creates it: key `pk`, TTL on `expires_at`."""
    db = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    db.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    db.update_time_to_live(TableName=table,
                           TimeToLiveSpecification={"AttributeName": "expires_at", "Enabled": True})
    print(f"DynamoDB table {table} (key pk, TTL on expires_at)")


def records(endpoint, table):
    db = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    for item in sorted(db.scan(TableName=table)["Items"], key=lambda i: i["pk"]["S"]):
        print(f"  {item['pk']['S']:60} {item['state']['S']:10} version {item['version']['N']}, "
              f"expires {item['expires_at']['N']}")


if __name__ == "__main__":
    command, endpoint = sys.argv[1], sys.argv[2]
    if command == "scale-out":
        scale_out(endpoint, sys.argv[3])
    elif command == "status-event":
        status_event(endpoint, sys.argv[3])
    elif command == "actions":
        actions(endpoint)
    elif command == "create-table":
        create_table(endpoint, sys.argv[3])
    elif command == "records":
        records(endpoint, sys.argv[3])
    else:
        sys.exit(__doc__)
