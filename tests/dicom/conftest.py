"""One import of every source file through the local stack, exported in both syntaxes.

The files go in with real clients (S3 PutObject, StartDICOMImportJob) and come back out
through :func:`hi_async.dicom.export_image_set` (GetImageSetMetadata, GetImageFrame), once
per test session; the round-trip tests then read what was written. Files that share a
series (pydicom ships one MR slice in six transfer syntaxes) go to different data stores,
so that each image set holds what one file brought.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
import pytest

from hi_async.aws.healthimaging import HealthImaging
from hi_async.aws.session import AwsSession
from hi_async.dicom import SYNTAXES, ExportSummary, export_image_set
from hi_async.settings import Settings

from . import sources

ROLE = "arn:aws:iam::123456789012:role/ImportRole"


@dataclass(frozen=True)
class Source:
    name: str
    data: bytes
    what: str

    def dataset(self) -> pydicom.Dataset:
        import io

        return pydicom.dcmread(io.BytesIO(self.data))


@dataclass
class RoundTrip:
    """The sources by name, the data store each went to, and where the exports are."""

    sources: dict[str, Source]
    store_of: dict[str, str]
    out: dict[str, Path]
    image_sets: list[tuple[str, str]] = field(default_factory=list)  # (datastore, image set)
    summaries: dict[str, list[ExportSummary]] = field(default_factory=dict)
    ct_image_set: tuple[str, str] | None = None

    def exported(self, syntax: str, name: str) -> Path:
        """The file exported from source ``name`` (found in its data store's image sets)."""
        ds = self.sources[name].dataset()
        store = self.store_of[name]
        found = [path for s, image_set in self.image_sets if s == store
                 for path in [self.out[syntax] / image_set / str(ds.SeriesInstanceUID) /
                              f"{ds.SOPInstanceUID}.dcm"] if path.exists()]
        assert len(found) == 1, f"{name}: {found}"
        return found[0]

    def source(self, name: str) -> Source:
        return self.sources[name]


def all_sources(ct_instances: int = 12) -> list[Source]:
    out = [Source(name, sources.pydicom_file(name), what)
           for name, what in sources.PYDICOM_FILES.items()]
    out += [Source("private-sequences.dcm", sources.private_sequences(),
                   "private elements and private sequences"),
            Source("htj2k.dcm", sources.htj2k_file(), "HTJ2K (.203), 2 frames, as imported"),
            Source("jpegxl.dcm", sources.jpeg_xl_file(), "JPEG XL (.112), as imported")]
    out += [Source(name, data, "synthetic CT series")
            for name, data in sources.ct_series(ct_instances)]
    return out


def _stores(items: list[Source]) -> list[list[Source]]:
    """Sources spread over data stores so that no two in one store share a series."""
    stores: list[list[Source]] = []
    seen: list[set[str]] = []
    for item in items:
        series = str(item.dataset().SeriesInstanceUID)
        if series.startswith(str(items[-1].dataset().SeriesInstanceUID)):
            index = 0  # the CT series' instances belong together
        else:
            index = next((i for i, s in enumerate(seen) if series not in s), len(seen))
        if index == len(stores):
            stores.append([])
            seen.append(set())
        stores[index].append(item)
        seen[index].add(series)
    return stores


def wait_for(check: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = check()
        if answer:
            return answer
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def import_sources(s3: Any, mi: Any, groups: list[list[Source]],
                   ) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Each group into a data store of its own: (data store, image set) of every image
    set, and the data store of each source by name."""
    bucket = f"dicom-rt-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    jobs = []
    store_of: dict[str, str] = {}
    for index, group in enumerate(groups):
        store = mi.create_datastore(datastoreName=f"dicom-roundtrip-{index}")["datastoreId"]
        for item in group:
            s3.put_object(Bucket=bucket, Key=f"in{index}/{item.name}", Body=item.data)
            store_of[item.name] = store
        jobs.append((store, len(group), index))
    image_sets: list[tuple[str, str]] = []
    started = []
    for store, count, index in jobs:
        wait_for(lambda s=store: mi.get_datastore(datastoreId=s)["datastoreProperties"][
            "datastoreStatus"] == "ACTIVE", f"data store {store} ACTIVE")
        job = mi.start_dicom_import_job(datastoreId=store, dataAccessRoleArn=ROLE,
                                        inputS3Uri=f"s3://{bucket}/in{index}/",
                                        outputS3Uri=f"s3://{bucket}/out{index}/")
        started.append((store, job["jobId"], count))
    for store, job_id, count in started:
        props = wait_for(lambda s=store, j=job_id: _finished(mi, s, j), f"import job {job_id}")
        assert props["jobStatus"] == "COMPLETED", props
        manifest = _manifest(s3, props["outputS3Uri"])
        assert manifest["numberOfImportedFiles"] == count, _failures(s3, props["outputS3Uri"])
        image_sets += [(store, s["imageSetId"]) for s in manifest["imageSetsSummary"]]
    return image_sets, store_of


def _finished(mi: Any, store: str, job_id: str) -> dict[str, Any] | None:
    props = mi.get_dicom_import_job(datastoreId=store, jobId=job_id)["jobProperties"]
    return props if props["jobStatus"] in ("COMPLETED", "FAILED") else None


def _read(s3: Any, uri: str) -> bytes:
    bucket, _, key = uri[len("s3://"):].partition("/")

    def get() -> bytes | None:
        try:
            return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    return bytes(wait_for(get, f"{uri} to appear"))


def _manifest(s3: Any, output_uri: str) -> dict[str, Any]:
    import json

    return dict(json.loads(_read(s3, output_uri + "job-output-manifest.json"))["jobSummary"])


def _failures(s3: Any, output_uri: str) -> str:
    return _read(s3, output_uri + "FAILURE/failure.ndjson").decode()


def stack_settings(endpoint_url: str) -> Settings:
    return Settings(endpoint_url=endpoint_url, region="us-east-1", access_key_id="test",
                    secret_access_key="test", fetchers=8, backoff_base=0.01,
                    backoff_cap=0.05)


@pytest.fixture(scope="session")
async def round_trip(endpoint_url: str, make_client: Callable[..., Any],
                     tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RoundTrip]:
    items = all_sources()
    s3, mi = make_client("s3"), make_client("medical-imaging")
    image_sets, store_of = import_sources(s3, mi, _stores(items))
    base = tmp_path_factory.mktemp("dicom-export")
    trip = RoundTrip({s.name: s for s in items}, store_of,
                     {syntax: base / syntax for syntax in SYNTAXES}, image_sets)
    ct_series = str(items[-1].dataset().SeriesInstanceUID)
    async with AwsSession(stack_settings(endpoint_url)) as aws, \
            HealthImaging(aws, data_plane=True) as hi:
        for syntax in SYNTAXES:
            trip.summaries[syntax] = []
            for store, image_set in image_sets:
                summary = await export_image_set(hi, store, image_set, trip.out[syntax],
                                                 syntax)
                trip.summaries[syntax].append(summary)
                if any(ct_series in str(w.path) for w in summary.written):
                    trip.ct_image_set = (store, image_set)
    yield trip
    for store in {s for s, _ in image_sets}:
        delete_datastore(mi, store, [i for s, i in image_sets if s == store])


def delete_datastore(mi: Any, store: str, image_set_ids: list[str]) -> None:
    """Image sets first, then the data store: the session stack is shared, and tests that
    list ACTIVE data stores should not see these."""
    for image_set in image_set_ids:
        mi.delete_image_set(datastoreId=store, imageSetId=image_set)
    for image_set in image_set_ids:
        wait_for(lambda i=image_set: mi.get_image_set(datastoreId=store, imageSetId=i)[
            "imageSetState"] == "DELETED", f"image set {image_set} deleted")
    mi.delete_datastore(datastoreId=store)
