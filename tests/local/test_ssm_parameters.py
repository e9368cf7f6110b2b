"""SSM Parameter Store on the one endpoint, the account bootstrapped for the CDK, and
templates whose SSM parameters do not resolve refused with AWS's 400."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from hi_async.local.aws.ssm_bootstrap import BOOTSTRAP_PARAMETER, BOOTSTRAP_VERSION
from hi_async.local.stack import LocalStack
from tests.conftest import KEYS, client_config
from tests.local.cdk_template import cdk_template_body
from tests.local.cfn_support import create, status, unique


@pytest.fixture(scope="module")
def ssm(make_client: Any) -> Any:
    return make_client("ssm")


@pytest.fixture(scope="module")
def cfn(make_client: Any) -> Any:
    return make_client("cloudformation")


def test_parameter_store_is_served_on_the_same_endpoint(ssm: Any) -> None:
    ssm.put_parameter(Name="/hi-async-test/greeting", Value="hello", Type="String",
                      Overwrite=True)
    assert ssm.get_parameter(Name="/hi-async-test/greeting")["Parameter"]["Value"] == "hello"
    with pytest.raises(ClientError) as missing:
        ssm.get_parameter(Name="/hi-async-test/nothing-here")
    assert missing.value.response["Error"]["Code"] == "ParameterNotFound"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2"])
def test_the_account_is_cdk_bootstrapped_in_every_region(endpoint_url: str, region: str) -> None:
    ssm = boto3.client("ssm", endpoint_url=endpoint_url, region_name=region, **KEYS,
                       config=client_config("ssm"))
    found = ssm.get_parameter(Name=BOOTSTRAP_PARAMETER)["Parameter"]
    assert found["Value"] == BOOTSTRAP_VERSION
    assert int(found["Value"]) >= 6  # what the CDK's CheckBootstrapVersion rule asks for


def test_a_missing_ssm_parameter_is_a_400_validation_error(cfn: Any) -> None:
    name = unique("cdk-nossm")
    with pytest.raises(ClientError) as refused:
        create(cfn, name, cdk_template_body(), DatastoreName=name,
               BootstrapVersion="/hi-async-test/never-written")
    response = refused.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"]["Code"] == "ValidationError"
    assert response["Error"]["Message"] == (
        "Unable to fetch parameters [/hi-async-test/never-written] from parameter store for "
        "this account.")
    assert name not in [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]


def test_a_secure_string_is_not_a_template_value(cfn: Any, ssm: Any) -> None:
    ssm.put_parameter(Name="/hi-async-test/secret", Value="s3cret", Type="SecureString",
                      Overwrite=True)
    name = unique("cdk-secure")
    with pytest.raises(ClientError, match="have types not supported by CloudFormation"):
        create(cfn, name, cdk_template_body(), DatastoreName=name,
               BootstrapVersion="/hi-async-test/secret")


def test_a_change_set_with_a_missing_parameter_is_refused_too(cfn: Any) -> None:
    name = unique("cdk-cs")
    with pytest.raises(ClientError, match=r"Unable to fetch parameters \[/hi-async-test/none\]"):
        cfn.create_change_set(
            StackName=name, ChangeSetName="first", ChangeSetType="CREATE",
            TemplateBody=cdk_template_body(), Capabilities=["CAPABILITY_IAM"],
            Parameters=[{"ParameterKey": "DatastoreName", "ParameterValue": name},
                        {"ParameterKey": "BootstrapVersion",
                         "ParameterValue": "/hi-async-test/none"}])


@pytest.fixture(scope="module")
def bare_stack() -> Iterator[LocalStack]:
    # A process of its own: moto's state is per process, and this account must be bare.
    with LocalStack(mode="process", bare_account=True) as stack:
        yield stack


def test_a_bare_account_refuses_cdk_templates_as_aws_does(bare_stack: LocalStack) -> None:
    ssm, cfn = (boto3.client(s, endpoint_url=bare_stack.url, region_name="us-east-1", **KEYS,
                             config=client_config(s)) for s in ("ssm", "cloudformation"))
    with pytest.raises(ClientError) as missing:
        ssm.get_parameter(Name=BOOTSTRAP_PARAMETER)
    assert missing.value.response["Error"]["Code"] == "ParameterNotFound"
    name = unique("cdk-bare")
    with pytest.raises(ClientError) as refused:
        create(cfn, name, cdk_template_body(), DatastoreName=name)
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert refused.value.response["Error"]["Message"] == (
        f"Unable to fetch parameters [{BOOTSTRAP_PARAMETER}] from parameter store for this "
        "account.")

    # `cdk bootstrap` writes the parameter; then the same template deploys.
    ssm.put_parameter(Name=BOOTSTRAP_PARAMETER, Value="27", Type="String")
    stack_id = create(cfn, name, cdk_template_body(), DatastoreName=name)
    assert status(cfn, stack_id)[0] == "CREATE_COMPLETE"
