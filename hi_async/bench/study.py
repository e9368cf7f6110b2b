"""The benchmark's study: synthetic series put in S3 and imported with StartDICOMImportJob.

Every mode of one run downloads these same image sets, so their numbers compare. The
frames come from a real import (DICOM P10 → HTJ2K, CRC32 in the metadata), exactly what a
client meets in the service. Import throughput is taken from the job's own timestamps
(``endedAt - submittedAt``), after a tiny warm-up job has started the import workers.
"""

from __future__ import annotations

import gzip
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from hi_async.local.data.synthetic import SeriesSpec, custom_spec, generate_series, instance_name

BUCKET = "hi-async-bench"
ROLE = "arn:aws:iam::123456789012:role/ImportRole"
REGION = "us-east-1"
KEYS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


@dataclass
class Group:
    """Image sets imported by one job, with their frame counts and the job's timing."""

    name: str
    rows: int
    columns: int
    image_sets: list[str] = field(default_factory=list)
    frames: dict[str, int] = field(default_factory=dict)
    import_job: dict[str, Any] = field(default_factory=dict)

    @property
    def total_frames(self) -> int:
        return sum(self.frames[i] for i in self.image_sets)


@dataclass
class Study:
    datastore_id: str
    ct: Group
    mr: Group
    #: A second data store holding the first instances of the CT series again (the same
    #: frames), for configurations too slow to run on the whole series; None if unused.
    prefix_datastore_id: str | None = None
    prefix: Group | None = None

    def to_json(self) -> dict[str, Any]:
        def group(g: Group | None) -> dict[str, Any] | None:
            if g is None:
                return None
            return {"rows": g.rows, "columns": g.columns, "imageSets": len(g.image_sets),
                    "frames": g.total_frames, "importJob": g.import_job}
        return {"datastoreId": self.datastore_id, "ct": group(self.ct), "mr": group(self.mr),
                "ctPrefix": group(self.prefix)}


def clients(url: str) -> tuple[Any, Any]:
    kw: dict[str, Any] = dict(endpoint_url=url, region_name=REGION,
                              config=Config(inject_host_prefix=False,
                                            max_pool_connections=16), **KEYS)
    return boto3.client("s3", **kw), boto3.client("medical-imaging", **kw)


def upload(s3: Any, specs: list[tuple[str, SeriesSpec]]) -> tuple[int, int]:
    """Generate and put every instance of ``specs`` (key prefix, spec); (files, bytes)."""
    def items() -> Any:
        for prefix, spec in specs:
            for name, data in generate_series(spec):
                yield f"{prefix}{spec.folder}/{name}", data

    files = size = 0
    with ThreadPoolExecutor(8) as pool:
        pending = []
        for key, data in items():
            pending.append(pool.submit(s3.put_object, Bucket=BUCKET, Key=key, Body=data))
            files += 1
            size += len(data)
            if len(pending) >= 32:
                pending.pop(0).result()
        for fut in pending:
            fut.result()
    return files, size


def create_datastore(mi: Any, name: str) -> str:
    ds = mi.create_datastore(datastoreName=name)["datastoreId"]
    while mi.get_datastore(datastoreId=ds)["datastoreProperties"]["datastoreStatus"] != "ACTIVE":
        time.sleep(0.05)
    return ds


def run_import(s3: Any, mi: Any, ds: str, prefix: str, instances: int) -> dict[str, Any]:
    """Import ``s3://BUCKET/<prefix>``; the job's timing and its image sets."""
    t0 = time.perf_counter()
    job = mi.start_dicom_import_job(datastoreId=ds, dataAccessRoleArn=ROLE,
                                    inputS3Uri=f"s3://{BUCKET}/{prefix}",
                                    outputS3Uri=f"s3://{BUCKET}/out/")
    while True:
        props = mi.get_dicom_import_job(datastoreId=ds, jobId=job["jobId"])["jobProperties"]
        if props["jobStatus"] in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.02)
    observed = time.perf_counter() - t0
    if props["jobStatus"] != "COMPLETED":
        raise RuntimeError(f"import of {prefix} ended {props['jobStatus']}: "
                           f"{props.get('message')}")
    seconds = (props["endedAt"] - props["submittedAt"]).total_seconds()
    out = props["outputS3Uri"]
    bucket, key = out[len("s3://"):].split("/", 1)
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key.rstrip("/") +
                                        "/job-output-manifest.json")["Body"].read())
    summary = manifest["jobSummary"]
    if summary["numberOfImportedFiles"] != instances:
        raise RuntimeError(f"import of {prefix} imported {summary['numberOfImportedFiles']} "
                           f"of {instances} files; see {out}FAILURE/")
    return {"jobId": job["jobId"], "instances": instances, "seconds": round(seconds, 3),
            "observedSeconds": round(observed, 3),
            "instancesPerSecond": round(instances / seconds, 1) if seconds > 0 else None,
            "imageSets": [s["imageSetId"] for s in summary["imageSetsSummary"]]}


def frame_count(mi: Any, ds: str, image_set_id: str) -> int:
    blob = mi.get_image_set_metadata(datastoreId=ds, imageSetId=image_set_id)
    doc = json.loads(gzip.decompress(blob["imageSetMetadataBlob"].read()))
    return sum(len(i.get("ImageFrames", [])) for s in doc["Study"]["Series"].values()
               for i in s["Instances"].values())


def build(url: str, *, ct_frames: int, mr_sets: int, mr_set_frames: int,
          prefix_frames: int | None) -> Study:
    """Seed and import the study; ``prefix_frames`` also imports a CT prefix elsewhere."""
    s3, mi = clients(url)
    s3.create_bucket(Bucket=BUCKET)
    ct_spec = custom_spec("ct", ct_frames, 512, 512, folder="bench-ct")
    mr_specs = [custom_spec("mr", mr_set_frames, 256, 256, folder=f"bench-mr-{i:02d}")
                for i in range(mr_sets)]
    warm = custom_spec("mr", 2, 64, 64, folder="bench-warm")
    upload(s3, [("warm/", warm), ("ct/", ct_spec)] + [("mr/", s) for s in mr_specs])
    ds = create_datastore(mi, "hi-async-bench")
    run_import(s3, mi, ds, "warm/", warm.instances)  # starts the import workers
    ct, mr = Group("ct", 512, 512), Group("mr", 256, 256)
    for group, prefix, n in ((ct, "ct/", ct_frames), (mr, "mr/", mr_sets * mr_set_frames)):
        job = run_import(s3, mi, ds, prefix, n)
        group.image_sets = sorted(job.pop("imageSets"))
        group.import_job = job
        group.frames = {i: frame_count(mi, ds, i) for i in group.image_sets}
    study = Study(ds, ct, mr)
    if prefix_frames:
        # The same DICOM files (same UIDs and pixels) in a second data store: the same frames.
        keys = [f"ct/{ct_spec.folder}/{instance_name(ct_spec.folder, i)}"
                for i in range(min(prefix_frames, ct_frames))]
        for key in keys:
            s3.copy_object(Bucket=BUCKET, Key="ctprefix/" + key.split("/", 1)[1],
                           CopySource={"Bucket": BUCKET, "Key": key})
        pds = create_datastore(mi, "hi-async-bench-prefix")
        job = run_import(s3, mi, pds, "ctprefix/", len(keys))
        group = Group("ct-prefix", 512, 512, sorted(job.pop("imageSets")), import_job=job)
        group.frames = {i: frame_count(mi, pds, i) for i in group.image_sets}
        study.prefix_datastore_id, study.prefix = pds, group
    return study



def import_series(url: str, kind: str, instances: int, rows: int, columns: int, *,
                  name: str) -> tuple[str, list[str]]:
    """One synthetic series of ``kind`` ("ct" or "mr") imported into a new data store named
    ``name``; (data store ID, image set IDs)."""
    s3, mi = clients(url)
    s3.create_bucket(Bucket=BUCKET)
    spec = custom_spec(kind, instances, rows, columns, folder=f"{name}-series")
    upload(s3, [(f"{name}/", spec)])
    ds = create_datastore(mi, name)
    job = run_import(s3, mi, ds, f"{name}/", instances)
    return ds, sorted(job["imageSets"])


def frame_ids(url: str, datastore_id: str, image_set_id: str) -> list[str]:
    """Every frame ID of the image set, in metadata order."""
    _, mi = clients(url)
    blob = mi.get_image_set_metadata(datastoreId=datastore_id, imageSetId=image_set_id)
    doc = json.loads(gzip.decompress(blob["imageSetMetadataBlob"].read()))
    return [f["ID"] for s in doc["Study"]["Series"].values()
            for i in s["Instances"].values() for f in i.get("ImageFrames", [])]
