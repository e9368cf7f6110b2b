"""The endpoint answers HealthImaging and moto's services, routed by SigV4 scope."""

from __future__ import annotations

import json
import urllib.request

import botocore.session
import pytest

from hi_async.local.healthimaging import wire


def test_health_route_answers_ready(endpoint_url):
    with urllib.request.urlopen(f"{endpoint_url}/_hi_async/health") as resp:
        assert resp.status == 200
        assert json.loads(resp.read())["ready"] is True


def test_every_operation_of_the_model_is_routed():
    model = botocore.session.get_session().get_service_model("medical-imaging")
    routed = {r.name for r in wire.routes()}
    assert routed == set(model.operation_names)
    for name in model.operation_names:
        op = model.operation_model(name)
        path = op.http["requestUri"].split("?")[0]
        for label in ("datastoreId", "imageSetId", "sourceImageSetId", "jobId"):
            path = path.replace("{" + label + "}", "a" * 32)
        path = path.replace("{resourceArn}", "arn%3Aaws%3Amedical-imaging%3Aus-east-1%3A1")
        found = wire.match(op.http["method"], path)
        assert found is not None and found[0].name == name, name


def test_s3_iam_sts_share_the_endpoint(make_client):
    s3 = make_client("s3")
    s3.create_bucket(Bucket="basics-bucket")
    s3.put_object(Bucket="basics-bucket", Key="a dir/x y.txt", Body=b"hello")
    assert s3.get_object(Bucket="basics-bucket", Key="a dir/x y.txt")["Body"].read() == b"hello"
    assert s3.head_object(Bucket="basics-bucket", Key="a dir/x y.txt")["ContentLength"] == 5
    assert make_client("sts").get_caller_identity()["Account"] == "123456789012"
    role = make_client("iam").create_role(RoleName="basics-role",
                                          AssumeRolePolicyDocument="{}")["Role"]
    assert role["Arn"] == "arn:aws:iam::123456789012:role/basics-role"


def test_an_operation_of_a_newer_model_gets_a_clear_error_not_a_crash(
        make_client, monkeypatch):
    # As if botocore's model had gained an operation the emulator does not implement.
    from botocore.exceptions import ClientError

    from hi_async.local import server

    monkeypatch.setattr(server, "HANDLERS", {k: v for k, v in server.HANDLERS.items()
                                             if k != "ListDatastores"})
    with pytest.raises(ClientError) as err:
        make_client("medical-imaging").list_datastores()
    assert err.value.response["Error"]["Code"] == "UnknownOperationException"
    assert "does not implement ListDatastores" in err.value.response["Error"]["Message"]
