"""Copy a study's DICOM files from a public bucket into the input bucket, many at once.

Server-side copies (CopyObject) move no bytes through this machine. S3 refuses CopyObject
for objects over 5 GiB, so those go through a multipart upload of UploadPartCopy ranges.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from .clients import Clients

#: S3's limit for a single CopyObject (5 GiB).
COPY_OBJECT_LIMIT = 5 * 1024**3
#: Part size for multipart copies: 512 MiB keeps a 10 GB file (the import limit) at 20 parts.
PART_SIZE = 512 * 1024**2


@dataclass(frozen=True, slots=True)
class CopyResult:
    """What one study's copy did."""

    objects: int
    bytes: int
    multipart: int


async def list_objects(clients: Clients, bucket: str,
                       prefix: str) -> AsyncIterator[tuple[str, int]]:
    """(key, size) of every object under ``prefix``, page by page."""
    s3 = clients.s3
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if token:
            kwargs["ContinuationToken"] = token
        page = await clients.call(f"list s3://{bucket}/{prefix}",
                                  functools.partial(s3.list_objects_v2, **kwargs))
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith("/"):
                yield obj["Key"], int(obj["Size"])
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return


async def multipart_copy(clients: Clients, src_bucket: str, src_key: str, size: int,
                         dst_bucket: str, dst_key: str, *, part_size: int = PART_SIZE,
                         concurrency: int = 8) -> None:
    """Copy one large object as concurrent UploadPartCopy ranges; abort on any failure."""
    s3 = clients.s3
    what = f"copy s3://{src_bucket}/{src_key} in parts"
    upload = await clients.call(what, lambda: s3.create_multipart_upload(Bucket=dst_bucket,
                                                                          Key=dst_key))
    upload_id = upload["UploadId"]
    ranges = [(n + 1, start, min(start + part_size, size) - 1)
              for n, start in enumerate(range(0, size, part_size))]
    etags: dict[int, str] = {}
    limit = anyio.Semaphore(concurrency)

    async def part(number: int, first: int, last: int) -> None:
        async with limit:
            answer = await clients.call(what, lambda: s3.upload_part_copy(
                Bucket=dst_bucket, Key=dst_key, UploadId=upload_id, PartNumber=number,
                CopySource={"Bucket": src_bucket, "Key": src_key},
                CopySourceRange=f"bytes={first}-{last}"))
            etags[number] = answer["CopyPartResult"]["ETag"]

    try:
        async with anyio.create_task_group() as tg:
            for number, first, last in ranges:
                tg.start_soon(part, number, first, last)
        parts = [{"PartNumber": n, "ETag": etags[n]} for n, _, _ in ranges]
        await clients.call(what, lambda: s3.complete_multipart_upload(
            Bucket=dst_bucket, Key=dst_key, UploadId=upload_id,
            MultipartUpload={"Parts": parts}))
    except BaseException:
        with anyio.CancelScope(shield=True):
            # A failed abort only leaves parts a lifecycle rule expires; keep the real error.
            with contextlib.suppress(Exception):
                await s3.abort_multipart_upload(Bucket=dst_bucket, Key=dst_key,
                                                UploadId=upload_id)
        raise


async def copy_prefix(clients: Clients, src_bucket: str, src_prefix: str, dst_bucket: str,
                      dst_prefix: str, *, concurrency: int = 32,
                      multipart_threshold: int = COPY_OBJECT_LIMIT,
                      part_size: int = PART_SIZE,
                      on_copied: Callable[[int], None] | None = None) -> CopyResult:
    """Copy every object under ``src_prefix`` to ``dst_prefix``, ``concurrency`` at a time.

    Listing and copying overlap: a bounded stream carries keys from the lister to the
    copiers, so a huge prefix never sits in memory.
    """
    s3 = clients.s3
    send, receive = anyio.create_memory_object_stream[tuple[str, int]](concurrency * 2)
    totals = {"objects": 0, "bytes": 0, "multipart": 0}

    async def lister() -> None:
        async with send:
            async for item in list_objects(clients, src_bucket, src_prefix):
                await send.send(item)

    async def copier(items: Any) -> None:
        async with items:
            async for key, size in items:
                dst_key = dst_prefix + key[len(src_prefix):]
                if size > multipart_threshold:
                    await multipart_copy(clients, src_bucket, key, size, dst_bucket, dst_key,
                                         part_size=part_size)
                    totals["multipart"] += 1
                else:
                    await clients.call(f"copy s3://{src_bucket}/{key}", functools.partial(
                        s3.copy_object, Bucket=dst_bucket, Key=dst_key,
                        CopySource={"Bucket": src_bucket, "Key": key}))
                totals["objects"] += 1
                totals["bytes"] += size
                if on_copied is not None:
                    on_copied(totals["objects"])

    async with anyio.create_task_group() as tg:
        tg.start_soon(lister)
        async with receive:
            for _ in range(concurrency):
                tg.start_soon(copier, receive.clone())
    return CopyResult(totals["objects"], totals["bytes"], totals["multipart"])
