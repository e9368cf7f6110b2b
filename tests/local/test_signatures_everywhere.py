"""``--verify-signatures`` covers S3, IAM, STS, SSM and CloudFormation as well as HealthImaging.

Each service refuses a wrong secret, an unknown key and an unsigned request with 403 in
its own dialect (S3's XML error, the query services' ErrorResponse), which botocore
parses into the codes AWS uses; properly signed requests of every shape pass: odd object
keys, query strings, multipart uploads, copies, presigned URLs, the AWS CLI, and a whole
workflow run.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError
from multidict import CIMultiDict

from hi_async.local.aws.sigv4_verify import verify
from hi_async.local.stack import LocalStack
from hi_async.settings import Settings
from hi_async.workflow.main import run_workflow
from hi_async.workflow.plan import Plan, resolve_studies
from hi_async.workflow.session import LOCAL_KEY

KEY, SECRET = "AKIDSIGNEDEVERYWHERE", "signed-everywhere-secret/+="
ODD_KEY = "dir/with space/ünïcode+plus%percent&amp=eq~tilde.dcm"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(verify_signatures=True,
                    credentials={KEY: SECRET, LOCAL_KEY: LOCAL_KEY}) as s:
        yield s


def _client(stack: LocalStack, service: str, key: str = KEY, secret: str = SECRET) -> Any:
    return boto3.client(service, endpoint_url=stack.url, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1},
                                      s3={"addressing_style": "path"}))


def _refused(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as e:
        call()
    return (e.value.response["Error"]["Code"],
            e.value.response["ResponseMetadata"]["HTTPStatusCode"])


def test_signed_s3_requests_of_every_shape_pass(stack: LocalStack) -> None:
    s3 = _client(stack, "s3")
    s3.create_bucket(Bucket="signed-shapes")
    body = os.urandom(3 * 1024 * 1024)
    s3.put_object(Bucket="signed-shapes", Key=ODD_KEY, Body=b"odd")
    assert s3.get_object(Bucket="signed-shapes", Key=ODD_KEY)["Body"].read() == b"odd"
    listed = s3.list_objects_v2(Bucket="signed-shapes", Prefix="dir/with space/",
                                MaxKeys=5)["Contents"]
    assert [o["Key"] for o in listed] == [ODD_KEY]
    # Multipart (?uploads, ?partNumber=&uploadId=) and a copy (x-amz-copy-source).
    s3.upload_fileobj(io.BytesIO(body), "signed-shapes", "big.bin",
                      Config=TransferConfig(multipart_threshold=1024 * 1024,
                                            multipart_chunksize=1024 * 1024))
    s3.copy_object(Bucket="signed-shapes", Key="copy.bin",
                   CopySource={"Bucket": "signed-shapes", "Key": "big.bin"})
    assert s3.get_object(Bucket="signed-shapes", Key="copy.bin")["Body"].read() == body
    s3.delete_objects(Bucket="signed-shapes", Delete={"Objects": [
        {"Key": k} for k in (ODD_KEY, "big.bin", "copy.bin")]})


def test_s3_refuses_a_wrong_secret_an_unknown_key_and_no_signature(stack: LocalStack) -> None:
    _client(stack, "s3").create_bucket(Bucket="signed-refusals")
    wrong = _client(stack, "s3", secret="not-the-secret")
    assert _refused(lambda: wrong.list_objects_v2(Bucket="signed-refusals")) == (
        "SignatureDoesNotMatch", 403)
    stranger = _client(stack, "s3", key="AKIDNOBODYKNOWS")
    assert _refused(lambda: stranger.put_object(Bucket="signed-refusals", Key="k",
                                                Body=b"x")) == ("InvalidAccessKeyId", 403)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{stack.url}/signed-refusals?list-type=2", timeout=10)
    assert e.value.code == 403 and b"<Code>AccessDenied</Code>" in e.value.read()
    assert not _client(stack, "s3").list_objects_v2(Bucket="signed-refusals").get("Contents")


@pytest.mark.parametrize("version, expiry", [("s3v4", "X-Amz-Expires=60"),
                                              ("s3", "Expires=")])
def test_presigned_urls_work_until_tampered_with_or_expired(
        stack: LocalStack, version: str, expiry: str) -> None:
    """botocore presigns S3 URLs with signature version 2 unless told s3v4: both work."""
    s3 = _client(stack, "s3")
    s3.create_bucket(Bucket=f"signed-presigned-{version}")
    s3.put_object(Bucket=f"signed-presigned-{version}", Key=ODD_KEY, Body=b"shared")
    presigner = boto3.client("s3", endpoint_url=stack.url, region_name="us-east-1",
                             aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                             config=Config(signature_version=version,
                                           s3={"addressing_style": "path"}))
    url = presigner.generate_presigned_url(
        "get_object", ExpiresIn=60,
        Params={"Bucket": f"signed-presigned-{version}", "Key": ODD_KEY,
                "ResponseContentType": "application/dicom"})
    assert expiry in url
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.read() == b"shared"
    tampered = url.replace("application%2Fdicom", "text%2Fplain")
    assert tampered != url
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(tampered, timeout=10)
    assert e.value.code == 403 and b"SignatureDoesNotMatch" in e.value.read()
    # Expired: the same URL checked an hour later.
    raw = url[len(stack.url):]
    headers = CIMultiDict(Host=stack.url.split("://", 1)[1])
    assert verify("GET", raw, headers, b"", {KEY: SECRET}, s3=True) == KEY
    later = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(Exception, match="Request has expired"):
        verify("GET", raw, headers, b"", {KEY: SECRET}, s3=True, now=later)


@pytest.mark.parametrize("service, call", [
    ("iam", lambda c: c.list_roles()),
    ("sts", lambda c: c.get_caller_identity()),
    ("cloudformation", lambda c: c.list_stacks()),
])
def test_query_services_pass_signed_and_refuse_the_rest(stack: LocalStack, service: str,
                                                         call: Any) -> None:
    call(_client(stack, service))
    assert _refused(lambda: call(_client(stack, service, secret="nope"))) == (
        "SignatureDoesNotMatch", 403)
    assert _refused(lambda: call(_client(stack, service, key="AKIDNOBODYKNOWS"))) == (
        "InvalidClientTokenId", 403)


def test_json_services_refuse_in_their_own_shape(stack: LocalStack) -> None:
    # SSM speaks JSON: its refusals carry __type and x-amzn-ErrorType, as on AWS.
    ssm = _client(stack, "ssm")
    ssm.put_parameter(Name="/signed/param", Value="v", Type="String", Overwrite=True)
    assert ssm.get_parameter(Name="/signed/param")["Parameter"]["Value"] == "v"
    assert _refused(lambda: _client(stack, "ssm", secret="nope").get_parameter(
        Name="/signed/param")) == ("InvalidSignatureException", 403)
    assert _refused(lambda: _client(stack, "ssm", key="AKIDNOBODYKNOWS").get_parameter(
        Name="/signed/param")) == ("UnrecognizedClientException", 403)


def test_the_aws_cli_signs_s3_requests_the_stack_accepts(stack: LocalStack,
                                                         tmp_path: Path) -> None:
    _client(stack, "s3").create_bucket(Bucket="signed-cli")
    source = tmp_path / "file with space.dcm"
    source.write_bytes(os.urandom(100_000))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    cli = [sys.executable, "-m", "awscli", "--endpoint-url", stack.url, "s3"]
    done = subprocess.run([*cli, "cp", str(source), "s3://signed-cli/a b/"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    listing = subprocess.run([*cli, "ls", "s3://signed-cli/a b/"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and "file with space.dcm" in listing.stdout
    env["AWS_SECRET_ACCESS_KEY"] = "wrong"
    refused = subprocess.run([*cli, "ls", "s3://signed-cli/"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "SignatureDoesNotMatch" in refused.stderr


def _refusals(stack: LocalStack) -> dict[str, int]:
    assert stack.server is not None
    return {op: n for (op, status), n in stack.server.requests.items() if status == 403}


async def test_a_whole_workflow_run_is_signed_correctly_everywhere(
        stack: LocalStack, tmp_path: Path) -> None:
    before = _refusals(stack)
    plan = Plan(tuple(resolve_studies(["ct-chest"])), tmp_path, aws=False,
                region="us-east-1", keep=False, endpoint_url=stack.url)
    outcome = await run_workflow(plan, Settings(pool="thread", decoders=2), lambda _m: None)
    assert outcome.report is not None and outcome.report.ok and outcome.report.cleaned_up
    assert _refusals(stack) == before
