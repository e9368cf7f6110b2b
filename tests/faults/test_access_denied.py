"""Access denied over the wire: a key whose (stand-in) IAM policy refuses an action.

The local stack with ``--verify-signatures`` takes per-key denials from
``HI_ASYNC_LOCAL_CREDENTIALS`` (``AKID:SECRET:deny=OP+OP`` or ``:readonly``) and answers
them 403 AccessDeniedException in IAM's words; the download must stop with hi_async's
AccessDenied advice (exit 2, no traceback) and keep what was verified before.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from hi_async.errors import ConfigurationError
from hi_async.local.serve import CREDENTIALS_ENV, credentials_from_env, format_credentials
from hi_async.local.stack import LocalStack
from tests.local.helpers import Seeded, seed_image_set

from .conftest import cli, leftovers

FULL, NO_FRAMES, NO_METADATA, READER = "AKIDFULLACCESS", "AKIDNOFRAMES", "AKIDNOMETA", "AKIDREAD"
SECRET = "hiAsyncDeniedSecret-Hh8Jj9Kk0"


@pytest.fixture(scope="module")
def policed_stack() -> Iterator[LocalStack]:
    credentials, denied = credentials_from_env(
        f"{FULL}:{SECRET},{NO_FRAMES}:{SECRET}:deny=GetImageFrame,"
        f"{NO_METADATA}:{SECRET}:deny=GetImageSetMetadata+GetImageFrame,{READER}:{SECRET}:readonly")
    with LocalStack(verify_signatures=True, credentials=credentials, denied=denied) as stack:
        yield stack


def _env(key: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


def _download(stack: LocalStack, seeded: Seeded, out: Path, key: str
              ) -> subprocess.CompletedProcess[str]:
    return cli(["download", "--endpoint-url", stack.url, "--datastore-id", seeded.datastore_id,
                "--image-set-id", seeded.image_set_id, "--out", str(out), "--quiet"], _env(key))


def _denied_count(stack: LocalStack, op: str) -> int:
    return stack.stats()["requests"].get(op, {}).get("403", 0)


def test_the_credentials_syntax_parses_denials_and_round_trips() -> None:
    value = "A:s3cr/t+x,B:y:deny=GetImageFrame+GetImageSetMetadata,C:z:readonly,D:w:deny=*"
    secrets, denied = credentials_from_env(value)
    assert secrets == {"A": "s3cr/t+x", "B": "y", "C": "z", "D": "w"}
    assert denied["B"] == {"GetImageFrame", "GetImageSetMetadata"}
    assert "A" not in denied
    assert {"CreateDatastore", "DeleteImageSet", "StartDICOMImportJob"} <= denied["C"]
    assert not {op for op in denied["C"] if op.startswith(("Get", "List", "Search"))}
    assert {"GetImageFrame", "ListDatastores", "CreateDatastore"} <= denied["D"]
    assert credentials_from_env(format_credentials(secrets, denied)) == (secrets, denied)
    assert credentials_from_env(None) == ({"test": "test"}, {})


@pytest.mark.parametrize("value, says", [
    ("A:x:deny=GetImageFrames", "unknown operation(s) GetImageFrames"),
    ("A:x:allow=GetImageFrame", "unknown option"),
    ("A:x:deny=", "unknown option"),
    ("A", "must look like AKID:SECRET"),
])
def test_a_malformed_credentials_variable_is_a_clear_error(value: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=CREDENTIALS_ENV) as err:
        credentials_from_env(value)
    assert says in str(err.value)


def test_local_serve_refuses_a_malformed_denial_without_a_traceback() -> None:
    done = subprocess.run([sys.executable, "-m", "hi_async", "local", "serve", "--port", "0",
                           "--verify-signatures"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, CREDENTIALS_ENV: "K:s:deny=NoSuchOperation"})
    assert done.returncode == 2, done.stderr
    assert "NoSuchOperation" in done.stderr and "Traceback" not in done.stderr


def test_a_denied_action_answers_403_in_iam_words(policed_stack: LocalStack) -> None:
    seeded = seed_image_set(policed_stack.backend(), instances=1)
    client = boto3.client(
        "medical-imaging", endpoint_url=policed_stack.url, region_name="us-east-1",
        aws_access_key_id=NO_FRAMES, aws_secret_access_key=SECRET,
        config=Config(inject_host_prefix=False, retries={"total_max_attempts": 1}))
    client.get_image_set_metadata(datastoreId=seeded.datastore_id,
                                  imageSetId=seeded.image_set_id)  # allowed
    with pytest.raises(ClientError) as err:
        client.get_image_frame(datastoreId=seeded.datastore_id, imageSetId=seeded.image_set_id,
                               imageFrameInformation={"imageFrameId": seeded.frame_ids[0]})
    error = err.value.response["Error"]
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        f"User: arn:aws:iam::123456789012:user/{NO_FRAMES} is not authorized to perform: "
        "medical-imaging:GetImageFrame on resource: arn:aws:medical-imaging:us-east-1:"
        f"123456789012:datastore/{seeded.datastore_id}/imageset/{seeded.image_set_id} "
        "because no identity-based policy allows the medical-imaging:GetImageFrame action")
    assert SECRET not in str(err.value)


def test_a_readonly_key_reads_but_cannot_create(policed_stack: LocalStack) -> None:
    client = boto3.client(
        "medical-imaging", endpoint_url=policed_stack.url, region_name="us-east-1",
        aws_access_key_id=READER, aws_secret_access_key=SECRET,
        config=Config(inject_host_prefix=False, retries={"total_max_attempts": 1}))
    client.list_datastores()
    with pytest.raises(ClientError) as err:
        client.create_datastore(datastoreName="nope")
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "medical-imaging:CreateDatastore on resource: arn:aws:medical-imaging:us-east-1:" \
        "123456789012:*" in err.value.response["Error"]["Message"]


def test_a_wrong_secret_is_still_refused_before_any_denial(policed_stack: LocalStack) -> None:
    client = boto3.client(
        "medical-imaging", endpoint_url=policed_stack.url, region_name="us-east-1",
        aws_access_key_id=NO_FRAMES, aws_secret_access_key="not-the-secret",
        config=Config(inject_host_prefix=False, retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as err:
        client.list_datastores()
    assert err.value.response["Error"]["Code"] == "InvalidSignatureException"


@pytest.mark.parametrize("key, op", [(NO_FRAMES, "GetImageFrame"),
                                     (NO_METADATA, "GetImageSetMetadata")])
def test_a_download_with_a_denied_action_exits_2_and_keeps_what_was_verified(
        policed_stack: LocalStack, tmp_path: Path, key: str, op: str) -> None:
    seeded = seed_image_set(policed_stack.backend(), instances=4)
    out = tmp_path / "out"
    good = _download(policed_stack, seeded, out, FULL)
    assert good.returncode == 0, good.stderr
    first = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    more = seed_image_set(policed_stack.backend(), seeded.datastore_id, instances=3)
    before = _denied_count(policed_stack, op)
    done = _download(policed_stack, more, out, key)
    assert _denied_count(policed_stack, op) > before  # the service did refuse it
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "access denied" in done.stderr
    assert f"medical-imaging:{op}" in done.stderr
    assert "IAM policy must allow" in done.stderr
    assert SECRET not in done.stderr + done.stdout
    # What the first run verified is untouched; the denied run added no frame file.
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for path, data in first.items():
        if path.name not in ("summary.json", "index.jsonl"):
            assert after[path] == data
    assert not (out / more.image_set_id).exists() or not list((out / more.image_set_id).iterdir())
    assert (out / "index.jsonl").read_bytes().startswith(first[out / "index.jsonl"])
    assert '"status":"verified"' in (out / "index.jsonl").read_text()
    assert not leftovers(out)
