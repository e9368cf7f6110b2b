"""HealthImaging as hi_async uses it: image sets, metadata, frames and import jobs.

One object serves the downloader and the workflow alike, so every call to the service
goes through the same retry policy and the same error translation
(:mod:`hi_async.aws.session`), and polls wait the same way.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from typing import Any

import anyio

from ..errors import JobFailed, JobNotReady, NotFound, ServiceError
from .credentials import CredentialSource, control_plane_url, region_of
from .dataplane import DataPlane, LeanDataPlane, SdkDataPlane
from .s3 import read_json
from .session import AwsSession, poll_delays

#: The file an import job writes to its output folder to list what it did.
MANIFEST = "job-output-manifest.json"

#: Import job statuses that will not change any more.
FINISHED_JOB_STATUSES = ("COMPLETED", "FAILED")


class HealthImaging:
    """``async with HealthImaging(aws, data_plane=True) as hi``.

    With ``data_plane``, frames and metadata are read on the lean data plane (or the SDK's,
    with ``Settings.frame_client="sdk"``); every other call goes through the session's SDK
    client for HealthImaging, created on first use.
    """

    def __init__(self, aws: AwsSession, *, data_plane: bool = False) -> None:
        self.aws = aws
        self._want_data = data_plane
        self._data: DataPlane | None = None
        self._stack = contextlib.AsyncExitStack()
        #: Where the data plane goes and as whom, once open (for worker processes).
        self.endpoint_url: str | None = None
        self.region: str | None = None
        self.credentials: CredentialSource | None = None

    async def __aenter__(self) -> HealthImaging:
        if not self._want_data:
            return self
        s = self.aws.settings
        try:
            if s.frame_client == "lean":
                self.region = region_of(s)
                self.endpoint_url = control_plane_url(s, self.region)
                self.credentials = CredentialSource(s)
                await anyio.to_thread.run_sync(self.credentials.resolve)
                self._data = await self._stack.enter_async_context(LeanDataPlane(
                    s, self.endpoint_url, self.region, self.credentials,
                    s.fetchers + s.metadata_fetchers))
            else:
                self._data = SdkDataPlane(await self.aws.client("mi"), self.aws.settings)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _mi(self) -> Any:
        return await self.aws.client("mi")

    def _plane(self) -> DataPlane:
        assert self._data is not None, "open HealthImaging with data_plane=True"
        return self._data

    # Data plane.

    async def get_frame(self, datastore_id: str, image_set_id: str,
                        frame_id: str) -> tuple[bytes, str | None]:
        """(bytes as stored, Content-Type) of one frame, read whole inside the retry."""
        plane = self._plane()
        return await self.aws.call(
            f"get frame {frame_id} of image set {image_set_id}",
            lambda: plane.get_frame(datastore_id, image_set_id, frame_id))

    async def metadata_blob(self, datastore_id: str, image_set_id: str) -> bytes:
        """The gzip metadata document, read inside the retry (a body cut short is re-sent)."""
        plane = self._plane()
        return await self.aws.call(f"get the metadata of image set {image_set_id}",
                                   lambda: plane.get_metadata(datastore_id, image_set_id))

    async def image_set_ids(self, datastore_id: str) -> AsyncIterator[str]:
        """The ID of every image set of the data store (SearchImageSets, page by page),
        each once, as the service sent it (unchecked)."""
        mi = await self._mi()
        token: str | None = None
        seen: set[object] = set()
        while True:
            kwargs: dict[str, Any] = {"datastoreId": datastore_id, "maxResults": 50}
            if token:
                kwargs["nextToken"] = token
            page = await self.aws.call(f"search the image sets of data store {datastore_id}",
                                       functools.partial(mi.search_image_sets, **kwargs))
            for item in page.get("imageSetsMetadataSummaries", []):
                image_set_id = item.get("imageSetId")
                if image_set_id not in seen:
                    seen.add(image_set_id)
                    yield image_set_id
            token = page.get("nextToken")
            if not token:
                return

    async def delete_image_set(self, datastore_id: str, image_set_id: str) -> None:
        mi = await self._mi()
        await self.aws.call(f"delete image set {image_set_id}", lambda: mi.delete_image_set(
            datastoreId=datastore_id, imageSetId=image_set_id))

    # Control plane: data stores.

    async def datastore_status(self, datastore_id: str) -> str | None:
        """The data store's status, or None when it does not exist."""
        mi = await self._mi()
        try:
            answer = await self.aws.call(f"read data store {datastore_id}",
                                         lambda: mi.get_datastore(datastoreId=datastore_id))
        except NotFound:
            return None
        return str(answer["datastoreProperties"]["datastoreStatus"])

    async def delete_datastore(self, datastore_id: str) -> None:
        mi = await self._mi()
        await self.aws.call(f"delete data store {datastore_id}",
                            lambda: mi.delete_datastore(datastoreId=datastore_id))

    # Control plane: import jobs.

    async def start_import(self, datastore_id: str, role_arn: str, input_uri: str,
                           output_uri: str, job_name: str) -> str:
        """StartDICOMImportJob; returns the job ID."""
        mi = await self._mi()
        answer = await self.aws.call(
            f"start the import of {input_uri}", lambda: mi.start_dicom_import_job(
                jobName=job_name[:64], datastoreId=datastore_id, dataAccessRoleArn=role_arn,
                inputS3Uri=input_uri, outputS3Uri=output_uri))
        return str(answer["jobId"])

    async def import_job(self, datastore_id: str, job_id: str) -> dict[str, Any]:
        """The job's properties (GetDICOMImportJob)."""
        mi = await self._mi()
        answer = await self.aws.call(
            f"get import job {job_id}",
            lambda: mi.get_dicom_import_job(datastoreId=datastore_id, jobId=job_id))
        return dict(answer["jobProperties"])

    async def wait_for_import_job(self, datastore_id: str, job_id: str, *,
                                  give_up_after: float = 3600.0) -> dict[str, Any]:
        """Poll the job until it is COMPLETED or FAILED; its properties then."""
        delays = poll_delays()
        with anyio.fail_after(give_up_after):
            while True:
                props = await self.import_job(datastore_id, job_id)
                if props.get("jobStatus") in FINISHED_JOB_STATUSES:
                    return props
                await anyio.sleep(next(delays))

    async def running_import_jobs(self, datastore_id: str) -> int:
        """How many import jobs of the data store are SUBMITTED or IN_PROGRESS."""
        mi = await self._mi()
        running = 0
        for status in ("SUBMITTED", "IN_PROGRESS"):
            page = await self.aws.call(
                f"list the import jobs of data store {datastore_id}",
                functools.partial(mi.list_dicom_import_jobs, datastoreId=datastore_id,
                                  jobStatus=status))
            running += len(page.get("jobSummaries", []))
        return running

    async def completed_job_output(self, datastore_id: str, job_id: str) -> str:
        """The output folder (ending in ``/``) of a COMPLETED job; a clear error otherwise."""
        props = await self.import_job(datastore_id, job_id)
        status = props.get("jobStatus")
        if status in ("SUBMITTED", "IN_PROGRESS"):
            raise JobNotReady(
                f"import job {job_id} is {status}",
                hint="wait until it is COMPLETED ('aws medical-imaging get-dicom-import-job') "
                "and run again",
            )
        if status == "FAILED":
            reason = props.get("message") or "no reason given"
            raise JobFailed(f"import job {job_id} FAILED: {reason}",
                            hint="look at the job's FAILURE records under its output S3 URI")
        if status != "COMPLETED":
            raise ServiceError(f"import job {job_id} has an unknown status {status!r}")
        uri = str(props["outputS3Uri"])
        return uri if uri.endswith("/") else uri + "/"

    async def job_manifest(self, output_uri: str, *, give_up_after: float) -> dict[str, Any]:
        """The job's ``job-output-manifest.json``, polled for while it does not exist yet
        (it can appear a little after the job is COMPLETED)."""
        uri = (output_uri if output_uri.endswith("/") else output_uri + "/") + MANIFEST
        deadline = anyio.current_time() + give_up_after
        delays = poll_delays()
        while True:
            try:
                return await read_json(self.aws, uri)
            except NotFound:
                delay = next(delays)
                if anyio.current_time() + delay > deadline:
                    raise NotFound(
                        f"the import job's manifest {uri} does not exist",
                        hint="the job may still be writing its output; try again shortly",
                    ) from None
            await anyio.sleep(delay)
