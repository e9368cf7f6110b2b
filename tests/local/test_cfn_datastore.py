"""infra/stack.yaml deploys unchanged on the local stack through moto's CloudFormation,
with the data store created in (and deleted from) the HealthImaging emulator."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hi_async.settings import Settings
from hi_async.workflow.clients import Clients
from hi_async.workflow.deploy import create_stack, delete_stack
from hi_async.workflow.plan import template_body
from hi_async.workflow.session import target_settings


@pytest.fixture
async def clients(endpoint_url: str) -> AsyncIterator[Clients]:
    """The workflow's clients (as a run uses them)."""
    target = target_settings(Settings(), region="us-east-1", endpoint_url=endpoint_url,
                             profile=None)
    async with Clients(target) as c:
        yield c


async def _exists(s3: Any, bucket: str) -> bool:
    try:
        await s3.head_bucket(Bucket=bucket)
    except Exception as exc:  # botocore's ClientError for 404
        if "404" in str(exc) or "Not Found" in str(exc):
            return False
        raise
    return True


async def test_template_deploys_and_its_datastore_is_a_real_one(clients: Any) -> None:
    name = f"cfn-test-{secrets.token_hex(4)}"
    stack_id, outputs = await create_stack(clients, name, template_body(),
                                           {"DatastoreName": name})
    ds = (await clients.mi.get_datastore(datastoreId=outputs["DatastoreId"]))
    props = ds["datastoreProperties"]
    assert props["datastoreName"] == name
    assert props["datastoreStatus"] == "ACTIVE"
    assert props["datastoreArn"] == outputs["DatastoreArn"]
    assert outputs["DatastoreArn"].endswith(":datastore/" + outputs["DatastoreId"])
    assert outputs["ImportRoleArn"].startswith("arn:aws:iam::")
    for key in ("InputBucketName", "OutputBucketName"):
        assert outputs[key].startswith(name + "-")  # generated, not fixed
        assert await _exists(clients.s3, outputs[key])
    resources = await clients.cfn.describe_stack_resources(StackName=stack_id)
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                for r in resources["StackResources"]}
    assert physical["Datastore"] == outputs["DatastoreId"]
    assert physical["InputBucketPolicy"] == outputs["InputBucketName"]

    assert await delete_stack(clients, stack_id) == "DELETE_COMPLETE"
    desc = await clients.cfn.describe_stacks(StackName=stack_id)
    assert desc["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
    after = await clients.mi.get_datastore(datastoreId=outputs["DatastoreId"])
    assert after["datastoreProperties"]["datastoreStatus"] == "DELETED"
    for key in ("InputBucketName", "OutputBucketName"):
        assert not await _exists(clients.s3, outputs[key])


async def test_deleting_a_stack_that_is_gone_counts_as_deleted(clients: Any) -> None:
    # Clean-up runs again after an interruption; a stack already gone is not an error.
    assert await delete_stack(clients, f"gone-{secrets.token_hex(4)}") == "DELETE_COMPLETE"
