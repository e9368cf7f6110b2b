"""The plan: study names, S3 prefixes, names of resources, and the dry-run listing."""

from __future__ import annotations

from pathlib import Path

import pytest

from hi_async.errors import UsageError
from hi_async.workflow.plan import (
    PUBLIC_BUCKET,
    SEED_STUDIES,
    Plan,
    describe,
    resolve_studies,
    template_body,
)


def test_default_study_is_ct_pelvis_from_its_idc_folder() -> None:
    [study] = resolve_studies(None)
    assert study.name == "ct-pelvis"
    assert study.source_uri == f"s3://{PUBLIC_BUCKET}/00025d30-ef8f-4135-a35a-d83eff264fc1/"
    assert study.expected_instances == 57


def test_all_expands_to_the_four_seed_studies_in_order_without_duplicates() -> None:
    studies = resolve_studies(["ct-chest", "all"])
    assert [s.name for s in studies] == ["ct-chest", "ct-pelvis", "mri-head", "mri-breast"]
    assert sum(s.expected_instances or 0 for s in studies) == 2 + 57 + 192 + 92


def test_s3_prefix_study_is_labelled_by_its_last_folder() -> None:
    [study] = resolve_studies(["s3://my-bucket/dicom/case 7"])
    assert (study.name, study.source_bucket, study.source_prefix) == (
        "case-7", "my-bucket", "dicom/case 7/")


@pytest.mark.parametrize("bad", ["ct-knee", "s3://", "s3://UPPER/x/", "gs://b/p/"])
def test_unknown_study_is_a_usage_error_that_lists_the_choices(bad: str) -> None:
    with pytest.raises(UsageError) as info:
        resolve_studies([bad])
    assert "ct-pelvis" in str(info.value)
    assert info.value.exit_code == 2


def test_two_prefixes_with_the_same_label_are_refused() -> None:
    with pytest.raises(UsageError, match="share the output label"):
        resolve_studies(["s3://a-bucket/x/scan/", "s3://b-bucket/y/scan/"])


def test_template_ships_as_package_data_and_matches_the_infra_link() -> None:
    body = template_body()
    assert "AWS::HealthImaging::Datastore" in body
    link = Path(__file__).parents[2] / "infra" / "stack.yaml"
    assert link.is_symlink() and link.read_text(encoding="utf-8") == body


def test_dry_run_lists_every_call_for_each_study_and_the_cleanup(tmp_path: Path) -> None:
    plan = Plan(tuple(resolve_studies(["ct-chest", "ct-pelvis"])), tmp_path, aws=True,
                region="eu-west-1", keep=False, profile="imaging")
    text = "\n".join(describe(plan))
    assert "AWS, region eu-west-1, profile imaging" in text
    assert f"CreateStack StackName={plan.stack_name}" in text
    for study in ("ct-chest", "ct-pelvis"):
        assert f"[{study}] medical-imaging StartDICOMImportJob" in text
    assert "CopyObject x57" in text and "CopyObject x2" in text
    assert "DeleteDatastore" in text and "DeleteStack" in text


def test_dry_run_with_keep_makes_no_cleanup_calls(tmp_path: Path) -> None:
    plan = Plan(tuple(SEED_STUDIES.values()), tmp_path, aws=False, region="us-east-1",
                keep=True)
    text = "\n".join(describe(plan))
    assert "embedded local stack" in text
    assert "DeleteStack" not in text and "--keep" in text
