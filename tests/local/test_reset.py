"""POST /_hi_async/reset forgets HealthImaging and moto state (on a stack of its own)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from hi_async.local.aws.ssm_bootstrap import BOOTSTRAP_PARAMETER, BOOTSTRAP_VERSION
from hi_async.local.stack import LocalStack


def test_reset_forgets_datastores_buckets_and_counts(make_client):
    with LocalStack() as stack:
        mi = make_client("medical-imaging", url=stack.url)
        s3 = make_client("s3", url=stack.url)
        ds = mi.create_datastore(datastoreName="to-forget")["datastoreId"]
        s3.create_bucket(Bucket="reset-me-bucket")
        assert stack.stats()["requests"]["CreateDatastore"] == {"200": 1}
        assert stack.control("reset") == {"reset": True}
        with pytest.raises(ClientError) as e:
            mi.get_datastore(datastoreId=ds)
        assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
        names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert "reset-me-bucket" not in names
        assert "CreateDatastore" not in stack.stats()["requests"]
        assert stack.stats()["publicData"] == "ready"  # the stand-in public bucket is back
        assert "idc-open-data" in names
        # ... and so is the account's CDK bootstrap version.
        ssm = make_client("ssm", url=stack.url)
        assert ssm.get_parameter(Name=BOOTSTRAP_PARAMETER)["Parameter"]["Value"] == \
            BOOTSTRAP_VERSION
