"""Accounts: assumed-role credentials select the account (moto), a role that
does not exist is refused as AWS refuses it, and Organizations' account states."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError


def _client(emu, service, **creds):
    return boto3.client(service, region_name="us-east-1", endpoint_url=emu.url,
                        aws_access_key_id=creds.get("AccessKeyId", "testing"),
                        aws_secret_access_key=creds.get("SecretAccessKey", "testing"),
                        aws_session_token=creds.get("SessionToken"))


def test_assume_role_needs_the_role_in_the_target_account(emu):
    sts = _client(emu, "sts")
    arn = "arn:aws:iam::111111111111:role/fleetops-spoke"
    with pytest.raises(ClientError) as err:
        sts.assume_role(RoleArn=arn, RoleSessionName="fleetops-instance-scheduler")
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    assert arn in err.value.response["Error"]["Message"]
    emu.post("/_fleetops/iam/role", {"account": "111111111111", "name": "fleetops-spoke"})
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="fleetops-instance-scheduler")["Credentials"]
    spoke = _client(emu, "sts", **creds)
    assert spoke.get_caller_identity()["Account"] == "111111111111"
    ec2 = _client(emu, "ec2", **creds)
    ec2.run_instances(ImageId="ami-760aaa0f", MinCount=1, MaxCount=1)
    own = _client(emu, "ec2")
    own_ids = [i["InstanceId"] for r in own.describe_instances()["Reservations"] for i in r["Instances"]]
    spoke_ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert len(spoke_ids) == 1 and spoke_ids[0] not in own_ids


def test_organization_lists_active_and_suspended_accounts(emu):
    org = _client(emu, "organizations")
    try:
        org.create_organization(FeatureSet="ALL")
    except ClientError:
        pass  # another test made it
    made = org.create_account(AccountName="dev", Email="dev@example.com")["CreateAccountStatus"]
    org.close_account(AccountId=made["AccountId"])
    states = {a["Id"]: a["Status"] for a in org.list_accounts()["Accounts"]}
    assert states[made["AccountId"]] == "SUSPENDED"
    assert "ACTIVE" in states.values()
