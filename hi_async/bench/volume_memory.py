"""Peak memory of ``download --volume``: the stand-in MR head (192 slices) and a synthetic
CT series of 1000 slices of 512x512 (a 500 MB volume), against frames only.

Starts the local stack as a child process, imports both series through real import jobs,
then runs ``download --format none`` with each variant as a child and samples the
resident memory of its process (the parent, which owns the run and writes the volumes)
and of its whole tree (with its worker processes) every 5 ms. Prints one JSON object.

    python -m hi_async.bench.volume_memory [--instances 1000] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from hi_async.local.data.public_data import PUBLIC_BUCKET
from hi_async.local.data.synthetic import PUBLIC_SERIES, custom_spec, generate_series
from hi_async.local.stack import LocalStack

from .proctree import tree_rss

ROLE = "arn:aws:iam::123456789012:role/ImportRole"
KEYS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
_PAGE = os.sysconf("SC_PAGE_SIZE")
VARIANTS: tuple[list[str], ...] = ([], ["--volume", "npy"], ["--volume", "nifti"], ["--preview"],
            ["--volume", "nifti", "--preview"])


def _import(url: str, instances: int) -> tuple[str, dict[str, str]]:
    """Both series in one data store: (data store ID, series name → image set ID)."""
    kw: dict[str, Any] = dict(endpoint_url=url, region_name="us-east-1",
                              config=Config(inject_host_prefix=False), **KEYS)
    s3, mi = boto3.client("s3", **kw), boto3.client("medical-imaging", **kw)
    s3.create_bucket(Bucket="bench")
    head = PUBLIC_SERIES["mri-head"].folder
    for obj in s3.list_objects_v2(Bucket=PUBLIC_BUCKET, Prefix=f"{head}/")["Contents"]:
        s3.copy_object(CopySource={"Bucket": PUBLIC_BUCKET, "Key": obj["Key"]},
                       Bucket="bench", Key=f"mri-head/{obj['Key']}")
    for name, data in generate_series(custom_spec("ct", instances, 512, 512, folder="ct")):
        s3.put_object(Bucket="bench", Key=f"ct/{name}", Body=data)
    ds = mi.create_datastore(datastoreName="volume-memory")["datastoreId"]
    while mi.get_datastore(datastoreId=ds)["datastoreProperties"]["datastoreStatus"] \
            != "ACTIVE":
        time.sleep(0.1)
    found = {}
    for name, prefix in (("mri-head", "mri-head/"), (f"ct-{instances}", "ct/")):
        job = mi.start_dicom_import_job(datastoreId=ds, dataAccessRoleArn=ROLE,
                                        inputS3Uri=f"s3://bench/{prefix}",
                                        outputS3Uri=f"s3://bench/out-{name}/")["jobId"]
        while (props := mi.get_dicom_import_job(datastoreId=ds, jobId=job)[
                "jobProperties"])["jobStatus"] not in ("COMPLETED", "FAILED"):
            time.sleep(0.2)
        assert props["jobStatus"] == "COMPLETED", props
        bucket, key = props["outputS3Uri"][len("s3://"):].split("/", 1)
        manifest = None
        while manifest is None:  # it may appear just after COMPLETED
            try:
                body = s3.get_object(Bucket=bucket, Key=key + "job-output-manifest.json")
                manifest = json.loads(body["Body"].read())["jobSummary"]
            except s3.exceptions.NoSuchKey:
                time.sleep(0.1)
        (image_set,) = manifest["imageSetsSummary"]
        found[name] = image_set["imageSetId"]
    return ds, found


def _own_rss(pid: int) -> int:
    """Resident bytes of ``pid`` alone (0 once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _measured(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    peaks = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peaks[0] = max(peaks[0], _own_rss(proc.pid))
            peaks[1] = max(peaks[1], tree_rss(proc.pid))
            done.wait(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    _, err = proc.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err}")
    return {"parentPeakMB": round(peaks[0] / 2**20, 1), "treePeakMB": round(peaks[1] / 2**20, 1),
            "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    runs = []
    with LocalStack(mode="process", datastore_delay=0.0) as stack, \
            tempfile.TemporaryDirectory(prefix="hi_async-volume-memory-") as scratch:
        ds, image_sets = _import(stack.url, args.instances)
        for name, image_set_id in image_sets.items():
            for workers in args.workers:
                for extra in VARIANTS:
                    out = tempfile.mkdtemp(dir=scratch)
                    cmd = [sys.executable, "-m", "hi_async", "download", "--endpoint-url",
                           stack.url, "--datastore-id", ds, "--image-set-id", image_set_id,
                           "--out", out, "--format", "none", "--workers", str(workers),
                           "--quiet", *extra]
                    result = {"series": name, "workers": workers,
                              "options": " ".join(extra) or "frames only",
                              **_measured(cmd, env)}
                    print(json.dumps(result), file=sys.stderr, flush=True)
                    runs.append(result)
                    for path in Path(out).rglob("*"):
                        if path.is_file():
                            path.unlink()
    print(json.dumps({"benchmark": "volume_memory", "cpus": os.cpu_count(), "runs": runs},
                     indent=1))


if __name__ == "__main__":
    main()
