"""moto's S3 (multipart, presigned), IAM, STS and CloudFormation on the same endpoint."""

from __future__ import annotations

import json
import time
import urllib.request


def test_s3_multipart_upload_round_trips(s3):
    s3.create_bucket(Bucket="multipart-bucket")
    part = b"x" * (5 * 1024 * 1024)
    up = s3.create_multipart_upload(Bucket="multipart-bucket", Key="big.bin")
    parts = []
    for n, body in enumerate((part, b"tail"), start=1):
        etag = s3.upload_part(Bucket="multipart-bucket", Key="big.bin", PartNumber=n,
                              UploadId=up["UploadId"], Body=body)["ETag"]
        parts.append({"PartNumber": n, "ETag": etag})
    s3.complete_multipart_upload(Bucket="multipart-bucket", Key="big.bin",
                                 UploadId=up["UploadId"], MultipartUpload={"Parts": parts})
    got = s3.get_object(Bucket="multipart-bucket", Key="big.bin")["Body"].read()
    assert len(got) == len(part) + 4 and got.endswith(b"tail")
    listed = s3.list_objects_v2(Bucket="multipart-bucket", Prefix="big")["Contents"]
    assert [o["Key"] for o in listed] == ["big.bin"]


def test_presigned_s3_url_is_routed_to_moto(s3):
    s3.create_bucket(Bucket="presigned-bucket")
    s3.put_object(Bucket="presigned-bucket", Key="k.txt", Body=b"signed")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "presigned-bucket",
                                                          "Key": "k.txt"})
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"signed"


async def test_s3_through_aioboto3(aio_s3):
    await aio_s3.create_bucket(Bucket="aio-s3-bucket")
    await aio_s3.put_object(Bucket="aio-s3-bucket", Key="a/b.dcm", Body=b"DICM")
    out = await aio_s3.get_object(Bucket="aio-s3-bucket", Key="a/b.dcm")
    async with out["Body"] as body:
        assert await body.read() == b"DICM"


def test_cloudformation_deploys_a_stack(make_client):
    cfn, s3 = make_client("cloudformation"), make_client("s3")
    template = {"Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "cfn-made-bucket"}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}}}},
        "Outputs": {"RoleArn": {"Value": {"Fn::GetAtt": ["Role", "Arn"]}}}}
    cfn.create_stack(StackName="moto-services", TemplateBody=json.dumps(template),
                     Capabilities=["CAPABILITY_IAM"])
    for _ in range(100):
        stack = cfn.describe_stacks(StackName="moto-services")["Stacks"][0]
        if stack["StackStatus"].endswith("COMPLETE"):
            break
        time.sleep(0.05)
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert stack["Outputs"][0]["OutputValue"].startswith("arn:aws:iam::123456789012:role/")
    assert "cfn-made-bucket" in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    cfn.delete_stack(StackName="moto-services")
