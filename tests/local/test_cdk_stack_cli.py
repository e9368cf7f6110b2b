"""The CDK-style template deployed, used and deleted with the AWS CLI, configured the way
the README tells users to run AWS's example: AWS_ENDPOINT_URL and
AWS_DISABLE_HOST_PREFIX_INJECTION, nothing else."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hi_async.local.aws.ssm_bootstrap import BOOTSTRAP_PARAMETER, BOOTSTRAP_VERSION
from tests.local.cdk_template import cdk_template_body
from tests.local.cfn_support import CT_CHEST, unique

AWS = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
pytestmark = pytest.mark.skipif(AWS is None, reason="the AWS CLI (test extra 'awscli') "
                                "is not installed")


def _run(endpoint_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert AWS is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": endpoint_url, "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
                "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": "",
                "AWS_EC2_METADATA_DISABLED": "true"})
    return subprocess.run([AWS, "--output", "json", *args], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


def _aws(endpoint_url: str, *args: str) -> Any:
    proc = _run(endpoint_url, *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def test_cli_sees_the_account_bootstrapped(endpoint_url: str) -> None:
    found = _aws(endpoint_url, "ssm", "get-parameter", "--name", BOOTSTRAP_PARAMETER)
    assert found["Parameter"]["Value"] == BOOTSTRAP_VERSION


def test_cli_deploys_uses_and_deletes_a_cdk_stack(endpoint_url: str, tmp_path: Path) -> None:
    name = unique("cdk-cli")
    template = tmp_path / "template.json"
    template.write_text(cdk_template_body())
    deployed = _run(endpoint_url, "cloudformation", "deploy", "--stack-name", name,
                    "--template-file", str(template), "--capabilities", "CAPABILITY_IAM",
                    "--parameter-overrides", f"DatastoreName={name}")
    assert deployed.returncode == 0, deployed.stderr
    [stack] = _aws(endpoint_url, "cloudformation", "describe-stacks",
                   "--stack-name", name)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    out = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    listed = _aws(endpoint_url, "cloudformation", "list-stack-resources", "--stack-name", name)
    types = {r["ResourceType"] for r in listed["StackResourceSummaries"]}
    assert {"AWS::CDK::Metadata", "Custom::S3AutoDeleteObjects",
            "AWS::HealthImaging::Datastore"} <= types

    copied = _run(endpoint_url, "s3", "cp", "--recursive", f"s3://idc-open-data/{CT_CHEST}/",
                  f"s3://{out['InputBucketName']}/input/")
    assert copied.returncode == 0, copied.stderr
    job = _aws(endpoint_url, "medical-imaging", "start-dicom-import-job",
               "--datastore-id", out["DatastoreId"],
               "--data-access-role-arn", out["ImportRoleArn"],
               "--input-s3-uri", f"s3://{out['InputBucketName']}/input/",
               "--output-s3-uri", f"s3://{out['OutputBucketName']}/output/")
    for _ in range(300):
        props = _aws(endpoint_url, "medical-imaging", "get-dicom-import-job", "--datastore-id",
                     out["DatastoreId"], "--job-id", job["jobId"])["jobProperties"]
        if props["jobStatus"] in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.2)
    assert props["jobStatus"] == "COMPLETED"
    found = _aws(endpoint_url, "medical-imaging", "search-image-sets",
                 "--datastore-id", out["DatastoreId"])
    for summary in found["imageSetsMetadataSummaries"]:
        _aws(endpoint_url, "medical-imaging", "delete-image-set", "--datastore-id",
             out["DatastoreId"], "--image-set-id", summary["imageSetId"])

    _aws(endpoint_url, "cloudformation", "delete-stack", "--stack-name", name)
    waited = _run(endpoint_url, "cloudformation", "wait", "stack-delete-complete",
                  "--stack-name", stack["StackId"])
    assert waited.returncode == 0, waited.stderr
    [gone] = _aws(endpoint_url, "cloudformation", "describe-stacks",
                  "--stack-name", stack["StackId"])["Stacks"]
    assert gone["StackStatus"] == "DELETE_COMPLETE"
    props = _aws(endpoint_url, "medical-imaging", "get-datastore",
                 "--datastore-id", out["DatastoreId"])["datastoreProperties"]
    assert props["datastoreStatus"] == "DELETED"
    buckets = _aws(endpoint_url, "s3api", "list-buckets")["Buckets"]
    assert not [b for b in buckets if b["Name"] in (out["InputBucketName"],
                                                    out["OutputBucketName"])]


def test_cli_create_stack_and_waiters_see_a_non_empty_bucket_fail(endpoint_url: str,
                                                                  tmp_path: Path) -> None:
    name = unique("cdk-cli-full")
    template = tmp_path / "template.json"
    template.write_text(cdk_template_body(auto_delete=False))
    _aws(endpoint_url, "cloudformation", "create-stack", "--stack-name", name,
         "--template-body", f"file://{template}", "--capabilities", "CAPABILITY_IAM",
         "--parameters", f"ParameterKey=DatastoreName,ParameterValue={name}")
    waited = _run(endpoint_url, "cloudformation", "wait", "stack-create-complete",
                  "--stack-name", name)
    assert waited.returncode == 0, waited.stderr
    [stack] = _aws(endpoint_url, "cloudformation", "describe-stacks",
                   "--stack-name", name)["Stacks"]
    bucket = next(o["OutputValue"] for o in stack["Outputs"]
                  if o["OutputKey"] == "InputBucketName")
    source = tmp_path / "note.txt"
    source.write_text("still here\n")
    assert _run(endpoint_url, "s3", "cp", str(source), f"s3://{bucket}/note.txt").returncode == 0

    _aws(endpoint_url, "cloudformation", "delete-stack", "--stack-name", name)
    waited = _run(endpoint_url, "cloudformation", "wait", "stack-delete-complete",
                  "--stack-name", name)
    assert waited.returncode != 0
    assert "DELETE_FAILED" in waited.stderr
    events = _aws(endpoint_url, "cloudformation", "describe-stack-events",
                  "--stack-name", name)["StackEvents"]
    reasons = [e.get("ResourceStatusReason") or "" for e in events
               if e["ResourceStatus"] == "DELETE_FAILED"]
    assert any("BucketNotEmpty" in r for r in reasons)


def test_cli_create_stack_with_a_missing_parameter_gets_the_validation_error(
        endpoint_url: str, tmp_path: Path) -> None:
    template = tmp_path / "template.json"
    template.write_text(cdk_template_body())
    name = unique("cdk-cli-nossm")
    refused = _run(endpoint_url, "cloudformation", "create-stack", "--stack-name", name,
                   "--template-body", f"file://{template}", "--capabilities", "CAPABILITY_IAM",
                   "--parameters", f"ParameterKey=DatastoreName,ParameterValue={name}",
                   "ParameterKey=BootstrapVersion,ParameterValue=/hi-async-test/absent")
    assert refused.returncode != 0
    assert ("An error occurred (ValidationError) when calling the CreateStack operation: "
            "Unable to fetch parameters [/hi-async-test/absent] from parameter store for this "
            "account.") in refused.stderr
