"""Import throughput of the local stack: CT instances (512x512, 16-bit) per second.

Starts the local stack as a child process (client and server do not share a GIL),
uploads a synthetic CT series with boto3, runs one small warm-up job (the worker
processes start on first use), then times StartDICOMImportJob → COMPLETED for the
series and prints one JSON object.

    python -m hi_async.bench.import_throughput [--instances 300]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import boto3
from botocore.config import Config

from hi_async.local.data.synthetic import custom_spec, generate_series
from hi_async.local.stack import LocalStack

ROLE = "arn:aws:iam::123456789012:role/ImportRole"


def _wait(mi: Any, ds_id: str, job_id: str) -> dict[str, Any]:
    while True:
        props = mi.get_dicom_import_job(datastoreId=ds_id, jobId=job_id)["jobProperties"]
        if props["jobStatus"] in ("COMPLETED", "FAILED"):
            return props
        time.sleep(0.02)


def _job(mi: Any, ds_id: str, uri: str) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    job = mi.start_dicom_import_job(datastoreId=ds_id, dataAccessRoleArn=ROLE,
                                    inputS3Uri=uri, outputS3Uri="s3://bench/out/")
    props = _wait(mi, ds_id, job["jobId"])
    return time.perf_counter() - t0, props


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=300)
    args = parser.parse_args()
    with LocalStack(mode="process", datastore_delay=0.0) as stack:
        kw = dict(endpoint_url=stack.url, region_name="us-east-1", aws_access_key_id="t",
                  aws_secret_access_key="t", config=Config(inject_host_prefix=False))
        s3, mi = boto3.client("s3", **kw), boto3.client("medical-imaging", **kw)
        s3.create_bucket(Bucket="bench")
        spec = custom_spec("ct", args.instances, 512, 512, folder="ct")
        size = 0
        for name, data in generate_series(spec):
            s3.put_object(Bucket="bench", Key=f"ct/{name}", Body=data)
            size += len(data)
        warm = custom_spec("ct", 4, 512, 512, folder="warm")
        for name, data in generate_series(warm):
            s3.put_object(Bucket="bench", Key=f"warm/{name}", Body=data)
        ds_id = mi.create_datastore(datastoreName="bench")["datastoreId"]
        while mi.get_datastore(datastoreId=ds_id)["datastoreProperties"][
                "datastoreStatus"] != "ACTIVE":
            time.sleep(0.05)
        _job(mi, ds_id, "s3://bench/warm/")
        seconds, props = _job(mi, ds_id, "s3://bench/ct/")
    print(json.dumps({
        "benchmark": "import_throughput",
        "status": props["jobStatus"],
        "instances": args.instances,
        "rows": 512, "columns": 512, "bitsAllocated": 16,
        "inputMB": round(size / 1e6, 1),
        "seconds": round(seconds, 3),
        "instancesPerSecond": round(args.instances / seconds, 1),
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
