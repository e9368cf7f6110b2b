"""The workflow's template passes cfn-lint and asks only for what the import needs."""

from __future__ import annotations

from pathlib import Path

import yaml
from cfnlint.api import ManualArgs, lint_file

from hi_async.workflow.deploy import OUTPUT_KEYS

TEMPLATE = Path(__file__).parents[2] / "hi_async" / "infra" / "stack.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags kept as {"Fn::X": value}."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, object]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: object = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def _template() -> dict:
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)


def test_template_passes_cfn_lint() -> None:
    # Regions where HealthImaging runs, so the resource types are checked against each.
    config = ManualArgs(regions=["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"])
    matches = lint_file(TEMPLATE, config)
    assert matches == [], "\n".join(str(m) for m in matches)


def test_cfn_lint_would_catch_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "stack.yaml"
    broken.write_text(TEMPLATE.read_text().replace("DatastoreName: !Ref DatastoreName",
                                                   "DatastoreNam: !Ref DatastoreName"))
    assert lint_file(broken)


def test_template_declares_the_outputs_the_workflow_reads() -> None:
    assert sorted(_template()["Outputs"]) == sorted(OUTPUT_KEYS)


def test_buckets_are_encrypted_private_and_unnamed() -> None:
    resources = _template()["Resources"]
    buckets = {k: v for k, v in resources.items() if v["Type"] == "AWS::S3::Bucket"}
    assert len(buckets) == 2
    for props in (b["Properties"] for b in buckets.values()):
        assert "BucketName" not in props
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert all(props["PublicAccessBlockConfiguration"].values())
    policies = [v for v in resources.values() if v["Type"] == "AWS::S3::BucketPolicy"]
    assert sorted(p["Properties"]["Bucket"]["Ref"] for p in policies) == sorted(buckets)
    for p in policies:
        [stmt] = p["Properties"]["PolicyDocument"]["Statement"]
        assert stmt["Effect"] == "Deny"
        assert stmt["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_import_role_trusts_only_healthimaging_and_grants_least_privilege() -> None:
    role = _template()["Resources"]["ImportRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "medical-imaging.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    [policy] = role["Policies"]
    actions = sorted(s["Action"] for s in policy["PolicyDocument"]["Statement"])
    assert actions == ["s3:GetObject", "s3:ListBucket", "s3:PutObject"]
    for stmt in policy["PolicyDocument"]["Statement"]:
        assert "*" not in str(stmt["Action"]) and stmt["Resource"] != "*"
