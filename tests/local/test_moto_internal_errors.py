"""A crash inside moto reaches the client as that service's own internal error, never as
a bare 500 page, and its cause is logged."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from botocore.exceptions import ClientError


class Crash(RuntimeError):
    """What moto raises in these tests."""


def _crash(*args: Any, **kwargs: Any) -> Any:
    raise Crash("injected by the test")


@pytest.mark.parametrize("service, target, call, code", [
    ("s3", "moto.s3.models.S3Backend.list_buckets", lambda c: c.list_buckets(),
     "InternalError"),
    ("sts", "moto.sts.models.STSBackend.get_caller_identity",
     lambda c: c.get_caller_identity(), "InternalFailure"),
    ("cloudformation", "moto.cloudformation.models.CloudFormationBackend.list_stacks",
     lambda c: c.list_stacks(), "InternalFailure"),
    ("iam", "moto.iam.models.IAMBackend.list_roles", lambda c: c.list_roles(),
     "ServiceFailure"),
    ("ssm", "moto.ssm.models.SimpleSystemManagerBackend.get_parameter",
     lambda c: c.get_parameter(Name="/anything"), "InternalServerError"),
])
def test_a_moto_crash_is_the_services_internal_error(
        make_client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        service: str, target: str, call: Any, code: str) -> None:
    client = make_client(service)
    monkeypatch.setattr(target, _crash)
    with caplog.at_level(logging.ERROR, logger="hi_async.local"), \
            pytest.raises(ClientError) as failed:
        call(client)
    response = failed.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert response["Error"]["Code"] == code
    assert "Crash" in response["Error"]["Message"]
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is Crash]
    assert logged, "the cause must be in the stack's log"


def test_a_crash_during_a_stack_operation_fails_the_resource_not_the_call(
        make_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.local.cfn_support import status, unique

    cfn = make_client("cloudformation")
    monkeypatch.setattr("moto.s3.models.S3Backend.create_bucket", _crash)
    name = unique("crash")
    stack_id = cfn.create_stack(
        StackName=name,
        TemplateBody='{"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}}}')["StackId"]
    state, reason = status(cfn, stack_id)
    assert state == "ROLLBACK_COMPLETE"
    assert reason is not None and "[Bucket]" in reason
