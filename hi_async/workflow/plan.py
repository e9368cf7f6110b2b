"""What a run will do, decided before any API call: studies, names, and the calls to make.

Kept free of I/O so that ``--dry-run`` can print it without credentials or a stack, and so
that a real run and its dry run agree by construction.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import UsageError

#: The public bucket Imaging Data Commons mirrors its DICOM files in (one folder per series).
PUBLIC_BUCKET = "idc-open-data"


@dataclass(frozen=True, slots=True)
class Study:
    """One study to run: where its DICOM files are, and the label its output goes under."""

    name: str
    source_bucket: str
    source_prefix: str  # ends with "/"
    description: str = ""
    expected_instances: int | None = None

    @property
    def source_uri(self) -> str:
        return f"s3://{self.source_bucket}/{self.source_prefix}"


#: The four series AWS's HealthImaging example offers, as IDC folders.
SEED_STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study("ct-chest", PUBLIC_BUCKET, "00029d25-fb18-4d42-aaa5-a0897d1ac8f7/",
              "CT of chest", 2),
        Study("ct-pelvis", PUBLIC_BUCKET, "00025d30-ef8f-4135-a35a-d83eff264fc1/",
              "CT of pelvis", 57),
        Study("mri-head", PUBLIC_BUCKET, "0002d261-8a5d-4e63-8e2e-0cbfac87b904/",
              "MRI of head", 192),
        Study("mri-breast", PUBLIC_BUCKET, "0002dd07-0b7f-4a68-a655-44461ca34096/",
              "MRI of breast", 92),
    )
}
DEFAULT_STUDY = "ct-pelvis"

_S3_URI = re.compile(r"^s3://([a-z0-9][.\-a-z0-9]{1,61}[a-z0-9])/(.*)$")


def _study_from_uri(uri: str) -> Study:
    match = _S3_URI.match(uri)
    if match is None:
        raise UsageError(
            f"--study {uri!r} is neither a seed study nor an s3://bucket/prefix/ URI",
            hint=f"use one of {', '.join(SEED_STUDIES)}, all, or s3://bucket/prefix/",
        )
    bucket, prefix = match.groups()
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    label = re.sub(r"[^A-Za-z0-9._-]+", "-", prefix.strip("/").rsplit("/", 1)[-1]) or bucket
    return Study(label, bucket, prefix, f"DICOM files under {uri}")


def resolve_studies(names: list[str] | None) -> list[Study]:
    """Turn ``--study`` values into studies, in order, without duplicates."""
    chosen: list[Study] = []
    for name in names or [DEFAULT_STUDY]:
        if name == "all":
            new = list(SEED_STUDIES.values())
        elif name in SEED_STUDIES:
            new = [SEED_STUDIES[name]]
        elif name.startswith("s3://"):
            new = [_study_from_uri(name)]
        else:
            raise UsageError(
                f"unknown study {name!r}",
                hint=f"use one of {', '.join(SEED_STUDIES)}, all, or s3://bucket/prefix/",
            )
        for study in new:
            if study.name in {s.name for s in chosen}:
                if study not in chosen:
                    raise UsageError(f"two studies would share the output label {study.name!r}",
                                     hint="give each S3 prefix a distinct last folder name")
                continue
            chosen.append(study)
    return chosen


def template_body() -> str:
    """The CloudFormation template shipped as package data (infra/stack.yaml links to it)."""
    return resources.files("hi_async").joinpath("infra/stack.yaml").read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything a run needs to know before it starts."""

    studies: tuple[Study, ...]
    out_dir: Path
    aws: bool
    region: str
    keep: bool
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    profile: str | None = None
    endpoint_url: str | None = None

    @property
    def stack_name(self) -> str:
        return f"hi-async-{self.run_id}"

    @property
    def datastore_name(self) -> str:
        return f"hi-async-{self.run_id}"

    def input_uri(self, bucket: str, study: Study) -> str:
        return f"s3://{bucket}/{study.name}/"

    def output_uri(self, bucket: str, study: Study) -> str:
        return f"s3://{bucket}/{study.name}/"


def describe(plan: Plan) -> list[str]:
    """The plan and every API call a run makes, in order, as lines for ``--dry-run``."""
    where = (
        f"AWS, region {plan.region}" + (f", profile {plan.profile}" if plan.profile else "")
        if plan.aws
        else (f"the local stack at {plan.endpoint_url}" if plan.endpoint_url
              else "the embedded local stack (started for this run)")
    )
    lines = [
        f"Plan for run {plan.run_id} on {where}:",
        f"  output folder: {plan.out_dir}",
        f"  stack: {plan.stack_name} (template infra/stack.yaml)",
    ]
    for s in plan.studies:
        count = f"{s.expected_instances} instances" if s.expected_instances else "all files"
        lines.append(f"  study {s.name}: {s.description} — {s.source_uri} ({count})")
    lines += [
        "",
        "API calls:",
        f"  cloudformation CreateStack StackName={plan.stack_name} "
        f"Parameters=[DatastoreName={plan.datastore_name}] Capabilities=[CAPABILITY_IAM]",
        "  cloudformation DescribeStacks (poll until CREATE_COMPLETE; read Outputs "
        "DatastoreId, DatastoreArn, InputBucketName, OutputBucketName, ImportRoleArn)",
    ]
    for s in plan.studies:
        n = s.expected_instances or "N"
        lines += [
            f"  [{s.name}] s3 ListObjectsV2 Bucket={s.source_bucket} Prefix={s.source_prefix}",
            f"  [{s.name}] s3 CopyObject x{n} {s.source_uri}* -> "
            f"s3://<InputBucketName>/{s.name}/ (UploadPartCopy for objects over 5 GiB)",
            f"  [{s.name}] medical-imaging StartDICOMImportJob DatastoreId=<DatastoreId> "
            f"InputS3Uri=s3://<InputBucketName>/{s.name}/ "
            f"OutputS3Uri=s3://<OutputBucketName>/{s.name}/ DataAccessRoleArn=<ImportRoleArn>",
            f"  [{s.name}] medical-imaging GetDICOMImportJob (poll with backoff until COMPLETED)",
            f"  [{s.name}] s3 GetObject job-output-manifest.json and FAILURE/failure.ndjson",
            f"  [{s.name}] medical-imaging GetImageSetMetadata per image set, "
            "GetImageFrame per frame (decode, CRC32 verify)",
        ]
    if plan.keep:
        lines.append("  (--keep: no clean-up calls; resources stay until `cleanup`)")
    else:
        lines += [
            "  medical-imaging SearchImageSets, DeleteImageSet per image set",
            "  medical-imaging DeleteDatastore, GetDatastore (poll until DELETED)",
            "  s3 ListObjectsV2 + DeleteObjects on both buckets (empty them)",
            f"  cloudformation DeleteStack StackName={plan.stack_name}, DescribeStacks "
            "(poll until DELETE_COMPLETE)",
        ]
    return lines
