"""Runs StartDICOMImportJob jobs for real: S3 in, parsed instances into the backend, S3 out.

The server owns one :class:`ImportRunner` and awaits ``runner.run(job)`` in a task per
job. A job lists its input prefix in moto's S3 (nested folders included), reads each
object in a thread, converts it in a process pool sized to the machine (pydicom parsing
and HTJ2K encoding never touch the event loop, so GetImageFrame keeps being served),
hands the parsed instances to the backend in batches, and writes the job output folder
the service writes: ``job-output-manifest.json``, ``SUCCESS/success.ndjson``,
``FAILURE/failure.ndjson`` and ``WARNING/warning.ndjson``.

A file imported despite a non-conformance (see ``import_warnings.py``) is an imported
file like any other: it has a SUCCESS record and counts in ``numberOfImportedFiles`` and
its image set's ``numberOfMatchedSOPInstances``. It also gets a WARNING record, shaped as
in AWS's "Understanding import jobs" example: the success record's ``importResponse``
plus ``imageSetVersion`` and ``warnings: [{warning_reason_code, type, message}]``.

Each file is converted under the import limits (:mod:`.limits`): sizes read from
headers are checked before anything is decoded, and every worker's memory is capped.
A worker that dies (out of memory in native code, killed) breaks the whole pool, and
every file the pool held with it; each of those files is then converted again alone, in
a one-worker pool of its own, so that only a file that kills that worker too gets a
FAILURE record and the others are imported as if nothing had happened.

Job-level errors (input bucket or prefix missing or empty, output bucket missing, more
than 5000 files, more than 10 GB) end the job FAILED with a message; a file that cannot
be imported only adds a FAILURE record.

Each batch handed to the backend becomes one version of the image sets it touches, so
a job up to ``batch_instances`` files (or ``batch_bytes`` of encoded frames) yields one
version per image set, as the service does; larger jobs yield a few.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from ..aws.s3_access import MotoS3, S3Object, split_s3_uri
from ..healthimaging.records import ImportWarning, ParsedInstance
from .convert import ConvertFailure, convert_p10, out_of_memory, start_worker
from .limits import (
    IMPORT_MAX_BYTES,
    MAX_FILES,
    MAX_FRAME_BYTES,
    MAX_INSTANCE_BYTES,
    ImportLimits,
    default_worker_memory,
    describe_bytes,
)
from .transcode import STORAGE_HTJ2K


class JobLike(Protocol):
    datastore_id: str
    job_id: str
    input_s3_uri: str
    output_s3_uri: str


class JobFailure(Exception):
    """A job-level error: the job ends FAILED with this message."""


@dataclass
class _Outcome:
    successes: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    customer_errors: int = 0
    server_errors: int = 0
    #: image set ID → [version, isPrimary, number of instances]
    image_sets: dict[str, list[Any]] = field(default_factory=dict)


def output_folder(job: JobLike) -> str:
    """``<outputS3Uri>/<datastoreId>-DicomImport-<jobId>/`` (what GetDICOMImportJob reports)."""
    base = job.output_s3_uri if job.output_s3_uri.endswith("/") else job.output_s3_uri + "/"
    return f"{base}{job.datastore_id}-DicomImport-{job.job_id}/"


class ImportRunner:
    """Turns import jobs into image sets; one per server, shared by all jobs."""

    def __init__(self, backend: Any, *, workers: int | None = None, s3: MotoS3 | None = None,
                 batch_instances: int = 1000, batch_bytes: int = 512 * 1024**2,
                 max_bytes: int = IMPORT_MAX_BYTES, max_frame_bytes: int = MAX_FRAME_BYTES,
                 max_instance_bytes: int = MAX_INSTANCE_BYTES,
                 worker_memory: int | None = None) -> None:
        """``worker_memory``: bytes each worker may add to its start-up size; None for an
        equal share of the machine's memory (:func:`.limits.default_worker_memory`), 0
        for no cap."""
        self._backend = backend
        self._max_bytes = max_bytes
        self._s3 = s3 or MotoS3(getattr(backend, "account_id", None))
        self._workers = workers or max(1, os.cpu_count() or 1)
        if worker_memory is None:
            worker_memory = default_worker_memory(self._workers)
        self._limits = ImportLimits(max_frame_bytes, max_instance_bytes, worker_memory or None)
        self._pool: ProcessPoolExecutor | None = None
        #: The one-worker pool files get a second chance in, one at a time.
        self._alone: ProcessPoolExecutor | None = None
        self._alone_lock = anyio.Lock()
        self._batch_instances = batch_instances
        self._batch_bytes = batch_bytes

    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        # spawn: the server process has threads (moto, aiohttp) that fork would copy in
        # whatever state they were in. Each worker caps its memory as it starts.
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=start_worker,
                                   initargs=(self._limits.worker_memory,))

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = self._new_pool(self._workers)
        return self._pool

    def close(self) -> None:
        """Stop the worker processes (queued conversions are dropped; one under way ends
        first, without holding up the caller)."""
        for pool in (self._pool, self._alone):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._alone = None

    async def run(self, job: JobLike) -> None:
        """Run one job to COMPLETED or FAILED; cancellation marks it FAILED."""
        ds_id, job_id = job.datastore_id, job.job_id
        await anyio.to_thread.run_sync(self._backend.mark_job_in_progress, ds_id, job_id)
        try:
            outcome = await self._import(job)
            await anyio.to_thread.run_sync(self._write_output, job, outcome)
        except JobFailure as exc:
            await anyio.to_thread.run_sync(self._backend.finish_job, ds_id, job_id, "FAILED",
                                           str(exc))
            return
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(
                    self._backend.finish_job, ds_id, job_id, "FAILED",
                    "the local stack stopped while the job was running; start it again")
            raise
        except Exception as exc:
            await anyio.to_thread.run_sync(
                self._backend.finish_job, ds_id, job_id, "FAILED",
                f"internal error while importing: {type(exc).__name__}: {exc}")
            raise
        await anyio.to_thread.run_sync(self._backend.finish_job, ds_id, job_id, "COMPLETED",
                                       None)

    # -- the job ------------------------------------------------------------------------
    async def _import(self, job: JobLike) -> _Outcome:
        objects = await anyio.to_thread.run_sync(self._inputs, job)
        datastore = await anyio.to_thread.run_sync(self._backend.get_datastore,
                                                   job.datastore_id)
        storage_format = getattr(datastore, "lossless_storage_format", STORAGE_HTJ2K)
        outcome = _Outcome()
        send, receive = anyio.create_memory_object_stream[ParsedInstance | ConvertFailure](
            max_buffer_size=self._workers * 2)
        work_send, work_receive = anyio.create_memory_object_stream[S3Object](
            max_buffer_size=self._workers * 2)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._feed, objects, work_send)
            async with send:
                for _ in range(self._workers * 2):
                    tg.start_soon(self._convert_worker, work_receive.clone(), send.clone(),
                                  storage_format)
            work_receive.close()
            await self._collect(job, receive, outcome)
        return outcome

    def _inputs(self, job: JobLike) -> list[S3Object]:
        in_bucket, in_prefix = split_s3_uri(job.input_s3_uri)
        out_bucket, _ = split_s3_uri(job.output_s3_uri)
        if not self._s3.bucket_exists(in_bucket):
            raise JobFailure(f"input bucket {in_bucket} does not exist or cannot be read "
                             f"with the data access role; check inputS3Uri {job.input_s3_uri}")
        if not self._s3.bucket_exists(out_bucket):
            raise JobFailure(f"output bucket {out_bucket} does not exist; create it or fix "
                             f"outputS3Uri {job.output_s3_uri}")
        if in_prefix and not in_prefix.endswith("/"):
            in_prefix += "/"
        objects = [o for o in self._s3.list(in_bucket, in_prefix) if not o.key.endswith("/")]
        if not objects:
            raise JobFailure(f"no files under {job.input_s3_uri}; upload DICOM files there "
                             "first")
        if len(objects) > MAX_FILES:
            raise JobFailure(f"{len(objects)} files under {job.input_s3_uri}; an import job "
                             f"takes at most {MAX_FILES}: split the input into several jobs")
        total = sum(o.size for o in objects)
        if total > self._max_bytes:
            raise JobFailure(f"{total / 1024**3:.3g} GB under {job.input_s3_uri}; an import "
                             f"job takes at most {self._max_bytes / 1024**3:.3g} GB: split "
                             "the input into several jobs")
        return objects

    async def _feed(self, objects: Sequence[S3Object],
                    send: ObjectSendStream[S3Object]) -> None:
        async with send:
            for obj in objects:
                await send.send(obj)

    async def _convert_worker(self, receive: ObjectReceiveStream[S3Object],
                              send: ObjectSendStream[ParsedInstance | ConvertFailure],
                              storage_format: str) -> None:
        loop = asyncio.get_running_loop()
        pool = self._executor()
        async with receive, send:
            async for obj in receive:
                uri = f"s3://{obj.bucket}/{obj.key}"
                try:
                    data = await anyio.to_thread.run_sync(self._s3.read, obj.bucket, obj.key)
                except Exception as exc:
                    await send.send(ConvertFailure(uri, "InternalServerException",
                                                   f"the file could not be read: {exc}"))
                    continue
                try:
                    result = await loop.run_in_executor(pool, convert_p10, uri, data,
                                                        storage_format, self._limits)
                except BrokenProcessPool:
                    # A worker died and took every file of the pool with it: the job goes
                    # on with a fresh pool, and this file gets a second chance alone.
                    if self._pool is pool:
                        self._pool = None
                        pool.shutdown(wait=False, cancel_futures=True)
                    pool = self._executor()
                    result = await self._convert_alone(uri, data, storage_format)
                except Exception as exc:  # e.g. the result too big to send back
                    result = self._failed_in_pool(uri, exc)
                await send.send(result)

    async def _convert_alone(self, uri: str, data: bytes,
                             storage_format: str) -> ParsedInstance | ConvertFailure:
        """Convert one file in a one-worker pool no other file shares at that time.

        If that worker dies too, the file itself is the cause (or the machine is killing
        workers): it fails, and no other file is lost with it.
        """
        loop = asyncio.get_running_loop()
        async with self._alone_lock:
            if self._alone is None:
                self._alone = self._new_pool(1)
            alone = self._alone
            try:
                return await loop.run_in_executor(alone, convert_p10, uri, data,
                                                  storage_format, self._limits)
            except BrokenProcessPool:
                self._alone = None
                alone.shutdown(wait=False, cancel_futures=True)
            except Exception as exc:
                return self._failed_in_pool(uri, exc)
        cap = self._limits.worker_memory
        why = (f"out of the {describe_bytes(cap)} of memory an import worker may use "
               "(--import-worker-memory), or killed" if cap else "killed")
        return ConvertFailure(uri, "InternalServerException",
                              f"the worker process converting this file died twice ({why}); "
                              "the job's other files were converted without it")

    def _failed_in_pool(self, uri: str, exc: Exception) -> ConvertFailure:
        """A failure outside the conversion itself, such as a worker that cannot send
        its result back (convert_p10 itself never raises)."""
        if isinstance(exc, MemoryError):
            return out_of_memory(uri, self._limits, exc)
        return ConvertFailure(uri, "InternalServerException",
                              f"the file could not be processed: {type(exc).__name__}: {exc}")

    async def _collect(self, job: JobLike,
                       receive: ObjectReceiveStream[ParsedInstance | ConvertFailure],
                       outcome: _Outcome) -> None:
        batch: list[ParsedInstance] = []
        batch_bytes = 0
        async with receive:
            async for result in receive:
                if isinstance(result, ConvertFailure):
                    outcome.failures.append(_failure_record(result))
                    if result.is_customer_error:
                        outcome.customer_errors += 1
                    else:
                        outcome.server_errors += 1
                    continue
                batch.append(result)
                batch_bytes += sum(len(f.data) for f in result.frames)
                if len(batch) >= self._batch_instances or batch_bytes >= self._batch_bytes:
                    await self._flush(job, batch, outcome)
                    batch, batch_bytes = [], 0
        if batch:
            await self._flush(job, batch, outcome)

    async def _flush(self, job: JobLike, batch: list[ParsedInstance], outcome: _Outcome) -> None:
        results = await anyio.to_thread.run_sync(
            lambda: self._backend.add_instances(job.datastore_id, batch, job_id=job.job_id))
        warned = {inst.input_file: inst.warnings for inst in batch if inst.warnings}
        for r in results:
            outcome.successes.append({"inputFile": r.input_file, "importResponse": {
                "imageSetId": r.image_set_id, "isPrimary": r.is_primary}})
            if r.input_file in warned:
                outcome.warnings.append(_warning_record(r.input_file, r.image_set_id,
                                                        r.image_set_version, r.is_primary,
                                                        warned[r.input_file]))
            entry = outcome.image_sets.setdefault(r.image_set_id, [0, r.is_primary, 0])
            entry[0] = max(entry[0], r.image_set_version)
            entry[2] += 1

    # -- output -------------------------------------------------------------------------
    def _write_output(self, job: JobLike, outcome: _Outcome) -> None:
        folder = output_folder(job)
        bucket, prefix = split_s3_uri(folder)
        scanned = len(outcome.successes) + len(outcome.failures)
        summary = {
            "jobId": job.job_id,
            "datastoreId": job.datastore_id,
            "inputS3Uri": job.input_s3_uri,
            "outputS3Uri": folder,
            "successOutputS3Uri": f"{folder}SUCCESS/",
            "failureOutputS3Uri": f"{folder}FAILURE/",
            "warningsOutputS3Uri": f"{folder}WARNING/",
            "numberOfScannedFiles": scanned,
            "numberOfImportedFiles": len(outcome.successes),
            "numberOfFilesWithCustomerError": outcome.customer_errors,
            "numberOfFilesWithServerError": outcome.server_errors,
            "numberOfGeneratedImageSets": len(outcome.image_sets),
            "imageSetsSummary": [
                {"imageSetId": image_set_id, "imageSetVersion": version,
                 "isPrimary": is_primary, "numberOfMatchedSOPInstances": count}
                for image_set_id, (version, is_primary, count) in outcome.image_sets.items()
            ],
        }
        self._s3.write(bucket, f"{prefix}SUCCESS/success.ndjson", _ndjson(outcome.successes))
        self._s3.write(bucket, f"{prefix}FAILURE/failure.ndjson", _ndjson(outcome.failures))
        self._s3.write(bucket, f"{prefix}WARNING/warning.ndjson", _ndjson(outcome.warnings))
        # Written last: clients poll for the manifest and then read the records.
        self._s3.write(bucket, f"{prefix}job-output-manifest.json",
                       json.dumps({"jobSummary": summary}, indent=1).encode())


def _failure_record(failure: ConvertFailure) -> dict[str, Any]:
    return {"inputFile": failure.input_file,
            "exception": {"exceptionType": failure.exception_type, "message": failure.message}}


def _warning_record(input_file: str, image_set_id: str, version: int, is_primary: bool,
                    warnings: Sequence[ImportWarning]) -> dict[str, Any]:
    return {"inputFile": input_file, "importResponse": {
        "imageSetId": image_set_id, "imageSetVersion": version, "isPrimary": is_primary,
        "warnings": [{"warning_reason_code": w.code, "type": w.type, "message": w.message}
                     for w in warnings]}}


def _ndjson(records: Sequence[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records)
