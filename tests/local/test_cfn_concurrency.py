"""DescribeStacks hammered while CreateStack runs creates nothing twice.

moto adds a stack before its resources exist and creates a resource on the first lookup
that misses it; reading the outputs from another thread at the wrong moment used to
make a second data store or bucket. The test keeps many threads describing the stack
(outputs, resources) from before CreateStack is sent until after it returns.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.local.cdk_template import BUCKETS, cdk_template_body
from tests.local.cfn_support import create, status, unique

THREADS = 12
ROUNDS = 4


@pytest.fixture(scope="module")
def cfn(make_client: Any) -> Any:
    return make_client("cloudformation", attempts=3)


def _hammer(make_client: Any, name: str, stop: threading.Event, seen: list[int]) -> None:
    cfn = make_client("cloudformation", attempts=3)
    calls = 0
    while not stop.is_set():
        try:
            if calls % 2:
                cfn.describe_stack_resources(StackName=name)
            else:
                cfn.describe_stacks(StackName=name)
        except ClientError as exc:  # "does not exist" until CreateStack has added it
            assert exc.response["Error"]["Code"] == "ValidationError"
        calls += 1
    seen.append(calls)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_describe_stacks_during_create_stack_creates_each_resource_once(
        cfn: Any, make_client: Any, mi: Any, s3: Any, round_: int) -> None:
    name = unique("hammer")
    stop, seen = threading.Event(), []
    threads = [threading.Thread(target=_hammer, args=(make_client, name, stop, seen))
               for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        stack_id = create(cfn, name, cdk_template_body(), DatastoreName=name)
        for _ in range(20):  # keep describing for a while after creation
            cfn.describe_stacks(StackName=name)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert len(seen) == THREADS and sum(seen) > THREADS

    assert status(cfn, stack_id)[0] == "CREATE_COMPLETE"
    datastores = [d for page in mi.get_paginator("list_datastores").paginate()
                  for d in page["datastoreSummaries"]
                  if d["datastoreName"] == name]
    assert len(datastores) == 1
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(name)]
    for logical_id in BUCKETS.values():
        assert len([b for b in buckets if f"-{logical_id.lower()}-" in b]) == 1
    assert len(buckets) == len(BUCKETS)
    listed = cfn.list_stack_resources(StackName=stack_id)["StackResourceSummaries"]
    logical_ids = [r["LogicalResourceId"] for r in listed]
    assert len(logical_ids) == len(set(logical_ids))
    cfn.delete_stack(StackName=stack_id)
    assert status(cfn, stack_id)[0] == "DELETE_COMPLETE"
