"""A CloudFormation template laid out the way the AWS CDK synthesizes one.

What ``cdk synth`` puts into every template, and what its constructs add, written here
for the tests: logical IDs with an 8-hex-digit hash suffix and ``aws:cdk:path``
metadata; the ``BootstrapVersion`` parameter read from SSM and the rule that checks it;
``CDKMetadata`` under the ``CDKMetadataAvailable`` condition (an ``Fn::Or`` of
``Fn::Equals`` on the region); and, for a bucket with ``autoDeleteObjects: true``, the
``aws-cdk:auto-delete-objects`` tag, a bucket policy for the provider's role, the
provider (a Node.js Lambda function and its role, shared by every such bucket of the
stack) and one ``Custom::S3AutoDeleteObjects`` resource per bucket. The stack itself
holds what the HealthImaging workflow needs: a data store, an input and an output
bucket, and the role the import job assumes.
"""

from __future__ import annotations

import base64
import copy
import json
import zlib
from typing import Any

STACK_PATH = "hi-async-cdk-style-stack"
PROVIDER_ROLE = "CustomS3AutoDeleteObjectsProviderRole5A1E2F0C"
PROVIDER = "CustomS3AutoDeleteObjectsProviderHandler7D3C9B21"
BUCKETS = {"input": "DicomInputBucket3F1A9C2E", "output": "ImportOutputBucket8B42D7A1"}
DATASTORE = "ImagingDatastore4C6E0B9D"
IMPORT_ROLE = "ImportJobRole2E8F5A13"
#: Regions where the CDK reports metadata; the condition is true in these only.
METADATA_REGIONS = (["af-south-1", "ap-east-1", "ap-northeast-1", "ap-south-1",
                     "ap-southeast-1", "ca-central-1", "eu-central-1", "eu-west-1"],
                    ["eu-west-2", "me-south-1", "sa-east-1", "us-east-1", "us-east-2",
                     "us-west-1", "us-west-2"])


def _meta(path: str) -> dict[str, Any]:
    return {"aws:cdk:path": f"{STACK_PATH}/{path}"}


def _arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _bucket(logical_id: str, *, auto_delete: bool, versioned: bool,
            retain: bool) -> dict[str, Any]:
    """A bucket; ``retain`` is the CDK's default removal policy, else DESTROY."""
    props: dict[str, Any] = {}
    if auto_delete:
        props["Tags"] = [{"Key": "aws-cdk:auto-delete-objects", "Value": "true"}]
    if versioned:
        props["VersioningConfiguration"] = {"Status": "Enabled"}
    policy = "Retain" if retain else "Delete"
    return {"Type": "AWS::S3::Bucket", "Properties": props, "UpdateReplacePolicy": policy,
            "DeletionPolicy": policy, "Metadata": _meta(f"{logical_id}/Resource")}


def _auto_delete(bucket: str) -> dict[str, Any]:
    """The bucket policy and custom resource the CDK adds for ``autoDeleteObjects``."""
    policy = f"{bucket}PolicyA0B1C2D3"
    return {
        policy: {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": bucket},
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow",
                    "Action": ["s3:PutBucketPolicy", "s3:GetBucket*", "s3:List*",
                               "s3:DeleteObject*"],
                    "Principal": {"AWS": _arn(PROVIDER_ROLE)},
                    "Resource": [_arn(bucket), {"Fn::Join": ["", [_arn(bucket), "/*"]]}],
                }]},
            },
            "Metadata": _meta(f"{bucket}/Policy/Resource"),
        },
        f"{bucket}AutoDeleteObjectsCustomResourceE4F5A6B7": {
            "Type": "Custom::S3AutoDeleteObjects",
            "Properties": {"ServiceToken": _arn(PROVIDER), "BucketName": {"Ref": bucket}},
            "DependsOn": [policy],
            "UpdateReplacePolicy": "Delete",
            "DeletionPolicy": "Delete",
            "Metadata": _meta(f"{bucket}/AutoDeleteObjectsCustomResource/Default"),
        },
    }


def _provider() -> dict[str, Any]:
    """The provider function and its role (its code never runs on the local stack)."""
    return {
        PROVIDER_ROLE: {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Action": "sts:AssumeRole", "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"}}]},
                "ManagedPolicyArns": [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/"
                                       "service-role/AWSLambdaBasicExecutionRole"}],
            },
            "Metadata": _meta("Custom::S3AutoDeleteObjectsCustomResourceProvider/Role"),
        },
        PROVIDER: {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Code": {"ZipFile": "exports.handler = async (event) => "
                                    "{ throw new Error('not for the local stack'); };"},
                "Timeout": 900, "MemorySize": 128, "Handler": "index.handler",
                "Role": _arn(PROVIDER_ROLE), "Runtime": "nodejs20.x",
                "Description": {"Fn::Join": ["", ["Lambda function for auto-deleting objects "
                                                  "in ", {"Ref": BUCKETS["input"]},
                                                  " S3 bucket."]]},
            },
            "DependsOn": [PROVIDER_ROLE],
            "Metadata": _meta("Custom::S3AutoDeleteObjectsCustomResourceProvider/Handler"),
        },
    }


def cdk_template(*, auto_delete: bool = True, versioned: bool = False, retain: bool = False,
                 extra_resources: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stack's template as a dict (``json.dumps`` it for CreateStack)."""
    resources: dict[str, Any] = {}
    for logical_id in BUCKETS.values():
        resources[logical_id] = _bucket(logical_id, auto_delete=auto_delete,
                                        versioned=versioned, retain=retain)
        if auto_delete:
            resources.update(_auto_delete(logical_id))
    if auto_delete:
        resources.update(_provider())
    resources[DATASTORE] = {
        "Type": "AWS::HealthImaging::Datastore",
        "Properties": {"DatastoreName": {"Ref": "DatastoreName"}},
        "Metadata": _meta("Datastore"),
    }
    bucket_arns = [_arn(b) for b in BUCKETS.values()]
    resources[IMPORT_ROLE] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Action": "sts:AssumeRole", "Effect": "Allow",
                "Principal": {"Service": "medical-imaging.amazonaws.com"},
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                    "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [DATASTORE,
                                                                    "DatastoreArn"]}}},
            }]},
            "Policies": [{"PolicyName": "ImportJobAccess", "PolicyDocument": {
                "Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arns},
                    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                     "Resource": [{"Fn::Join": ["", [a, "/*"]]} for a in bucket_arns]}]}}],
        },
        "Metadata": _meta("ImportJobRole/Resource"),
    }
    resources["CDKMetadata"] = {
        "Type": "AWS::CDK::Metadata",
        "Properties": {"Analytics": "v2:deflate64:" + base64.b64encode(
            zlib.compress(b"hi_async test constructs")).decode()},
        "Metadata": _meta("CDKMetadata/Default"),
        "Condition": "CDKMetadataAvailable",
    }
    resources.update(copy.deepcopy(extra_resources or {}))
    return {
        "Description": "hi_async test stack, laid out as the AWS CDK writes templates",
        "Parameters": {
            "DatastoreName": {"Type": "String", "Description": "Name of the data store."},
            "BootstrapVersion": {
                "Type": "AWS::SSM::Parameter::Value<String>",
                "Default": "/cdk-bootstrap/hnb659fds/version",
                "Description": "Version of the CDK Bootstrap resources in this environment, "
                               "automatically retrieved from SSM Parameter Store. [cdk:skip]"},
        },
        "Resources": resources,
        "Outputs": {
            "DatastoreId": {"Value": {"Fn::GetAtt": [DATASTORE, "DatastoreId"]}},
            "InputBucketName": {"Value": {"Ref": BUCKETS["input"]}},
            "OutputBucketName": {"Value": {"Ref": BUCKETS["output"]}},
            "ImportRoleArn": {"Value": _arn(IMPORT_ROLE)},
        },
        "Conditions": {"CDKMetadataAvailable": {"Fn::Or": [
            {"Fn::Or": [{"Fn::Equals": [{"Ref": "AWS::Region"}, region]} for region in group]}
            for group in METADATA_REGIONS]}},
        "Rules": {"CheckBootstrapVersion": {"Assertions": [{
            "Assert": {"Fn::Not": [{"Fn::Contains": [["1", "2", "3", "4", "5"],
                                                     {"Ref": "BootstrapVersion"}]}]},
            "AssertDescription": "CDK bootstrap stack version 6 required. Please run "
                                 "'cdk bootstrap' with a recent version of the CDK CLI."}]}},
    }


def cdk_template_body(**kwargs: Any) -> str:
    return json.dumps(cdk_template(**kwargs), indent=1)
