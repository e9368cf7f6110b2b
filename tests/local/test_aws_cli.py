"""The AWS CLI against the local stack, as the README tells a new user to use it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

AWS = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
pytestmark = pytest.mark.skipif(AWS is None, reason="the AWS CLI (test extra 'awscli') "
                                "is not installed")


def _aws(endpoint_url: str, *args: str, parse: bool = True) -> Any:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
           "AWS_PAGER": "", "AWS_EC2_METADATA_DISABLED": "true"}
    proc = subprocess.run([AWS, "--endpoint-url", endpoint_url, "--output", "json", *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if parse and proc.stdout.strip() else proc.stdout


def test_aws_cli_control_and_data_plane_operations(endpoint_url: str, backend: Any) -> None:
    from tests.local.helpers import seed_image_set

    created = _aws(endpoint_url, "medical-imaging", "create-datastore",
                   "--datastore-name", "from-the-cli")
    ds = created["datastoreId"]
    listed = _aws(endpoint_url, "medical-imaging", "list-datastores")
    assert ds in [d["datastoreId"] for d in listed["datastoreSummaries"]]

    seeded = seed_image_set(backend, instances=2)
    found = _aws(endpoint_url, "medical-imaging", "search-image-sets",
                 "--datastore-id", seeded.datastore_id)
    assert [s["imageSetId"] for s in found["imageSetsMetadataSummaries"]] == [
        seeded.image_set_id]
    got = _aws(endpoint_url, "medical-imaging", "get-image-set", "--datastore-id",
               seeded.datastore_id, "--image-set-id", seeded.image_set_id)
    assert got["imageSetState"] == "ACTIVE"


def test_aws_cli_s3_through_the_same_endpoint(endpoint_url: str, tmp_path: Path) -> None:
    source = tmp_path / "hello.txt"
    source.write_text("hello from the local stack\n")
    _aws(endpoint_url, "s3", "mb", "s3://cli-bucket-test", parse=False)
    _aws(endpoint_url, "s3", "cp", str(source), "s3://cli-bucket-test/hello.txt", parse=False)
    back = tmp_path / "back.txt"
    _aws(endpoint_url, "s3", "cp", "s3://cli-bucket-test/hello.txt", str(back), parse=False)
    assert back.read_text() == source.read_text()
